"""The HTTP API in process (FastAPI's TestClient) on a small library analysed by a tiny random model.

Every endpoint; the library endpoints against the CLI's own JSON/M3U/CSV for the same parameters;
uploads good and bad (empty, text, truncated MP3, too short, oversize, wrong name, not multipart,
streamed past the limit, abandoned half-way); the bounded pool (503 + Retry-After, /health answering
while analyses run); scans confined to the roots; JSON errors; CORS; offline docs.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from conftest import fresh_python
from moodscope.cli import main
from moodscope.constants import AUDIO_EXTENSIONS, QUADRANT_COLOURS, QUADRANTS, VA_RANGE
from moodscope.library import MoodLibrary
from moodscope.models.checkpoint import save_random_checkpoint
from moodscope.server.app import AUDIO_MEDIA_TYPES, create_app
from moodscope.server.config import ServerConfig
from test_analyze_cli import write_audio

API = "/api/v1"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A tiny model, a music root with a few WAV/MP3/Ogg files (one subfolder left unscanned) and its library."""
    base = tmp_path_factory.mktemp("server")
    model = str(save_random_checkpoint(base / "tiny.pt"))
    root = base / "music"
    (root / "rock").mkdir(parents=True)
    (root / "later").mkdir()
    for i in range(6):
        write_audio(root / "rock" / f"song {i}.wav", 6.0 + 2 * i, sr=22_050, seed=i)
    write_audio(root / "rock" / "tune.mp3", 11.0, channels=2, format="MP3", seed=7)
    write_audio(root / "rock" / "tune.ogg", 8.0, format="OGG", subtype="VORBIS", seed=8)
    write_audio(root / "later" / "new one.wav", 7.0, seed=9)
    (base / "outside").mkdir()
    write_audio(base / "outside" / "secret.wav", 6.0, seed=10)
    db = base / "lib.db"
    with MoodLibrary(db) as lib:
        result = lib.scan(root / "rock", model=model, workers=1)
        assert len(result.analysed) == 8, result.failed
    return {"base": base, "model": model, "root": root, "db": db}


@pytest.fixture(scope="module")
def client(world):
    config = ServerConfig(db=world["db"], model=world["model"], workers=1, queue=1, roots=(world["root"],))
    with TestClient(create_app(config)) as c:
        yield c


def state(client):
    return client.app.state.server


