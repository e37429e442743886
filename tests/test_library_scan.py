"""Indexing a collection: incremental rescans, pruning, moves, copies, failures, crash safety, schema.

These tests inject a deterministic analyser (the mood is a function of the file's content) so that
the incremental logic is checked quickly; test_library_e2e.py runs the real analysis.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from moodscope.analysis.analyzer import Analysis, va_from_probabilities
from moodscope.engine.analysis import BatchResult
from moodscope.errors import LibraryError
from moodscope.library import MoodLibrary
from moodscope.library.db import SCHEMA_VERSION, default_library_path
from moodscope.library.scan import file_hash


class ContentAnalyzer:
    """Probabilities drawn from a generator seeded by the file's content; records what it analysed."""

    def __init__(self, fail: set[str] | None = None, crash_after: int | None = None):
        self.calls: list[str] = []
        self.fail = fail or set()
        self.crash_after = crash_after

    def __call__(self, paths):
        for p in paths:
            if self.crash_after is not None and len(self.calls) >= self.crash_after:
                raise KeyboardInterrupt  # the user pressed ^C in the middle of a scan
            self.calls.append(Path(p).name)
            if Path(p).name in self.fail:
                yield str(p), None, f"{p}: cannot decode as audio (test)"
                continue
            yield str(p), fake_analysis(p), None


def fake_analysis(path) -> Analysis:
    seed = int.from_bytes(hashlib.sha256(Path(path).read_bytes()).digest()[:4], "little")
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 8))
    probs = rng.dirichlet(np.full(4, 0.6), size=n)
    return Analysis(str(path), n * 5.0, "fake", np.arange(n) * 5.0, probs, va_from_probabilities(probs))


def make_files(folder: Path, n: int, prefix: str = "t") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        p = folder / f"{prefix}{i:03d}.wav"
        p.write_bytes(b"RIFF" + os.urandom(64 + i))
        out.append(p)
    return out


def integrity(db: Path) -> None:
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        assert conn.execute("SELECT count(*) - count(DISTINCT path) FROM tracks").fetchone()[0] == 0
        bad = conn.execute(
            "SELECT count(*) FROM tracks t "
            "WHERE n_segments != (SELECT count(*) FROM segments s WHERE s.track_id = t.id)"
        ).fetchone()[0]
        assert bad == 0
    finally:
        conn.close()


@pytest.fixture
def lib(tmp_path):
    with MoodLibrary(tmp_path / "lib.db") as library:
        yield library


def test_first_scan_then_unchanged_rescan_analyses_nothing(tmp_path, lib):
    files = make_files(tmp_path / "music", 12)
    (tmp_path / "music" / "notes.txt").write_text("not audio")
    (tmp_path / "music" / ".hidden.wav").write_bytes(b"x")
    first = lib.scan(tmp_path / "music", analyzer=(an := ContentAnalyzer()))
    assert sorted(an.calls) == sorted(f.name for f in files)
    assert len(first.analysed) == 12 and len(lib) == 12
    second = lib.scan(tmp_path / "music", analyzer=(an2 := ContentAnalyzer()))
    assert an2.calls == [] and second.unchanged == 12 and second.indexed == 12
    track = lib.track("t003")
    assert track.path == str((tmp_path / "music" / "t003.wav").resolve())
    assert track.model == "fake" and track.quadrant in ("Q1", "Q2", "Q3", "Q4")
    assert len(lib.timeline(track.id)) == len(fake_analysis(tmp_path / "music" / "t003.wav").starts)
    integrity(lib.path)


