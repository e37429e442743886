"""Playlist files and maps: M3U written and parsed back, JSON/CSV, PNG and offline interactive HTML."""

from __future__ import annotations

import csv
import io
import json
from html.parser import HTMLParser

import pytest

from moodscope.constants import QUADRANTS
from moodscope.errors import LibraryError
from moodscope.library.db import Track
from moodscope.library.export import (
    LIBRARY_COLUMNS,
    m3u_text,
    parse_m3u,
    parse_xspf,
    tracks_csv,
    tracks_json,
    write_m3u,
    write_xspf,
)
from moodscope.library.mapplot import map_html, write_map
from moodscope.version import __version__

MODEL_HASH = "ab" * 32


def track(i: int, *, title: str | None, artist: str | None, path: str, quadrant: str = "Q4", v=0.8, a=0.3) -> Track:
    probs = {q: 0.25 for q in QUADRANTS}
    return Track(
        id=i,
        path=path,
        title=title,
        artist=artist,
        album=None,
        duration=123.6 + i,
        quadrant=quadrant,
        confidence=0.7,
        valence=v,
        arousal=a,
        probabilities=probs,
        quadrant_share=probs,
        model="m",
        model_hash=MODEL_HASH,
        moodscope_version="9.9.9",
        score=0.5 / (i + 1),
    )


@pytest.fixture
def tracks(tmp_path):
    music = tmp_path / "music" / "Sub folder"
    music.mkdir(parents=True)
    return [
        track(1, title="Blue, in Green", artist="Miles Davis", path=str(music / "blue, in green.flac")),
        track(2, title=None, artist=None, path=str(music / "untitled take.mp3"), quadrant="Q1", v=0.9, a=0.9),
        track(3, title="Été\nlong", artist="Ünïcode <b>", path=str(music / "été.ogg"), quadrant="Q3", v=0.2, a=0.2),
    ]


def test_m3u_round_trip(tmp_path, tracks):
    path = write_m3u(tracks, tmp_path / "out" / "calm.m3u", name="calm evening")
    text = path.read_text(encoding="utf-8")
    assert text.startswith(
        f"#EXTM3U\n#PLAYLIST:calm evening\n#MOODSCOPE:version={__version__} models=m@sha256:{MODEL_HASH}\n"
        "#EXTINF:125,Miles Davis - Blue, in Green\n"
    )
    entries = parse_m3u(path)
    assert [e.path for e in entries] == [t.path for t in tracks]
    assert [e.duration for e in entries] == [125, 126, 127]
    assert [e.title for e in entries] == ["Miles Davis - Blue, in Green", "untitled take", "Ünïcode <b> - Été long"]
    rel = write_m3u(tracks, tmp_path / "music" / "list.m3u", relative=True)
    lines = [line for line in rel.read_text(encoding="utf-8").splitlines() if not line.startswith("#")]
    assert lines[0] == "Sub folder/blue, in green.flac"
    assert [e.path for e in parse_m3u(rel)] == [t.path for t in tracks]
    assert not list(tmp_path.rglob("*.tmp"))  # atomic writes leave nothing behind


def test_parse_plain_and_odd_m3u(tmp_path):
    text = "#EXTM3U\n#EXTINF:-1,Stream\nhttp://radio.example/stream\n\nrelative/a.mp3\n#EXTINF:abc,bad\n/abs/b.mp3\n"
    entries = parse_m3u(text, base=str(tmp_path))
    assert entries[0].path == "http://radio.example/stream" and entries[0].duration is None
    assert entries[1].path == str(tmp_path / "relative" / "a.mp3") and entries[1].title is None
    assert entries[2].path == "/abs/b.mp3" and entries[2].duration is None and entries[2].title == "bad"
    assert m3u_text([]) == "#EXTM3U\n"


def test_json_and_csv(tracks):
    data = json.loads(tracks_json(tracks, playlist="x"))
    assert data["playlist"] == "x" and [t["position"] for t in data["tracks"]] == [1, 2, 3]
    assert data["tracks"][1]["title"] == "untitled take" and data["tracks"][0]["mood"] == "calm/relaxed"
    rows = list(csv.DictReader(io.StringIO(tracks_csv(tracks))))
    assert len(rows) == 3 and rows[0]["title"] == "Blue, in Green" and rows[2]["title"] == "Été\nlong"
    assert float(rows[0]["duration"]) == pytest.approx(124.6) and rows[1]["quadrant"] == "Q1"
    for row in (*rows, *data["tracks"]):  # provenance of every exported track
        assert (row["model"], row["model_hash"], row["moodscope_version"]) == ("m", MODEL_HASH, "9.9.9")