def cli_json(capsys, *argv) -> dict | list:
    capsys.readouterr()
    assert main([*argv, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def error_of(response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "detail"} and body["error"]
    return json.dumps(body["detail"])


# ---- health, page, docs ------------------------------------------------------------------------------


def test_health_serves_the_page_configuration(client, world):
    h = client.get(f"{API}/health").json()
    assert h["status"] == "ok" and h["library"] == str(world["db"])
    assert h["va_range"] == list(VA_RANGE)
    assert {q: v["colour"] for q, v in h["quadrants"].items()} == QUADRANT_COLOURS
    assert h["analysis"]["workers"] == 1 and h["analysis"]["capacity"] == 2
    assert h["analysis"]["model"].endswith("tiny.pt")
    assert h["scan"] == {"enabled": True, "roots": [str(Path(os.path.realpath(world["root"])))]}


def test_page_and_its_assets_are_served_with_a_same_origin_policy(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "<html" in page.text.lower()


def test_docs_are_served_offline(client):
    docs = client.get("/docs")
    assert docs.status_code == 200
    urls = [part.split('"')[0] for part in docs.text.split('src="')[1:] + docs.text.split('href="')[1:]]
    assert urls and all(u.startswith("/") for u in urls), urls
    for url in urls:
        assert client.get(url).status_code == 200, url
    schema = client.get("/openapi.json").json()
    expected = {"/health", "/analyze", "/tracks", "/tracks/{track_id}", "/tracks/{track_id}/audio", "/map",
                "/playlist", "/journey", "/similar/{track_id}", "/clusters", "/clusters/{index}", "/stats", "/scan",
                "/jobs/{job_id}"}  # fmt: skip
    assert {p.removeprefix(API) for p in schema["paths"]} == expected


def test_every_indexed_extension_has_a_content_type():
    assert set(AUDIO_EXTENSIONS) <= set(AUDIO_MEDIA_TYPES)
    assert all(t.startswith("audio/") for t in AUDIO_MEDIA_TYPES.values())


def test_errors_are_json_with_the_right_status(client):
    assert "no such page" in error_of(client.get("/nope"), 404)
    error_of(client.post(f"{API}/tracks"), 405)
    error_of(client.get(f"{API}/tracks", params={"limit": "lots"}), 422)


# ---- tracks --------------------------------------------------------------------------------------------


def test_tracks_pages_filters_and_counts(client, world):
    everything = client.get(f"{API}/tracks").json()
    assert everything["total"] == 8 and len(everything["tracks"]) == 8
    pages = [client.get(f"{API}/tracks", params={"limit": 3, "offset": o}).json() for o in (0, 3, 6)]
    assert [t["id"] for p in pages for t in p["tracks"]] == [t["id"] for t in everything["tracks"]]
    assert all(p["total"] == 8 for p in pages)
    found = client.get(f"{API}/tracks", params={"q": "TUNE"}).json()
    assert sorted(Path(t["path"]).name for t in found["tracks"]) == ["tune.mp3", "tune.ogg"] and found["total"] == 2
    for q in QUADRANTS:
        some = client.get(f"{API}/tracks", params={"mood": q}).json()
        assert all(t["quadrant"] == q for t in some["tracks"])
        assert some["total"] == sum(t["quadrant"] == q for t in everything["tracks"])
    confident = client.get(f"{API}/tracks", params={"min_confidence": 0.3}).json()["tracks"]
    assert all(t["confidence"] >= 0.3 for t in confident)
    with MoodLibrary(world["db"]) as lib:
        near = [t.id for t in lib.tracks("0.2,0.1", limit=4)]
    assert [
        t["id"] for t in client.get(f"{API}/tracks", params={"mood": "0.2,0.1", "limit": 4}).json()["tracks"]
    ] == near


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"limit": 0}, 422),
        ({"limit": 5000}, 422),
        ({"offset": -1}, 422),
        ({"min_confidence": 1.5}, 422),
        ({"min_confidence": "nan"}, 422),
        ({"mood": "euphoric"}, 400),
        ({"mood": "3,3"}, 400),
        ({"q": "x" * 500}, 422),
    ],
)
def test_tracks_bad_parameters(client, params, status):
    error_of(client.get(f"{API}/tracks", params=params), status)


