"""The library database: schema, migrations, connections and the row-level reads and writes.

One SQLite file (standard library ``sqlite3``) in WAL mode with foreign keys on. Tables:

- ``tracks``: one row per audio file — path (absolute, unique), size, modification time (ns),
  SHA-256 of the content and of the audio payload without tags (``audio_hash``, see
  :mod:`moodscope.library.audiohash`), the file's own tags (title, artist, album, duration), the analysis
  summary (quadrant, confidence, probabilities, quadrant shares, mean valence/arousal), the model
  that analysed it (name and content hash), the moodscope version, the emotion profile vector
  (a float32 BLOB, see :mod:`moodscope.library.profile`), and whether the track is ``uncertain``
  (mostly out of distribution: silence, noise, speech; :mod:`moodscope.analysis.ood`) with its
  ``ood_fraction``;
- ``segments``: the per-segment timeline of each track (start, four probabilities, valence,
  arousal, ``ood``: 0 or why the segment is out of distribution, an index into
  :data:`moodscope.analysis.ood.REASONS`, and ``ood_score``), deleted with its track (``ON DELETE CASCADE``);
- ``failures``: files that could not be analysed, with the reason and the size/mtime they had;
- ``tracks_text``: the full-text index (FTS5, trigram tokenizer) of each track's title, artist and path,
  kept in step with ``tracks`` by triggers, for the text filter of queries (schema 8).

Durability: every write is one short transaction. With WAL and ``synchronous=NORMAL`` a process
killed at any moment (even ``kill -9``) loses nothing already committed and never leaves a corrupt
file; only a power cut may lose the last few commits (never the database's consistency).

Migrations: ``PRAGMA user_version`` holds the schema version; :data:`MIGRATIONS` upgrade older
files in one transaction. ``PRAGMA application_id`` marks the file as a moodscope library.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from moodscope.constants import QUADRANT_MOODS, QUADRANTS, UNCERTAIN
from moodscope.errors import LibraryError
from moodscope.library.integrity import bad_profile_rows, bad_segment_rows, bad_track_rows, damaged, describe_track
from moodscope.library.profile import PROFILE_SIZE, profile_vector

if TYPE_CHECKING:
    from moodscope.analysis.analyzer import Analysis

log = logging.getLogger(__name__)

APPLICATION_ID = 0x4D4F4F44  # "MOOD"
BUSY_TIMEOUT_MS = 30_000

_Q_COLS = ", ".join(f"p_{q.lower()} REAL NOT NULL" for q in QUADRANTS)
_SHARE_COLS = ", ".join(f"share_{q.lower()} REAL NOT NULL" for q in QUADRANTS)

_MIXTURE_TOLERANCE = 1e-6
"""How far a segment's stored valence/arousal may lie from the old quadrant-centre mixture of its stored
probabilities and still be recognised as that mixture (they were stored as float64 computed from them)."""


def _va_to_probability_scale(conn: sqlite3.Connection) -> None:
    """Schema 6: recompute every stored valence/arousal on the 0-1 scale, and the profiles made from them.

    Before, a quadrant classifier's valence/arousal were the probability-weighted mean of the quadrant
    centres (±0.5, ±0.5), i.e. p(Q1) + p(Q4) − 0.5 and p(Q1) + p(Q2) − 0.5, in [-1, 1]. A track whose
    segments all hold that mixture gets the marginals of their stored probabilities
    (:func:`~moodscope.analysis.analyzer.va_from_probabilities`; so does one that already holds them);
    a track analysed by a ``va`` regressor (values on the [-1, 1] annotation scale) gets them mapped
    linearly, :func:`~moodscope.datasets.labels.to_reported_va`. Each track's summary valence/arousal and profile
    are then rebuilt from its segments as a new analysis would store them (:func:`summarize`'s rounded means,
    :func:`~moodscope.library.profile.profile_vectors`); profile snapshots are dropped.

    One pass over all the rows (one read, numpy over all segments, tracks of equal length profiled
    together, ``executemany`` writes), inside the migrating transaction of :func:`_migrate`: a process killed
    meanwhile leaves the schema-5 library as it was.
    """
    from moodscope.analysis.analyzer import _HIGH_AROUSAL, _POSITIVE_VALENCE, va_from_probabilities
    from moodscope.datasets.labels import to_reported_va
    from moodscope.library.profile import profile_vectors

    cols = ", ".join(f"p_{q.lower()}" for q in QUADRANTS)
    rows = conn.execute(f"SELECT track_id, idx, {cols}, valence, arousal FROM segments ORDER BY track_id, idx")
    keys = np.array(rows.fetchall(), dtype=np.float64).reshape(-1, 8)
    if not len(keys):
        conn.execute("DELETE FROM profile_snapshot")
        return
    track_ids, probs, old = keys[:, 0].astype(np.int64), keys[:, 2:6], keys[:, 6:8]
    starts = np.flatnonzero(np.r_[True, track_ids[1:] != track_ids[:-1]])
    counts = np.diff(np.r_[starts, len(track_ids)])
    marginals = va_from_probabilities(probs)
    mixture = (np.maximum.reduceat(np.abs(old - (marginals - 0.5)).max(axis=1), starts) <= _MIXTURE_TOLERANCE) | (
        np.maximum.reduceat(np.abs(old - marginals).max(axis=1), starts) <= _MIXTURE_TOLERANCE
    )  # per track: its segments hold the old mixture of their probabilities (or already their marginals)
    regressed = np.asarray(to_reported_va(np.clip(old, -1.0, 1.0)))  # a regressor's values on the annotation scale
    va = np.where(np.repeat(mixture, counts)[:, None], marginals, regressed)
    # every segment gets the marginals in SQL (one statement; the same float64 sums as va_from_probabilities),
    # then the regressor tracks' segments (few) their own values
    valence_sql, arousal_sql = (
        " + ".join(f"p_{QUADRANTS[i].lower()}" for i in q) for q in (_POSITIVE_VALENCE, _HIGH_AROUSAL)
    )
    conn.execute(f"UPDATE segments SET valence = {valence_sql}, arousal = {arousal_sql}")
    own = np.flatnonzero(~np.repeat(mixture, counts))
    conn.executemany(
        "UPDATE segments SET valence = ?, arousal = ? WHERE track_id = ? AND idx = ?",
        zip(va[own, 0].tolist(), va[own, 1].tolist(), track_ids[own].tolist(), keys[own, 1].astype(np.int64).tolist()),
    )
    updates = []
    for n in np.unique(counts).tolist():  # tracks of n segments together: (m, n, ...) arrays
        first = starts[counts == n]
        rows_of = first[:, None] + np.arange(n)
        track_va = va[rows_of]
        # summarize()'s valence/arousal, rounded as it rounds them: the mean of each column (a 1-D mean per
        # track and a per-row mean of an (m, n) array add up in the same order; an (m, n, 2) mean does not)
        valence, arousal = track_va[:, :, 0].mean(axis=1).tolist(), track_va[:, :, 1].mean(axis=1).tolist()
        profiles = profile_vectors(probs[rows_of], track_va)
        updates += [
            (round(v, 4), round(a, 4), profile.tobytes(), track_id)
            for v, a, profile, track_id in zip(valence, arousal, profiles, track_ids[first].tolist())
        ]
    conn.executemany("UPDATE tracks SET valence = ?, arousal = ?, profile = ? WHERE id = ?", updates)
    conn.execute("DELETE FROM profile_snapshot")


TEXT_INDEX = "tracks_text"
"""The full-text index of the text filter (title, artist and path of each track; schema 8)."""

_TEXT_COLUMNS = ("title", "artist", "path")
_TEXT_INDEX_SQL = f"""
CREATE VIRTUAL TABLE {TEXT_INDEX} USING fts5 (
    {", ".join(_TEXT_COLUMNS)}, content = 'tracks', content_rowid = 'id', tokenize = 'trigram'
);
CREATE TRIGGER tracks_insert_text AFTER INSERT ON tracks BEGIN
    INSERT INTO {TEXT_INDEX} (rowid, {", ".join(_TEXT_COLUMNS)})
    VALUES (new.id, {", ".join(f"new.{c}" for c in _TEXT_COLUMNS)});