def test_changed_touched_deleted_moved_and_copied_files(tmp_path, lib):
    music = tmp_path / "music"
    files = make_files(music, 8)
    lib.scan(music, analyzer=ContentAnalyzer())
    ids = {t.path: t.id for t in lib.tracks()}

    files[0].write_bytes(b"RIFF new content")  # changed
    st = files[1].stat()
    os.utime(files[1], ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))  # touched, same content
    files[2].unlink()  # deleted
    (music / "sub").mkdir()
    moved = music / "sub" / "renamed.wav"
    files[3].rename(moved)  # moved
    copy = music / "copy-of-4.wav"
    shutil.copyfile(files[4], copy)  # identical copy

    result = lib.scan(music, analyzer=(an := ContentAnalyzer()))
    assert an.calls == ["t000.wav"]
    assert result.analysed == [str(files[0])]
    assert result.touched == [str(files[1])]
    assert result.pruned == [str(files[2])]
    assert result.moved == [(str(files[3]), str(moved))]
    assert result.reused == [str(copy)]
    assert result.unchanged == 4 and len(lib) == 8
    # the moved track kept its row (and analysis); the copy shares the analysis
    assert lib.track(str(moved)).id == ids[str(files[3])]
    assert lib.track(str(copy)).valence == lib.track(str(files[4])).valence
    assert len(lib.timeline(str(copy))) == len(lib.timeline(str(files[4])))
    assert lib.track(str(files[0])).valence == pytest.approx(fake_analysis(files[0]).summary.valence, abs=1e-4)
    assert lib.scan(music, analyzer=(an := ContentAnalyzer())).unchanged == 8 and an.calls == []
    integrity(lib.path)


def test_move_between_roots_and_no_prune(tmp_path, lib):
    a, b = tmp_path / "a", tmp_path / "b"
    files = make_files(a, 3)
    b.mkdir()
    lib.scan(a, analyzer=ContentAnalyzer())
    target = b / "x.wav"
    files[0].rename(target)
    result = lib.scan(b, analyzer=(an := ContentAnalyzer()))  # only b is scanned: a's other tracks stay
    assert an.calls == [] and result.moved == [(str(files[0]), str(target))]
    assert len(lib) == 3
    files[1].unlink()
    assert lib.scan(a, analyzer=ContentAnalyzer(), prune=False).pruned == [] and len(lib) == 3
    assert lib.scan(a, analyzer=ContentAnalyzer()).pruned == [str(files[1])] and len(lib) == 2


def test_a_copy_of_a_track_outside_the_scanned_roots_reuses_its_analysis(tmp_path, lib):
    """A copy (here retagged, as beets does when it imports with copy and write on) of a file indexed
    under another root, which is still there, is a copy, not new audio; once that file is gone, a
    new path with its audio is the track moved."""
    import mutagen

    from conftest import write_audio

    source = write_audio(tmp_path / "incoming" / "song.mp3", freq=330.0)
    lib.scan(tmp_path / "incoming", analyzer=ContentAnalyzer())
    copy = tmp_path / "beets" / "Artist" / "01 song.mp3"
    copy.parent.mkdir(parents=True)
    shutil.copyfile(source, copy)
    audio = mutagen.File(copy, easy=True)
    audio.add_tags()
    audio["title"] = "Song"
    audio.save()

    result = lib.scan(tmp_path / "beets", analyzer=(an := ContentAnalyzer()))  # only the copy's root
    assert an.calls == [] and result.reused == [str(copy)] and not result.analysed
    assert lib.track(str(copy)).quadrant == lib.track(str(source)).quadrant and lib.track(str(copy)).title == "Song"
    assert len(lib) == 2

    other = tmp_path / "other" / "song.mp3"
    other.parent.mkdir()
    shutil.copyfile(source, other)
    source.unlink()  # the indexed original is gone and not under the scanned root: the copy moved it
    result = lib.scan(tmp_path / "other", analyzer=(an := ContentAnalyzer()))
    assert an.calls == [] and result.moved == [(str(source), str(other))] and len(lib) == 2
    integrity(lib.path)


def test_failures_are_listed_recorded_and_skipped_until_changed(tmp_path, lib):
    music = tmp_path / "music"
    files = make_files(music, 5)
    result = lib.scan(music, analyzer=ContentAnalyzer(fail={"t002.wav"}))
    assert list(result.failed) == [str(files[2])] and "cannot decode" in result.failed[str(files[2])]
    assert len(lib) == 4 and list(lib.failures()) == [str(files[2])]
    again = lib.scan(music, analyzer=(an := ContentAnalyzer()))
    assert an.calls == [] and list(again.skipped_failed) == [str(files[2])] and not again.failed
    retried = lib.scan(music, analyzer=ContentAnalyzer(), retry_failed=True)
    assert retried.analysed == [str(files[2])] and lib.failures() == {} and len(lib) == 5


