"""Speed and memory of ``moodscope analyze`` on real music, against a straightforward per-segment loop.

For each model (``fast``, ``accurate``, or a checkpoint path), on the real music in
``../shared/data/music`` (5 tracks, about 18 minutes):

1. folder throughput: seconds of audio per wall-clock second of
   ``analyze_files(paths, model=..., workers=--workers)`` (fresh worker processes: start-up and
   model loading included), and with ``--one-worker`` also in this process with one worker;
2. one 4-minute track through the CLI: ``moodscope analyze TRACK.mp3 --model ...`` as a subprocess,
   run twice, the second (warm: files in the page cache) run reported. The track is the first 240 s
   of the longest real file, written as a 44.1-kHz stereo MP3 (decoding and resampling included);
3. peak RSS of analysing a 1-hour file: a 44.1-kHz stereo WAV looping the real music, written block
   by block, analysed by ``python -c "import moodscope; moodscope.analyze(path, model=...)"`` in a
   subprocess that reports its own high-water mark, ``VmHWM`` (``--skip-hour`` leaves it out);
4. with ``--reference-rev REV``, the implementation of another revision beside this one, in the same
   run: the package's ``src/`` at ``REV`` (``git archive``) and this checkout's, each imported by a
   fresh Python process through ``PYTHONPATH``, alternately, ``--rounds`` times: folder throughput
   (``analyze_files``, ``--workers`` processes, decoding and start-up included) on ``--clips`` real
   30-s 4Q clips and on the full-length tracks, and the model load: the first analysis of the demo
   clip in a fresh process, from the process's start (``import moodscope``, the model read, ONNX
   Runtime or torch imported, the 40-s clip analysed), minus a second analysis of it in the same
   process; one thread (``OMP_NUM_THREADS=1``). The first analysis itself is reported too;
5. a reference in the same run, with the ``fast`` model: ``librosa.load(sr=22050)`` of each file,
   then for every 5-s segment :func:`moodscope.features.extract.reference_segment_features` and the model
   on that one segment; one process, BLAS and torch limited to one thread (its fastest setting on
   a 2-core machine, see ``benchmarks/features.py``).

Targets: folder throughput >= 300x real time (``fast``) and >= 150x (``accurate``; >= 120x on 30-s
clips) on 2 cores; a 4-minute track <= 3 s (``fast``) and <= 5 s (``accurate``) wall-clock on the
second run; peak RSS of the 1-hour file < 1 GB; the model load <= 1 s. The machine is shared: the
load average is reported, with a warning above 1.5. While the shipped weights are missing,
``--stand-in`` benchmarks randomly initialised models of the same architectures in their place
(speed does not depend on the weights' values).

    python benchmarks/analyze.py                              # fast and accurate, all the figures but --reference-rev
    python benchmarks/analyze.py --models fast --skip-hour --json bench.json
    python benchmarks/analyze.py --stand-in                   # before the shipped weights exist
    python benchmarks/analyze.py --models accurate --reference-rev 656cf02 --skip-hour --skip-cli
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from common import cpu_seconds, save_report, time_per_file

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "music"
DEFAULT_CLIPS = REPO.parent / "shared" / "data" / "4q" / "MER_audio_taffc_dataset"
MUSIC_EXTENSIONS = (".ogg", ".mp3")
TRACK_SECONDS = 240.0
HOUR_SECONDS = 3600.0
FILE_RATE = 44_100
LOAD_WARNING = 1.5

TARGETS = {
    # model: (folder throughput x real time, 4-min track warm CLI seconds)
    "fast": (300.0, 3.0),
    "accurate": (150.0, 5.0),
}
CLIPS_TARGET = {"accurate": 120.0}  # folder throughput on 30-s clips, x real time
LOAD_TARGET_SECONDS = 1.0
RSS_TARGET_MB = 1024.0


@dataclass
class ModelRun:
    label: str  # 'fast', 'accurate' or a checkpoint path
    spec: str  # what --model / model= receives
    stand_in: bool = False
    figures: dict = field(default_factory=dict)


def audio_seconds(path: Path) -> float:
    import soundfile as sf

    return sf.info(str(path)).duration


# --- models -----------------------------------------------------------------------------------------


def stand_in_checkpoint(name: str, folder: Path) -> Path:
    """A randomly initialised model with the architecture and size of shipped model ``name``."""
    from dataclasses import fields

    if name == "fast":
        from moodscope.models.checkpoint import save_random_checkpoint
        from moodscope.models.hybrid import HybridConfig

        full_size = {f.name: getattr(HybridConfig(), f.name) for f in fields(HybridConfig)}
        return save_random_checkpoint(folder / "fast-stand-in.pt", "hybrid", **full_size)
    from moodscope.analysis.accurate import BLOCKS, Head, save_embedding_model
    from moodscope.constants import QUADRANTS

    sizes = {"taggram": 50, "penultimate": 200, "mean_pool": 753, "max_pool": 753}
    width = {b: sizes.get(b.split("_", 1)[-1], 36) for b in BLOCKS}  # 'paper': 10 statics + 13 + 13 MFCC stats
    rng = np.random.default_rng(0)
    heads = []
    for blocks in [BLOCKS[:4], BLOCKS[4:8], ("paper",), BLOCKS]:
        d = sum(width[b] for b in blocks)
        heads.append(
            Head(blocks, np.zeros(d), np.ones(d), rng.standard_normal((len(QUADRANTS), d)) * 0.01, np.zeros(4))
        )
    return save_embedding_model(folder / "accurate-stand-in.pt", heads, metrics={}, config={"stand_in": True})


def resolve_models(names: list[str], stand_in: bool, scratch: Path) -> list[ModelRun]:
    try:
        from moodscope.analysis.pretrained import SHIPPED_MODELS
    except ImportError:  # a checkout from before the stage packages (benchmarks/compare.py)
        from moodscope.pretrained import SHIPPED_MODELS  # type: ignore[no-redef]

    runs = []
    for name in names:
        if name in SHIPPED_MODELS and not SHIPPED_MODELS[name].exists():
            if not stand_in:
                print(
                    f"skipping {name!r}: its weights are missing ({SHIPPED_MODELS[name]}); "
                    "pass --stand-in to time a random model of the same architecture",
                    file=sys.stderr,
                )
                continue
            runs.append(ModelRun(name, str(stand_in_checkpoint(name, scratch)), stand_in=True))
        elif name not in SHIPPED_MODELS and not Path(name).exists():
            print(f"skipping {name!r}: no such model or checkpoint", file=sys.stderr)
        else:
            runs.append(ModelRun(name, name))
    return runs


# --- test files ---------------------------------------------------------------------------------------


def real_blocks(files: list[Path], seconds_per_block: float = 30.0):
    """Endless stereo float32 blocks at FILE_RATE [shape=(n, 2)], looping over ``files``."""
    import soundfile as sf
    import soxr

    while True:
        for path in files:
            with sf.SoundFile(str(path)) as fh:
                stream = None if fh.samplerate == FILE_RATE else soxr.ResampleStream(fh.samplerate, FILE_RATE, 2)
                while True:
                    block = fh.read(int(fh.samplerate * seconds_per_block), dtype="float32", always_2d=True)
                    last = len(block) < int(fh.samplerate * seconds_per_block)
                    block = np.repeat(block, 2, axis=1) if block.shape[1] == 1 else block[:, :2]
                    out = block if stream is None else stream.resample_chunk(block, last=last)
                    if len(out):
                        yield out.astype(np.float32, copy=False)
                    if last:
                        break


def write_looped(files: list[Path], path: Path, seconds: float, **sf_kw) -> Path:
    """Write ``seconds`` of the real music, looped, to ``path`` block by block (bounded memory)."""
    import soundfile as sf

    want = round(seconds * FILE_RATE)
    written = 0
    with sf.SoundFile(str(path), "w", samplerate=FILE_RATE, channels=2, **sf_kw) as out:
        for block in real_blocks(files):
            block = block[: want - written]
            out.write(block)
            written += len(block)
            if written >= want:
                break
    return path


# --- measurements -----------------------------------------------------------------------------------


def folder_throughput(files: list[Path], spec: str, workers: int) -> dict:
    try:
        from moodscope.engine.analysis import analyze_files
    except ImportError:  # a checkout from before the engine (benchmarks/compare.py)
        from moodscope.analysis import analyze_files  # type: ignore[attr-defined,no-redef]

    cpu, start = cpu_seconds(), time.perf_counter()
    result = analyze_files(files, model=spec, workers=workers)
    wall = time.perf_counter() - start
    cpu = cpu_seconds() - cpu
    if result.failed:
        print(f"warning: {len(result.failed)} files failed: {result.failed}", file=sys.stderr)
    decoded = sum(a.duration for a in result.analyses)
    return {
        "workers": workers,
        "files": len(result.analyses),
        "segments": sum(len(a.starts) for a in result.analyses),
        "audio_seconds": decoded,
        "wall_seconds": wall,
        "cpu_seconds": cpu,
        "throughput": decoded / wall,
        "cpu_throughput": decoded / cpu,
    }


def moodscope_command() -> list[str]:
    script = Path(sys.executable).with_name("moodscope")
    return [str(script)] if script.exists() else [sys.executable, "-m", "moodscope"]


def cli_wall_clock(track: Path, spec: str, runs: int = 2) -> dict:
    walls = []
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(
            [*moodscope_command(), "analyze", str(track), "--model", spec], capture_output=True, text=True
        )
        walls.append(time.perf_counter() - start)
        if proc.returncode != 0:
            raise RuntimeError(f"moodscope analyze failed ({proc.returncode}): {proc.stderr.strip()}")
    return {"track_seconds": audio_seconds(track), "wall_seconds": walls, "warm_wall_seconds": walls[-1]}


PEAK_RSS_CODE = """
import resource, sys
import moodscope
a = moodscope.analyze(sys.argv[1], model=sys.argv[2])
try:  # the high-water mark of this process's memory since exec (Linux)
    with open("/proc/self/status") as fh:
        kb = next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:"))
