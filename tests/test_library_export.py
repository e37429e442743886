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
from moodscope.library.export import m3u_text, parse_m3u, tracks_csv, tracks_json, write_m3u
from moodscope.library.mapplot import map_html, write_map
from moodscope.version import __version__

MODEL_HASH = "ab" * 32


def track(i: int, *, title: str | None, artist: str | None, path: str, quadrant: str = "Q4", v=0.3, a=-0.2) -> Track:
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
        track(2, title=None, artist=None, path=str(music / "untitled take.mp3"), quadrant="Q1", v=0.4, a=0.4),
        track(3, title="Été\nlong", artist="Ünïcode <b>", path=str(music / "été.ogg"), quadrant="Q3", v=-0.3, a=-0.3),
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