def test_xspf_round_trip(tmp_path, tracks):
    import xml.etree.ElementTree as ET

    odd = track(4, title="Bell\x07 ring", artist=None, path=str(tmp_path / "music" / "new\nline & <x>.mp3"))
    tracks = [*tracks, odd]  # a control character in a title, a newline and XML characters in a file name
    path = write_xspf(tracks, tmp_path / "out" / "calm.xspf", name="calm evening")
    ns = {"x": "http://xspf.org/ns/0/"}
    root = ET.parse(path).getroot()  # well-formed XML in the XSPF namespace
    assert root.tag == "{http://xspf.org/ns/0/}playlist" and root.get("version") == "1"
    assert root.findtext("x:title", namespaces=ns) == "calm evening"
    assert root.find("x:meta[@rel='urn:moodscope:version']", ns).text == __version__
    elements = root.findall("x:trackList/x:track", ns)
    assert [e.findtext("x:location", namespaces=ns)[:8] for e in elements] == ["file:///"] * 4
    assert "%0A" in elements[3].findtext("x:location", namespaces=ns)
    assert elements[0].findtext("x:creator", namespaces=ns) == "Miles Davis"
    assert elements[0].findtext("x:duration", namespaces=ns) == "124600"
    assert elements[2].find("x:meta[@rel='urn:moodscope:quadrant']", ns).text == "Q3"
    assert elements[2].find("x:meta[@rel='urn:moodscope:model']", ns).text == f"m@sha256:{MODEL_HASH}"
    assert elements[3].findtext("x:title", namespaces=ns) == "Bell ring"
    entries = parse_xspf(path)
    assert [e.path for e in entries] == [t.path for t in tracks]
    assert [e.duration for e in entries] == [125, 126, 127, 128]
    rel = write_xspf(tracks, tmp_path / "music" / "list.xspf", relative=True)
    locations = [e.findtext("x:location", namespaces=ns) for e in ET.parse(rel).getroot().findall(".//x:track", ns)]
    assert locations[0] == "Sub%20folder/blue%2C%20in%20green.flac"
    assert [e.path for e in parse_xspf(rel)] == [t.path for t in tracks]
    assert not list(tmp_path.rglob("*.tmp"))


def test_whole_library_export_and_xspf_option(tmp_path, make_wav, capsys):
    from moodscope.cli import main
    from moodscope.library import MoodLibrary
    from test_library_scan import ContentAnalyzer

    for i in range(3):
        make_wav(f"music/t{i}.wav", 6.0, freqs=(220.0 * (i + 1),))
    db = tmp_path / "lib.db"
    with MoodLibrary(db) as lib:
        lib.scan(tmp_path / "music", analyzer=ContentAnalyzer())
        tracks = lib.tracks()
    assert main(["library", "export", "--out", str(tmp_path / "all.csv"), "--db", str(db)]) == 0
    rows = list(csv.DictReader((tmp_path / "all.csv").open(encoding="utf-8")))
    assert tuple(rows[0]) == LIBRARY_COLUMNS and [r["path"] for r in rows] == [t.path for t in tracks]
    assert [float(r["valence"]) for r in rows] == [round(t.valence, 4) for t in tracks]
    assert {r["model"] for r in rows} == {"fake"} and all(len(r["sha256"]) == 64 for r in rows)
    assert main(["library", "export", "--out", "-", "--format", "json", "--db", str(db)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["columns"] == list(LIBRARY_COLUMNS) and data["moodscope_version"] == __version__
    assert [t["quadrant"] for t in data["tracks"]] == [t.quadrant for t in tracks]
    assert set(data["tracks"][0]) == set(LIBRARY_COLUMNS) and data["tracks"][0]["artist"] is None
    assert main(["library", "export", "--out", str(tmp_path / "all.xlsx"), "--db", str(db)]) == 1
    assert "give a .csv or .json file" in capsys.readouterr().err

    assert main(["library", "list", "--xspf", str(tmp_path / "all.xspf"), "--m3u", str(tmp_path / "all.m3u"),
                 "--db", str(db)]) == 0  # fmt: skip
    assert [e.path for e in parse_xspf(tmp_path / "all.xspf")] == [e.path for e in parse_m3u(tmp_path / "all.m3u")]
    assert main(["library", "clusters", "--k", "2", "--cluster", "1", "--xspf", str(tmp_path / "c.xspf"),
                 "--db", str(db)]) == 0  # fmt: skip
    assert 1 <= len(parse_xspf(tmp_path / "c.xspf")) <= 3


class _Dots(HTMLParser):
    def __init__(self):
        super().__init__()
        self.circles, self.external = [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "circle":
            self.circles.append(attrs)
        for key in ("src", "href"):
            if attrs.get(key, "").startswith(("http", "//")):
                self.external.append(attrs[key])


def test_html_map_is_offline_and_has_hover_data(tmp_path, tracks):
    page = map_html(tracks)
    parser = _Dots()
    parser.feed(page)
    assert len(parser.circles) == 3 and parser.external == []
    assert parser.circles[0]["data-title"] == "Blue, in Green" and parser.circles[0]["data-artist"] == "Miles Davis"
    assert parser.circles[2]["data-artist"] == "Ünïcode <b>"  # escaped in the file, intact once parsed
    assert "<b>" not in page.replace("&lt;b&gt;", "")
    assert "<title>Blue, in Green — Miles Davis</title>" in page and "mousemove" in page
    assert parser.circles[1]["fill"] != parser.circles[0]["fill"]


def test_png_map_and_bad_extension(tmp_path, tracks):
    png = write_map(tracks, tmp_path / "map.png")
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert write_map([], tmp_path / "empty.html").read_text(encoding="utf-8").count("<circle") == 0
    with pytest.raises(LibraryError, match=r"\.png or \.html"):
        write_map(tracks, tmp_path / "map.jpg")