except OSError:
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1024 if sys.platform == "darwin" else 1)
print(len(a.starts), a.duration, kb)
"""


def peak_rss(path: Path, spec: str) -> dict:
    """Peak RSS (MB) and wall-clock of ``moodscope.analyze(path)`` in a fresh Python process.

    The child reports its own high-water mark (``VmHWM``): ``ru_maxrss`` from ``wait4`` or
    ``RUSAGE_CHILDREN`` is no good here, because on Linux a child's ``ru_maxrss`` starts from the
    parent's peak RSS at the time of the (v)fork, so it would report this benchmark's own peak.
    """
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", PEAK_RSS_CODE, str(path), spec], capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"analysing the 1-hour file failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    n_segments, duration, kb = proc.stdout.split()[-3:]
    return {
        "audio_seconds": float(duration),
        "segments": int(n_segments),
        "peak_rss_mb": float(kb) / 1024,
        "wall_seconds": wall,
        "throughput": float(duration) / wall,
    }


def reference_loop(files: list[Path], spec: str) -> dict:
    """librosa.load, then features and the model one segment at a time; one thread."""
    import librosa
    import threadpoolctl
    import torch

    from moodscope.analysis.pretrained import load_model
    from moodscope.audio import segment_audio
    from moodscope.constants import SAMPLE_RATE
    from moodscope.features.extract import SegmentFeatures, reference_segment_features
    from moodscope.models.checkpoint import predict_proba

    model = load_model(spec)
    if not hasattr(model, "module"):
        raise SystemExit(f"the reference needs a feature model such as 'fast', not {model.name}")

    def one(path: Path) -> tuple[float, int]:
        y, _ = librosa.load(path, sr=SAMPLE_RATE, mono=True)
        segments = segment_audio(y, source=str(path))
        for segment in segments:
            feats = SegmentFeatures(**{k: v[None] for k, v in reference_segment_features(segment).items()})
            predict_proba(model.module, model.meta, feats)
        return len(y) / SAMPLE_RATE, len(segments)

    torch_threads = torch.get_num_threads()
    with threadpoolctl.threadpool_limits(1):
        torch.set_num_threads(1)
        try:
            seconds, n_segments, wall, cpu = time_per_file(one, files)
        finally:
            torch.set_num_threads(torch_threads)
    return {
        "files": len(files),
        "segments": n_segments,
        "audio_seconds": seconds,
        "wall_seconds": wall,
        "cpu_seconds": cpu,
        "throughput": seconds / wall,
        "cpu_throughput": seconds / cpu,
    }


# --- this implementation beside another revision's -----------------------------------------------------

CHILD_CODE = """
import json, resource, sys, time
started = time.perf_counter()
mode, spec, workers, paths = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
import moodscope
def cpu():
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
if mode == "load":
    from moodscope.paths import DEMO_CLIP
    t0 = time.perf_counter()
    moodscope.analyze(DEMO_CLIP, model=spec)
    t1 = time.perf_counter()
    moodscope.analyze(DEMO_CLIP, model=spec)
    t2 = time.perf_counter()
    first = t1 - started  # import moodscope, the model read, the first analysis
    print(json.dumps({"first_seconds": first, "second_seconds": t2 - t1, "load_seconds": first - (t2 - t1),
                      "torch_imported": "torch" in sys.modules}))
