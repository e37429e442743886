"""Uncertain tracks (mostly silence, noise or speech) in ``similar`` and ``clusters``: left out by default,
an uncertain track to match is refused with a clear error, and an option includes them; the library API,
the CLI and the HTTP API agree."""

from __future__ import annotations

import json

import numpy as np
import pytest

from moodscope.analysis.analyzer import Analysis, va_from_probabilities
from moodscope.analysis.ood import REASONS, SegmentOod
from moodscope.cli import main
from moodscope.errors import LibraryError
from moodscope.library import MoodLibrary

MUSIC, NOISE = 12, 3
SEGMENTS = 4


def _probabilities(k: int) -> np.ndarray:
    """Music track k's segment probabilities; the noise tracks copy track 0's (so they are its nearest)."""
    return np.random.default_rng(k).dirichlet(np.full(4, 0.6), size=SEGMENTS)


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    base = tmp_path_factory.mktemp("uncertain")
    music = base / "music"
    music.mkdir()
    names = [f"song{i:02d}.wav" for i in range(MUSIC)] + [f"noise{i}.wav" for i in range(NOISE)]
    for i, name in enumerate(names):
        (music / name).write_bytes(b"RIFF" + bytes([i]) * 40)

    def analyzer(paths):
        for p in paths:
            noise = p.name.startswith("noise")
            probs = _probabilities(0 if noise else int(p.stem[4:]))
            code = np.full(SEGMENTS, REASONS.index("unlike training music") if noise else 0, np.int8)
            ood = SegmentOod(np.where(code > 0, 1.5, 0.5), code)
            starts = np.arange(SEGMENTS) * 5.0
            yield str(p), Analysis(str(p), 20.0, "fake", starts, probs, va_from_probabilities(probs), ood=ood), None

    path = base / "lib.db"
    with MoodLibrary(path) as lib:
        lib.scan(music, analyzer=analyzer)
        assert sum(t.uncertain for t in lib.tracks()) == NOISE
    return path


def _names(tracks) -> list[str]:
    return [t.path.rsplit("/", 1)[-1] if hasattr(t, "path") else t["path"].rsplit("/", 1)[-1] for t in tracks]


def test_similar_leaves_uncertain_tracks_out_unless_asked(db):
    with MoodLibrary(db) as lib:
        seed = lib.track("song00")
        found = _names(lib.similar(seed, n=MUSIC + NOISE))
        assert len(found) == MUSIC - 1 and not any(n.startswith("noise") for n in found)
        everything = _names(lib.similar(seed, n=MUSIC + NOISE, include_uncertain=True))
        assert len(everything) == MUSIC + NOISE - 1
        assert set(everything[:NOISE]) == {f"noise{i}.wav" for i in range(NOISE)}  # the same profile: nearest


def test_an_uncertain_track_to_match_is_refused_with_a_clear_error(db):
    with MoodLibrary(db) as lib:
        noise = lib.track("noise0")
        with pytest.raises(LibraryError, match=r"noise0.*uncertain: 100% .*--include-uncertain"):
            lib.similar(noise)
        found = _names(lib.similar(noise, n=3, include_uncertain=True))
        assert set(found) == {"noise1.wav", "noise2.wav", "song00.wav"}


def test_clusters_leave_uncertain_tracks_out_unless_asked(db):
    with MoodLibrary(db) as lib:
        uncertain = {t.id for t in lib.tracks() if t.uncertain}
        found = lib.clusters(3, examples=MUSIC)
        members = {t.id for c in found for t in lib.cluster_tracks(c)}
        assert sum(c.size for c in found) == MUSIC and len(members) == MUSIC and not members & uncertain
        assert sum(c.fraction for c in found) == pytest.approx(1.0)
        assert not {t.id for c in found for t in c.examples} & uncertain
        everything = lib.clusters(3, include_uncertain=True)
        assert sum(c.size for c in everything) == MUSIC + NOISE
        assert uncertain <= {t.id for c in everything for t in lib.cluster_tracks(c)}


def test_cli_similar_and_clusters(db, capsys):
    capsys.readouterr()
    assert main(["library", "similar", "song00", "--n", "20", "--format", "json", "--db", str(db)]) == 0
    assert len(json.loads(capsys.readouterr().out)["tracks"]) == MUSIC - 1
    argv = ["library", "similar", "song00", "--n", "20", "--include-uncertain", "--format", "json", "--db", str(db)]
    assert main(argv) == 0
    assert len(json.loads(capsys.readouterr().out)["tracks"]) == MUSIC + NOISE - 1
    assert main(["library", "similar", "noise1", "--db", str(db)]) != 0
    err = capsys.readouterr().err.strip()
    assert "uncertain" in err and "--include-uncertain" in err and len(err.splitlines()) == 1
    assert main(["library", "similar", "noise1", "--include-uncertain", "--n", "2", "--db", str(db)]) == 0
    capsys.readouterr()
    assert main(["library", "clusters", "--k", "2", "--format", "json", "--db", str(db)]) == 0
    assert sum(c["size"] for c in json.loads(capsys.readouterr().out)) == MUSIC
    assert main(["library", "clusters", "--k", "2", "--db", str(db)]) == 0
    assert f"{NOISE} uncertain tracks" in capsys.readouterr().out
    argv = ["library", "clusters", "--k", "1", "--cluster", "1", "--include-uncertain", "--format", "json"]
    assert main([*argv, "--db", str(db)]) == 0
    assert len(json.loads(capsys.readouterr().out)["tracks"]) == MUSIC + NOISE


def test_http_similar_and_clusters(db):
    from fastapi.testclient import TestClient

    from moodscope.server.app import create_app
    from moodscope.server.config import ServerConfig

    with MoodLibrary(db) as lib:
        song, noise = lib.track("song00").id, lib.track("noise0").id
    api = "/api/v1"
    with TestClient(create_app(ServerConfig(db=db, model="fast", workers=1))) as c:
        found = c.get(f"{api}/similar/{song}", params={"n": 50}).json()["tracks"]
        assert len(found) == MUSIC - 1 and not any(t["uncertain"] for t in found)
        found = c.get(f"{api}/similar/{song}", params={"n": 50, "include_uncertain": True}).json()["tracks"]
        assert len(found) == MUSIC + NOISE - 1
        refused = c.get(f"{api}/similar/{noise}")
        assert refused.status_code == 400 and "uncertain" in refused.json()["detail"]
        assert c.get(f"{api}/similar/{noise}", params={"include_uncertain": "true"}).status_code == 200
        assert sum(x["size"] for x in c.get(f"{api}/clusters", params={"k": 2}).json()) == MUSIC
        both = c.get(f"{api}/clusters", params={"k": 2, "include_uncertain": True}).json()
        assert sum(x["size"] for x in both) == MUSIC + NOISE
        one = c.get(f"{api}/clusters/1", params={"k": 1}).json()["tracks"]
        assert len(one) == MUSIC and not any(t["uncertain"] for t in one)
