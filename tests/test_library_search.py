"""The library's text filter (``MoodLibrary.tracks(text=...)``, ``GET /tracks?q=``) through its full-text index
(schema 8, FTS5 trigram): the same tracks as the scan it replaced, on awkward strings; the index kept in
step by every write path; the migration of a schema-7 library, also when it is killed midway."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from moodscope.analysis.analyzer import Analysis, va_from_probabilities
from moodscope.library import MoodLibrary
from moodscope.library.api import TEXT_INDEX_MIN_LENGTH
from moodscope.library.db import (
    APPLICATION_ID,
    MIGRATIONS,
    SCHEMA_VERSION,
    TEXT_INDEX,
    FileStamp,
    Tags,
    _statements,
    write_analysis,
)
from test_library_scan import ContentAnalyzer

# pieces of titles, artists and paths: unicode (case pairs LIKE does not fold, combining marks, scripts
# without case, emoji), quotes, LIKE's wildcards and escape, and FTS5 query syntax
PIECES = [
    "Ünïcödé", "Straße", "STRASSE", "İstanbul", "ıstanbul", "ΣΊΣΥΦΟΣ", "σίσυφος", "東京事変", "🎵🎶", "e\u0301cole",
    "école", "ÉCOLE", "It's", '"quoted"', '""', "'", "100%", "pure_cotton", "a_b%c", "back\\slash", "\\%",
    "NEAR(a b)", "NEAR", "AND", "OR", "NOT", "and", "*", "star*", "-minus", "^caret", "title:x", "{title artist}:y",
    "(paren)", "+plus", "a AND b", "x NEAR y", "tab\there", "two  spaces", "new\nline", "Artist 12", "Artist 123",
    "Track", "mix", "ab", "Q", ".mp3",
]  # fmt: skip


def _name(rng: np.random.Generator) -> str:
    return " ".join(rng.choice(PIECES, size=int(rng.integers(1, 4))).tolist())


def _analysis(path: str, rng: np.random.Generator) -> Analysis:
    n = int(rng.integers(2, 5))
    probs = rng.dirichlet(np.full(4, 0.5), size=n)
    return Analysis(path, n * 5.0, "fake", np.arange(n) * 5.0, probs, va_from_probabilities(probs))


def _add_tracks(conn: sqlite3.Connection, n: int, seed: int = 0) -> None:
    """``n`` tracks with awkward titles, artists and paths (some titles and artists unknown), written as
    a scan writes them (:func:`write_analysis`)."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        title = None if i % 7 == 0 else _name(rng)
        artist = None if i % 5 == 0 else _name(rng)
        path = f"/music/{_name(rng)}/{i:03d} {_name(rng)}.mp3"
        write_analysis(conn, FileStamp(path, 100 + i, i), f"{i:064x}", Tags(title, artist, _name(rng)),
                       _analysis(path, rng))  # fmt: skip


def _queries(conn: sqlite3.Connection, n: int, seed: int = 1) -> list[str]:
    """The pieces, and random substrings of the stored titles, artists and paths in random case."""
    rng = np.random.default_rng(seed)
    stored = [s for row in conn.execute("SELECT title, artist, path FROM tracks") for s in row if s]
    out = list(PIECES)
    for _ in range(n):
        s = stored[int(rng.integers(len(stored)))]
        start = int(rng.integers(len(s)))
        part = s[start : start + int(rng.integers(1, 10))]
        out.append([part, part.upper(), part.lower(), part.swapcase()][int(rng.integers(4))])
    return out


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    db = tmp_path_factory.mktemp("search") / "lib.db"
    with MoodLibrary(db) as library:
        _add_tracks(library.conn, 300)
        assert library.text_index  # this SQLite has FTS5's trigram tokenizer (3.34 or later)
        yield library


def _results(lib: MoodLibrary, text: str, indexed: bool) -> list:
    lib.text_index = indexed
    try:
        out = []
        for mood in (None, "Q2", "0.3,0.7"):
            out.append([t.id for t in lib.tracks(mood, text=text)])
            out.append(lib.count(mood, text=text))
            page, total = lib.track_page(mood, text=text, limit=5, offset=2)
            out.append(([t.id for t in page], [t.score for t in page], total))
        return out
    finally:
        lib.text_index = True


