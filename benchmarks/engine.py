"""Throughput of the ray engine against the local engine, on the same real full-length tracks, in one run.

The real music of ``../shared/data/music`` (5 full-length tracks, about 18 minutes) is linked
``--copies`` times (``--fast-copies`` for the fast model) into a scratch folder under distinct names:
a folder of full-length tracks long enough that start-up costs do not decide the result.
For each model (``accurate``, ``fast``):

1. ``local``: :func:`moodscope.engine.analysis.analyze_files` with ``--workers`` processes (worker
   start-up and model loading included);
2. ``ray``: the same call on a :class:`~moodscope.engine.ray_engine.RayEngine` over a Ray instance
   started here on ``--workers`` CPUs (``ray.init`` once, timed apart: a cluster pays it once); the
   pipeline's planning, actor start-up and model loading are included.

The two alternate ``--repeats`` times (local, ray, local, ray...) so that a change in the load of
this shared machine hits both; the best run of each is compared, and every run is reported.
Throughput is seconds of audio per wall-clock second; ``overhead`` is ``local / ray - 1`` (goal
<= 20 %). On a shared machine the wall-clock depends on what else runs, so the CPU time of every
process involved (this one and all below it: workers, and Ray's raylet, GCS, agents and workers,
sampled from /proc) is measured too, and the overhead in CPU time reported beside it. Both engines'
results are checked to agree (same quadrants, probabilities within 1e-4).

A per-stage profile on one core then times, per minute of audio, what the pipeline does to each
file: decode and resample, the model's inputs (``segment_inputs``: Table 2 features or musicnn's
log-mel patches), the model (``predict_inputs``) and writing the result (one track into the Parquet
dataset); ``cpu_throughput`` (audio seconds per CPU-second, from the profile) is what
``docs/scaling.md`` sizes a cluster with.

``--driver`` measures only the driver's cost instead (what one ``moodscope analyze`` process can
feed): the CPU time of this process (planning, receiving the rows, assembling the analyses) while
the ray engine analyses ``--copies`` and then 4 × ``--copies`` links to each track with the fast
model; the difference gives the cost per track, the rest the fixed cost of a run.

    python benchmarks/engine.py                          # accurate (2 copies) and fast (8 copies), 2 repeats
    python benchmarks/engine.py --driver --copies 2 --json docs/benchmarks/engine-driver.json
    python benchmarks/engine.py --models accurate --copies 4 --json docs/benchmarks/engine.json
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from common import cpu_seconds, save_report

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "music"
MUSIC_EXTENSIONS = (".ogg", ".mp3")
OVERHEAD_GOAL = 0.20


def link_copies(files: list[Path], copies: int, folder: Path) -> list[str]:
    """``copies`` links to each file under distinct names."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for c in range(copies):
        for f in files:
            link = folder / f"{c:02d}-{f.name}"
            link.symlink_to(f.resolve())
            out.append(str(link))
    return out


def is_ray_process(cmdline: bytes) -> bool:
    """Whether a process with this /proc cmdline is one of Ray's: a worker (titled ``ray::...``), or a
    program of the ``ray`` package (raylet, GCS server, dashboard agents, log monitor...)."""
    return cmdline.startswith(b"ray::") or b"/ray/" in cmdline


class TreeCPU:
    """CPU seconds (user + system) used by this process and every process below it during a ``with``
    block: worker processes, and for Ray its raylet, GCS, agents and workers. Processes are sampled
    every :attr:`interval` seconds from /proc (Linux), so one that ends is counted up to its last sample
    (the sampling itself costs this process about 1 % of a core)."""

    interval = 0.5

    def __init__(self, *, ray: bool = True) -> None:
        self.ray = ray  # count Ray's processes (raylet, GCS, agents, workers) too
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self._stop = threading.Event()
        self._tick = os.sysconf("SC_CLK_TCK")

    def _sample(self, *, first: bool = False) -> None:
        frontier, seen = {os.getpid()}, set()
        while frontier:
            pid = frontier.pop()
            seen.add(pid)
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
                if not self.ray and pid != os.getpid() and is_ray_process(Path(f"/proc/{pid}/cmdline").read_bytes()):
                    continue
            except OSError:
                continue
            cpu = (int(fields[11]) + int(fields[12])) / self._tick
            self.first.setdefault(pid, cpu if first else 0.0)  # processes started later count from 0
            self.last[pid] = cpu
            frontier |= {int(c) for c in children} - seen

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> TreeCPU:
        self._sample(first=True)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    @property
    def seconds(self) -> float:
        return sum(self.last[pid] - self.first[pid] for pid in self.last)


