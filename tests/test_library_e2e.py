"""End to end: the real analysis (a tiny random checkpoint) on real music and generated WAVs, the CLI,
M3U/JSON/CSV read back, maps, and a scan killed with SIGKILL part-way."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from moodscope.cli import main
from moodscope.constants import SEGMENT_SECONDS
from moodscope.library import MoodLibrary, parse_m3u

MUSIC = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "music"


@pytest.fixture(scope="module")
def random_model(tmp_path_factory) -> Path:
    checkpoint = pytest.importorskip("moodscope.models.checkpoint")
    return checkpoint.save_random_checkpoint(tmp_path_factory.mktemp("model") / "random.pt", arch="hybrid", seed=0)


def write_tone(
    path: Path, seconds: float, freq: float, *, sr: int = 22_050, noise: float = 0.05, seed: int = 0
) -> Path:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    envelope = 0.5 + 0.4 * np.sin(2 * np.pi * t / seconds * (1 + seed % 3))
    y = envelope * np.sin(2 * np.pi * freq * t) + noise * (1 + seed % 5) * rng.standard_normal(len(t))
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, (0.4 * y).astype(np.float32), sr)
    return path


def check_integrity(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        assert conn.execute("SELECT count(*) - count(DISTINCT path) FROM tracks").fetchone()[0] == 0
        assert (
            conn.execute(
                "SELECT count(*) FROM tracks t "
                "WHERE n_segments != (SELECT count(*) FROM segments s WHERE s.track_id = t.id)"
            ).fetchone()[0]
            == 0
        )
        return conn.execute("SELECT count(*) FROM tracks").fetchone()[0]
    finally:
        conn.close()


def test_real_music_is_indexed_with_tags_and_timelines(tmp_path, random_model):
    if not MUSIC.is_dir():
        pytest.skip(f"real music not available: {MUSIC} is absent (clone the project beside ../shared)")
    db = tmp_path / "lib.db"
    with MoodLibrary(db) as lib:
        result = lib.scan(MUSIC, model=str(random_model), workers=2)
        assert not result.failed and len(result.analysed) == 5 and len(lib) == 5
        march = lib.track("March Thee to Dis")
        assert march.artist == "Maxstack" and march.album.startswith("Endgame")
        assert march.duration == pytest.approx(43.2, abs=0.5)
        assert len(lib.timeline(march.id)) == int(march.duration // SEGMENT_SECONDS)
        untagged = lib.track("frontiers")
        assert untagged.title is None and untagged.display_title == "frontiers"
        # the library stores exactly what analyze() says about the file
        from moodscope.analysis.analyzer import analyze

        direct = analyze(march.path, model=str(random_model)).summary
        assert march.quadrant == direct.quadrant
        assert march.valence == pytest.approx(direct.valence, abs=1e-4)
        assert march.confidence == pytest.approx(direct.confidence, abs=1e-4)
        rescan = lib.scan(MUSIC, model=str(random_model))
        assert rescan.unchanged == 5 and not rescan.analysed
        assert len(lib.similar(march, n=3)) == 3
    assert check_integrity(db) == 5


def test_cli_scan_queries_exports_and_rescans(tmp_path, random_model, capsys):
    music = tmp_path / "music"
    for i in range(6):
        write_tone(music / f"tone {i}.wav", 10.0 + i, 220.0 * (1 + i), seed=i)
    (music / "broken.wav").write_bytes(b"RIFF this is not audio")
    (music / "short.wav").parent.mkdir(exist_ok=True)
    write_tone(music / "short.wav", 2.0, 440.0)
    db = str(tmp_path / "lib.db")
    common = ["--db", db]

    assert main(["library", "scan", str(music), *common, "--model", str(random_model), "--workers", "1"]) == 1
    out, err = capsys.readouterr()
    assert "6 analysed" in out and "2 failed" in out
    assert "broken.wav" in err and "short.wav" in err and "too short" in err

    assert main(["library", "list", *common, "--format", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)["tracks"]
    assert len(listed) == 6 and {t["title"] for t in listed} == {f"tone {i}" for i in range(6)}

    m3u = tmp_path / "lists" / "calm.m3u"
    quadrant = listed[0]["quadrant"]
    assert main(["library", "playlist", "--mood", quadrant, "--n", "3", *common, "--m3u", str(m3u)]) == 0
    printed = capsys.readouterr().out
    entries = parse_m3u(m3u)
    assert 1 <= len(entries) <= 3 and printed.count("tone ") >= len(entries)
    assert m3u.read_text(encoding="utf-8").startswith("#EXTM3U\n")
    for entry in entries:
        assert Path(entry.path).exists() and entry.title.startswith("tone ")
        assert entry.duration == round(sf.info(entry.path).duration)

    rel = tmp_path / "lists" / "journey.m3u"
    assert main(["library", "journey", "--from", "sad", "--to", "0.5,0.5", "--n", "4", *common, "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 4
    to_go = [float(r["score"]) for r in rows]
    assert to_go == sorted(to_go, reverse=True)
    assert main(["library", "journey", "--from", "sad", "--to", "happy", *common, "--m3u", str(rel), "--relative"]) == 0
    capsys.readouterr()
    assert all(not line.startswith("/") for line in rel.read_text().splitlines() if not line.startswith("#"))
    assert [Path(e.path).exists() for e in parse_m3u(rel)] == [True] * 6

    assert main(["library", "similar", "tone 0", "--n", "2", *common, "--format", "json"]) == 0
    similar = json.loads(capsys.readouterr().out)
    assert len(similar["tracks"]) == 2 and similar["seed"]["title"] == "tone 0"
    assert main(["library", "clusters", "--k", "2", *common, "--format", "json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert sum(c["size"] for c in found) == 6
    assert main(["library", "clusters", "--k", "2", *common, "--cluster", "1", "--format", "json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["tracks"]) == found[0]["size"]
    assert main(["library", "show", "tone 2", *common]) == 0
    assert "valence" in capsys.readouterr().out
    assert main(["library", "stats", *common, "--failures"]) == 0
    assert "broken.wav" in capsys.readouterr().out
    for name in ("map.png", "map.html"):
        assert main(["library", "map", "--out", str(tmp_path / name), *common]) == 0
    assert (tmp_path / "map.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (tmp_path / "map.html").read_text(encoding="utf-8")
    assert page.count("<circle") == 6 and "tone 3" in page and "<script src" not in page
    assert main(["library", "map", "--out", str(tmp_path / "map.svg"), *common]) == 1
    capsys.readouterr()

    # move one file, delete another, add a new one: only the new one is analysed
    (music / "sub").mkdir()
    (music / "tone 1.wav").rename(music / "sub" / "moved.wav")
    (music / "tone 2.wav").unlink()
    write_tone(music / "tone 9.wav", 12.0, 330.0, seed=9)
    assert main(["library", "scan", str(music), *common, "--model", str(random_model), "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "1 analysed" in out and "1 moved" in out and "1 pruned" in out and "2 files failed before" in out
    with MoodLibrary(db) as lib:
        assert len(lib) == 6 and lib.track("moved").path.endswith("moved.wav")
    assert check_integrity(Path(db)) == 6


def test_query_commands_need_a_library(tmp_path, capsys):
    assert main(["library", "list", "--db", str(tmp_path / "none.db")]) == 1
    assert "library scan" in capsys.readouterr().err
    assert not (tmp_path / "none.db").exists()


@pytest.mark.slow
def test_killed_scan_leaves_an_intact_database_and_the_next_scan_completes(tmp_path, random_model):
    music = tmp_path / "music"
    n = 60
    for i in range(n):
        write_tone(music / f"f{i:03d}.wav", 5.5, 100.0 + 20 * i, sr=16_000, seed=i)
    db = tmp_path / "lib.db"
    cmd = [sys.executable, "-m", "moodscope", "library", "scan", str(music), "--db", str(db)]
    cmd += ["--model", str(random_model), "--workers", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    committed = 0
    deadline = time.monotonic() + 180
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if db.exists():
                try:
                    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
                    committed = conn.execute("SELECT count(*) FROM tracks").fetchone()[0]
                    conn.close()
                except sqlite3.OperationalError:  # schema not created yet
                    committed = 0
                if committed >= 3:
                    break
            time.sleep(0.02)
        assert proc.poll() is None, "the scan finished before it could be killed; make the folder bigger"
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    survived = check_integrity(db)
    assert 3 <= survived < n
    with MoodLibrary(db) as lib:
        result = lib.scan(music, model=str(random_model), workers=1)
        assert not result.failed
        assert result.unchanged == survived and len(result.analysed) == n - survived
        assert len(lib) == n
    assert check_integrity(db) == n


def test_damaged_audio_is_recorded_as_failed_and_the_scan_goes_on(tmp_path, random_model, capsys):
    """NaN samples once killed every scan of the folder with an sqlite3.IntegrityError."""
    music = tmp_path / "music"
    write_tone(music / "a.wav", 6.0, 220.0, seed=1)
    y = 0.3 * np.sin(2 * np.pi * 330.0 * np.arange(7 * 22_050) / 22_050)
    y[3 * 22_050 : 3 * 22_050 + 500] = np.nan
    sf.write(music / "b.wav", y.astype(np.float32), 22_050, subtype="FLOAT")
    write_tone(music / "c.wav", 6.0, 440.0, seed=3)
    db = tmp_path / "lib.db"
    argv = ["library", "scan", str(music), "--db", str(db), "--model", str(random_model), "--workers", "1"]
    assert main(argv) == 1
    out, err = capsys.readouterr()
    assert "2 analysed" in out and "1 failed" in out and "Traceback" not in err
    [line] = [line for line in err.splitlines() if "b.wav" in line]
    assert "the audio is damaged" in line and "NaN" in line
    assert main(argv) == 0  # the rescan skips the failed file until it changes
    assert "1 files failed before and are unchanged" in capsys.readouterr().out
    with MoodLibrary(db) as lib:
        assert sorted(Path(t.path).name for t in lib.tracks()) == ["a.wav", "c.wav"]
        assert list(lib.failures()) == [str(music / "b.wav")]
    assert check_integrity(db) == 2


def test_scan_rebuild_keeps_the_damaged_library_aside(tmp_path, random_model, capsys):
    music = tmp_path / "music"
    write_tone(music / "a.wav", 6.0, 220.0, seed=1)
    db = tmp_path / "lib.db"
    argv = ["library", "scan", str(music), "--db", str(db), "--model", str(random_model), "--workers", "1"]
    assert main(argv) == 0
    db.write_bytes(db.read_bytes()[:4096] + os.urandom(len(db.read_bytes()) - 4096))  # all but the header: garbage
    assert main(["library", "stats", "--db", str(db)]) == 1
    assert "--rebuild" in capsys.readouterr().err
    assert main([*argv, "--rebuild"]) == 0
    out, err = capsys.readouterr()
    assert "moved the old library aside to" in err and "1 analysed" in out
    [aside] = [p for p in tmp_path.iterdir() if p.name.startswith("lib.db.before-rebuild-")]
    assert aside.stat().st_size > 0
    assert check_integrity(db) == 1