def test_the_index_finds_exactly_what_the_scan_found(lib):
    statements: list[str] = []
    lib.conn.set_trace_callback(statements.append)
    queries = _queries(lib.conn, 200)
    found = 0
    for text in queries:
        statements.clear()
        indexed = _results(lib, text, True)
        used = any(TEXT_INDEX in s and "MATCH" in s for s in statements)
        assert used == (len(text) >= TEXT_INDEX_MIN_LENGTH), text  # the index answers whatever it can
        assert indexed == _results(lib, text, False), text
        found += bool(indexed[0])
    lib.conn.set_trace_callback(None)
    assert found > 0.8 * len(queries)  # most queries find something: the comparison is not of empty lists


def test_the_text_filter_does_not_scan_the_table(lib):
    from moodscope.library.api import _filter_sql

    for indexed in (True, False):
        where, params = _filter_sql(None, 0.0, "Artist 123", indexed)
        plan = " | ".join(r[3] for r in lib.conn.execute(f"EXPLAIN QUERY PLAN SELECT id FROM tracks WHERE {where}",
                                                         params))  # fmt: skip
        assert ("SCAN tracks" not in plan.replace("SCAN tracks_text", "")) == indexed, plan


@given(text=st.text(min_size=1, max_size=12))
@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_text_finds_what_the_scan_found_and_never_fails(lib, text):
    """Whatever the text (FTS5 syntax, quotes, control characters, NUL), never an SQL error, and the
    tracks of the scan."""
    try:
        expected = _results(lib, text, False)
    except UnicodeEncodeError:  # lone surrogates: not text SQLite can take (the API never passes them)
        return
    assert _results(lib, text, True) == expected


def test_every_write_path_keeps_the_index_in_step(tmp_path):
    music = tmp_path / "music"
    music.mkdir()
    for i, name in enumerate(["Alpha song", "Beta tune", "Gamma beat", "Delta blues", "Épsilon"]):
        (music / f"{name}.wav").write_bytes(b"RIFF" + bytes([i]) * (80 + i))

    def same(lib: MoodLibrary, text: str) -> list[str]:
        found = [Path(t.path).name for t in lib.tracks(text=text)]
        lib.text_index = False
        assert [Path(t.path).name for t in lib.tracks(text=text)] == found, text
        lib.text_index = True
        lib.conn.execute(f"INSERT INTO {TEXT_INDEX} ({TEXT_INDEX}, rank) VALUES ('integrity-check', 1)")
        return found

    with MoodLibrary(tmp_path / "lib.db") as lib:
        lib.scan(music, analyzer=ContentAnalyzer())
        assert same(lib, "SONG") == ["Alpha song.wav"] and same(lib, "ÉPS") == ["Épsilon.wav"]
        (music / "Alpha song.wav").rename(music / "Omega song.wav")  # moved: its row's path is updated
        (music / "Beta tune.wav").unlink()  # vanished: its row deleted
        (music / "Gamma beat.wav").write_bytes(b"RIFF other audio")  # changed: analysed again, a new row
        result = lib.scan(music, analyzer=ContentAnalyzer())
        assert result.moved and result.analysed
        assert same(lib, "song") == ["Omega song.wav"] and same(lib, "alpha") == []
        assert same(lib, "Beta") == [] and same(lib, "gamma beat") == ["Gamma beat.wav"]
        assert sorted(same(lib, ".wav")) == sorted(p.name for p in music.iterdir())


def _schema_7_library(path: Path, n: int) -> None:
    """A library as moodscope wrote it at schema 7 (no text index), holding ``n`` awkward tracks."""
    conn = sqlite3.connect(path, isolation_level=None)
    for step in MIGRATIONS[:7]:
        if callable(step):
            step(conn)
        else:
            for statement in _statements(step):
                conn.execute(statement)
    conn.execute("PRAGMA user_version = 7")
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    _add_tracks(conn, n, seed=5)
    conn.close()