END;
CREATE TRIGGER tracks_delete_text AFTER DELETE ON tracks BEGIN
    INSERT INTO {TEXT_INDEX} ({TEXT_INDEX}, rowid, {", ".join(_TEXT_COLUMNS)})
    VALUES ('delete', old.id, {", ".join(f"old.{c}" for c in _TEXT_COLUMNS)});
END;
CREATE TRIGGER tracks_update_text AFTER UPDATE OF {", ".join(_TEXT_COLUMNS)} ON tracks BEGIN
    INSERT INTO {TEXT_INDEX} ({TEXT_INDEX}, rowid, {", ".join(_TEXT_COLUMNS)})
    VALUES ('delete', old.id, {", ".join(f"old.{c}" for c in _TEXT_COLUMNS)});
    INSERT INTO {TEXT_INDEX} (rowid, {", ".join(_TEXT_COLUMNS)})
    VALUES (new.id, {", ".join(f"new.{c}" for c in _TEXT_COLUMNS)});
END;
INSERT INTO {TEXT_INDEX} ({TEXT_INDEX}) VALUES ('rebuild');
"""


def trigram_support(conn: sqlite3.Connection) -> bool:
    """Can this SQLite build FTS5 tables with the ``trigram`` tokenizer (FTS5 compiled in, SQLite >= 3.34)?"""
    try:
        conn.execute("CREATE VIRTUAL TABLE temp.moodscope_trigram_probe USING fts5 (x, tokenize = 'trigram')")
    except sqlite3.OperationalError:
        return False
    conn.execute("DROP TABLE temp.moodscope_trigram_probe")
    return True


def _text_search_index(conn: sqlite3.Connection) -> None:
    """Schema 8: a full-text index of each track's title, artist and path (:data:`TEXT_INDEX`), so that
    the text filter (``MoodLibrary.tracks(text=...)``, ``GET /tracks?q=``) need not scan the table.

    An FTS5 table with the ``trigram`` tokenizer (it indexes every 3-character substring, case-folded) over
    the ``tracks`` table's own columns (external content: the text is not stored twice), kept in step by
    triggers in the writing transaction, and built from the existing rows inside the migrating transaction
    (a process killed meanwhile leaves the schema-7 library as it was). Where SQLite lacks FTS5 or the
    trigram tokenizer (older than 3.34) there is no index and the filter scans the table as before.
    """
    if not trigram_support(conn):
        log.warning(
            "this SQLite (%s) has no FTS5 trigram tokenizer: text filters of the library will scan every track",
            sqlite3.sqlite_version,
        )
        return
    for statement in _statements(_TEXT_INDEX_SQL):
        conn.execute(statement)


def has_text_index(conn: sqlite3.Connection) -> bool:
    """Does this library have its full-text index (:data:`TEXT_INDEX`), usable by this SQLite?"""
    try:
        found = conn.execute("SELECT count(*) FROM sqlite_schema WHERE name = ?", (TEXT_INDEX,)).fetchone()[0]
        if found:  # built by an SQLite with FTS5 and trigram, perhaps opened by one without
            conn.execute(f"SELECT rowid FROM {TEXT_INDEX} WHERE {TEXT_INDEX} MATCH 'moodscope' LIMIT 0").fetchall()
    except sqlite3.DatabaseError:
        return False
    return bool(found)


MIGRATIONS: tuple[str | Callable[[sqlite3.Connection], None], ...] = (
    # version 1
    f"""
    CREATE TABLE tracks (
        id INTEGER PRIMARY KEY,
        path TEXT NOT NULL UNIQUE,
        size INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        hash TEXT NOT NULL,
        title TEXT,
        artist TEXT,
        album TEXT,
        tag_duration REAL,
        analysed_seconds REAL NOT NULL,
        model TEXT NOT NULL,
        n_segments INTEGER NOT NULL CHECK (n_segments > 0),
        quadrant TEXT NOT NULL CHECK (quadrant IN ({", ".join(repr(q) for q in QUADRANTS)})),
        confidence REAL NOT NULL,
        valence REAL NOT NULL,
        arousal REAL NOT NULL,
        {_Q_COLS},
        {_SHARE_COLS},
        profile BLOB NOT NULL CHECK (length(profile) = {4 * PROFILE_SIZE}),
        scanned_at REAL NOT NULL
    );
    CREATE INDEX tracks_hash ON tracks (hash);
    CREATE INDEX tracks_mood ON tracks (quadrant, confidence);
    CREATE TABLE segments (
        track_id INTEGER NOT NULL REFERENCES tracks (id) ON DELETE CASCADE,
        idx INTEGER NOT NULL,
        start REAL NOT NULL,
        {_Q_COLS},
        valence REAL NOT NULL,
        arousal REAL NOT NULL,
        PRIMARY KEY (track_id, idx)
    ) WITHOUT ROWID;
    CREATE TABLE failures (
        path TEXT PRIMARY KEY,
        size INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        reason TEXT NOT NULL,
        failed_at REAL NOT NULL
    );
    """,
    # version 2: a snapshot of the profile matrix, so that queries load 100,000 tracks in milliseconds.
    # ``state.generation`` counts changes to ``tracks`` (kept by triggers, in the writing transaction);
    # the snapshot is used only when it was taken at the current generation.
    """
    CREATE TABLE state (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
    INSERT INTO state (key, value) VALUES ('generation', 0);
    CREATE TABLE profile_snapshot (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        generation INTEGER NOT NULL,
        n INTEGER NOT NULL,
        data BLOB NOT NULL
    );
    CREATE TRIGGER tracks_insert_generation AFTER INSERT ON tracks
    BEGIN UPDATE state SET value = value + 1 WHERE key = 'generation'; END;
    CREATE TRIGGER tracks_update_generation AFTER UPDATE ON tracks
    BEGIN UPDATE state SET value = value + 1 WHERE key = 'generation'; END;
    CREATE TRIGGER tracks_delete_generation AFTER DELETE ON tracks
    BEGIN UPDATE state SET value = value + 1 WHERE key = 'generation'; END;
    """,
    # version 3: provenance of each analysis: the model's content hash and the moodscope version
    # ('' for tracks analysed before this version, which did not record them)
    """
    ALTER TABLE tracks ADD COLUMN model_hash TEXT NOT NULL DEFAULT '';
    ALTER TABLE tracks ADD COLUMN moodscope_version TEXT NOT NULL DEFAULT '';
    """,
    # version 4: the hash of the audio payload without tags (moodscope.library.audiohash), so that a
    # file whose tags alone changed is recognised (NULL for tracks indexed before: recorded when next hashed)
    """
    ALTER TABLE tracks ADD COLUMN audio_hash TEXT;
    CREATE INDEX tracks_audio_hash ON tracks (audio_hash);
    """,
    # version 5: the profile snapshot keeps each confidence as stored (float64, so that filters on the
    # snapshot agree with SQL's); snapshots of the older layout are dropped (rebuilt by the next query)
    """
    DELETE FROM profile_snapshot;
    """,
    # version 6: valence/arousal on the 0-1 probability scale (moodscope.constants.VA_RANGE)
    _va_to_probability_scale,
    # version 7: out-of-distribution verdicts (moodscope.analysis.ood): uncertain tracks are left out of
    # mood queries; tracks analysed before are taken as music (0). The snapshot layout gains ``uncertain``.
    """
    ALTER TABLE tracks ADD COLUMN uncertain INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE tracks ADD COLUMN ood_fraction REAL NOT NULL DEFAULT 0;
    ALTER TABLE segments ADD COLUMN ood INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE segments ADD COLUMN ood_score REAL;
    DELETE FROM profile_snapshot;
    """,
    # version 8: a full-text (FTS5 trigram) index of titles, artists and paths for the text filter
    _text_search_index,
)
"""Schema upgrades, in order: an SQL script, or a function of the connection (run in the migrating
transaction) where SQL alone cannot do it."""
SCHEMA_VERSION = len(MIGRATIONS)


def default_library_path() -> Path:
    """``$MOODSCOPE_LIBRARY``, else ``$XDG_DATA_HOME/moodscope/library.db``
    (``~/.local/share/moodscope/library.db``; ``%LOCALAPPDATA%\\moodscope`` on Windows)."""
    env = os.environ.get("MOODSCOPE_LIBRARY")
    if env:
        return Path(env).expanduser()
    if os.name == "nt" and os.environ.get("LOCALAPPDATA"):
        base = Path(os.environ["LOCALAPPDATA"])
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "moodscope" / "library.db"


def _db_path(conn: sqlite3.Connection) -> str:
    """The file a connection reads (for messages)."""
    return conn.execute("PRAGMA database_list").fetchone()[2]


def writable(path: Path) -> bool:
    """Can this process write the library at ``path`` (the file, and its folder for the WAL files)?"""
    folder = path.parent
    if path.exists():
        return os.access(path, os.W_OK) and os.access(folder, os.W_OK | os.X_OK)
    while not folder.exists():
        folder = folder.parent
    return folder.is_dir() and os.access(folder, os.W_OK | os.X_OK)


def connect(
    path: str | os.PathLike, *, create: bool = True, write: bool | None = None, verify: bool = True
) -> sqlite3.Connection:
    """Open (and create or migrate) a library database; WAL mode, foreign keys on.

    ``write``: True needs a writable library (scans), False opens it read-only, None (queries)
    opens it read-only when it cannot be written (a read-only file, folder or disk). ``verify``:
    the database is checked on open (:func:`moodscope.library.integrity.quick_check`).

    Raises :class:`LibraryError` when the file is missing (``create=False``), empty (0 bytes), not a
    SQLite database, belongs to another application, was written by a newer moodscope, is damaged,
    or cannot be written when ``write`` is True; a library created by a failed call is removed.
    """
    from moodscope.library.integrity import quick_check, sql_error

    path = Path(path).expanduser()
    exists = path.exists()
    if exists:
        if path.is_dir():
            raise LibraryError(f"{path} is a folder; give the library's file (--db PATH)")
        if path.stat().st_size == 0:
            raise LibraryError(
                f"{path}: the library database is an empty file (0 bytes), not a library: it was never written or "
                "it was truncated (a full disk, an interrupted copy); restore it from a backup, or rebuild it from "
                "your music with `moodscope library scan --rebuild DIR...`, or delete it"
            )
    elif not create:
        raise LibraryError(
            f"no music library at {path}; index a folder first with `moodscope library scan DIR` (or give --db PATH)"
        )
    can_write = writable(path)
    if write and not can_write:
        where = "it is read-only" if exists else f"{path.parent} is not writable"
        raise LibraryError(f"{path}: cannot write the library there ({where}); give another --db PATH")
    read_only = write is False or not can_write
    if not exists:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LibraryError(
                f"{path}: cannot create the library there ({exc.strerror or exc}); give another --db"
            ) from exc
    try:
        conn = _open(path, read_only)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if not read_only:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        _migrate(conn, path, read_only)
        if verify:
            quick_check(conn, path)
    except (sqlite3.Error, LibraryError) as exc:
        with contextlib.suppress(NameError, sqlite3.Error):
            conn.close()
        if not exists:  # no empty library left behind by a failed start
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        if isinstance(exc, LibraryError):
            raise
        if isinstance(exc, sqlite3.OperationalError) and not exists:
            raise LibraryError(f"{path}: cannot create the library there ({exc}); give another --db PATH") from exc
        if isinstance(exc, sqlite3.DatabaseError) and "not a database" in str(exc):
            raise LibraryError(
                f"{path}: cannot be used as a music library (not a SQLite database); give another --db PATH"
            ) from exc
        raise sql_error(path, exc) from exc
    return conn


def _open(path: Path, read_only: bool) -> sqlite3.Connection:
    """A connection; read-only ones fall back to ``immutable`` when the WAL index cannot be opened
    (a read-only folder where no ``-shm`` file exists: then nobody can be writing the library)."""
    kw: dict[str, Any] = {"timeout": BUSY_TIMEOUT_MS / 1000, "isolation_level": None, "check_same_thread": False}
    if not read_only:
        return sqlite3.connect(path, **kw)
    uri = "file:" + urllib.parse.quote(str(path.resolve()))
    conn = sqlite3.connect(uri + "?mode=ro", uri=True, **kw)
    try:
        conn.execute("SELECT count(*) FROM sqlite_schema").fetchone()
        return conn
    except sqlite3.OperationalError as exc:
        conn.close()
        log.debug("%s: read-only open failed (%s); opening it as immutable", path, exc)
        return sqlite3.connect(uri + "?immutable=1", uri=True, **kw)


def _migrate(conn: sqlite3.Connection, path: Path, read_only: bool = False) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    app = conn.execute("PRAGMA application_id").fetchone()[0]
    if version == SCHEMA_VERSION and app == APPLICATION_ID:
        return
    if app not in (0, APPLICATION_ID) or (
        app == 0 and conn.execute("SELECT count(*) FROM sqlite_schema").fetchone()[0] > 0
    ):
        raise LibraryError(f"{path} is a SQLite database but not a moodscope library; give another --db PATH")
    if version > SCHEMA_VERSION:
        raise LibraryError(
            f"{path} was written by a newer moodscope (schema {version}, this one knows {SCHEMA_VERSION}); upgrade"
        )
    if read_only:
        raise LibraryError(
            f"{path} was written by an older moodscope (schema {version}) and is read-only here, so it cannot be "
            "upgraded; open it once where it can be written"
        )
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]  # another process may have migrated
        for number in range(version, SCHEMA_VERSION):
            log.info("migrating %s to schema %d", path, number + 1)
            step = MIGRATIONS[number]
            if callable(step):
                step(conn)
                continue
            for statement in _statements(step):
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _statements(script: str) -> list[str]:
    """Split an SQL script into complete statements (triggers contain semicolons)."""
    out, pending = [], ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            out.append(pending.strip())
            pending = ""
    if pending.strip():
        out.append(pending.strip())
    return out


def discard_if_empty(path: str | os.PathLike) -> bool:
    """Delete the library at ``path`` (and its WAL, index and lock files) if it holds no track and no
    failure: what a scan that could not start leaves. Returns whether it was deleted."""
    path = Path(path)
    try:
        with contextlib.closing(sqlite3.connect(path)) as conn:
            held = conn.execute("SELECT (SELECT count(*) FROM tracks) + (SELECT count(*) FROM failures)").fetchone()[0]
    except sqlite3.Error:
        return False
    if held:
        return False
    for name in (path.name, f"{path.name}-wal", f"{path.name}-shm", f".{path.name}.scan-lock"):
        path.with_name(name).unlink(missing_ok=True)
    return True


@contextlib.contextmanager
def scan_lock(path: str | os.PathLike):
    """Hold the scan lock of the library at ``path`` (``.<name>.scan-lock`` beside it, ``flock``).

    Two scans of one library would both analyse every new file: the second raises
    :class:`LibraryError` at once instead. Queries take no lock. (Without ``fcntl``, on Windows, no lock.)
    """
    try:
        import fcntl
    except ImportError:
        yield
        return
    path = Path(path)
    lock = path.with_name(f".{path.name}.scan-lock")
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
    except OSError as exc:
        raise LibraryError(f"{path}: cannot lock the library for scanning ({exc.strerror or exc})") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise LibraryError(
                f"{path}: another scan of this library is running (process {holder}); wait for it to finish, "
                "or scan into another --db"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)


class transaction:
    """``with transaction(conn):`` — BEGIN IMMEDIATE … COMMIT, or ROLLBACK on any exception."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.conn.execute("COMMIT" if exc_type is None else "ROLLBACK")


@dataclass(frozen=True)
class FileStamp:
    """What the file system says about a file: enough to tell that it has not changed."""

    path: str
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class Tags:
    title: str | None = None
    artist: str | None = None
    album: str | None = None
    duration: float | None = None  # seconds, from the container


@dataclass
class Track:
    """One indexed track of the mood library: where it is, its tags and the summary of its mood (a
    track of a training dataset is :class:`moodscope.datasets.base.DatasetTrack`)."""

    id: int
    path: str
    title: str | None
    artist: str | None
    album: str | None
    duration: float  # seconds: the tags' duration, else the decoded one
    quadrant: str
    confidence: float
    valence: float
    arousal: float
    probabilities: dict[str, float]
    quadrant_share: dict[str, float]
    model: str
    model_hash: str = ""  # SHA-256 of the model's content ('' when analysed before it was recorded)
    moodscope_version: str = ""  # the moodscope that analysed the track
    score: float | None = None  # what the query ranked by (distance, confidence…), when it ranked
    extra: dict = field(default_factory=dict)
    uncertain: bool = False  # mostly out of distribution (silence, noise, speech): no mood claimed
    ood_fraction: float = 0.0  # share of its segments out of distribution

    @property
    def mood(self) -> str:
        """The quadrant's mood words, or "uncertain" for an uncertain track."""
        return UNCERTAIN if self.uncertain else QUADRANT_MOODS[self.quadrant]

    @property
    def model_label(self) -> str:
        """``<model name>@sha256:<content hash>`` (the name alone when the hash was not recorded)."""
        return f"{self.model}@sha256:{self.model_hash}" if self.model_hash else self.model

    @property
    def display_title(self) -> str:
        return self.title or Path(self.path).stem

    @property
    def display_name(self) -> str:
        """``Artist - Title`` (as in M3U files), or the title alone when the artist is unknown."""
        return f"{self.artist} - {self.display_title}" if self.artist else self.display_title

    def to_dict(self) -> dict:
        out = {
            "id": self.id,
            "path": self.path,
            "title": self.display_title,
            "artist": self.artist,
            "album": self.album,
            "duration": round(self.duration, 3),
            "quadrant": self.quadrant,
            "mood": self.mood,
            "confidence": round(self.confidence, 4),
            "valence": round(self.valence, 4),
            "arousal": round(self.arousal, 4),
            "probabilities": self.probabilities,
            "quadrant_share": self.quadrant_share,
            "uncertain": bool(self.uncertain),
            "ood_fraction": round(float(self.ood_fraction), 4),
            "model": self.model,
            "model_hash": self.model_hash,
            "moodscope_version": self.moodscope_version,
        }
        if self.score is not None:
            out["score"] = round(float(self.score), 5)
        out.update(self.extra)
        return out


_TRACK_COLUMNS = (
    "id, path, title, artist, album, coalesce(tag_duration, analysed_seconds), quadrant, confidence, valence, arousal, "
    + ", ".join(f"p_{q.lower()}" for q in QUADRANTS)
    + ", "
    + ", ".join(f"share_{q.lower()}" for q in QUADRANTS)
    + ", model, model_hash, moodscope_version, uncertain, ood_fraction"
)


def _track_from_row(row: tuple) -> Track:
    probs = dict(zip(QUADRANTS, row[10:14]))
    share = dict(zip(QUADRANTS, row[14:18]))
    track_id, path, title, artist, album, duration, quadrant, confidence, valence, arousal = row[:10]
    return Track(
        id=track_id,
        path=path,
        title=title,
        artist=artist,
        album=album,
        duration=duration,
        quadrant=quadrant,
        confidence=confidence,
        valence=valence,
        arousal=arousal,
        probabilities=probs,
        quadrant_share=share,
        model=row[18],
        model_hash=row[19],
        moodscope_version=row[20],
        uncertain=bool(row[21]),
        ood_fraction=float(row[22]),
    )


def _tracks_from_rows(conn: sqlite3.Connection, rows: list[tuple]) -> list[Track]:
    """Tracks from rows of ``tracks``, validated first (impossible values: the library is damaged)."""
    bad = bad_track_rows(rows)
    if bad.any():
        raise damaged(_db_path(conn), describe_track(rows[int(np.flatnonzero(bad)[0])]))
    return [_track_from_row(row) for row in rows]


def fetch_tracks(conn: sqlite3.Connection, ids: list[int]) -> list[Track]:
    """Tracks by id, in the order of ``ids`` (ids that are gone are left out)."""
    rows: list[tuple] = []
    ids = [int(i) for i in ids]
    for start in range(0, len(ids), 900):  # stay under SQLite's bound-parameter limit
        chunk = ids[start : start + 900]
        marks = ",".join("?" * len(chunk))
        rows.extend(conn.execute(f"SELECT {_TRACK_COLUMNS} FROM tracks WHERE id IN ({marks})", chunk))
    found = {t.id: t for t in _tracks_from_rows(conn, rows)}
    return [found[i] for i in ids if i in found]


def select_tracks(conn: sqlite3.Connection, where: str = "", params: tuple = (), order: str = "id") -> list[Track]:
    sql = f"SELECT {_TRACK_COLUMNS} FROM tracks {('WHERE ' + where) if where else ''} ORDER BY {order}"
    return _tracks_from_rows(conn, conn.execute(sql, params).fetchall())


def select_page(
    conn: sqlite3.Connection, where: str, params: tuple, order: str, limit: int | None, offset: int = 0
) -> tuple[list[Track], int]:
    """One page of the tracks matching ``where`` (in ``order``) and how many match in all, from one
    pass over the matches (the total is a window count over them, taken before the page is cut); only
    the ids of the matches are ordered and counted, and the page's tracks read afterwards (ordering
    whole rows made a text that most tracks hold 3x slower)."""
    page = f" LIMIT {-1 if limit is None else int(limit)} OFFSET {int(offset)}"
    sql = f"SELECT id, count(*) OVER () FROM tracks WHERE {where} ORDER BY {order}{page}"
    rows = conn.execute(sql, params).fetchall()
    if rows:
        return fetch_tracks(conn, [row[0] for row in rows]), int(rows[0][1])
    if not offset:
        return [], 0
    return [], conn.execute(f"SELECT count(*) FROM tracks WHERE {where}", params).fetchone()[0]  # past the end


def write_analysis(
    conn: sqlite3.Connection,
    stamp: FileStamp,
    digest: str,
    tags: Tags,
    analysis: Analysis,
    audio_digest: str | None = None,
) -> int:
    """Insert or replace the track at ``stamp.path`` with a new analysis, in one transaction.

    ``analysis`` is a :class:`~moodscope.analysis.analyzer.Analysis`; ``digest`` and ``audio_digest``
    the SHA-256 of the file and of its audio payload. Returns the track id. Raises
    :class:`LibraryError` naming the file, and stores nothing, when the analysis holds numbers that
    are not finite (a library never holds NaN or infinity).
    """
    probs = np.asarray(analysis.probabilities, dtype=np.float64)
    va = np.asarray(analysis.va, dtype=np.float64)
    s = analysis.summary
    profile = profile_vector(probs, va)
    if not (np.isfinite(probs).all() and np.isfinite(va).all() and np.isfinite(profile).all()):
        raise LibraryError(f"{stamp.path}: the analysis holds numbers that are not finite (NaN, infinity); not stored")
    row = (
        stamp.path,
        stamp.size,
        stamp.mtime_ns,
        digest,
        audio_digest,
        tags.title,
        tags.artist,
        tags.album,
        tags.duration,
        float(analysis.duration),
        str(analysis.model),
        str(getattr(analysis, "model_hash", "")),
        str(getattr(analysis, "moodscope_version", "")),
        len(probs),
        s.quadrant,
        float(s.confidence),
        float(s.valence),
        float(s.arousal),
        *(float(s.probabilities[q]) for q in QUADRANTS),
        *(float(s.quadrant_share[q]) for q in QUADRANTS),
        profile.tobytes(),
        time.time(),
        int(s.uncertain),
        float(s.ood_fraction),
    )
    ood = getattr(analysis, "ood", None)
    codes = np.zeros(len(probs), int) if ood is None else ood.reason_code
    scores = np.full(len(probs), np.nan) if ood is None else ood.score
    segments = [
        (float(start), *map(float, p), float(v), float(a), int(code), float(score) if np.isfinite(score) else None)
        for start, p, (v, a), code, score in zip(np.asarray(analysis.starts), probs, va, codes, scores)
    ]
    with transaction(conn):
        conn.execute("DELETE FROM tracks WHERE path = ?", (stamp.path,))
        marks = ",".join("?" * len(row))
        cur = conn.execute(
            "INSERT INTO tracks (path, size, mtime_ns, hash, audio_hash, title, artist, album, tag_duration, "
            "analysed_seconds, model, model_hash, moodscope_version, n_segments, quadrant, confidence, valence, "
            "arousal, "
            + ", ".join(f"p_{q.lower()}" for q in QUADRANTS)
            + ", "
            + ", ".join(f"share_{q.lower()}" for q in QUADRANTS)
            + f", profile, scanned_at, uncertain, ood_fraction) VALUES ({marks})",
            row,
        )
        track_id = cur.lastrowid
        conn.executemany(
            f"INSERT INTO segments (track_id, idx, start, {', '.join(f'p_{q.lower()}' for q in QUADRANTS)}, "
            "valence, arousal, ood, ood_score) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(track_id, i, *seg) for i, seg in enumerate(segments)],
        )
        conn.execute("DELETE FROM failures WHERE path = ?", (stamp.path,))
    assert track_id is not None  # the INSERT above gave the row an id
    return int(track_id)


_OWN_COLUMNS = ("id", "path", "size", "mtime_ns", "hash", "audio_hash", "title", "artist", "album", "tag_duration",
                "scanned_at")  # fmt: skip


def copy_track(
    conn: sqlite3.Connection, source_id: int, stamp: FileStamp, tags: Tags, digest: str, audio_digest: str | None
) -> int:
    """Index ``stamp.path`` (content hash ``digest``, audio hash ``audio_digest``) with the analysis of a
    file already indexed with the same audio (same content, or the same audio with other tags)."""
    cols = [row[1] for row in conn.execute("PRAGMA table_info(tracks)") if row[1] not in _OWN_COLUMNS]
    params = (stamp.path, stamp.size, stamp.mtime_ns, digest, audio_digest, tags.title, tags.artist, tags.album)
    with transaction(conn):
        conn.execute("DELETE FROM tracks WHERE path = ?", (stamp.path,))
        cur = conn.execute(
            f"INSERT INTO tracks (path, size, mtime_ns, hash, audio_hash, title, artist, album, tag_duration, "
            f"scanned_at, {', '.join(cols)}) SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, {', '.join(cols)} FROM tracks "
            "WHERE id = ?",
            (*params, tags.duration, time.time(), source_id),
        )
        new_id = cur.lastrowid
        seg_cols = [row[1] for row in conn.execute("PRAGMA table_info(segments)") if row[1] != "track_id"]
        conn.execute(
            f"INSERT INTO segments (track_id, {', '.join(seg_cols)}) SELECT ?, {', '.join(seg_cols)} "
            "FROM segments WHERE track_id = ?",
            (new_id, source_id),
        )
        conn.execute("DELETE FROM failures WHERE path = ?", (stamp.path,))
    assert new_id is not None  # the INSERT above gave the row an id
    return int(new_id)


def record_failure(conn: sqlite3.Connection, stamp: FileStamp, reason: str) -> None:
    """Record that a file failed; an older analysis of the same path (other content) is dropped."""
    with transaction(conn):
        conn.execute("DELETE FROM tracks WHERE path = ?", (stamp.path,))
        conn.execute(
            "INSERT OR REPLACE INTO failures (path, size, mtime_ns, reason, failed_at) VALUES (?, ?, ?, ?, ?)",
            (stamp.path, stamp.size, stamp.mtime_ns, reason, time.time()),
        )


@dataclass
class Profiles:
    """Every track's numbers as arrays, for vectorised queries (row ``i`` is track ``ids[i]``)."""

    ids: np.ndarray  # (n,) int64
    quadrant: np.ndarray  # (n,) int8, index into QUADRANTS
    confidence: np.ndarray  # (n,) float64: the stored value, so that filters on it agree with SQL's
    duration: np.ndarray  # (n,) float32 seconds
    matrix: np.ndarray  # (n, PROFILE_SIZE) float32, see moodscope.library.profile
    uncertain: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))  # (n,) bool: out of mood queries
    cache: dict = field(default_factory=dict, repr=False, compare=False)  # derived arrays, built by queries

    def __post_init__(self) -> None:  # not given (or empty): no track is uncertain
        given = np.asarray(self.uncertain, dtype=bool)
        self.uncertain = given if len(given) == len(self.ids) else np.zeros(len(self.ids), bool)

    def __len__(self) -> int:
        return len(self.ids)


