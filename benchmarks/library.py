"""Mood-library speed: re-scanning an unchanged folder, and queries on a large library.

1. **Rescan**: ``--files`` (1,000) small generated WAV files are indexed once (with a deterministic
   stand-in analyser, since only the re-scan is timed), then ``moodscope library scan DIR --db ...``
   is run again as a fresh process on the unchanged folder. Reported: wall time of the whole command
   (Python start-up and imports included) and of the scan itself. Target: at most 5 s.
2. **Queries**: a library of ``--tracks`` (100,000) synthetic tracks (8 segments each, written with
   plain SQL) is queried through :class:`moodscope.library.MoodLibrary`. Each query is timed cold
   (a new connection: the profile matrix is loaded from SQLite first) and warm (median of
   ``--repeat`` runs on an open library). Target: at most 100 ms per query.

    python benchmarks/library.py                              # 1,000 files, 100,000 tracks
    python benchmarks/library.py --files 200 --tracks 20000 --json bench.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def stand_in_analyzer(paths):
    """One-segment analyses whose mood is drawn from the file name (no audio decoding)."""
    from moodscope.analysis.analyzer import Analysis, va_from_probabilities

    for p in paths:
        rng = np.random.default_rng(abs(hash(Path(p).name)) % 2**32)
        probs = rng.dirichlet(np.ones(4), size=1)
        yield str(p), Analysis(str(p), 5.0, "stand-in", np.zeros(1), probs, va_from_probabilities(probs)), None


def bench_rescan(files: int, workdir: Path) -> dict:
    import soundfile as sf

    from moodscope.library import MoodLibrary

    music = workdir / "music"
    rng = np.random.default_rng(0)
    for i in range(files):
        folder = music / f"artist {i // 100:02d}" / f"album {i // 10 % 10}"
        folder.mkdir(parents=True, exist_ok=True)
        sf.write(folder / f"track {i:04d}.wav", (0.1 * rng.standard_normal(4_000)).astype(np.float32), 8_000)
    db = workdir / "rescan.db"
    with MoodLibrary(db) as lib:
        first = lib.scan(music, analyzer=stand_in_analyzer)
        assert len(first.analysed) == files, first.failed
    cmd = [sys.executable, "-m", "moodscope", "library", "scan", str(music), "--db", str(db)]
    walls = []
    for _ in range(3):
        start = time.perf_counter()
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        walls.append(time.perf_counter() - start)
        assert f"{files} unchanged" in out, out
    with MoodLibrary(db) as lib:
        start = time.perf_counter()
        result = lib.scan(music, analyzer=stand_in_analyzer)
        in_process = time.perf_counter() - start
        assert result.unchanged == files
    return {"files": files, "cli_wall_s": round(min(walls), 3), "cli_runs_s": [round(w, 3) for w in walls],
            "scan_only_s": round(in_process, 3)}  # fmt: skip


def build_synthetic_library(db: Path, n: int, seed: int = 0) -> None:
    """``n`` tracks with random but consistent summaries, profiles and 8 segments each, via plain SQL."""
    from moodscope.analysis.analyzer import summarize, va_from_probabilities
    from moodscope.constants import QUADRANTS
    from moodscope.library.db import connect, transaction
    from moodscope.library.profile import profile_vector

    rng = np.random.default_rng(seed)
    conn = connect(db)
    qcols = ", ".join(f"p_{q.lower()}" for q in QUADRANTS)
    scols = ", ".join(f"share_{q.lower()}" for q in QUADRANTS)
    track_sql = (
        "INSERT INTO tracks (id, path, size, mtime_ns, hash, title, artist, album, tag_duration, analysed_seconds, "
        f"model, n_segments, quadrant, confidence, valence, arousal, {qcols}, {scols}, profile, scanned_at) "
        f"VALUES ({', '.join('?' * 26)})"
    )
    seg_sql = (
        f"INSERT INTO segments (track_id, idx, start, {qcols}, valence, arousal) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )
    bias = rng.dirichlet(np.full(4, 0.7), size=n) * 6 + 0.2
    now = time.time()
    with transaction(conn):
        tracks, segments = [], []
        for i in range(n):
            probs = rng.dirichlet(bias[i], size=8)
            va = va_from_probabilities(probs)
            s = summarize(probs, va)
            duration = float(rng.uniform(90, 420))
            tracks.append(
                (i + 1, f"/music/artist {i % 5000}/track {i}.mp3", 5_000_000 + i, i, f"{i:064x}", f"Track {i}",
                 f"Artist {i % 5000}", f"Album {i % 9000}", duration, duration, "synthetic", 8, s.quadrant,
                 s.confidence, s.valence, s.arousal, *(s.probabilities[q] for q in QUADRANTS),
                 *(s.quadrant_share[q] for q in QUADRANTS), profile_vector(probs, va).tobytes(), now)
            )  # fmt: skip
            segments.extend((i + 1, j, 5.0 * j, *map(float, probs[j]), *map(float, va[j])) for j in range(8))
            if len(tracks) >= 5000:
                conn.executemany(track_sql, tracks)
                conn.executemany(seg_sql, segments)
                tracks, segments = [], []
        conn.executemany(track_sql, tracks)
        conn.executemany(seg_sql, segments)
    conn.execute("PRAGMA optimize")
    conn.close()


def bench_queries(n: int, workdir: Path, repeat: int) -> dict:
    from moodscope.library import MoodLibrary

    db = workdir / "queries.db"
    start = time.perf_counter()
    build_synthetic_library(db, n)
    built = time.perf_counter() - start
    queries = {
        "list --mood calm --min-confidence 0.6": lambda lib: lib.tracks("calm", min_confidence=0.6),
        "list --mood calm --limit 50": lambda lib: lib.tracks("calm", limit=50),
        "list --mood 0.7,0.3 --limit 50": lambda lib: lib.tracks("0.7,0.3", limit=50),
        "similar TRACK --n 10": lambda lib: lib.similar(12345, n=10),
        "playlist --mood happy --minutes 60": lambda lib: lib.playlist("happy", minutes=60),
        "playlist --mood 0.2,0.4 --n 20": lambda lib: lib.playlist("0.2,0.4", n=20),
        "journey --from sad --to happy --n 12": lambda lib: lib.journey("sad", "happy", n=12),
        "clusters --k 6": lambda lib: lib.clusters(6),
    }
    results = {}
    for name, query in queries.items():
        cold = []
        for _ in range(3):
            start = time.perf_counter()
            with MoodLibrary(db, create=False) as lib:
                out = query(lib)
            cold.append(time.perf_counter() - start)
        with MoodLibrary(db, create=False) as lib:
            query(lib)
            warm = []
            for _ in range(repeat):
                start = time.perf_counter()
                out = query(lib)
                warm.append(time.perf_counter() - start)
        results[name] = {
            "cold_ms": round(1000 * min(cold), 1),
            "warm_ms": round(1000 * statistics.median(warm), 1),
            "results": len(out),
        }
    with MoodLibrary(db, create=False) as lib:
        start = time.perf_counter()
        lib.profiles()
        load = time.perf_counter() - start
    return {"tracks": n, "build_s": round(built, 1), "profile_load_ms": round(1000 * load, 1), "queries": results}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=1000, help="files in the rescan benchmark")
    parser.add_argument("--tracks", type=int, default=100_000, help="tracks in the query benchmark")
    parser.add_argument("--repeat", type=int, default=9, help="warm runs per query (median reported)")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = parser.parse_args(argv)
    report = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
              f"Python {platform.python_version()}"}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="moodscope-bench-") as tmp:
        report["rescan"] = r = bench_rescan(args.files, Path(tmp))
        print(f"rescan of {r['files']} unchanged files: {r['cli_wall_s']:.2f} s for the whole CLI command "
              f"(scan alone {r['scan_only_s']:.2f} s)", flush=True)  # fmt: skip
        report["queries"] = q = bench_queries(args.tracks, Path(tmp), args.repeat)
        print(f"queries on {q['tracks']} tracks (library built in {q['build_s']} s; "
              f"profile matrix loads in {q['profile_load_ms']} ms):")  # fmt: skip
        for name, figures in q["queries"].items():
            print(f"  {name:<42} cold {figures['cold_ms']:>6.1f} ms   warm {figures['warm_ms']:>6.1f} ms"
                  f"   ({figures['results']} tracks)")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