def _stored(path: Path) -> tuple:
    conn = sqlite3.connect(path)
    try:
        return (
            conn.execute("PRAGMA user_version").fetchone()[0],
            sorted(r[0] for r in conn.execute("SELECT name FROM sqlite_schema")),
            conn.execute("SELECT * FROM tracks ORDER BY id").fetchall(),
        )
    finally:
        conn.close()


def test_a_library_of_schema_7_gets_its_index(tmp_path):
    db = tmp_path / "old.db"
    _schema_7_library(db, 120)
    version, names, rows = _stored(db)
    assert version == 7 and TEXT_INDEX not in names
    with MoodLibrary(db, create=False) as lib:
        assert lib.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 8
        assert lib.text_index
        assert lib.conn.execute("SELECT * FROM tracks ORDER BY id").fetchall() == rows  # the tracks untouched
        for text in _queries(lib.conn, 20, seed=2):
            assert _results(lib, text, True) == _results(lib, text, False), text
        assert lib.check() == []


def test_a_migration_killed_midway_leaves_the_schema_7_library_intact(tmp_path):
    db = tmp_path / "old.db"
    _schema_7_library(db, 200)
    before = _stored(db)
    # the process dies (SIGKILL) while the index is being built from the tracks, inside the migration
    script = (
        "import os, signal, sys\n"
        "import moodscope.library.db as db\n"
        "build = db.MIGRATIONS[7]\n"
        "def dying(conn):\n"
        "    conn.set_trace_callback(lambda sql: 'rebuild' in sql and conn.set_progress_handler(\n"
        "        lambda: os.kill(os.getpid(), signal.SIGKILL), 50))\n"
        "    build(conn)\n"
        "db.MIGRATIONS = (*db.MIGRATIONS[:7], dying)\n"
        "from moodscope.library import MoodLibrary\n"
        "MoodLibrary(sys.argv[1], create=False)\n"
    )
    result = subprocess.run([sys.executable, "-c", script, str(db)], capture_output=True, timeout=120)
    assert result.returncode == -signal.SIGKILL, result.stderr.decode()
    assert _stored(db) == before  # still schema 7, no index nor trigger, every track as it was
    with MoodLibrary(db, create=False) as lib:  # and the next open migrates it
        assert lib.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION and lib.text_index
        for text in ("Straße", "NEAR", '"quoted"', "100%"):
            assert _results(lib, text, True) == _results(lib, text, False), text
        assert lib.check() == []


def test_without_fts5_trigram_the_migration_leaves_the_filter_scanning(tmp_path, monkeypatch):
    """An SQLite older than 3.34 (no trigram tokenizer): the library migrates without an index and the
    text filter scans, with the same results."""
    import moodscope.library.db as db

    monkeypatch.setattr(db, "trigram_support", lambda conn: False)
    path = tmp_path / "old.db"
    _schema_7_library(path, 40)
    with MoodLibrary(path, create=False) as lib:
        assert lib.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert not lib.text_index and TEXT_INDEX not in _stored(path)[1]
        assert lib.tracks(text="Straße") == [
            t for t in lib.tracks() if any("Straße" in (s or "") for s in (t.title, t.artist, t.path))
        ]
        music = tmp_path / "music"
        music.mkdir()
        (music / "Straße.wav").write_bytes(b"RIFF" + bytes(64))
        assert len(lib.scan(music, analyzer=ContentAnalyzer()).analysed) == 1  # writes work without the triggers
        assert [t.path for t in lib.tracks(text="straße.WAV")] == [str(music / "Straße.wav")]


def test_library_check_finds_an_index_out_of_step(tmp_path):
    db = tmp_path / "lib.db"
    with MoodLibrary(db) as lib:
        _add_tracks(lib.conn, 20)
        assert lib.check() == []
        lib.conn.execute("DROP TRIGGER tracks_update_text")  # a write the index does not hear of
        lib.conn.execute("UPDATE tracks SET title = 'renamed behind its back' WHERE id = 3")
        assert [p for p in lib.check() if p.startswith("text index:")], lib.check()
    with MoodLibrary(db, write=False) as lib:  # read-only: FTS5's check cannot be asked, the rest is
        assert lib.read_only and not [p for p in lib.check() if p.startswith("text index:")]