def test_track_detail_has_summary_and_timeline(client, world):
    listed = client.get(f"{API}/tracks").json()["tracks"]
    for t in listed:
        detail = client.get(f"{API}/tracks/{t['id']}").json()
        assert detail["track"] == t
        assert detail["summary"]["quadrant"] == t["quadrant"]
        assert detail["summary"]["confidence"] == pytest.approx(t["confidence"], abs=1e-4)
        starts = [s["start"] for s in detail["timeline"]]
        assert starts == [5.0 * i for i in range(len(starts))] and len(starts) >= 1
        for s in detail["timeline"]:
            assert sum(s["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize(("track_id", "status"), [(999, 404), (0, 422), ("abc", 422), (10**30, 422), (-3, 422)])
def test_unknown_or_malformed_track_ids(client, track_id, status):
    for suffix in ("", "/audio"):
        error_of(client.get(f"{API}/tracks/{track_id}{suffix}"), status)
    error_of(client.get(f"{API}/similar/{track_id}"), status)


def test_audio_streams_with_ranges_and_content_types(client):
    for t in client.get(f"{API}/tracks").json()["tracks"]:
        data = Path(t["path"]).read_bytes()
        full = client.get(f"{API}/tracks/{t['id']}/audio")
        assert full.status_code == 200 and full.content == data
        assert full.headers["content-type"] == AUDIO_MEDIA_TYPES[Path(t["path"]).suffix]
        assert full.headers["accept-ranges"] == "bytes"
        part = client.get(f"{API}/tracks/{t['id']}/audio", headers={"Range": "bytes=100-199"})
        assert part.status_code == 206 and part.content == data[100:200]
        assert part.headers["content-range"] == f"bytes 100-199/{len(data)}"
        tail = client.get(f"{API}/tracks/{t['id']}/audio", headers={"Range": "bytes=-50"})
        assert tail.status_code == 206 and tail.content == data[-50:]
    first = client.get(f"{API}/tracks").json()["tracks"][0]
    url = f"{API}/tracks/{first['id']}/audio"
    data = Path(first["path"]).read_bytes()
    assert "first-last" in error_of(client.get(url, headers={"Range": "bytes=abc"}), 400)
    assert "ends before it starts" in error_of(client.get(url, headers={"Range": "bytes=9-2"}), 400)
    for status, header in [(416, "bytes=999999999-"), (416, "bytes=-0")]:
        unsatisfiable = client.get(url, headers={"Range": header})
        error_of(unsatisfiable, status)
        assert unsatisfiable.headers["content-range"] == f"bytes */{len(data)}"
    # ignored, so the whole file: another unit (RFC 9110 MUST), several ranges, a stale If-Range
    for headers in ({"Range": "lines=1-2"}, {"Range": "bytes=0-9,20-29"},
                    {"Range": "bytes=0-9", "If-Range": '"not-this-file"'}):  # fmt: skip
        whole = client.get(url, headers=headers)
        assert whole.status_code == 200 and whole.content == data, headers
        assert whole.headers["content-length"] == str(len(data))
    # a current If-Range (ETag or Last-Modified) keeps the range
    etag, modified = whole.headers["etag"], whole.headers["last-modified"]
    for validator in (etag, modified):
        part = client.get(url, headers={"Range": "bytes=10-19", "If-Range": validator})
        assert part.status_code == 206 and part.content == data[10:20]
        assert part.headers["content-length"] == "10" and part.headers["etag"] == etag


def test_audio_of_a_vanished_file_is_404(world, tmp_path):
    music = tmp_path / "m"
    music.mkdir()
    gone = write_audio(music / "gone.wav", 6.0)
    db = tmp_path / "lib.db"
    with MoodLibrary(db) as lib:
        lib.scan(music, model=world["model"], workers=1)
    gone.unlink()
    with TestClient(create_app(ServerConfig(db=db, model=world["model"], workers=1))) as c:
        assert "rescan" in error_of(c.get(f"{API}/tracks/1/audio"), 404)


def test_map_columns_match_the_tracks(client):
    response = client.get(f"{API}/map")  # httpx asks for gzip and decodes it
    assert response.headers["content-encoding"] == "gzip" and response.headers["vary"] == "Accept-Encoding"
    points = response.json()
    tracks = client.get(f"{API}/tracks").json()["tracks"]
    assert points["id"] == [t["id"] for t in tracks]
    assert [points["quadrants"][q] for q in points["quadrant"]] == [t["quadrant"] for t in tracks]
    assert points["valence"] == [t["valence"] for t in tracks]
    assert points["arousal"] == [t["arousal"] for t in tracks]
    assert points["confidence"] == [t["confidence"] for t in tracks]
    assert points["title"] == [t["title"] for t in tracks]
    assert [points["artists"][a] if a >= 0 else None for a in points["artist"]] == [t["artist"] for t in tracks]
    plain = client.get(f"{API}/map", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and json.loads(plain.content) == points
    assert plain.content.startswith(b'{"quadrants":["Q1","Q2","Q3","Q4"],"id":[')  # compact separators
    assert plain.headers["etag"] != response.headers["etag"]  # two encodings, two validators


def test_map_is_cached_per_library_state_with_etags(world, tmp_path):
    db = tmp_path / "lib.db"
    with MoodLibrary(world["db"]) as source, MoodLibrary(db) as copy:
        source.conn.backup(copy.conn)
    with TestClient(create_app(ServerConfig(db=db, model=world["model"], workers=1))) as c:
        first = c.get(f"{API}/map")
        etag = first.headers["etag"]
        assert first.headers["cache-control"] == "no-cache"
        assert c.get(f"{API}/map").headers["etag"] == etag  # the same state: the same bytes
        again = c.get(f"{API}/map", headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
        assert c.get(f"{API}/map", headers={"If-None-Match": f'"other", W/{etag}'}).status_code == 304
        assert c.get(f"{API}/map", headers={"If-None-Match": '"other"'}).status_code == 200
        # another process renames a track: the next request sees it, under a new ETag
        with MoodLibrary(db) as writer:
            track_id = first.json()["id"][0]
            writer.conn.execute("UPDATE tracks SET title = 'Renamed', artist = 'Someone' WHERE id = ?", (track_id,))
        changed = c.get(f"{API}/map", headers={"If-None-Match": etag})
        assert changed.status_code == 200 and changed.headers["etag"] != etag
        points = changed.json()
        assert points["title"][0] == "Renamed" and points["artists"][points["artist"][0]] == "Someone"


@pytest.mark.parametrize(
    ("header", "gzip"),
    [(None, False), ("", False), ("gzip", True), ("gzip, deflate, br", True), ("br;q=1.0, gzip;q=0.8", True),
     ("GZIP", True), ("*", True), ("gzip;q=0", False), ("gzip;q=0.0, *", False), ("identity", False),
     ("deflate, *;q=0", False), ("gzip;q=bad", False)],
)  # fmt: skip
def test_accept_encoding(header, gzip):
    from moodscope.server.mapcache import accepts_gzip

    assert accepts_gzip(header) is gzip


# ---- the library commands: same parameters, same results as the CLI ------------------------------------

CLI_CASES = [
    ("/playlist", {"mood": "calm", "n": 3}, ["playlist", "--mood", "calm", "--n", "3"]),
    ("/playlist", {"mood": "0.1,0.0", "minutes": 0.5}, ["playlist", "--mood", "0.1,0.0", "--minutes", "0.5"]),
    ("/playlist", {"mood": "Q1", "min_confidence": 0.26}, ["playlist", "--mood", "Q1", "--min-confidence", "0.26"]),
    ("/journey", {"from": "sad", "to": "happy", "n": 4}, ["journey", "--from", "sad", "--to", "happy", "--n", "4"]),
    ("/journey", {"from": "0.2,0.8", "to": "Q4"}, ["journey", "--from=0.2,0.8", "--to", "Q4"]),
    ("/similar/3", {"n": 4}, ["similar", "3", "--n", "4"]),
    ("/clusters/2", {"k": 3}, ["clusters", "--k", "3", "--cluster", "2"]),
]


@pytest.mark.parametrize(("path", "params", "argv"), CLI_CASES)
def test_playlists_equal_the_cli_in_json_m3u_and_csv(client, world, capsys, tmp_path, path, params, argv):
    db = ["--db", str(world["db"])]
    api = client.get(API + path, params=params)
    assert api.status_code == 200, api.text
    assert api.json() == cli_json(capsys, "library", *argv, *db)
    m3u = client.get(API + path, params=params | {"format": "m3u"})
    assert m3u.headers["content-type"].startswith("audio/x-mpegurl")
    assert "attachment" in m3u.headers["content-disposition"]
    assert main(["library", *argv, *db, "--m3u", str(tmp_path / "x.m3u")]) == 0
    assert m3u.text == (tmp_path / "x.m3u").read_text(encoding="utf-8") and m3u.text.startswith("#EXTM3U")
    xspf = client.get(API + path, params=params | {"format": "xspf"})
    assert xspf.headers["content-type"].startswith("application/xspf+xml")
    assert main(["library", *argv, *db, "--xspf", str(tmp_path / "x.xspf")]) == 0
    assert xspf.text == (tmp_path / "x.xspf").read_text(encoding="utf-8") and "<trackList" in xspf.text
    csv = client.get(API + path, params=params | {"format": "csv"})
    capsys.readouterr()
    assert main(["library", *argv, *db, "--format", "csv"]) == 0
    assert csv.headers["content-type"].startswith("text/csv") and csv.text == capsys.readouterr().out


def test_clusters_and_stats_equal_the_cli(client, world, capsys):
    db = ["--db", str(world["db"])]
    assert client.get(f"{API}/clusters", params={"k": 3, "examples": 2}).json() == cli_json(
        capsys, "library", "clusters", "--k", "3", "--examples", "2", *db
    )
    stats = client.get(f"{API}/stats").json()
    with MoodLibrary(world["db"]) as lib:
        assert stats == lib.stats()
    assert client.get(f"{API}/stats", params={"failures": True}).json()["failed_files"] == {}


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        ("/playlist", {}, 422),
        ("/playlist", {"mood": "calm", "n": 3, "minutes": 10}, 400),
        ("/playlist", {"mood": "calm", "n": 0}, 422),
        ("/playlist", {"mood": "calm", "minutes": -5}, 422),
        ("/playlist", {"mood": "calm", "minutes": "inf"}, 422),
        ("/playlist", {"mood": "jolly"}, 400),
        ("/playlist", {"mood": "calm", "format": "pls"}, 422),
        ("/journey", {"to": "happy"}, 422),
        ("/journey", {"from": "sad", "to": "happy", "n": 100000}, 422),
        ("/journey", {"from": "sad", "to": "2,0"}, 400),
        ("/similar/1", {"n": 0}, 422),
        ("/clusters", {"k": 0}, 422),
        ("/clusters", {"k": 51}, 422),
        ("/clusters/9", {"k": 3}, 404),
        ("/clusters/0", {"k": 3}, 422),
        ("/jobs/12345", {}, 404),
        ("/jobs/x", {}, 422),
    ],
)
def test_library_bad_parameters(client, path, params, status):
    error_of(client.get(API + path, params=params), status)


# ---- uploads -------------------------------------------------------------------------------------------


def upload(client, name: str, data: bytes, *, params=None, content_type="audio/wav"):
    return client.post(f"{API}/analyze", params=params or {}, files={"file": (name, data, content_type)})


def uploads_left(client) -> list[str]:
    return os.listdir(state(client).uploads)


def test_upload_gives_the_json_of_analyze(client, world, tmp_path, capsys):
    path = write_audio(tmp_path / "song.wav", 12.0, seed=3)
    result = upload(client, "My Song.wav", path.read_bytes())
    assert result.status_code == 200, result.text
    [expected] = cli_json(capsys, "analyze", str(path), "--model", world["model"])
    expected["track"] = "My Song.wav"
    assert result.json() == expected
    assert len(result.json()["segments"]) == 2
    assert uploads_left(client) == []


def test_upload_type_is_decided_by_decoding_not_by_name_or_header(client, tmp_path):
    ogg = write_audio(tmp_path / "a.ogg", 7.0, format="OGG", subtype="VORBIS").read_bytes()
    for name, ctype in [("song.mp3", "audio/mpeg"), ("notes.txt", "text/plain"), ("noext", "application/pdf")]:
        result = upload(client, name, ogg, content_type=ctype)
        assert result.status_code == 200, result.text
        assert result.json()["track"] == name and len(result.json()["segments"]) == 1
    text = b"this is a text file, not an MP3\n" * 50
    assert "cannot decode" in error_of(upload(client, "real.mp3", text, content_type="audio/mpeg"), 415)
    assert uploads_left(client) == []


def test_shipped_model_by_query(client, tmp_path):
    result = upload(client, "a.wav", write_audio(tmp_path / "a.wav", 6.0).read_bytes(), params={"model": "fast"})
    assert result.status_code == 200 and result.json()["model"] == "fast"
    error_of(upload(client, "a.wav", b"RIFF", params={"model": "../../etc/passwd"}), 422)


def test_bad_uploads(client, tmp_path):
    assert "empty" in error_of(upload(client, "empty.mp3", b""), 400)
    short = write_audio(tmp_path / "short.wav", 3.0).read_bytes()
    detail = error_of(upload(client, "short.wav", short), 422)
    assert "too short" in detail and "short.wav" in detail and str(tmp_path) not in detail
    full = write_audio(tmp_path / "full.mp3", 14.0, channels=2, format="MP3").read_bytes()
    truncated = upload(client, "truncated.mp3", full[: len(full) // 2])  # decoded as far as it goes
    assert truncated.status_code == 200 and 1 <= len(truncated.json()["segments"]) <= 2
    assert "too short" in error_of(upload(client, "stub.mp3", full[: len(full) // 5]), 422)
    error_of(client.post(f"{API}/analyze", content=b"raw bytes", headers={"content-type": "audio/wav"}), 415)
    error_of(client.post(f"{API}/analyze", files={"other": ("a.wav", short)}), 422)
    error_of(client.post(f"{API}/analyze", data={"file": "not a file"}, files={"x": ("x", b"x")}), 422)
    error_of(client.post(f"{API}/analyze", data={"file": "not a file"}), 415)  # a form, not multipart
    broken = b"--xyz\r\nContent-Disposition: form-data; name=file; filename=a.wav\r\n\r\nRIFF"
    error_of(client.post(f"{API}/analyze", content=broken, headers={"content-type": "multipart/form-data"}), 400)
    error_of(
        client.post(f"{API}/analyze", content=broken, headers={"content-type": "multipart/form-data; boundary=xyz"}),
        400,
    )
    assert uploads_left(client) == []
    assert state(client).pool.status()["admitted"] == 0


@pytest.fixture(scope="module")
def small_client(world):
    """A server that takes uploads of at most 64 KiB."""
    config = ServerConfig(db=world["db"], model=world["model"], workers=1, max_upload_bytes=64 * 1024)
    with TestClient(create_app(config)) as c:
        yield c


def test_oversize_upload_is_413(small_client, tmp_path):
    big = write_audio(tmp_path / "big.wav", 10.0).read_bytes()
    assert len(big) > 64 * 1024
    assert "max-upload-mb" in error_of(upload(small_client, "big.wav", big), 413)
    assert uploads_left(small_client) == []


def multipart_head(boundary: str = "b0undary") -> bytes:
    return (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="huge.wav"\r\n'
        "Content-Type: audio/wav\r\n\r\n"
    ).encode()


def asgi_post(client, chunks, *, headers: dict[str, str], path: str = f"{API}/analyze", whole: bool = False):
    """POST through the raw ASGI interface: the body is pulled chunk by chunk from ``chunks`` (as a
    network delivers it). ``whole``: the last chunk ends the body; then (or when ``chunks`` runs out
    mid-body) the client is gone (``http.disconnect``). Returns (status, body, bytes pulled)."""
    pulled = 0
    sent: dict = {"status": None, "body": b""}
    pending = list(chunks) if whole else None
    source = iter(chunks if pending is None else pending)

    async def receive():
        nonlocal pulled
        chunk = next(source, None)
        if chunk is None:
            return {"type": "http.disconnect"}
        pulled += len(chunk)
        last = pending is not None and pulled == sum(map(len, pending))
        return {"type": "http.request", "body": chunk, "more_body": not last}

    async def send(message):
        if message["type"] == "http.response.start":
            sent["status"] = message["status"]
        elif message["type"] == "http.response.body":
            sent["body"] += message.get("body", b"")

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
        "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000), "state": {},
    }  # fmt: skip
    asyncio.run(client.app(scope, receive, send))
    return sent["status"], sent["body"], pulled


def test_a_2_gb_upload_is_refused_while_streaming(small_client):
    def two_gigabytes():
        yield multipart_head()
        for _ in range(2048):
            yield b"\0" * 2**20

    ctype = {"content-type": "multipart/form-data; boundary=b0undary"}
    status, body, pulled = asgi_post(small_client, two_gigabytes(), headers=ctype)  # chunked: no length
    assert status == 413 and json.loads(body)["error"] == "upload too large"
    assert pulled <= 64 * 1024 + 2**20 + 1024  # stopped within a chunk of the limit
    assert uploads_left(small_client) == []
    status, _, pulled = asgi_post(small_client, two_gigabytes(), headers=ctype | {"content-length": str(2**31)})
    assert status == 413 and pulled == 0  # refused from the header, before reading anything
    assert state(small_client).pool.status()["admitted"] == 0


def test_temp_file_removed_when_the_client_disconnects_mid_upload(client):
    chunks = [multipart_head(), b"RIFF" + b"\1" * 30_000]  # then the client is gone
    status, sent, pulled = asgi_post(client, chunks, headers={"content-type": "multipart/form-data; boundary=b0undary"})
    assert pulled > 30_000 and status == 400 and "during the upload" in json.loads(sent)["detail"]
    assert uploads_left(client) == []
    assert state(client).pool.status()["admitted"] == 0


def test_queued_analysis_dropped_when_the_client_disconnects(client, tmp_path):
    pool = state(client).pool
    release = threading.Event()
    busy = pool.reserve()
    pool.submit(busy, release.wait, 30)  # the only worker is busy
    try:
        wav = write_audio(tmp_path / "q.wav", 6.0).read_bytes()
        body = multipart_head() + wav + b"\r\n--b0undary--\r\n"
        ctype = {"content-type": "multipart/form-data; boundary=b0undary"}
        # the whole body arrives, the job waits in the queue, then the client goes away
        status, sent, _ = asgi_post(client, [body], headers=ctype, whole=True)
        assert status == 400 and "before the analysis ended" in json.loads(sent)["detail"]
        assert uploads_left(client) == []
        assert pool.status()["admitted"] == 1  # only the busy worker's slot is still taken
    finally:
        release.set()
    deadline = time.time() + 10
    while pool.status()["admitted"] and time.time() < deadline:
        time.sleep(0.05)
    assert pool.status() | {"admitted": 0} == pool.status()


def test_full_queue_is_503_with_retry_after_and_health_keeps_answering(client, tmp_path):
    pool = state(client).pool
    release = threading.Event()
    running = pool.reserve()
    pool.submit(running, release.wait, 30)
    waiting = pool.reserve()  # capacity 2: one running, one queued
    try:
        wav = write_audio(tmp_path / "r.wav", 6.0).read_bytes()
        refused = upload(client, "r.wav", wav)
        error_of(refused, 503)
        assert int(refused.headers["retry-after"]) >= 1
        start = time.perf_counter()
        health = client.get(f"{API}/health")
        tracks = client.get(f"{API}/tracks")
        assert health.status_code == 200 and tracks.status_code == 200
        assert time.perf_counter() - start < 5
        assert health.json()["analysis"]["running"] == 1 and health.json()["analysis"]["admitted"] == 2
    finally:
        waiting.release()
        release.set()
    deadline = time.time() + 10
    while pool.status()["admitted"] and time.time() < deadline:
        time.sleep(0.05)
    assert upload(client, "r.wav", wav).status_code == 200  # the retry succeeds
    assert uploads_left(client) == []


def test_concurrent_uploads_all_succeed_or_get_503(client, tmp_path):
    wav = write_audio(tmp_path / "c.wav", 6.0).read_bytes()
    results: list[int] = []

    def one():
        r = upload(client, "c.wav", wav)
        results.append(r.status_code)
        if r.status_code == 503:
            assert int(r.headers["retry-after"]) >= 1

    threads = [threading.Thread(target=one) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(set(results)) <= [200, 503] and 200 in results
    assert uploads_left(client) == []


# ---- scans and paths -----------------------------------------------------------------------------------


def wait_for_job(client, job_id: int, timeout: float = 120) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = client.get(f"{API}/jobs/{job_id}").json()
        if job["state"] in ("done", "failed"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish")


def test_scan_job_indexes_a_folder_inside_the_root(client, world):
    before = client.get(f"{API}/tracks").json()["total"]
    started = client.post(f"{API}/scan", json={"folder": "later"})
    assert started.status_code == 202, started.text
    job = wait_for_job(client, started.json()["id"])
    assert job["state"] == "done" and job["result"]["analysed"] == 1 and job["failures"] == {}
    assert job["done"] == job["total"] == 1
    assert client.get(f"{API}/tracks").json()["total"] == before + 1
    assert client.get(f"{API}/tracks", params={"q": "new one"}).json()["total"] == 1
    again = wait_for_job(client, client.post(f"{API}/scan", json={"folder": str(world["root"] / "later")}).json()["id"])
    assert again["result"]["unchanged"] == 1 and again["result"]["analysed"] == 0


def traversal_attempts(world) -> dict[str, tuple[str, int]]:
    root, base = world["root"], world["base"]
    evil = base / "music-evil"  # shares the root's name as a prefix
    evil.mkdir(exist_ok=True)
    link = root / "escape"
    if not link.exists():
        link.symlink_to(base / "outside", target_is_directory=True)
    return {
        "dot-dot": ("../outside", 403),
        "dot-dot inside": ("rock/../../outside", 403),
        "absolute dot-dot": (f"{root}/../outside", 403),
        "absolute outside": (str(base / "outside"), 403),
        "system folder": ("/etc", 403),
        "prefix sibling": (str(evil), 403),
        "symlink out of the root": ("escape", 403),
        "url-encoded": ("%2e%2e%2foutside", 400),  # never decoded: a folder literally so named, absent
        "url-encoded absolute": ("..%2F..%2Foutside", 400),
        "double-encoded": ("%252e%252e%252foutside", 400),
        "nul byte": ("rock\x00/../../outside", 400),
        "a file": ("rock/song 0.wav", 400),
    }


def test_each_traversal_attempt_is_refused(client, world):
    jobs_before = len(state(client).jobs._jobs)
    for name, (folder, status) in traversal_attempts(world).items():
        response = client.post(f"{API}/scan", json={"folder": folder})
        assert response.status_code == status, (name, response.text)
        assert set(response.json()) == {"error", "detail"}
    assert len(state(client).jobs._jobs) == jobs_before  # nothing was scanned
    names = [Path(t["path"]).name for t in client.get(f"{API}/tracks").json()["tracks"]]
    assert "secret.wav" not in names


URL_ATTEMPTS = [
    "/static/../server/app.py",
    "/static/..%2Fapp.py",
    "/static/%2e%2e/app.py",
    "/static/%2e%2e%2fapp.py",
    "/static/%252e%252e%252fapp.py",
    "/static//etc/passwd",
    "/static/%2Fetc%2Fpasswd",
    f"{API}/tracks/..%2F..%2Fetc%2Fpasswd/audio",
    f"{API}/tracks/%2e%2e/audio",
    f"{API}/tracks/1%2F..%2F..%2Fetc%2Fpasswd/audio",
    f"{API}/similar/%252e%252e",
]


@pytest.mark.parametrize("url", URL_ATTEMPTS)
def test_traversal_in_urls_is_refused(client, url):
    response = client.get(url)
    assert response.status_code in (404, 422), response.text[:200]
    assert "root:" not in response.text and "def create_app" not in response.text


def test_scanning_is_disabled_without_roots(world):
    with TestClient(create_app(ServerConfig(db=world["db"], model=world["model"], workers=1))) as c:
        assert "--root" in error_of(c.post(f"{API}/scan", json={"folder": str(world["root"])}), 403)
        assert c.get(f"{API}/health").json()["scan"] == {"enabled": False, "roots": []}
    with TestClient(create_app(ServerConfig(db=world["db"], model=world["model"], workers=1))) as c:
        error_of(c.post(f"{API}/scan", json={"folder": "x", "rm": "-rf"}), 422)  # unknown fields refused


# ---- CORS, CLI ------------------------------------------------------------------------------------------


def test_cors_is_off_by_default_and_allows_one_origin(client, world):
    asked = {"Origin": "http://example.test"}
    assert "access-control-allow-origin" not in client.get(f"{API}/health", headers=asked).headers
    config = ServerConfig(db=world["db"], model=world["model"], workers=1, cors_origin="http://example.test")
    with TestClient(create_app(config)) as c:
        assert c.get(f"{API}/health", headers=asked).headers["access-control-allow-origin"] == "http://example.test"
        other = c.get(f"{API}/health", headers={"Origin": "http://elsewhere.test"})
        assert "access-control-allow-origin" not in other.headers


def test_help_does_not_import_the_web_stack():
    code = "import sys; from moodscope.cli import build_parser; build_parser(); print(sorted(" \
           "m for m in ('fastapi', 'uvicorn', 'starlette', 'torch') if m in sys.modules))"  # fmt: skip
    out = fresh_python(code)
    assert out.strip() == "[]"


def test_serve_refuses_bad_options(world, capsys):
    assert main(["serve", "--db", str(world["db"]), "--model", "/no/such/model.pt"]) == 1
    assert "no such model" in capsys.readouterr().err
    assert main(["serve", "--db", str(world["db"]), "--root", "/no/such/folder"]) == 1
    assert "not a folder" in capsys.readouterr().err
    for option in (["--workers", "0"], ["--port", "70000"], ["--max-upload-mb", "0"], ["--queue", "-1"]):
        assert main(["serve", "--db", str(world["db"]), *option]) == 1
        assert capsys.readouterr().err.startswith("moodscope: error: ")