else:
    from moodscope.engine.analysis import analyze_files
    c0, t0 = cpu(), time.perf_counter()
    result = analyze_files(paths, model=spec, workers=workers)
    wall, used = time.perf_counter() - t0, cpu() - c0
    seconds = sum(a.duration for a in result.analyses)
    print(json.dumps({"files": len(result.analyses), "failed": len(result.failed), "audio_seconds": seconds,
                      "wall_seconds": wall, "cpu_seconds": used, "throughput": seconds / wall,
                      "cpu_throughput": seconds / used}))
"""


def export_revision(rev: str, folder: Path) -> Path:
    """The package source (``src/``) of git revision ``rev`` of this repository, written under ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "src"], capture_output=True, check=False)
    if archive.returncode != 0:
        raise SystemExit(f"git archive {rev} failed: {archive.stderr.decode().strip()}")
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    return folder / "src"


def run_child(src: Path, mode: str, spec: str, workers: int, paths: list[Path]) -> dict:
    """Run :data:`CHILD_CODE` in a fresh Python process that imports moodscope from ``src``."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    if mode == "load":  # one thread, as in a worker: on a busy machine more threads only spin-wait
        env["OMP_NUM_THREADS"] = "1"
    proc = subprocess.run(
        [sys.executable, "-c", CHILD_CODE, mode, spec, str(workers), *map(str, paths)],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"{mode} run with {src} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def pick_clips(root: Path, n: int) -> list[Path]:
    """``n`` of the real 30-s 4Q clips, evenly spread over the sorted list (so over the four quadrants)."""
    clips = sorted(root.glob("Q*/*.mp3"))
    if not clips:
        return []
    step = max(1, len(clips) // n)
    return clips[::step][:n]


def beside_reference(spec: str, reference_src: Path, folders: dict[str, list[Path]], workers: int, rounds: int) -> dict:
    """Throughput on each folder and the model load, this checkout and the reference alternately,
    ``rounds`` times; the medians and their ratios (this / reference)."""
    impls = {"this": REPO / "src", "reference": reference_src}
    runs: dict[str, dict[str, list[dict]]] = {impl: {} for impl in impls}
    for r in range(rounds):
        for impl, src in impls.items() if r % 2 == 0 else reversed(impls.items()):
            for name, paths in folders.items():
                print(f"  round {r + 1}/{rounds}: {impl}, {name}...", file=sys.stderr)
                runs[impl].setdefault(name, []).append(run_child(src, "folder", spec, workers, paths))
            runs[impl].setdefault("load", []).append(run_child(src, "load", spec, workers, []))
    out: dict = {"rounds": rounds, "runs": runs, "median": {}, "ratio": {}}
    for name in [*folders, "load", "first"]:
        key = {"load": "load_seconds", "first": "first_seconds"}.get(name, "throughput")
        source = "load" if name == "first" else name
        med = {impl: float(np.median([run[key] for run in runs[impl][source]])) for impl in impls}
        out["median"][name] = med
        out["ratio"][name] = med["this"] / med["reference"] if med["reference"] else float("nan")
        if name not in ("load", "first"):
            cpu = {impl: float(np.median([run["cpu_throughput"] for run in runs[impl][name]])) for impl in impls}
            out["median"][f"{name}_per_cpu_second"] = cpu
            out["ratio"][f"{name}_per_cpu_second"] = cpu["this"] / cpu["reference"]
    return out


def print_beside(label: str, rev: str, b: dict) -> None:
    print(f"{label}: this checkout beside revision {rev} (same run, alternating, median of {b['rounds']} rounds)")
    print(f"  {'measure':44s} {'this':>9s} {'reference':>10s} {'ratio':>7s}  target")
    for name, med in b["median"].items():
        ratio = b["ratio"][name]
        if name == "load":
            note = verdict(med["this"], LOAD_TARGET_SECONDS, at_least=False)
            measure = "model load (first analysis - second), s"
        elif name == "first":
            note, measure = "", "first analysis of the demo clip in a new process, s"
        elif name.endswith("_per_cpu_second"):
            note, measure = "", f"  {name.removesuffix('_per_cpu_second')}: per CPU-second"
        else:
            target = CLIPS_TARGET.get(label) if name == "clips" else TARGETS.get(label, (None,))[0]
            note = verdict(med["this"], target, at_least=True) if target else ""
            measure = f"{name}: folder, x real time"
        print(f"  {measure:44s} {med['this']:9.2f} {med['reference']:10.2f} {ratio:7.2f}  {note}")


# --- report -------------------------------------------------------------------------------------------


def verdict(value: float, target: float, *, at_least: bool) -> str:
    ok = value >= target if at_least else value <= target
    return f"{'ok' if ok else 'MISSED'} ({'>=' if at_least else '<='} {target:g})"


def print_report(runs: list[ModelRun], reference: dict | None, loads: dict) -> None:
    print(f"load average (1 min): {loads['start']:.2f} at the start, {loads['end']:.2f} at the end")
    print(f"{'model':32s} {'measure':38s} {'value':>12s}  target")
    for run in runs:
        label = run.label + (" (stand-in, random weights)" if run.stand_in else "")
        fast_target, cli_target = TARGETS.get(run.label, (None, None))
        f = run.figures
        for key in sorted(k for k in f if k.startswith("folder")):
            r = f[key]
            note = verdict(r["throughput"], fast_target, at_least=True) if fast_target and key == "folder" else ""
            measure = f"folder, {r['workers']} worker(s), x real time"
            print(f"{label:32s} {measure:38s} {r['throughput']:12.1f}  {note}")
            print(f"{'':32s} {'  per CPU-second':38s} {r['cpu_throughput']:12.1f}")
            if reference:
                wall_ratio = r["throughput"] / reference["throughput"]
                cpu_ratio = r["cpu_throughput"] / reference["cpu_throughput"]
                print(f"{'':32s} {'  ratio to the reference (wall)':38s} {wall_ratio:12.2f}")
                print(f"{'':32s} {'  ratio to the reference (per CPU-s)':38s} {cpu_ratio:12.2f}")
        if "cli" in f:
            c = f["cli"]
            note = verdict(c["warm_wall_seconds"], cli_target, at_least=False) if cli_target else ""
            cold = c["wall_seconds"][0]
            print(f"{label:32s} {'4-min track CLI, warm run, s':38s} {c['warm_wall_seconds']:12.2f}  {note}")
            print(f"{'':32s} {'  first (cold) run, s':38s} {cold:12.2f}")
        if "hour" in f:
            h = f["hour"]
            note = verdict(h["peak_rss_mb"], RSS_TARGET_MB, at_least=False)
            print(f"{label:32s} {'1-hour file, peak RSS, MB':38s} {h['peak_rss_mb']:12.0f}  {note}")
            print(f"{'':32s} {'  wall-clock, s (x real time)':38s} {h['wall_seconds']:12.1f}  ({h['throughput']:.0f}x)")
    if reference:
        print(
            f"{'reference (librosa, per segment)':32s} {'x real time, 1 process, 1 thread':38s} "
            f"{reference['throughput']:12.1f}"
        )
        print(f"{'':32s} {'  per CPU-second':38s} {reference['cpu_throughput']:12.1f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of real music (default: %(default)s)")
    parser.add_argument(
        "--models",
        nargs="+",
        default=["fast", "accurate"],
        help="model names or checkpoint paths (default: %(default)s)",
    )
    parser.add_argument("--workers", type=int, default=2, help="worker processes for the folder run (default: 2)")
    parser.add_argument("--one-worker", action="store_true", help="also time the folder run with one worker")
    parser.add_argument("--skip-hour", action="store_true", help="leave out the 1-hour peak-RSS run")
    parser.add_argument("--skip-cli", action="store_true", help="leave out the 4-minute track through the CLI")
    parser.add_argument("--skip-reference", action="store_true", help="leave out the librosa reference")
    parser.add_argument("--stand-in", action="store_true", help="random models in place of missing shipped weights")
    parser.add_argument(
        "--reference-rev",
        metavar="REV",
        help="also time the implementation of git revision REV beside this one (see the module docstring)",
    )
    parser.add_argument("--clips", type=int, default=120, help="30-s 4Q clips for --reference-rev (default: 120)")
    parser.add_argument("--clips-data", type=Path, default=DEFAULT_CLIPS, help="the 4Q dataset (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds for --reference-rev (default: 2)")
    parser.add_argument("--skip-folder", action="store_true", help="leave out the folder run in this process")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)

    files = sorted(p for p in args.data.glob("*") if p.suffix.lower() in MUSIC_EXTENSIONS)
    if not files:
        print(f"no music (*.ogg, *.mp3) in {args.data}; pass --data PATH", file=sys.stderr)
        return 2
    total = sum(audio_seconds(p) for p in files)
    loads = {"start": os.getloadavg()[0]}
    if loads["start"] > LOAD_WARNING:
        print(f"warning: load average {loads['start']:.2f}: the machine is busy, figures will be low", file=sys.stderr)
    print(f"{len(files)} files, {total:.0f} s of audio in {args.data}; {os.cpu_count()} CPUs", file=sys.stderr)

    scratch = Path(tempfile.mkdtemp(prefix="moodscope-bench-analyze-"))
    try:
        runs = resolve_models(args.models, args.stand_in, scratch)
        if not runs:
            print("no model to benchmark", file=sys.stderr)
            return 2
        longest = max(files, key=audio_seconds)
        track_path = scratch / "track-4min.mp3"
        track = None if args.skip_cli else write_looped([longest], track_path, TRACK_SECONDS, format="MP3")
        hour = None if args.skip_hour else write_looped(files, scratch / "hour.wav", HOUR_SECONDS, subtype="PCM_16")
        reference_src = None if args.reference_rev is None else export_revision(args.reference_rev, scratch / "ref")
        clips = pick_clips(args.clips_data, args.clips) if args.reference_rev else []
        if args.reference_rev and not clips:
            print(f"no 4Q clips in {args.clips_data}: the 30-s clip folder is left out", file=sys.stderr)
        for run in runs:
            if not args.skip_folder:
                print(f"{run.label}: folder ({args.workers} workers)...", file=sys.stderr)
                run.figures["folder"] = folder_throughput(files, run.spec, args.workers)
            if args.one_worker:
                run.figures["folder_1"] = folder_throughput(files, run.spec, 1)
            if reference_src is not None:
                print(f"{run.label}: beside revision {args.reference_rev}...", file=sys.stderr)
                folders = {"clips": clips, "tracks": files} if clips else {"tracks": files}
                run.figures["beside"] = beside_reference(run.spec, reference_src, folders, args.workers, args.rounds)
            if track is not None:
                print(f"{run.label}: 4-minute track through the CLI, twice...", file=sys.stderr)
                run.figures["cli"] = cli_wall_clock(track, run.spec)
            if hour is not None:
                print(f"{run.label}: 1-hour file...", file=sys.stderr)
                run.figures["hour"] = peak_rss(hour, run.spec)
        reference = None
        fast = next((r for r in runs if r.label == "fast"), None)
        if args.skip_reference:
            pass
        elif fast is None:
            print("no reference: it runs the 'fast' model, which is not among the models timed", file=sys.stderr)
        else:
            print("reference: librosa.load + per-segment features and model...", file=sys.stderr)
            reference = reference_loop(files, fast.spec)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    loads["end"] = os.getloadavg()[0]

    print_report(runs, reference, loads)
    for run in runs:
        if "beside" in run.figures:
            print_beside(run.label, args.reference_rev, run.figures["beside"])
    if max(loads.values()) > LOAD_WARNING:
        print(
            f"warning: load average above {LOAD_WARNING} (other processes competed for the CPUs); "
            "rerun on a quiet machine for figures to compare with the targets",
            file=sys.stderr,
        )
    if args.json:
        report = {
            "models": {r.label: {"spec": r.spec, "stand_in": r.stand_in, **r.figures} for r in runs},
            "reference": reference,
            "reference_rev": args.reference_rev,
            "targets": {
                "folder_and_cli": TARGETS,
                "clips": CLIPS_TARGET,
                "load_seconds": LOAD_TARGET_SECONDS,
                "peak_rss_mb": RSS_TARGET_MB,
            },
            "load_average": loads,
        }
        save_report(args.json, report, argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