_SNAPSHOT_FIELDS = (("ids", np.int64, 1), ("quadrant", np.int8, 1), ("confidence", np.float64, 1),
                   ("duration", np.float32, 1), ("matrix", np.float32, PROFILE_SIZE),
                   ("uncertain", np.bool_, 1))  # fmt: skip


def _profiles_to_bytes(p: Profiles) -> bytes:
    parts = (np.ascontiguousarray(getattr(p, name), dtype=dtype) for name, dtype, _ in _SNAPSHOT_FIELDS)
    return b"".join(part.tobytes() for part in parts)


def _profiles_from_bytes(data: bytes, n: int) -> Profiles:
    """Profiles from a snapshot's bytes; ValueError when they do not hold ``n`` profiles."""
    expected = n * sum(np.dtype(dtype).itemsize * width for _, dtype, width in _SNAPSHOT_FIELDS)
    if len(data) != expected:
        raise ValueError(f"the snapshot holds {len(data)} bytes, not {expected}")
    arrays: dict[str, Any] = {}
    offset = 0
    for name, dtype, width in _SNAPSHOT_FIELDS:
        count = n * width
        a = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
        arrays[name] = a.reshape(n, width) if width > 1 else a
        offset += count * np.dtype(dtype).itemsize
    return Profiles(**arrays)


