"""Speed of ``moodscope library tag``: writing the mood tags into 1,000 files. Target: at most 10 s.

``--files`` (1,000) audio files of 30 s are indexed with a stand-in analyser (the analysis is not
what is timed), then ``moodscope library tag DIR --db ...`` runs as a fresh process (Python start-up
and imports included) and writes the six tags into every file: copy beside the file, mutagen, audio
check, fsync, rename, library update. The files are MP3, FLAC, Ogg Vorbis, Opus and M4A in equal
parts, generated once per container and copied (``--source DIR`` takes real files from DIR instead,
cycled to reach ``--files``).

Reference, in the same run on a copy of the same files: a bare mutagen loop writing the same tags
in place (no copy, no checks, no fsync), i.e. the least any tagger has to do; the ratio is the cost
of the safety. Then the command is run again on the tagged files (nothing to write: every file
already current) and the folder is re-scanned (nothing must be analysed).

    python benchmarks/tags.py                       # 1,000 generated files
    python benchmarks/tags.py --source ../shared/data/4q/MER_audio_taffc_dataset --json docs/benchmarks/tags.json
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import cpu_seconds, save_report

CONTAINERS = (".mp3", ".flac", ".ogg", ".opus", ".m4a")


def stand_in_analyzer(paths):
    """One-segment analyses whose mood is drawn from the file name (no audio decoding)."""
    from moodscope.analysis.analyzer import Analysis, va_from_probabilities

    for p in paths:
        rng = np.random.default_rng(abs(hash(Path(p).name)) % 2**32)
        probs = rng.dirichlet(np.ones(4), size=1)
        yield str(p), Analysis(str(p), 30.0, "stand-in", np.zeros(1), probs, va_from_probabilities(probs)), None


def make_base_files(folder: Path, seconds: float) -> list[Path]:
    """One file per container: a stereo tone with noise (so that the codecs have work to do)."""
    import av
    import soundfile as sf

    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for ext in CONTAINERS:
        sr = 48_000 if ext == ".opus" else 44_100
        t = np.arange(int(seconds * sr)) / sr
        y = 0.3 * np.sin(2 * np.pi * 330 * t) + 0.05 * np.random.default_rng(0).standard_normal(len(t))
        data = np.stack([y, 0.8 * y], axis=1).astype(np.float32)
        path = folder / f"base{ext}"
        if ext == ".m4a":
            with av.open(str(path), "w", format="mp4") as container:
                stream = container.add_stream("aac", rate=sr, layout="stereo")
                for start in range(0, len(data), 1024):
                    frame = av.AudioFrame.from_ndarray(
                        np.ascontiguousarray(data[start : start + 1024].T), format="fltp", layout="stereo"
                    )
                    frame.sample_rate, frame.pts = sr, start
                    container.mux(stream.encode(frame))
                container.mux(stream.encode(None))
        else:
            fmt = {".mp3": ("MP3", "MPEG_LAYER_III"), ".ogg": ("OGG", "VORBIS"), ".opus": ("OGG", "OPUS")}
            sf.write(path, data, sr, *fmt.get(ext, (None, None))[1:], format=fmt.get(ext, (None,))[0])
        out.append(path)
    return out


def fill(music: Path, sources: list[Path], n: int) -> list[Path]:
    files = []
    for i in range(n):
        source = sources[i % len(sources)]
        folder = music / f"artist {i // 100:02d}" / f"album {i // 10 % 10}"
        folder.mkdir(parents=True, exist_ok=True)
        files.append(Path(shutil.copyfile(source, folder / f"track {i:04d}{source.suffix}")))
    return files


def reference_loop(files: list[Path], values: dict[str, dict[str, str]]) -> float:
    """The same tags written in place with mutagen: no copy, no checks, no fsync."""
    from moodscope.library.tags import open_tagged, save_tags, set_mood_tags

    start = time.perf_counter()
    for path in files:
        audio = open_tagged(path)
        set_mood_tags(audio, values[path.name])
        save_tags(audio)
    return time.perf_counter() - start


def run(cmd: list[str]) -> tuple[float, float, str]:
    """Run a command; (wall seconds, CPU seconds of the command, its standard output)."""
    cpu, start = cpu_seconds(), time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr}")
    return wall, cpu_seconds() - cpu, proc.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000, help="number of files (default: %(default)s)")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the generated files (default: 30)")
    parser.add_argument("--source", type=Path, help="take real audio files from this folder (recursively)")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)

    from moodscope.library import MoodLibrary
    from moodscope.library.tags import mood_tag_values

    with tempfile.TemporaryDirectory(prefix="moodscope-bench-tags-") as tmp:
        work = Path(tmp)
        if args.source:
            sources = sorted(p for ext in CONTAINERS for p in args.source.rglob(f"*{ext}"))
            if not sources:
                raise SystemExit(f"{args.source}: no {', '.join(CONTAINERS)} files")
        else:
            sources = make_base_files(work / "base", args.seconds)
        files = fill(work / "music", sources, args.files)
        reference_files = fill(work / "reference", sources, args.files)
        megabytes = sum(p.stat().st_size for p in files) / 1e6
        db = work / "lib.db"
        with MoodLibrary(db) as lib:
            lib.scan(work / "music", analyzer=stand_in_analyzer)
            values = {Path(t.path).name: mood_tag_values(t) for t in lib.tracks()}
        print(f"{args.files} files, {megabytes:.0f} MB ({', '.join(sorted({p.suffix for p in sources}))})")

        cpu = cpu_seconds()
        reference = reference_loop(reference_files, values)
        reference_cpu = cpu_seconds() - cpu
        cmd = [sys.executable, "-m", "moodscope", "library", "tag", str(work / "music"), "--db", str(db)]
        wall, cpu, out = run(cmd)
        summary = out.strip().splitlines()[-1]
        if f"changed {args.files}," not in summary:
            raise SystemExit(f"not every file was tagged: {summary}")
        again, _, _ = run(cmd)
        rescan, _, out_scan = run([*cmd[:4], "scan", *cmd[5:]])
        if " 0 analysed" not in out_scan:
            raise SystemExit(f"the scan after tagging analysed files again: {out_scan}")
    load = os.getloadavg()[0]

    print(f"moodscope library tag: {wall:.2f} s for {args.files} files ({1000 * wall / args.files:.1f} ms per file; "
          f"target <= 10 s per 1,000), {cpu:.2f} CPU-s; load average {load:.1f} on {os.cpu_count()} cores")  # fmt: skip
    print(f"  reference, bare mutagen in place: {reference:.2f} s, {reference_cpu:.2f} CPU-s "
          f"(moodscope / reference = {wall / reference:.2f})")  # fmt: skip
    print(f"  again, every file already current: {again:.2f} s; scan after tagging: {rescan:.2f} s, 0 analysed")
    if args.json:
        report = {
            "files": args.files,
            "megabytes": round(megabytes, 1),
            "containers": sorted({p.suffix for p in sources}),
            "source": str(args.source) if args.source else f"generated {args.seconds:g}-s tones",
            "tag_command_seconds": round(wall, 3),
            "tag_command_cpu_seconds": round(cpu, 3),
            "reference_mutagen_in_place_seconds": round(reference, 3),
            "reference_cpu_seconds": round(reference_cpu, 3),
            "ratio_to_reference": round(wall / reference, 3),
            "again_all_current_seconds": round(again, 3),
            "rescan_seconds": round(rescan, 3),
            "load_average": round(load, 1),
        }
        save_report(args.json, report, argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