def timed_run(paths: list[str], model: str, engine, workers: int) -> tuple[dict, list]:
    from moodscope.engine.analysis import analyze_files

    with TreeCPU(ray=engine != "local") as cpu:
        start = time.perf_counter()
        result = analyze_files(paths, model=model, engine=engine, workers=workers)
        wall = time.perf_counter() - start
    if result.failed:
        raise SystemExit(f"files failed: {result.failed}")
    audio = sum(a.duration for a in result.analyses)
    figures = {
        "wall_seconds": wall,
        "audio_seconds": audio,
        "throughput": audio / wall,
        "cpu_seconds": cpu.seconds,
        "cpu_throughput": audio / cpu.seconds,
        "driver_cpu_seconds": cpu.last[os.getpid()] - cpu.first[os.getpid()],  # this process: results, assembly
    }
    return figures, result.analyses


def check_agreement(local: list, remote: list) -> float:
    """Largest probability difference between the engines' results (and the same quadrants)."""
    worst = 0.0
    for a, b in zip(local, remote):
        if a.source != b.source or a.quadrants != b.quadrants:
            raise SystemExit(f"the engines disagree on {a.source}")
        worst = max(worst, float(np.abs(a.probabilities - b.probabilities).max()))
    if worst > 1e-4:
        raise SystemExit(f"the engines' probabilities differ by {worst}")
    return worst


def profile_stages(files: list[Path], model: str, scratch: Path) -> dict:
    """Seconds per minute of audio of each stage, one process, one thread."""
    import threadpoolctl
    import torch

    from moodscope.analysis.analyzer import SegmentStream, build_analysis
    from moodscope.analysis.pretrained import load_model, predict_inputs, segment_inputs
    from moodscope.engine.base import FileResult
    from moodscope.engine.dataset import TrackDataset

    threads = torch.get_num_threads()
    threadpoolctl.threadpool_limits(1)
    torch.set_num_threads(1)
    try:
        mood_model = load_model(model)
        stream = SegmentStream(files[0])
        predict_inputs(mood_model, segment_inputs(mood_model, next(iter(stream))[:2]))  # warm-up
        dataset = TrackDataset(scratch / f"profile-{model}")
        stages = dict.fromkeys(("decode", "inputs", "model", "write"), 0.0)
        audio, cpu = 0.0, cpu_seconds()
        for path in files:
            stream = SegmentStream(path)
            start = time.perf_counter()
            batches = list(stream)
            stages["decode"] += time.perf_counter() - start
            outputs = []
            for segments in batches:
                start = time.perf_counter()
                inputs = segment_inputs(mood_model, segments)
                stages["inputs"] += time.perf_counter() - start
                start = time.perf_counter()
                outputs.append(predict_inputs(mood_model, inputs))
                stages["model"] += time.perf_counter() - start
            analysis = build_analysis(str(path), stream.seconds, mood_model, outputs)
            start = time.perf_counter()
            dataset.write([FileResult(str(path), analysis)])
            stages["write"] += time.perf_counter() - start
            audio += stream.seconds
        cpu = cpu_seconds() - cpu
    finally:
        torch.set_num_threads(threads)
    total = sum(stages.values())
    return {
        "audio_seconds": audio,
        "seconds_per_audio_minute": {k: v / audio * 60 for k, v in stages.items()},
        "share": {k: v / total for k, v in stages.items()},
        "wall_seconds": total,
        "cpu_seconds": cpu,
        "cpu_throughput": audio / cpu,
    }