def _profiles_from_rows(conn: sqlite3.Connection, *, validate: bool = True) -> Profiles:
    """Every track's profile read from its row; ``validate``: impossible values are :func:`damaged`."""
    rows = conn.execute(
        "SELECT id, CAST(substr(quadrant, 2) AS INTEGER) - 1, confidence, "
        "coalesce(tag_duration, analysed_seconds), profile, uncertain FROM tracks ORDER BY id"
    ).fetchall()
    n = len(rows)
    if n == 0:
        empty = np.zeros(0, dtype=np.float32)
        return Profiles(
            np.zeros(0, np.int64), np.zeros(0, np.int8), np.zeros(0), empty, np.zeros((0, PROFILE_SIZE), "f4")
        )
    ids, quad, conf, dur, blobs, uncertain = zip(*rows)
    try:
        matrix = np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(n, PROFILE_SIZE)
        profiles = Profiles(
            ids=np.fromiter(ids, dtype=np.int64, count=n),
            quadrant=np.fromiter(quad, dtype=np.int8, count=n),
            confidence=np.fromiter(conf, dtype=np.float64, count=n),
            duration=np.fromiter(dur, dtype=np.float32, count=n),
            matrix=matrix,
            uncertain=np.fromiter(uncertain, dtype=bool, count=n),
        )
    except (TypeError, ValueError) as exc:  # a profile of the wrong size, a NULL, a string
        raise damaged(_db_path(conn), f"the stored profiles cannot be read ({exc})") from exc
    if validate:
        bad = bad_profile_rows(profiles.matrix, profiles.confidence, profiles.duration)
        if bad.any() or not ((profiles.quadrant >= 0) & (profiles.quadrant < len(QUADRANTS))).all():
            where = int(profiles.ids[np.flatnonzero(bad)[0]]) if bad.any() else "?"
            raise damaged(_db_path(conn), f"the stored profile of track {where} holds impossible values")
    return profiles


