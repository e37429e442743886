"""``moodscope analyze`` and ``moodscope demo``: the mood of music files, segment by segment."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from moodscope.cli.console import note, progress_bar
from moodscope.cli.options import add_engine_options, add_model_option, engine_kwargs
from moodscope.constants import MAX_TRACKS_PER_PLOT

FORMATS = ("table", "json", "csv", "parquet", "dataset")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "analyze",
        help="mood of music files or folders, segment by segment",
        description="Analyse audio files (MP3, Ogg, Opus, FLAC, WAV, M4A/AAC...) or folders (recursively): "
        "for every 5-s segment the four quadrant probabilities and valence/arousal (0-1: the probabilities that "
        "listeners rate it positive and high), and per track "
        "the dominant mood. Folders are processed in parallel; a file that fails is reported at the end and "
        "the exit status is 1, the others are still analysed and written. With --out DIR/ (a trailing slash, or "
        "--format dataset) the results stream into a Parquet dataset, DIR/segments/ and DIR/tracks/, and a re-run "
        "skips the tracks already there (docs/scaling.md).",
    )
    p.add_argument(
        "paths", nargs="+", help="audio files or folders, or fsspec URLs (s3://bucket/prefix/, with s3fs installed)"
    )
    add_model_option(p)
    p.add_argument(
        "--format",
        choices=FORMATS,
        default=None,
        help="output format (default: from the suffix of --out (.json, .csv, .parquet), 'dataset' for --out DIR/, "
        "otherwise table)",
    )
    p.add_argument(
        "--out",
        help="write the output to this file (replaced atomically; '-' is standard output) instead of the terminal, "
        "or stream it into the Parquet dataset DIR/ (a trailing slash)",
    )
    p.add_argument(
        "--plot",
        type=Path,
        metavar="PATH.png",
        help=f"plot valence/arousal over time, one panel per track (the first {MAX_TRACKS_PER_PLOT} tracks only)",
    )
    p.add_argument("--timeline", action="store_true", help="with --format table, show every segment of every track")
    p.add_argument(
        "--rows",
        choices=("segments", "tracks"),
        default="segments",
        help="csv and parquet: one row per 5-s segment (default) or one per track with its summary "
        "(columns in docs/formats.md)",
    )
    add_engine_options(p)
    p.set_defaults(func=run_analyze)

    d = sub.add_parser(
        "demo",
        help="analyse the bundled demo clip and plot it",
        description="Analyse the bundled clip ('March Thee to Dis' by Max McCracken, CC BY-SA 3.0), print its "
        "timeline and write a plot.",
    )
    add_model_option(d)
    d.add_argument("--plot", type=Path, default=Path("moodscope-demo.png"), help="plot path (default: %(default)s)")
    d.set_defaults(func=run_demo)


SUFFIX_FORMATS = {".json": "json", ".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".txt": "table"}
"""What an --out suffix means when --format is not given; no suffix (or ``-``, stdout) means a table."""


def output_format(fmt: str | None, out: str | None) -> str:
    """The --format given, else ``dataset`` for an --out ending with a slash, else the one the suffix
    of --out names, else ``table``.

    An --out suffix that names no format moodscope writes (``out.xlsx``) is an error listing them.
    """
    from moodscope.errors import OutputError

    if fmt is not None:
        return fmt
    if out is not None and out.endswith(("/", os.sep)):
        return "dataset"
    suffix = Path(out).suffix.lower() if out is not None else ""
    if not suffix:
        return "table"
    if suffix not in SUFFIX_FORMATS:
        known = ", ".join(SUFFIX_FORMATS)
        raise OutputError(
            f"{out}: moodscope does not write {suffix} files; give --out with one of {known} (a table), "
            f"or choose with --format {{{','.join(FORMATS)}}}"
        )
    return SUFFIX_FORMATS[suffix]


def check_plot_path(path: Path) -> None:
    """A --plot path must be writable and name an image format matplotlib writes (PNG when no suffix)."""
    from matplotlib.backend_bases import FigureCanvasBase

    from moodscope.errors import OutputError
    from moodscope.fileio import STDOUT, check_writable

    suffix = path.suffix.lower().lstrip(".")
    formats = FigureCanvasBase.get_supported_filetypes()
    if str(path) != STDOUT and suffix and suffix not in formats:
        raise OutputError(f"{path}: cannot plot to .{suffix} files; give a name ending in {', '.join(sorted(formats))}")
    check_writable(path)


def format_table(analyses, *, timeline: bool) -> str:
    from moodscope.constants import QUADRANT_MOODS, QUADRANTS

    lines = []
    for a in analyses:
        s = a.summary
        reasons = ", ".join(sorted(set(a.ood_reasons) - {""}))
        mood = (
            f"uncertain ({s.ood_fraction:.0%} of segments unlike music: {reasons}; "
            f"best guess {s.quadrant} {QUADRANT_MOODS[s.quadrant]})"
            if s.uncertain
            else f"{s.quadrant} {s.mood}"
        )
        lines.append(
            f"{a.source}  [{a.duration:.0f} s, {len(a.starts)} segments, model {a.model} "
            f"sha256:{a.model_hash[:12] or '?'}, moodscope {a.moodscope_version}]\n"
            f"  mood: {mood}  confidence {s.confidence:.2f}  "
            f"valence {s.valence:.2f}  arousal {s.arousal:.2f}  "
            + "  ".join(f"{q} {s.probabilities[q]:.2f}" for q in QUADRANTS)
        )
        if timeline:
            lines.append(
                "    start    end  quad  mood            "
                + "  ".join(f"  {q}" for q in QUADRANTS)
                + "  valence arousal  out of distribution"
            )
            for row in a.to_dataframe().itertuples(index=False):
                probs = "  ".join(f"{getattr(row, f'p_{q}'):.2f}" for q in QUADRANTS)
                line = (
                    f"  {row.start:7.1f} {row.end:6.1f}  {row.quadrant}    {row.mood:<15} {probs}  "
                    f"{row.valence:7.2f} {row.arousal:7.2f}  {row.ood_reason}"
                )
                lines.append(line.rstrip())
    for meaning in dict.fromkeys(a.va_meaning for a in analyses):
        lines.append(f"({meaning})")
    return "\n".join(lines)


def write_output(analyses, fmt: str, out: Path | None, rows: str = "segments") -> None:
    """Write analyses as json (tracks with summaries and segments), csv or parquet (one row per segment,
    or per track with ``rows="tracks"``; docs/formats.md).

    ``out`` None (or ``-``) is standard output; files are written by :func:`moodscope.fileio.atomic_write`.
    """
    import json

    from moodscope.analysis.analyzer import analyses_frame, provenance_metadata
    from moodscope.errors import MoodscopeError
    from moodscope.fileio import STDOUT, write_parquet

    if fmt == "json":
        text = json.dumps([a.to_dict() for a in analyses], indent=1, allow_nan=False)
    else:
        frame = analyses_frame(analyses, rows)
        if fmt == "parquet":
            if out is None:
                raise MoodscopeError("--format parquet needs --out FILE.parquet (or --out - for standard output)")
            write_parquet(frame, out, metadata={"moodscope": provenance_metadata(analyses)})
            return
        text = frame.to_csv(index=False)
    write_text(text, out or Path(STDOUT))


def write_text(text: str, out: Path | None) -> None:
    """Print ``text``, or write it to ``out`` (``-``: standard output) with :func:`moodscope.fileio.atomic_write`."""
    from moodscope.fileio import atomic_write

    text = text if text.endswith("\n") else text + "\n"
    if out is None:
        sys.stdout.write(text)
    else:
        with atomic_write(out, "w", encoding="utf-8") as fh:
            fh.write(text)


def elapsed_line(analyses, n_files: int, seconds: float) -> str:
    """``analyzed 3 of 4 files (12.5 min of audio) in 9.8 s, 76x real time``."""
    audio = sum(a.duration for a in analyses)
    speed = f", {audio / seconds:.0f}x real time" if seconds > 0 and audio > 0 else ""
    return f"analyzed {len(analyses)} of {n_files} files ({audio / 60:.1f} min of audio) in {seconds:.1f} s{speed}"


def plot_limit_note(n_tracks: int) -> str:
    """What a plot of ``n_tracks`` leaves out, if anything."""
    if n_tracks <= MAX_TRACKS_PER_PLOT:
        return ""
    return f" (the first {MAX_TRACKS_PER_PLOT} of {n_tracks} tracks; plot fewer files to see the others)"


def run_analyze(args: argparse.Namespace) -> int:
    from moodscope.analysis.pretrained import load_model
    from moodscope.engine.analysis import analyze_files
    from moodscope.engine.sources import list_audio
    from moodscope.errors import MoodscopeError
    from moodscope.fileio import check_writable

    fmt = output_format(args.format, args.out)
    out = Path(args.out) if args.out is not None else None
    if fmt == "parquet" and out is None:
        raise MoodscopeError("--format parquet needs --out FILE.parquet (or --out - for standard output)")
    if fmt == "dataset" and (out is None or args.out == "-"):
        raise MoodscopeError("--format dataset needs --out DIR/, the folder of the Parquet dataset")
    if fmt == "dataset" and args.plot is not None:
        raise MoodscopeError("--plot does not go with a dataset output (--out DIR/); plot a few files on their own")
    if fmt in ("parquet", "dataset"):
        from moodscope.extras import require

        require("pyarrow.parquet", "parquet", f"--format {fmt}")  # before the analysis, not after
    # every output is checked before anything is analysed: a bad path costs a second, not the whole run
    if fmt == "dataset" and out is not None:
        from moodscope.engine.dataset import check_dataset_folder

        check_dataset_folder(out)
    elif out is not None:
        check_writable(out)
    if args.plot is not None:
        check_plot_path(args.plot)
    paths = list_audio(args.paths)
    if not paths:
        raise MoodscopeError(f"no audio files found in {', '.join(map(str, args.paths))}")
    load_model(args.model)  # a bad --model fails now, in one line, before any work
    if fmt == "dataset":
        assert out is not None  # checked above
        return run_dataset(args, paths, out)
    started = time.perf_counter()
    with progress_bar(total=len(paths), unit="file", desc="analyze", show=len(paths) > 1) as bar:
        result = analyze_files(
            paths, model=args.model, progress=lambda done, total: bar.update(done - bar.n), **engine_kwargs(args)
        )
    note(elapsed_line(result.analyses, len(paths), time.perf_counter() - started))
    if result.failed:
        print(f"{len(result.failed)} of {len(paths)} files failed:", file=sys.stderr)
        for path, reason in result.failed.items():
            print(f"  {reason if path in reason else f'{path}: {reason}'}", file=sys.stderr)
    if not result.analyses:
        named = [p for p in (out, args.plot) if p is not None and str(p) != "-"]
        if named:
            kept = " and ".join(f"{p} left as it was" if p.exists() else f"{p} not written" for p in named)
            print(f"moodscope: every file failed: {kept}", file=sys.stderr)
        return 1
    if fmt == "table":
        table = format_table(result.analyses, timeline=args.timeline or len(paths) == 1)
        write_text(table, out)
    else:
        write_output(result.analyses, fmt, out, args.rows)
    if args.plot:
        from moodscope.analysis.timeline import plot_timeline

        plot_timeline(result.analyses, args.plot)
        if str(args.plot) != "-":
            note(f"plot written to {args.plot}" + plot_limit_note(len(result.analyses)))
    return 1 if result.failed else 0


def run_dataset(args: argparse.Namespace, paths: list[str], out: Path) -> int:
    """``analyze ... --out DIR/``: stream into the Parquet dataset, skipping tracks already there."""
    from moodscope.engine.dataset import analyze_to_dataset

    with progress_bar(total=0, unit="file", desc="analyze") as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        result = analyze_to_dataset(paths, out, model=args.model, progress=progress, **engine_kwargs(args))
    done = f"{len(result.analysed)} analysed, {len(result.failed)} failed, {len(result.skipped)} already in the dataset"
    note(f"{out}: {done}")
    for path, reason in result.failed.items():
        print(f"  {reason if path in reason else f'{path}: {reason}'}", file=sys.stderr)
    return 1 if result.failed else 0


def run_demo(args: argparse.Namespace) -> int:
    from moodscope.analysis.analyzer import analyze
    from moodscope.analysis.pretrained import load_model
    from moodscope.analysis.timeline import plot_timeline
    from moodscope.paths import DEMO_CLIP

    check_plot_path(args.plot)
    analysis = analyze(DEMO_CLIP, model=load_model(args.model))
    print(format_table([analysis], timeline=True))
    print("\n'March Thee to Dis' by Max McCracken (Endgame: Singularity), CC BY-SA 3.0")
    plot_timeline([analysis], args.plot)
    print(f"plot written to {args.plot}")
    return 0