def driver_cost(files: list[Path], copies: int, workers: int, scratch: Path) -> dict:
    """CPU seconds of this process (the driver) for ``copies`` and ``4 * copies`` links to each
    track on the ray engine (fast model): the cost per track and the fixed cost of a run."""
    import ray

    from moodscope.engine.analysis import analyze_files
    from moodscope.engine.ray_engine import RayEngine

    ray.init(num_cpus=workers, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
    runs = []
    try:
        with RayEngine() as ray_engine:
            analyze_files(link_copies(files[:1], 1, scratch / "warm-up"), model="fast", engine=ray_engine)
            for n in (copies, 4 * copies):
                paths = link_copies(files, n, scratch / f"driver-{n}")
                cpu, start = time.process_time(), time.perf_counter()
                result = analyze_files(paths, model="fast", engine=ray_engine)
                cpu, wall = time.process_time() - cpu, time.perf_counter() - start
                audio = sum(a.duration for a in result.analyses)
                runs.append({"tracks": len(paths), "failed": len(result.failed), "audio_seconds": audio,
                             "driver_cpu_seconds": cpu, "wall_seconds": wall})  # fmt: skip
    finally:
        ray.shutdown()
    small, large = runs
    per_track = (large["driver_cpu_seconds"] - small["driver_cpu_seconds"]) / (large["tracks"] - small["tracks"])
    mean_track = large["audio_seconds"] / large["tracks"]
    return {
        "runs": runs,
        "per_track_cpu_seconds": per_track,
        "fixed_cpu_seconds": small["driver_cpu_seconds"] - per_track * small["tracks"],
        "mean_track_seconds": mean_track,
        "tracks_per_driver_cpu_hour": 3600 / per_track if per_track > 0 else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of real music (default: %(default)s)")
    parser.add_argument("--models", nargs="+", default=["accurate", "fast"], help="models (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=os.cpu_count(), help="processes / Ray CPUs (default: all)")
    parser.add_argument("--copies", type=int, default=2, help="links to each track (default: %(default)s)")
    parser.add_argument(
        "--fast-copies", type=int, default=8, help="links to each track for the fast model (default: %(default)s)"
    )
    parser.add_argument("--repeats", type=int, default=2, help="runs of each engine per model (default: %(default)s)")
    parser.add_argument("--skip-profile", action="store_true", help="leave out the per-stage profile")
    parser.add_argument("--driver", action="store_true", help="measure only the driver's cost per track (see above)")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)

    import ray

    from moodscope.engine.ray_engine import RayEngine

    files = sorted(p for p in args.data.glob("*") if p.suffix.lower() in MUSIC_EXTENSIONS)
    if not files:
        print(f"no music (*.ogg, *.mp3) in {args.data}; pass --data PATH", file=sys.stderr)
        return 2
    loads = {"start": os.getloadavg()[0]}
    scratch = Path(tempfile.mkdtemp(prefix="moodscope-bench-engine-"))
    if args.driver:
        try:
            driver = driver_cost(files, args.copies, args.workers, scratch)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        driver["load_average"] = loads | {"end": os.getloadavg()[0]}
        for run in driver["runs"]:
            print(f"ray, fast: {run['tracks']} tracks ({run['failed']} failed), {run['audio_seconds'] / 60:.0f} min of "
                  f"audio in {run['wall_seconds']:.1f} s; driver {run['driver_cpu_seconds']:.2f} CPU-s")  # fmt: skip
        print(f"driver: {driver['per_track_cpu_seconds'] * 1000:.1f} ms of CPU per track (mean "
              f"{driver['mean_track_seconds'] / 60:.1f} min), {driver['fixed_cpu_seconds']:.2f} CPU-s per run; "
              f"load average {loads['start']:.1f} -> {driver['load_average']['end']:.1f}")  # fmt: skip
        if args.json:
            save_report(args.json, driver, argv)
        return 0
    report: dict = {"workers": args.workers, "models": {}}
    try:
        folders = {}
        for copies in {args.copies, args.fast_copies}:
            folders[copies] = link_copies(files, copies, scratch / f"music-{copies}")
        start = time.perf_counter()
        ray.init(num_cpus=args.workers, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
        report["ray_init_seconds"] = time.perf_counter() - start
        time.sleep(15)  # Ray's idle workers start up
        with TreeCPU() as idle:
            time.sleep(10)
        report["ray_idle_cpu_per_second"] = idle.seconds / 10  # Ray's daemons, doing nothing
        with RayEngine() as ray_engine:
            for model in args.models:
                paths = folders[args.fast_copies if model == "fast" else args.copies]
                runs: dict[str, list[dict]] = {"local": [], "ray": []}
                for repeat in range(args.repeats):
                    for name, engine in (("local", "local"), ("ray", ray_engine)):
                        print(f"{model}: {name} engine, run {repeat + 1}/{args.repeats}...", file=sys.stderr)
                        figures, analyses = timed_run(paths, model, engine, args.workers)
                        runs[name].append(figures)
                        if name == "local":
                            reference = analyses
                        else:
                            figures["max_probability_difference"] = check_agreement(reference, analyses)
                best = {name: max(r["throughput"] for r in rs) for name, rs in runs.items()}
                best_cpu = {name: max(r["cpu_throughput"] for r in rs) for name, rs in runs.items()}
                report["models"][model] = {
                    "tracks": len(paths),
                    "runs": runs,
                    "best_throughput": best,
                    "best_cpu_throughput": best_cpu,
                    "overhead": best["local"] / best["ray"] - 1,
                    "cpu_overhead": best_cpu["local"] / best_cpu["ray"] - 1,
                }
        ray.shutdown()
        if not args.skip_profile:
            for model in args.models:
                print(f"{model}: per-stage profile on one core...", file=sys.stderr)
                report["models"][model]["profile"] = profile_stages(files, model, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    loads["end"] = os.getloadavg()[0]
    report["load_average"] = loads

    print(
        f"{args.workers} workers/CPUs; load average {loads['start']:.1f} -> {loads['end']:.1f}; "
        f"ray.init {report['ray_init_seconds']:.1f} s; Ray idle {report['ray_idle_cpu_per_second']:.2f} CPU-s/s"
    )
    for model, m in report["models"].items():
        audio = m["runs"]["local"][0]["audio_seconds"]
        driver = max(r["driver_cpu_seconds"] for r in m["runs"]["ray"])
        print(f"{model:9s} {m['tracks']} tracks, {audio / 60:.0f} min of audio; ray driver {driver:.1f} CPU-s")
        for name in ("local", "ray"):
            runs = ", ".join(f"{r['throughput']:.0f}" for r in m["runs"][name])
            cpu_runs = ", ".join(f"{r['cpu_throughput']:.0f}" for r in m["runs"][name])
            print(
                f"{model:9s} {name:5s}  best {m['best_throughput'][name]:7.1f}x real time (runs: {runs}); "
                f"per CPU-second {m['best_cpu_throughput'][name]:6.1f}x (runs: {cpu_runs})"
            )
        verdict = "ok" if m["overhead"] <= OVERHEAD_GOAL else "MISSED"
        print(
            f"{model:9s} ray overhead {m['overhead']:+.1%} wall-clock  {verdict} (goal <= {OVERHEAD_GOAL:.0%}); "
            f"{m['cpu_overhead']:+.1%} in CPU time"
        )
        if "profile" in m:
            p = m["profile"]
            stages = "  ".join(f"{k} {v:.2f} s ({p['share'][k]:.0%})" for k, v in p["seconds_per_audio_minute"].items())
            print(f"{model:9s} one core, per minute of audio: {stages}; {p['cpu_throughput']:.0f}x real time per CPU-s")
    if args.json:
        save_report(args.json, report, argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
