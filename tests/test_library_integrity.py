"""A library under attack: damaged pages and values, empty and read-only files, unwritable places,
symlinked roots and loops, concurrent scans, odd file names in M3U, impossible arguments.

The analysis is a deterministic stand-in (test_library_scan.py's), so every case runs in well under
a second; the read-only cases run a subprocess under which read-only files are read-only even for root.
"""

from __future__ import annotations

import os
import sqlite3
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import without_root_override
from moodscope.cli import main
from moodscope.errors import LibraryError
from moodscope.library import MoodLibrary, parse_m3u, write_m3u
from moodscope.library.db import scan_lock
from moodscope.library.integrity import move_aside, was_checked
from test_library_scan import ContentAnalyzer, integrity, make_files


def scanned(tmp_path: Path, n: int = 6) -> Path:
    db = tmp_path / "lib.db"
    make_files(tmp_path / "music", n)
    with MoodLibrary(db) as lib:
        lib.scan(tmp_path / "music", analyzer=ContentAnalyzer())
        lib.similar(1)  # the profile snapshot is current
    return db


def overwrite_page(db: Path, table: str) -> None:
    """Garbage over the root page of ``table`` (the WAL checkpointed first, so the page is in the file)."""
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page = conn.execute("SELECT rootpage FROM sqlite_schema WHERE name = ?", (table,)).fetchone()[0]
        size = conn.execute("PRAGMA page_size").fetchone()[0]
    with open(db, "r+b") as fh:
        fh.seek((page - 1) * size + 8)
        fh.write(np.random.default_rng(0).bytes(size - 16))


def overwrite_bytes(db: Path, old: bytes, new: bytes) -> int:
    """Replace every occurrence of ``old`` in the file (the row and the profile snapshot); returns how many."""
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = db.read_bytes()
    count = data.count(old)
    db.write_bytes(data.replace(old, new))
    return count


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# ---- damage --------------------------------------------------------------------------------------


@pytest.mark.parametrize("table", ["tracks", "segments", "profile_snapshot"])
def test_a_damaged_page_is_refused_with_the_way_out(tmp_path, capsys, table):
    db = scanned(tmp_path)
    overwrite_page(db, table)
    with pytest.raises(LibraryError, match=r"lib\.db: the library database is damaged .*scan --rebuild"):
        MoodLibrary(db)
    for command in (["similar", "1"], ["clusters"], ["journey", "--from", "sad", "--to", "happy"], ["list"]):
        code, out, err = run(capsys, "library", *command, "--db", db)
        assert code == 1 and out == "", command
        assert err.startswith(f"moodscope: error: {db}: the library database is damaged") and err.count("\n") == 1


