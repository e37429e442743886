"""The page in a real browser: Playwright drives Debian's Chromium (headless) against a real
``moodscope serve`` process on a small library of real clips (../shared/data), analysed by a tiny
random model so that the test stays fast.

Checked as a user would: the map has one dot per indexed track, hovering names it, the quadrant
boxes filter it and the buttons zoom it; clicking a dot shows its timeline and an audio player
that plays; dropping a real clip shows its timeline; a journey lists tracks, plays them and its M3U
downloads; the empty-library, failed-upload and server-gone messages; a phone-width screen; and
the page and the API docs never ask anything of another host.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import expect

from conftest import shared_data
from moodscope.analysis.analyzer import Analysis
from moodscope.constants import QUADRANT_COLOURS, QUADRANTS
from moodscope.datasets.labels import reported_quadrant
from moodscope.library import MoodLibrary
from moodscope.models.checkpoint import save_random_checkpoint

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
TIMEOUT_MS = 60_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


class Server:
    """``moodscope serve`` in a subprocess on a free loopback port."""

    def __init__(self, tmp: Path, db: Path, model: str, roots: tuple[Path, ...] = ()):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "moodscope", "serve", "--db", str(db), "--model", model, "--port", str(self.port),
               "--workers", "1", *(a for r in roots for a in ("--root", str(r)))]  # fmt: skip
        self.log = open(tmp / f"server-{self.port}.log", "w")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"moodscope serve exited: {(tmp / f'server-{self.port}.log').read_text()}")
            try:
                get_json(f"{self.url}/api/v1/health")
                return
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise AssertionError("moodscope serve did not start within 120 s")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


@pytest.fixture(scope="module")
def clips() -> list[Path]:
    """Real clips: two 30-s 4Q clips per quadrant and a CC BY-SA song with spaces in its name."""
    fourq = shared_data("4q", "MER_audio_taffc_dataset")
    picked = [sorted((fourq / q).glob("*.mp3"))[i] for q in ("Q1", "Q2", "Q3", "Q4") for i in (0, 1)]
    return [*picked, shared_data("music", "March Thee to Dis.ogg")]


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip("Chromium is not installed (/usr/bin/chromium; `apt-get install -y chromium`): no browser tests")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory, clips):
    """A library of the real clips (linked, not copied) and a server over it."""
    tmp = tmp_path_factory.mktemp("site")
    model = str(save_random_checkpoint(tmp / "tiny.pt"))
    music = tmp / "music"
    music.mkdir()
    for clip in clips:
        (music / clip.name).symlink_to(clip)
    db = tmp / "library.db"
    with MoodLibrary(db) as lib:
        result = lib.scan(music, model=model, workers=1)
        assert len(result.analysed) == len(clips), result.failed
    server = Server(tmp, db, model, roots=(music,))
    yield {"url": server.url, "db": db, "model": model, "tmp": tmp, "server": server}
    server.stop()


@pytest.fixture
def page(browser, site):
    """A fresh page that records every request it makes and every error it logs."""
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.requests = []
    page.errors = []
    page.on("request", lambda r: page.requests.append(r.url))
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.on("console", lambda m: m.type == "error" and page.errors.append(m.text))
    yield page
    context.close()


def open_page(page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("body[data-ready=true]", state="attached")


def only_this_server(page, url: str) -> None:
    foreign = [u for u in page.requests if not (u.startswith(url) or u.startswith(("data:", "blob:")))]
    assert foreign == [], f"the page asked other hosts: {foreign}"


def test_map_shows_one_point_per_track_hover_filter_and_zoom(page, site):
    open_page(page, site["url"])
    tracks = get_json(f"{site['url']}/api/v1/tracks")["tracks"]
    dots = page.locator("#map circle.pt")
    assert dots.count() == len(tracks) == 9
    assert sorted(int(d) for d in dots.evaluate_all("ds => ds.map(d => d.dataset.id)")) == sorted(
        t["id"] for t in tracks
    )
    # each dot is coloured by the quadrant its position lies in (for the shipped model, also its label)
    colours = {t["id"]: reported_quadrant(t["valence"], t["arousal"]) for t in tracks}
    for dot in dots.all():
        q = colours[int(dot.get_attribute("data-id"))]
        assert q in dot.get_attribute("class") and dot.get_attribute("fill") == QUADRANT_COLOURS[q]
    # hover names the track (the last dot is drawn on top of any that it overlaps)
    first = next(t for t in tracks if t["id"] == int(dots.last.get_attribute("data-id")))
    dots.last.hover(force=True)
    assert page.locator("#tooltip").is_visible()
    assert first["title"] in page.locator("#tooltip").inner_text()
    # filter by quadrant: unticking a quadrant hides exactly the tracks drawn in it (in its colour)
    quadrant = colours[first["id"]]
    page.locator(f"#quadrant-filter input[value={quadrant}]").uncheck()
    visible = page.locator("#map circle.pt:visible").count()
    assert visible == sum(q != quadrant for q in colours.values())
    assert page.locator("#map-count").inner_text().startswith(f"{visible} of 9")
    page.locator(f"#quadrant-filter input[value={quadrant}]").check()
    assert page.locator("#map circle.pt:visible").count() == 9
    # zoom: the plot's transform changes, reset restores it
    world = page.locator("#map g.world")
    before = world.get_attribute("transform")
    page.click("#zoom-in")
    assert "scale(1.6)" in world.get_attribute("transform") and world.get_attribute("transform") != before
    page.click("#zoom-reset")
    assert world.get_attribute("transform") == before
    only_this_server(page, site["url"])
    assert page.errors == []


def test_clicking_a_point_shows_its_timeline_and_plays_it(page, site):
    open_page(page, site["url"])
    dot = page.locator("#map circle.pt").last  # drawn on top of any dot it overlaps
    track_id = int(dot.get_attribute("data-id"))
    dot.click(force=True)
    assert page.locator("#map circle.pt.selected").get_attribute("data-id") == str(track_id)
    page.wait_for_selector("#track-panel:not([hidden]) #track-timeline svg")
    detail = get_json(f"{site['url']}/api/v1/tracks/{track_id}")
    assert page.locator("#track-timeline .segment").count() == len(detail["timeline"]) >= 5
    assert detail["track"]["title"] in page.locator("#track-title").inner_text()
    expect(page.locator("#similar-list li")).to_have_count(5, timeout=TIMEOUT_MS)  # fetched after the timeline
    audio = page.locator("#track-audio")
    assert audio.get_attribute("src").endswith(f"/api/v1/tracks/{track_id}/audio")
    duration = audio.evaluate(
        "a => new Promise((ok, fail) => { a.onloadedmetadata = () => ok(a.duration); a.onerror = () => "
        "fail(a.error && a.error.message); a.preload = 'metadata'; a.load(); })"
    )
    assert abs(duration - detail["track"]["duration"]) < 1.5
    only_this_server(page, site["url"])


def test_uploading_a_real_clip_shows_its_timeline(page, site, clips):
    open_page(page, site["url"])
    clip = clips[-1]  # March Thee to Dis.ogg, 43 s
    with page.expect_response("**/api/v1/analyze*") as answer:
        page.set_input_files("#file", str(clip))
    result = answer.value.json()
    page.wait_for_selector("#analysis:not([hidden]) #analysis-timeline svg")
    assert page.locator("#analysis-timeline .segment").count() == len(result["segments"]) == 8
    assert page.locator("#analysis-title").inner_text() == clip.name
    assert result["summary"]["quadrant"] in page.locator("#analysis-summary").inner_text()
    assert page.locator("#upload-progress").is_hidden()
    only_this_server(page, site["url"])
    assert page.errors == []


def test_dropping_a_file_on_the_page_analyses_it(page, site, clips):
    open_page(page, site["url"])
    clip = clips[0]  # a 30-s 4Q MP3
    data = base64.b64encode(clip.read_bytes()).decode()
    dropped = page.evaluate_handle(
        """(b64) => { const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const dt = new DataTransfer(); dt.items.add(new File([bytes], "dropped.mp3", { type: "audio/mpeg" }));
            return dt; }""",
        data,
    )
    with page.expect_response("**/api/v1/analyze*") as answer:
        page.dispatch_event("#drop", "dragover", {"dataTransfer": dropped})
        assert "dragging" in page.locator("#drop").get_attribute("class")
        page.dispatch_event("#drop", "drop", {"dataTransfer": dropped})
    result = answer.value.json()
    page.wait_for_selector("#analysis:not([hidden]) #analysis-timeline svg")
    assert page.locator("#analysis-title").inner_text() == "dropped.mp3" == result["track"]
    assert page.locator("#analysis-timeline .segment").count() == len(result["segments"]) == 6


def test_journey_lists_tracks_plays_in_order_and_downloads_m3u(page, site):
    open_page(page, site["url"])
    page.fill("#journey-form input[name=from]", "sad")
    page.fill("#journey-form input[name=to]", "happy")
    page.fill("#journey-form input[name=n]", "5")
    page.click("#journey-form button[type=submit]")
    page.wait_for_selector("#journey-list li")
    expected = get_json(f"{site['url']}/api/v1/journey?from=sad&to=happy&n=5")
    items = page.locator("#journey-list li")
    assert items.count() == 5
    for i, t in enumerate(expected["tracks"]):
        assert t["title"] in items.nth(i).inner_text()
    page.click("#play-all")
    assert page.locator("#journey-list li.playing").count() == 1
    assert page.locator("#journey-audio").get_attribute("src").endswith(f"/tracks/{expected['tracks'][0]['id']}/audio")
    with page.expect_download() as download:
        page.click("#m3u-link")
    text = Path(download.value.path()).read_text(encoding="utf-8")
    assert text.startswith("#EXTM3U")
    assert [line for line in text.splitlines() if not line.startswith("#")] == [t["path"] for t in expected["tracks"]]
    only_this_server(page, site["url"])


def test_failed_upload_and_bad_mood_messages(page, site, tmp_path):
    open_page(page, site["url"])
    text = tmp_path / "notes.mp3"
    text.write_text("not music\n" * 100)
    page.set_input_files("#file", str(text))
    page.wait_for_selector("#message.error:not([hidden])")
    message = page.locator("#message").inner_text()
    assert "Could not analyse notes.mp3" in message and "cannot decode" in message
    page.fill("#journey-form input[name=from]", "euphoric")
    page.click("#journey-form button[type=submit]")
    expect(page.locator("#message")).to_contain_text("euphoric", timeout=TIMEOUT_MS)
    assert "Cannot build the journey" in page.locator("#message").inner_text()


def test_scan_from_the_page_and_the_empty_library_message(browser, site, clips):
    empty = site["tmp"] / "empty"
    empty.mkdir(exist_ok=True)
    server = Server(site["tmp"], site["tmp"] / "empty.db", site["model"], roots=(empty,))
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    try:
        open_page(page, server.url)
        assert page.locator("#library-empty").is_visible()
        assert "library is empty" in page.locator("#library-empty").inner_text()
        assert page.locator("#map-area").is_hidden()
        os.symlink(clips[0], empty / clips[0].name)
        page.click("#scan-form button[type=submit]")
        expect(page.locator("#scan-status")).to_contain_text("Scanned", timeout=TIMEOUT_MS)
        assert "1 analysed" in page.locator("#scan-status").inner_text()
        page.wait_for_selector("#map circle.pt", state="attached")
        assert page.locator("#map circle.pt").count() == 1 and page.locator("#library-empty").is_hidden()
        # the server goes away: the page says so instead of failing silently
        server.stop()
        page.locator("#map circle.pt").first.click(force=True)
        page.wait_for_selector("#message.error:not([hidden])")
        assert "cannot reach the moodscope server" in page.locator("#message").inner_text()
    finally:
        server.stop()
        context.close()


def test_phone_width_has_no_sideways_scrolling(browser, site):
    context = browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    try:
        open_page(page, site["url"])
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 360, f"the page is {width} px wide on a 360 px screen"
        box = page.locator("#map").bounding_box()
        assert box["width"] <= 360 and box["height"] > 250
        page.locator("#map circle.pt").nth(0).tap(force=True)
        page.wait_for_selector("#track-panel:not([hidden]) #track-timeline svg")
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
    finally:
        context.close()


def test_api_docs_render_offline(page, site):
    page.goto(f"{site['url']}/docs")
    page.wait_for_selector(".swagger-ui .opblock")
    assert page.locator(".swagger-ui .opblock").count() >= 14
    only_this_server(page, site["url"])


GRID = np.linspace(0.05, 0.95, 20)  # 20 x 20 tracks, 25 plot units apart: no two dots touch


def grid_analyzer(paths):
    """A stand-in analysis (no audio decoded): track ``grid i j.wav`` sits at valence GRID[i], arousal GRID[j]."""
    for p in paths:
        i, j = (int(k) for k in Path(p).stem.split()[1:])
        v, a = GRID[i], GRID[j]
        probs = np.full((3, 4), 0.1)
        probs[:, QUADRANTS.index(reported_quadrant(v, a))] = 0.7
        yield str(p), Analysis(str(p), 15.0, "stand-in", np.arange(3) * 5.0, probs, np.tile([v, a], (3, 1))), None


@pytest.fixture(scope="module")
def grid_site(tmp_path_factory, site):
    """A server over a library of 400 tracks spread on a grid of the valence/arousal plane."""
    tmp = tmp_path_factory.mktemp("grid")
    music = tmp / "music"
    music.mkdir()
    for i in range(len(GRID)):
        for j in range(len(GRID)):
            (music / f"grid {i:02d} {j:02d}.wav").write_bytes(b"RIFF" + bytes([i, j]))
    db = tmp / "grid.db"
    with MoodLibrary(db) as lib:
        assert len(lib.scan(music, analyzer=grid_analyzer).analysed) == len(GRID) ** 2
    server = Server(tmp, db, site["model"])
    yield {"url": server.url}
    server.stop()


def canvas_pixel(page, at: dict) -> np.ndarray:
    """The RGB painted on the map's canvas under a client position."""
    rgba = page.evaluate(
        """({x, y}) => { const c = document.querySelector("#map-canvas"); const box = c.getBoundingClientRect();
            const px = c.getContext("2d").getImageData(Math.floor((x - box.left) * c.width / box.width),
              Math.floor((y - box.top) * c.height / box.height), 1, 1).data; return Array.from(px); }""",
        at,
    )
    return np.asarray(rgba[:3], dtype=float)