def test_a_changed_file_that_now_fails_loses_its_stale_analysis(tmp_path, lib):
    files = make_files(tmp_path / "m", 2)
    lib.scan(tmp_path / "m", analyzer=ContentAnalyzer())
    files[0].write_bytes(b"corrupted")
    result = lib.scan(tmp_path / "m", analyzer=ContentAnalyzer(fail={"t000.wav"}))
    assert list(result.failed) == [str(files[0])]
    assert len(lib) == 1 and str(files[0]) in lib.failures()


def test_interrupted_scan_keeps_committed_tracks_and_resumes(tmp_path):
    music = tmp_path / "music"
    make_files(music, 10)
    db = tmp_path / "lib.db"
    with MoodLibrary(db) as lib, pytest.raises(KeyboardInterrupt):
        lib.scan(music, analyzer=ContentAnalyzer(crash_after=4))
    integrity(db)
    with MoodLibrary(db) as lib:
        assert len(lib) == 4
        result = lib.scan(music, analyzer=(an := ContentAnalyzer()))
        assert len(an.calls) == 6 and result.unchanged == 4 and len(lib) == 10
    integrity(db)


def test_identical_new_files_are_analysed_once(tmp_path, lib):
    music = tmp_path / "music"
    music.mkdir()
    for name in ("a.wav", "b.wav", "c.wav"):
        (music / name).write_bytes(b"RIFF same bytes")
    result = lib.scan(music, analyzer=(an := ContentAnalyzer()))
    assert len(an.calls) == 1 and len(result.analysed) == 1 and len(result.reused) == 2 and len(lib) == 3


def test_retagged_files_are_recognised_not_analysed_again(tmp_path, lib):
    import mutagen

    from conftest import write_audio

    music = tmp_path / "music"
    files = [
        write_audio(music / f"song{i}{ext}", freq=300.0 + 50 * i) for i, ext in enumerate((".mp3", ".flac", ".m4a"))
    ]
    lib.scan(music, analyzer=ContentAnalyzer())
    ids = {t.path: t.id for t in lib.tracks()}

    def retag(path: Path, title: str) -> None:
        audio = mutagen.File(path, easy=True)
        if audio.tags is None:
            audio.add_tags()
        audio["title"] = title
        audio.save()

    retag(files[0], "New title")  # tags edited in place
    moved = music / "sub" / "moved.flac"
    moved.parent.mkdir()
    files[1].rename(moved)
    retag(moved, "Moved and retagged")  # moved, then retagged
    copy = music / "copy.m4a"
    shutil.copyfile(files[2], copy)
    retag(copy, "A retagged copy")  # a copy with other tags

    result = lib.scan(music, analyzer=(an := ContentAnalyzer()))
    assert an.calls == []
    assert result.retagged == [str(files[0])] and result.touched == []
    assert result.moved == [(str(files[1]), str(moved))] and result.pruned == []
    assert result.reused == [str(copy)]
    assert lib.track(str(files[0])).title == "New title" and lib.track(str(files[0])).id == ids[str(files[0])]
    assert lib.track(str(moved)).title == "Moved and retagged" and lib.track(str(moved)).id == ids[str(files[1])]
    assert lib.track(str(copy)).quadrant == lib.track(str(files[2])).quadrant
    rows = dict(lib.conn.execute("SELECT path, hash FROM tracks"))
    assert all(rows[str(p)] == file_hash(p) for p in (files[0], moved, copy, files[2]))
    again = lib.scan(music, analyzer=(an := ContentAnalyzer()))
    assert an.calls == [] and again.unchanged == 4

    write_audio(files[0], freq=1000.0)  # new audio under the same name: analysed again
    assert lib.scan(music, analyzer=ContentAnalyzer()).analysed == [str(files[0])]


def test_force_reanalyses_and_batch_result_analyzers_are_accepted(tmp_path, lib):
    music = tmp_path / "music"
    files = make_files(music, 3)

    def batch(paths):
        return BatchResult(analyses=[fake_analysis(p) for p in paths[1:]], failed={str(paths[0]): "boom"})

    result = lib.scan(music, analyzer=batch)
    assert len(result.analysed) == 2 and list(result.failed) == [str(files[0])]
    forced = lib.scan(music, analyzer=(an := ContentAnalyzer()), force=True)
    assert sorted(an.calls) == ["t000.wav", "t001.wav", "t002.wav"] and len(forced.analysed) == 3