def test_garbage_inside_stored_profiles_is_never_shown(tmp_path, capsys):
    """SQLite's checks cannot see damage inside a value: distances of 1e32 came out before."""
    db = scanned(tmp_path)
    with sqlite3.connect(db) as conn:
        blob = conn.execute("SELECT profile FROM tracks WHERE id = 2").fetchone()[0]
    garbage = struct.pack("<ff", 1e32, 3e38) * (len(blob) // 8)
    assert overwrite_bytes(db, blob, garbage) == 2  # the row and the snapshot
    lib = MoodLibrary(db)  # the structure is sound: it opens
    with pytest.raises(LibraryError, match=r"damaged .*profile of track 2 holds impossible values"):
        lib.similar(1)
    lib.close()
    code, out, err = run(capsys, "library", "clusters", "--db", db)
    assert code == 1 and "e+" not in out and "damaged" in err


def test_garbage_in_summaries_and_segments_is_refused(tmp_path):
    db = scanned(tmp_path)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE tracks SET valence = 1e32 WHERE id = 3")
        conn.execute("UPDATE segments SET arousal = -7 WHERE track_id = 4")
    with MoodLibrary(db) as lib:
        with pytest.raises(LibraryError, match=r"damaged .*track 3 .* valence 1e\+32"):
            lib.tracks()
        with pytest.raises(LibraryError, match=r"damaged .*segment 0 of track 4"):
            lib.timeline(4)
        assert lib.track(1).id == 1  # the sound tracks are still readable one by one
        problems = lib.check()
    assert any("track 3" in p for p in problems) and any("of track 4" in p for p in problems)


def test_a_damaged_snapshot_alone_is_rebuilt_from_the_tracks(tmp_path):
    db = scanned(tmp_path)
    with sqlite3.connect(db) as conn:
        n, data = conn.execute("SELECT n, data FROM profile_snapshot").fetchone()
        conn.execute("UPDATE profile_snapshot SET data = ?", (data[:-8],))  # truncated
    with MoodLibrary(db) as lib:
        assert len(lib.similar(1, n=5)) == 5
        assert len(lib.profiles()) == n


def test_library_check_reports_sound_and_damaged_libraries(tmp_path, capsys):
    db = scanned(tmp_path)
    code, out, _ = run(capsys, "library", "check", "--db", db)
    assert code == 0 and out.startswith(f"{db}: ok (6 tracks")
    overwrite_page(db, "segments")
    code, out, err = run(capsys, "library", "check", "--db", db)
    assert code == 1 and out == ""
    assert err.startswith(f"{db}: the library database is damaged:") and "scan --rebuild" in err


def test_rebuild_moves_the_damaged_library_aside_and_starts_afresh(tmp_path):
    db = scanned(tmp_path)
    overwrite_page(db, "tracks")
    aside = move_aside(db)
    assert aside is not None and aside.name.startswith("lib.db.before-rebuild-") and aside.exists()
    assert not db.exists()
    with MoodLibrary(db) as lib:
        assert len(lib.scan(tmp_path / "music", analyzer=ContentAnalyzer()).analysed) == 6
    integrity(db)


def test_a_check_that_passed_is_remembered_until_the_file_changes(tmp_path):
    db = scanned(tmp_path)
    assert was_checked(db)  # the scan checked the library it left
    overwrite_page(db, "segments")
    assert not was_checked(db)
    with pytest.raises(LibraryError, match="damaged"):
        MoodLibrary(db)


def test_an_empty_file_is_reported_not_used(tmp_path, capsys):
    db = tmp_path / "lib.db"
    db.write_bytes(b"")
    with pytest.raises(LibraryError, match=r"empty file \(0 bytes\)"):
        MoodLibrary(db)
    for command in (["stats"], ["scan", str(tmp_path)]):
        code, _, err = run(capsys, "library", *command, "--db", db)
        assert code == 1 and "empty file (0 bytes)" in err and "--rebuild" in err
    assert db.stat().st_size == 0


# ---- read-only and unwritable places -------------------------------------------------------------

QUERY = """
import sys
from moodscope.library import MoodLibrary
with MoodLibrary(sys.argv[1], create=False) as lib:
    print(lib.read_only, len(lib.similar(1, n=3)), len(lib.clusters(2)), len(lib.tracks("calm")) >= 0)
"""


def as_other_user(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([*without_root_override(), sys.executable, *argv], capture_output=True, text=True)


@pytest.mark.parametrize("what", ["file", "folder"])
def test_a_read_only_library_serves_queries_and_refuses_scans_at_once(tmp_path, what):
    db = scanned(tmp_path)
    (tmp_path / "new").mkdir()
    make_files(tmp_path / "new", 2)
    target = db if what == "file" else tmp_path
    db.chmod(0o444)
    target.chmod(0o555)
    try:
        query = as_other_user("-c", QUERY, str(db))
        assert query.returncode == 0, query.stderr
        assert query.stdout.split() == ["True", "3", "2", "True"]
        scan = as_other_user("-m", "moodscope", "library", "scan", str(tmp_path / "new"), "--db", str(db))
        assert scan.returncode == 1
        assert scan.stderr.startswith(f"moodscope: error: {db}: cannot write the library there"), scan.stderr
        assert scan.stderr.count("\n") == 1
    finally:
        target.chmod(0o755)
        db.chmod(0o644)
    left = {p.name for p in tmp_path.iterdir() if "lib.db" in p.name}
    assert left <= {"lib.db", "lib.db-wal", "lib.db-shm", ".lib.db.scan-lock"}  # nothing new


def test_a_db_in_an_unwritable_place_is_one_line_and_leaves_nothing(tmp_path, capsys):
    make_files(tmp_path / "music", 1)
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        proc = as_other_user("-m", "moodscope", "library", "scan", str(tmp_path / "music"), "--db", str(ro / "x.db"))
    finally:
        ro.chmod(0o755)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1
    assert proc.stderr.startswith(f"moodscope: error: {ro / 'x.db'}: cannot write the library there")
    assert list(ro.iterdir()) == []
    code, _, err = run(capsys, "library", "scan", tmp_path / "music", "--db", "/proc/moodscope/lib.db")
    assert code == 1 and err.startswith("moodscope: error: /proc/moodscope/lib.db: ") and err.count("\n") == 1


def test_a_scan_that_cannot_start_leaves_no_library_behind(tmp_path, capsys):
    make_files(tmp_path / "music", 1)
    db = tmp_path / "new.db"
    code, _, err = run(capsys, "library", "scan", tmp_path / "missing", "--db", db)
    assert code == 1 and "not a folder" in err
    code, _, err = run(capsys, "library", "scan", tmp_path / "music", "--db", db, "--model", tmp_path / "none.pt")
    assert code == 1 and "none.pt" in err
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("new.db")] == []


# ---- paths: symlinked roots, loops, line breaks ----------------------------------------------------


def test_a_folder_scanned_through_a_symlink_is_not_indexed_twice(tmp_path):
    db = scanned(tmp_path, n=4)
    (tmp_path / "link").symlink_to(tmp_path / "music")
    with MoodLibrary(db) as lib:
        result = lib.scan(tmp_path / "link", analyzer=(an := ContentAnalyzer()))
        assert an.calls == [] and result.unchanged == 4 and len(lib) == 4
        assert lib.track(str(tmp_path / "link" / "t001.wav")).path == str(tmp_path / "music" / "t001.wav")


def test_duplicates_indexed_through_a_symlink_before_are_pruned(tmp_path):
    db = scanned(tmp_path, n=3)
    with sqlite3.connect(db) as conn:  # as an older moodscope indexed link/ beside music/
        (tmp_path / "link").symlink_to(tmp_path / "music")
        columns = [row[1] for row in conn.execute("PRAGMA table_info(tracks)") if row[1] != "id"]
        values = ", ".join("replace(path, '/music/', '/link/')" if c == "path" else c for c in columns)
        conn.execute(f"INSERT INTO tracks ({', '.join(columns)}) SELECT {values} FROM tracks")
    with MoodLibrary(db) as lib:
        assert len(lib) == 6
        result = lib.scan(tmp_path / "music", analyzer=ContentAnalyzer())
        assert sorted(Path(p).parent.name for p in result.pruned) == ["link"] * 3
        assert len(lib) == 3


def test_a_symlink_loop_is_reported_once(tmp_path, capsys):
    db = scanned(tmp_path, n=2)
    loop = tmp_path / "music" / "loop.mp3"
    loop.symlink_to(loop)
    with MoodLibrary(db) as lib:
        first = lib.scan(tmp_path / "music", analyzer=ContentAnalyzer())
        assert list(first.failed) == [str(loop)] and "symbolic links" in first.failed[str(loop)]
        again = lib.scan(tmp_path / "music", analyzer=ContentAnalyzer())
        assert again.failed == {} and list(again.skipped_failed) == [str(loop)]
        assert again.unchanged == 2


def test_line_breaks_in_file_names_do_not_break_m3u(tmp_path, caplog):
    music = tmp_path / "music"
    music.mkdir()
    for name in ("a\nb.wav", "plain.wav", "c\rd.wav"):
        (music / name).write_bytes(b"RIFF" + os.urandom(64))
    db = tmp_path / "lib.db"
    with MoodLibrary(db) as lib:
        lib.scan(music, analyzer=ContentAnalyzer())
        tracks = lib.tracks()
    for relative in (False, True):
        m3u = write_m3u(tracks, tmp_path / "list.m3u", relative=relative)
        lines = m3u.read_text(encoding="utf-8").splitlines()
        entries = [line for line in lines if not line.startswith("#")]
        assert len(entries) == 3 and "file://" + str(music) + "/a%0Ab.wav" in entries
        assert sorted(e.path for e in parse_m3u(m3u)) == sorted(t.path for t in tracks)
    assert "line break" in caplog.text


# ---- concurrent scans ----------------------------------------------------------------------------


def test_a_second_scan_of_one_library_is_refused_while_one_runs(tmp_path):
    db = scanned(tmp_path, n=2)
    make_files(tmp_path / "music", 4, prefix="new")
    with scan_lock(db), MoodLibrary(db) as lib:
        with pytest.raises(LibraryError, match=rf"another scan of this library is running \(process {os.getpid()}\)"):
            lib.scan(tmp_path / "music", analyzer=(an := ContentAnalyzer()))
        assert an.calls == []
        assert len(lib.similar(1)) == 1  # queries are not held up
    with MoodLibrary(db) as lib:
        assert len(lib.scan(tmp_path / "music", analyzer=ContentAnalyzer()).analysed) == 4


def test_two_scan_processes_analyse_each_file_once(tmp_path):
    make_files(tmp_path / "music", 6)
    db = tmp_path / "lib.db"
    code = (
        "import sys, time\nsys.path.insert(0, sys.argv[3])\nfrom test_library_scan import ContentAnalyzer\n"
        "from moodscope.library import MoodLibrary\nfrom moodscope.errors import LibraryError\n"
        "class Slow(ContentAnalyzer):\n"
        "    def __call__(self, paths):\n"
        "        for r in super().__call__(paths):\n            time.sleep(0.5)\n            yield r\n"
        "with MoodLibrary(sys.argv[1]) as lib:\n"
        "    try:\n        print(len(lib.scan(sys.argv[2], analyzer=Slow()).analysed))\n"
        "    except LibraryError as exc:\n        print('refused', exc)\n"
    )
    argv = [sys.executable, "-c", code, str(db), str(tmp_path / "music"), str(Path(__file__).parent)]
    first = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    while not (tmp_path / ".lib.db.scan-lock").exists() and first.poll() is None:
        time.sleep(0.02)
    second = subprocess.run(argv, capture_output=True, text=True)
    outcomes = [first.communicate(timeout=120)[0].strip(), second.stdout.strip()]
    analysed = [int(o) for o in outcomes if o.isdigit()]
    assert sum(analysed) == 6, outcomes  # every file analysed once, whoever got there first
    assert all(o.isdigit() or "another scan of this library is running" in o for o in outcomes), outcomes


# ---- arguments -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["playlist", "--mood", "calm", "--n", "-1"],
        ["playlist", "--mood", "calm", "--minutes", "0"],
        ["playlist", "--mood", "calm", "--min-confidence", "1.5"],
        ["list", "--limit", "-1"],
        ["list", "--limit", "0"],
        ["similar", "1", "--n", "0"],
        ["journey", "--from", "sad", "--to", "happy", "--n", "-1"],
        ["clusters", "--k", "0"],
        ["clusters", "--examples", "-1"],
        ["clusters", "--cluster", "0"],
        ["scan", "music", "--workers", "0"],
    ],
)
def test_impossible_counts_are_usage_errors(argv, tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["library", *argv, "--db", str(tmp_path / "lib.db")])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "must be" in err and "Traceback" not in err


def test_the_api_refuses_impossible_counts(tmp_path):
    with MoodLibrary(scanned(tmp_path, n=3)) as lib:
        for call in (
            lambda: lib.tracks(limit=-1),
            lambda: lib.tracks(min_confidence=2),
            lambda: lib.similar(1, n=0),
            lambda: lib.playlist("calm", n=-1),
            lambda: lib.playlist("calm", minutes=-5),
            lambda: lib.journey("sad", "happy", n=0),
            lambda: lib.clusters(k=0),
        ):
            with pytest.raises(LibraryError, match="must"):
                call()
