"""Is the library database sound? Checks on open, a full check, validation of what is read, a way out.

- **On open**: SQLite's ``PRAGMA quick_check`` (every page's structure; about 15 ms per 1,000
  tracks). A check that passed is remembered — the file's identity, size and modification time, in
  ``$XDG_CACHE_HOME/moodscope/library-checks.json`` — so the next open of the unchanged file
  skips it. A library checked on open and then written by moodscope (a scan, a profile snapshot)
  is remembered as checked when it is closed: queries after a scan open at once.
- **Full** (:func:`moodscope.library.db.full_check`, ``moodscope library check``): ``PRAGMA integrity_check``, foreign
  keys, and every stored number read back and validated.
- **On read**: every profile, track summary and segment read is validated (finite, in range:
  probabilities in [0, 1], valence and arousal in ``VA_RANGE``…), because damage inside a value
  (a page overwritten with garbage) is invisible to SQLite's checks and would come out as
  distances of 1e32. SQLite's own "database disk image is malformed" becomes the same error.

A damaged library is refused with :func:`damaged`, which says what to do: rebuild it from the audio
with ``moodscope library scan --rebuild DIR`` — :func:`move_aside` keeps the damaged file (renamed
``<name>.before-rebuild-<time>``) in case something can be recovered from it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import time
from pathlib import Path

import numpy as np

from moodscope.constants import QUADRANTS, VA_RANGE
from moodscope.errors import LibraryError

log = logging.getLogger(__name__)

CHECKS_KEPT = 64
"""Libraries whose last good check is remembered (the most recent ones)."""

_VA_LOW, _VA_HIGH = VA_RANGE
_SPAN = _VA_HIGH - _VA_LOW
_EPS = 1e-3  # float32 rounding of values stored at a bound


def damaged(path: str | os.PathLike, detail: str) -> LibraryError:
    """The error for a damaged library: what is wrong and the way out."""
    return LibraryError(
        f"{path}: the library database is damaged ({detail}); rebuild it from your music with "
        "`moodscope library scan --rebuild DIR...` (the damaged file is kept beside it)"
    )


def sql_error(path: str | os.PathLike, exc: sqlite3.Error) -> LibraryError:
    """A LibraryError for an error SQLite raised while reading or writing ``path``."""
    text = summary([str(exc)])
    if isinstance(exc, sqlite3.OperationalError):
        if "readonly" in text or "read-only" in text:
            return LibraryError(f"{path}: the library is read-only ({text}); give a writable --db")
        if "locked" in text or "busy" in text:
            return LibraryError(f"{path}: the library is busy ({text}); another process is writing it, try again")
        return LibraryError(f"{path}: {text}")
    return damaged(path, text)


# ---- remembered checks ----------------------------------------------------------------------------


def _checks_file() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "moodscope" / "library-checks.json"


def file_state(path: str | os.PathLike) -> list[int] | None:
    """What changes when anything writes the database: identity, size and mtime of the file and its WAL."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    try:
        wal = os.stat(f"{path}-wal").st_size
    except OSError:
        wal = 0
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, wal]


