"""Time schema 6's migration (valence/arousal onto the 0-1 scale) of a synthetic schema-5 library: the
vectorised migration ``moodscope.library.db`` runs, against the per-track one it replaced (kept here as
:func:`per_track_migration`, the reference ``tests/test_va_scale.py`` compares with), each on its own copy
of the same library, and against building that library with plain SQL, in the same run. The two
results are compared (every stored value equal).

    python benchmarks/migrate_va.py N WORKDIR
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from library import build_synthetic_library

from moodscope.constants import QUADRANTS
from moodscope.library.db import _MIXTURE_TOLERANCE, connect

SCHEMA_7_COLUMNS = {"tracks": ("uncertain", "ood_fraction"), "segments": ("ood", "ood_score")}
"""What schema 7 added; dropped to turn a library built now back into a schema-5 one."""


def per_track_migration(conn: sqlite3.Connection) -> None:
    """Schema 6's migration as moodscope 0.2 ran it, one track at a time (the reference)."""
    from moodscope.analysis.analyzer import summarize, va_from_probabilities
    from moodscope.datasets.labels import to_reported_va
    from moodscope.library.profile import profile_vector

    cols = ", ".join(f"p_{q.lower()}" for q in QUADRANTS)
    ids = [row[0] for row in conn.execute("SELECT id FROM tracks ORDER BY id")]
    for track_id in ids:
        rows = conn.execute(
            f"SELECT idx, {cols}, valence, arousal FROM segments WHERE track_id = ? ORDER BY idx", (track_id,)
        ).fetchall()
        if not rows:
            continue
        values = np.array([row[1:] for row in rows], dtype=np.float64)
        probs, old = values[:, :4], values[:, 4:]
        marginals = va_from_probabilities(probs)
        if (
            np.abs(old - (marginals - 0.5)).max() <= _MIXTURE_TOLERANCE
            or np.abs(old - marginals).max() <= _MIXTURE_TOLERANCE
        ):
            va = marginals
        else:
            va = np.asarray(to_reported_va(np.clip(old, -1.0, 1.0)))
        conn.executemany(
            "UPDATE segments SET valence = ?, arousal = ? WHERE track_id = ? AND idx = ?",
            [(float(v), float(a), track_id, row[0]) for (v, a), row in zip(va, rows)],
        )
        summary = summarize(probs, va)
        conn.execute(
            "UPDATE tracks SET valence = ?, arousal = ?, profile = ? WHERE id = ?",
            (summary.valence, summary.arousal, profile_vector(probs, va).tobytes(), track_id),
        )
    conn.execute("DELETE FROM profile_snapshot")


def stored_values(db: Path) -> tuple[list, list]:
    """Every valence/arousal and profile the migration writes, in a fixed order."""
    conn = sqlite3.connect(db)
    try:
        tracks = conn.execute("SELECT id, valence, arousal, profile FROM tracks ORDER BY id").fetchall()
        segments = conn.execute(
            "SELECT track_id, idx, valence, arousal FROM segments ORDER BY track_id, idx"
        ).fetchall()
    finally:
        conn.close()
    return tracks, segments


def to_schema_5(db: Path) -> None:
    """Turn a library of the current schema, of classifier tracks, into what schema 5 stored: the old
    quadrant-centre mixture p(Q1) + p(Q4) - 0.5, no schema-7 columns, user_version 5."""
    conn = sqlite3.connect(db)
    conn.execute("UPDATE segments SET valence = valence - 0.5, arousal = arousal - 0.5")
    conn.execute("UPDATE tracks SET valence = valence - 0.5, arousal = arousal - 0.5")
    for table, columns in SCHEMA_7_COLUMNS.items():
        for column in columns:
            conn.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    conn.execute("PRAGMA user_version = 5")
    conn.commit()
    conn.execute("VACUUM")
    conn.close()


def main() -> None:
    n, work = int(sys.argv[1]), Path(sys.argv[2])
    work.mkdir(parents=True, exist_ok=True)
    db, reference = work / "migrate.db", work / "migrate-per-track.db"
    for path in (db, reference):
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    start = time.perf_counter()
    build_synthetic_library(db, n)
    build = time.perf_counter() - start
    to_schema_5(db)
    shutil.copyfile(db, reference)

    start = time.perf_counter()
    conn = sqlite3.connect(reference, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    per_track_migration(conn)
    conn.execute("COMMIT")
    conn.close()
    before = time.perf_counter() - start

    start = time.perf_counter()
    connect(db).close()  # the whole migration from schema 5 (6: valence/arousal, 7: OOD columns)
    after = time.perf_counter() - start

    same = stored_values(db) == stored_values(reference)
    print(f"tracks {n}: build {build:.2f} s; migrate per track {before:.2f} s, vectorised {after:.2f} s "
          f"(per-track/vectorised {before / after:.1f}x; vectorised/build {after / build:.2f}); identical: {same}; "
          f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    if not same:
        sys.exit("the vectorised migration's values differ from the per-track one's")


if __name__ == "__main__":
    main()