def generation(conn: sqlite3.Connection) -> int:
    """A counter of changes to ``tracks`` (insert, update, delete), kept by triggers."""
    return conn.execute("SELECT value FROM state WHERE key = 'generation'").fetchone()[0]


def load_profiles(conn: sqlite3.Connection, *, save: bool = True) -> Profiles:
    """Every track's profile as arrays, sorted by id.

    Read from the snapshot when it is current (a few ms for 100,000 tracks); otherwise from the
    ``tracks`` rows (about 0.2-0.5 s per 100,000 tracks), and then (``save``) stored as the new
    snapshot, unless another process is writing or the file is read-only.
    """
    conn.execute("BEGIN")  # one read snapshot for the generation and the rows
    try:
        gen = generation(conn)
        row = conn.execute("SELECT n, data FROM profile_snapshot WHERE id = 1 AND generation = ?", (gen,)).fetchone()
        profiles = _snapshot_profiles(conn, row) if row else None
        if profiles is None:
            row = None
            profiles = _profiles_from_rows(conn)
    finally:
        conn.execute("COMMIT")
    if row is None and save:
        save_profiles(conn, profiles, gen)
    return profiles


def _snapshot_profiles(conn: sqlite3.Connection, row: tuple) -> Profiles | None:
    """The snapshot's profiles, or None when it is damaged (they are then rebuilt from the rows)."""
    try:
        profiles = _profiles_from_bytes(row[1], row[0])
    except (TypeError, ValueError) as exc:
        log.warning("%s: the profile snapshot is damaged (%s); rebuilding it from the tracks", _db_path(conn), exc)
        return None
    if bad_profile_rows(profiles.matrix, profiles.confidence, profiles.duration).any():
        log.warning("%s: the profile snapshot holds impossible values; rebuilding it from the tracks", _db_path(conn))
        return None
    return profiles