def _read_checks() -> dict:
    try:
        data = json.loads(_checks_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def was_checked(path: str | os.PathLike) -> bool:
    """Did a check pass on this very file, unchanged since?"""
    state = file_state(path)
    return state is not None and _read_checks().get(os.path.realpath(path), {}).get("state") == state


def remember_checked(path: str | os.PathLike) -> None:
    """Record that the file as it is now passed a check (best effort: a read-only cache is no error)."""
    from moodscope.fileio import atomic_write

    state = file_state(path)
    if state is None:
        return
    checks = _read_checks()
    checks[os.path.realpath(path)] = {"state": state, "at": time.time()}
    recent = sorted(checks.items(), key=lambda kv: kv[1].get("at", 0) if isinstance(kv[1], dict) else 0)
    with contextlib.suppress(Exception), atomic_write(_checks_file()) as fh:
        json.dump(dict(recent[-CHECKS_KEPT:]), fh)


def forget_checked(path: str | os.PathLike) -> None:
    """Forget the last good check of ``path`` (it was found damaged, or moved aside)."""
    from moodscope.fileio import atomic_write

    checks = _read_checks()
    if checks.pop(os.path.realpath(path), None) is not None:
        with contextlib.suppress(Exception), atomic_write(_checks_file()) as fh:
            json.dump(checks, fh)


# ---- SQLite's checks ---------------------------------------------------------------------------


def quick_check(conn: sqlite3.Connection, path: str | os.PathLike) -> None:
    """``PRAGMA quick_check``, unless this unchanged file passed a check before; :func:`damaged` if it fails."""
    if was_checked(path):
        return
    try:
        rows = conn.execute("PRAGMA quick_check(5)").fetchall()
    except sqlite3.DatabaseError as exc:
        raise damaged(path, str(exc)) from exc
    if [r[0] for r in rows] != ["ok"]:
        forget_checked(path)
        raise damaged(path, summary([r[0] for r in rows]))
    remember_checked(path)


def summary(problems: list[str]) -> str:
    """SQLite's check report (several lines) in one line: the first problem and how many more."""
    lines = [line.strip() for text in problems for line in str(text).splitlines()]
    lines = [line for line in lines if line and not line.startswith("***")]
    if not lines:
        return "the integrity check failed"
    return lines[0] + (f" and {len(lines) - 1} more problems" if len(lines) > 1 else "")


# ---- validating what is read ---------------------------------------------------------------------


def _outside(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """Rows [shape=(n,)] holding a value that is not finite or outside [low, high] (with float32 slack)."""
    values = np.asarray(values, dtype=np.float64).reshape(len(values), -1)
    return np.asarray(~((values >= low - _EPS) & (values <= high + _EPS)).all(axis=1))  # NaN fails both


def bad_profile_rows(matrix: np.ndarray, confidence: np.ndarray, duration: np.ndarray) -> np.ndarray:
    """Rows of a profile matrix [shape=(n, PROFILE_SIZE)] holding impossible values (see the module docstring)."""
    from moodscope.library.profile import PROBS, SHAPE, SHARE, STD, VA

    return (
        _outside(matrix[:, VA], _VA_LOW, _VA_HIGH)
        | _outside(matrix[:, PROBS], 0.0, 1.0)
        | _outside(matrix[:, SHARE], 0.0, 1.0)
        | _outside(matrix[:, STD], 0.0, _SPAN)
        | _outside(matrix[:, SHAPE], -_SPAN, _SPAN)
        | _outside(confidence, 0.0, 1.0)
        | _outside(duration, 0.0, 1e7)
    )


def bad_track_rows(rows: list[tuple]) -> np.ndarray:
    """Which rows of ``tracks``, as :func:`moodscope.library.db.select_tracks` reads them (id, path,
    title, artist, album, duration, quadrant, confidence, valence, arousal, p_Q1..p_Q4,
    share_Q1..share_Q4, ...), hold impossible values [shape=(n,) bool]."""
    if not rows:
        return np.zeros(0, dtype=bool)
    try:
        numbers = np.array([row[7:18] for row in rows], dtype=np.float64)  # confidence .. share_Q4
        duration = np.array([row[5] for row in rows], dtype=np.float64)
    except (TypeError, ValueError):  # a NULL or a string where a number belongs
        return np.array([not all(isinstance(v, (int, float)) for v in (row[5], *row[7:18])) for row in rows])
    bad = _outside(numbers[:, :1], 0.0, 1.0) | _outside(numbers[:, 1:3], _VA_LOW, _VA_HIGH)
    bad |= _outside(numbers[:, 3:], 0.0, 1.0) | _outside(duration, 0.0, 1e7)
    bad |= np.array([row[6] not in QUADRANTS for row in rows])
    return bad


def bad_points(quadrants: list[str], values) -> np.ndarray:
    """Which tracks of a map — their quadrants and (confidence, valence, arousal) [shape=(n, 3)] —
    hold impossible values [shape=(n,) bool]."""
    if not len(quadrants):
        return np.zeros(0, dtype=bool)
    try:
        values = np.asarray(values, dtype=np.float64).reshape(len(quadrants), 3)
    except (TypeError, ValueError):
        return np.ones(len(quadrants), dtype=bool)
    bad = _outside(values[:, :1], 0.0, 1.0) | _outside(values[:, 1:], _VA_LOW, _VA_HIGH)
    return bad | np.array([q not in QUADRANTS for q in quadrants])


def describe_track(row: tuple) -> str:
    names = ("duration", "confidence", "valence", "arousal")
    values = (row[5], row[7], row[8], row[9])
    shown = ", ".join(f"{k} {v:.3g}" if isinstance(v, (int, float)) else f"{k} {v!r}" for k, v in zip(names, values))
    return f"track {row[0]} ({row[1]}) holds impossible values ({shown})"


def bad_segment_rows(probs: np.ndarray, va: np.ndarray) -> np.ndarray:
    """Segments with impossible probabilities [shape=(n, 4)] or valence/arousal [shape=(n, 2)] [shape=(n,) bool]."""
    return _outside(probs, 0.0, 1.0) | _outside(va, _VA_LOW, _VA_HIGH)


# ---- the way out ---------------------------------------------------------------------------------


def move_aside(path: str | os.PathLike) -> Path | None:
    """Rename the library at ``path`` (and its ``-wal``/``-shm`` files) to ``<name>.before-rebuild-<time>``.

    Returns the new path of the database, or None when there was nothing at ``path``.
    """
    path = Path(path)
    if not path.exists():
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S")
    aside = path.with_name(f"{path.name}.before-rebuild-{stamp}")
    try:
        for suffix in ("-wal", "-shm", ""):
            source = Path(f"{path}{suffix}")
            if source.exists():
                os.replace(source, f"{aside}{suffix}")
    except OSError as exc:
        raise LibraryError(f"{path}: cannot move the library aside ({exc.strerror or exc}); move it yourself") from exc
    forget_checked(path)
    return aside