def painted_as(page, at: dict) -> str:
    """Which quadrant's colour (80 % over the plot's background) the pixel under ``at`` is nearest to, or 'none'."""
    background = np.array([0xFB, 0xFC, 0xFE], dtype=float)
    expected = {q: 0.8 * np.array([int(c[k : k + 2], 16) for k in (1, 3, 5)]) + 0.2 * background
                for q, c in QUADRANT_COLOURS.items()} | {"none": background}  # fmt: skip
    pixel = canvas_pixel(page, at)
    return min(expected, key=lambda q: np.abs(expected[q] - pixel).sum())


def wait_painted(page, at: dict, quadrant: str, timeout: float = 10.0) -> None:
    """Wait until the canvas shows ``quadrant``'s colour (or 'none') under ``at`` (it repaints on the next frame)."""
    deadline = time.time() + timeout
    while (found := painted_as(page, at)) != quadrant and time.time() < deadline:
        page.wait_for_timeout(50)
    assert found == quadrant


def test_canvas_map_hovers_clicks_filters_and_zooms_like_the_svg_one(page, grid_site):
    url = grid_site["url"]
    tracks = {t["id"]: t for t in get_json(f"{url}/api/v1/tracks?limit=1000")["tracks"]}
    page.set_viewport_size({"width": 1280, "height": 1600})  # the whole map on the screen, for the pointer
    open_page(page, url)  # 400 tracks: SVG circles
    assert page.locator("#map").get_attribute("data-mode") == "svg" and page.locator("#map circle.pt").count() == 400
    open_page(page, f"{url}/?map=canvas")
    assert page.locator("#map").get_attribute("data-mode") == "canvas"
    assert page.locator("#map circle.pt").count() == 0 and page.locator("#map-canvas").is_visible()
    assert page.locator("#map-count").inner_text().startswith("400 of 400")

    def position(track_id: int) -> dict:
        return page.evaluate("id => window.moodscope.map.clientPosition(id)", track_id)

    tooltip = page.locator("#tooltip")
    sample = sorted(tracks)[::37]
    for track_id in sample:  # the pointer on a dot names that track; the dot is painted in its colour
        at = position(track_id)
        page.mouse.move(at["x"], at["y"])
        expect(tooltip).to_be_visible()
        assert tooltip.inner_text().startswith(tracks[track_id]["title"])
        assert painted_as(page, at) == tracks[track_id]["quadrant"]
    # a track a little off the centre (still on the plot when zoomed in) and its right-hand neighbour
    by_place = {(t["valence"], t["arousal"]): i for i, t in tracks.items()}
    i, j = np.searchsorted(GRID, 0.625), np.searchsorted(GRID, 0.375)
    first = tracks[by_place[(round(GRID[i], 4), round(GRID[j], 4))]]
    neighbour = by_place[(round(GRID[i + 1], 4), round(GRID[j], 4))]
    a, b = position(first["id"]), position(neighbour)
    between = {"x": (a["x"] + b["x"]) / 2, "y": (a["y"] + b["y"]) / 2}
    page.mouse.move(between["x"], between["y"])  # between two dots: nothing to name
    expect(tooltip).to_be_hidden()
    assert painted_as(page, between) == "none"

    # a hidden quadrant is neither painted nor hovered
    quadrant = first["quadrant"]
    page.locator(f"#quadrant-filter input[value={quadrant}]").uncheck()
    others = sum(t["quadrant"] != quadrant for t in tracks.values())
    assert page.locator("#map-count").inner_text().startswith(f"{others} of 400")
    page.mouse.move(a["x"], a["y"])
    expect(tooltip).to_be_hidden()
    wait_painted(page, a, "none")
    page.locator(f"#quadrant-filter input[value={quadrant}]").check()
    # the search box keeps one track: only it can be hovered
    page.fill("#map-search", first["title"])
    assert page.locator("#map-count").inner_text().startswith("1 of 400")
    page.mouse.move(b["x"], b["y"])
    expect(tooltip).to_be_hidden()
    page.mouse.move(a["x"], a["y"])
    expect(tooltip).to_be_visible()
    expect(tooltip).to_contain_text(first["title"])
    page.fill("#map-search", "")

    # zoomed in, the dot has moved and is still found where it is drawn
    page.click("#zoom-in")
    page.click("#zoom-in")
    zoomed = position(first["id"])
    assert abs(zoomed["x"] - a["x"]) + abs(zoomed["y"] - a["y"]) > 5
    right = position(neighbour)
    assert right["x"] - zoomed["x"] > 1.5 * (b["x"] - a["x"])  # farther apart than before
    page.mouse.move((zoomed["x"] + right["x"]) / 2, zoomed["y"])
    expect(tooltip).to_be_hidden()
    page.mouse.move(zoomed["x"], zoomed["y"])
    expect(tooltip).to_be_visible()
    expect(tooltip).to_contain_text(first["title"])
    wait_painted(page, zoomed, quadrant)
    # a click selects it: its timeline, and a ring around its dot
    page.mouse.click(zoomed["x"], zoomed["y"])
    page.wait_for_selector("#track-panel:not([hidden]) #track-timeline svg")
    assert page.locator("#track-panel").get_attribute("data-id") == str(first["id"])
    assert first["title"] in page.locator("#track-title").inner_text()
    assert page.locator("#map .mark.selected").get_attribute("visibility") == "visible"
    only_this_server(page, url)
    assert page.errors == []


def test_server_stops_cleanly_on_ctrl_c(site):
    tmp = site["tmp"]
    server = Server(tmp, site["db"], site["model"])
    server.stop()
    assert server.process.returncode == 0
    assert "serving the library" in (tmp / f"server-{server.port}.log").read_text()