# ---- the full check ------------------------------------------------------------------------------


def full_check(conn: sqlite3.Connection) -> list[str]:
    """Every problem found: SQLite's integrity check, foreign keys, every stored value. Empty when sound."""
    problems: list[str] = []
    try:
        rows = [r[0] for r in conn.execute("PRAGMA integrity_check(20)")]
        if rows != ["ok"]:
            problems.extend(line for r in rows for line in r.splitlines() if line and not line.startswith("***"))
        bad_keys = conn.execute("PRAGMA foreign_key_check").fetchall()
        if bad_keys:
            problems.append(f"{len(bad_keys)} segment rows belong to no track")
    except sqlite3.DatabaseError as exc:
        return [*problems, str(exc)]
    checks = (
        ("tracks", _check_track_rows),
        ("segments", _check_segment_rows),
        ("profiles", _check_profile_rows),
        ("text index", _check_text_index),
    )
    for name, check in checks:
        try:
            problem = check(conn)
        except sqlite3.DatabaseError as exc:
            problem = f"{name}: {exc}"
        if problem:
            problems.append(problem)
    return problems


def _check_text_index(conn: sqlite3.Connection) -> str | None:
    """FTS5's own check of the text index against the tracks (skipped on a read-only connection: it is
    asked as an ``INSERT``)."""
    if not has_text_index(conn):
        return None
    try:
        conn.execute(f"INSERT INTO {TEXT_INDEX} ({TEXT_INDEX}, rank) VALUES ('integrity-check', 1)")
    except sqlite3.OperationalError as exc:
        if "readonly" in str(exc):
            return None
        raise
    except sqlite3.DatabaseError:
        return "text index: it does not match the tracks' titles, artists and paths (text searches would be wrong)"
    return None