def test_scan_errors_and_hash(tmp_path, lib):
    with pytest.raises(LibraryError, match="not a folder"):
        lib.scan(tmp_path / "missing", analyzer=ContentAnalyzer())
    with pytest.raises(LibraryError, match="at least one folder"):
        lib.scan(analyzer=ContentAnalyzer())
    p = tmp_path / "x.bin"
    p.write_bytes(b"abc" * 1_000_000)
    assert file_hash(p) == hashlib.sha256(p.read_bytes()).hexdigest()


def test_database_schema_checks(tmp_path, monkeypatch):
    db = tmp_path / "lib.db"
    with MoodLibrary(db):
        pass
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE x (a)")
    conn.commit()
    conn.close()
    with pytest.raises(LibraryError, match="not a moodscope library"):
        MoodLibrary(other)
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(LibraryError, match="cannot be used"):
        MoodLibrary(junk)
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(LibraryError, match="newer moodscope"):
        MoodLibrary(db)
    with pytest.raises(LibraryError, match="library scan"):
        MoodLibrary(tmp_path / "none.db", create=False)
    monkeypatch.setenv("MOODSCOPE_LIBRARY", str(tmp_path / "env.db"))
    assert default_library_path() == tmp_path / "env.db"
    monkeypatch.delenv("MOODSCOPE_LIBRARY")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_library_path() == tmp_path / "xdg" / "moodscope" / "library.db"


def test_track_lookup(tmp_path, lib):
    make_files(tmp_path / "m", 3)
    lib.scan(tmp_path / "m", analyzer=ContentAnalyzer())
    t = lib.track("t001")
    assert lib.track(t.id).path == t.path == lib.track(str(tmp_path / "m" / "t001.wav")).path
    with pytest.raises(LibraryError, match="3 tracks match"):
        lib.track("t00")
    with pytest.raises(LibraryError, match="no track matches"):
        lib.track("nothing like it")
    with pytest.raises(LibraryError, match="no track with id"):
        lib.track(999)
    outside = tmp_path / "outside.wav"
    outside.write_bytes(b"x")
    with pytest.raises(LibraryError, match="not in the library"):
        lib.track(str(outside))


def test_migration_from_schema_1_and_profile_snapshot(tmp_path):
    from moodscope.library.db import APPLICATION_ID, MIGRATIONS, _statements, generation

    db = tmp_path / "v1.db"
    conn = sqlite3.connect(db)
    for statement in _statements(MIGRATIONS[0]):
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.commit()
    conn.close()
    make_files(tmp_path / "m", 4)
    with MoodLibrary(db) as lib:
        assert lib.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        lib.scan(tmp_path / "m", analyzer=ContentAnalyzer())
        snap = lib.conn.execute("SELECT generation, n FROM profile_snapshot").fetchone()
        assert snap == (generation(lib.conn), 4)  # refreshed at the end of the scan
        before = lib.profiles()
        assert len(before) == 4
        with MoodLibrary(db) as other:  # another process changes the library: the cache notices
            (tmp_path / "m" / "t000.wav").unlink()
            other.scan(tmp_path / "m", analyzer=ContentAnalyzer())
        after = lib.profiles()
        assert len(after) == 3 and set(after.ids) < set(before.ids)
        assert np.array_equal(after.matrix, MoodLibrary(db).profiles().matrix)


def test_an_analysis_holding_nan_fails_its_file_and_the_scan_goes_on(tmp_path, lib):
    """A model that returns NaN must not stop the scan (it once died on an sqlite3.IntegrityError)."""
    files = make_files(tmp_path / "music", 3)

    def nan_for_the_second(paths):
        for p in paths:
            analysis = fake_analysis(p)
            if Path(p).name == files[1].name:
                analysis.probabilities[0, :] = np.nan
            yield str(p), analysis, None

    result = lib.scan(tmp_path / "music", analyzer=nan_for_the_second)
    assert sorted(Path(p).name for p in result.analysed) == [files[0].name, files[2].name]
    assert list(result.failed) == [str(files[1])] and "not finite" in result.failed[str(files[1])]
    assert lib.failures() == result.failed
    again = lib.scan(tmp_path / "music", analyzer=nan_for_the_second)
    assert again.unchanged == 2 and list(again.skipped_failed) == [str(files[1])]
    integrity(tmp_path / "lib.db")
