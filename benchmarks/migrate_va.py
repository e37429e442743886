"""Time schema 6's migration (valence/arousal onto the 0-1 scale) of a synthetic library, against building
that library with plain SQL in the same run.

    python benchmarks/migrate_va.py N WORKDIR
"""

from __future__ import annotations

import os
import sqlite3
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from library import build_synthetic_library

from moodscope.library.db import connect


def main() -> None:
    n, work = int(sys.argv[1]), Path(sys.argv[2])
    work.mkdir(parents=True, exist_ok=True)
    db = work / "migrate.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    start = time.perf_counter()
    build_synthetic_library(db, n)
    build = time.perf_counter() - start
    conn = sqlite3.connect(db)  # back to schema 5: the old quadrant-centre mixture, p(Q1) + p(Q4) - 0.5
    conn.execute("UPDATE segments SET valence = valence - 0.5, arousal = arousal - 0.5")
    conn.execute("UPDATE tracks SET valence = valence - 0.5, arousal = arousal - 0.5")
    conn.execute("PRAGMA user_version = 5")
    conn.commit()
    conn.close()
    start = time.perf_counter()
    connect(db).close()
    migrate = time.perf_counter() - start
    print(f"tracks {n}: build {build:.2f} s, migrate {migrate:.2f} s, migrate/build {migrate / build:.2f}, "
          f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