def _check_track_rows(conn: sqlite3.Connection) -> str | None:
    rows = conn.execute(f"SELECT {_TRACK_COLUMNS} FROM tracks").fetchall()
    bad = bad_track_rows(rows)
    if bad.any():
        return f"tracks: {describe_track(rows[int(np.flatnonzero(bad)[0])])} ({int(bad.sum())} tracks)"
    return None


def _check_segment_rows(conn: sqlite3.Connection) -> str | None:
    cols = ", ".join(f"p_{q.lower()}" for q in QUADRANTS)
    rows = conn.execute(f"SELECT track_id, idx, {cols}, valence, arousal FROM segments").fetchall()
    if not rows:
        return None
    try:
        values = np.array([row[2:] for row in rows], dtype=np.float64)
    except (TypeError, ValueError):
        return "segments: a segment holds a value that is not a number"
    bad = bad_segment_rows(values[:, :4], values[:, 4:])
    if bad.any():
        track, idx = rows[int(np.flatnonzero(bad)[0])][:2]
        return f"segments: segment {idx} of track {track} holds impossible values ({int(bad.sum())} segments)"
    return None


def _check_profile_rows(conn: sqlite3.Connection) -> str | None:
    rows = _profiles_from_rows(conn, validate=False)
    bad = bad_profile_rows(rows.matrix, rows.confidence, rows.duration)
    if bad.any():
        return (
            f"profiles: track {int(rows.ids[np.flatnonzero(bad)[0]])} holds impossible values ({int(bad.sum())} tracks)"
        )
    snap = conn.execute("SELECT n, data FROM profile_snapshot WHERE id = 1").fetchone()
    if snap is not None:
        try:
            stored = _profiles_from_bytes(snap[1], snap[0])
        except ValueError:
            return "profile snapshot: truncated (it is rebuilt from the tracks on the next query)"
        if bad_profile_rows(stored.matrix, stored.confidence, stored.duration).any():
            return "profile snapshot: impossible values (it is rebuilt from the tracks on the next query)"
    return None


def save_profiles(conn: sqlite3.Connection, profiles: Profiles, gen: int) -> bool:
    """Store ``profiles`` (read at generation ``gen``) as the snapshot, if the library has not changed since."""
    try:
        conn.execute("PRAGMA busy_timeout = 0")
        with transaction(conn):
            if generation(conn) != gen:
                return False
            conn.execute(
                "INSERT OR REPLACE INTO profile_snapshot (id, generation, n, data) VALUES (1, ?, ?, ?)",
                (gen, len(profiles), _profiles_to_bytes(profiles)),
            )
        return True
    except sqlite3.OperationalError as exc:  # busy (a scan is writing) or read-only: next time
        log.debug("profile snapshot not saved: %s", exc)
        return False
    finally:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
