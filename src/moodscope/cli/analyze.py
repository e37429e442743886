"""``moodscope analyze`` and ``moodscope demo``: the mood of music files, segment by segment."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

DEMO_CLIP = Path(__file__).parents[1] / "data" / "demo.ogg"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "analyze",
        help="mood of music files or folders, segment by segment",
        description="Analyse audio files (MP3, Ogg, Opus, FLAC, WAV, M4A/AAC...) or folders (recursively): "
        "for every 5-s segment the four quadrant probabilities and a valence/arousal estimate, and per track "
        "the dominant mood. Folders are processed in parallel; a file that fails is reported at the end and "
        "the exit status is 1, the others are still analysed and written.",
    )
    p.add_argument("paths", nargs="+", type=Path, help="audio files or folders")
    _add_model_options(p)
    p.add_argument("--format", choices=("table", "json", "csv", "parquet"), default="table", help="output format")
    p.add_argument("--out", type=Path, help="write the output to this file instead of the terminal")
    p.add_argument("--plot", type=Path, metavar="PATH.png", help="plot valence/arousal over time")
    p.add_argument("--timeline", action="store_true", help="with --format table, show every segment of every track")
    p.add_argument("--workers", type=int, default=None, help="parallel processes for folders (default: all cores)")
    p.set_defaults(func=run_analyze)

    d = sub.add_parser(
        "demo",
        help="analyse the bundled demo clip and plot it",
        description="Analyse the bundled clip ('March Thee to Dis' by Max McCracken, CC BY-SA 3.0), print its "
        "timeline and write a plot.",
    )
    _add_model_options(d)
    d.add_argument("--plot", type=Path, default=Path("moodscope-demo.png"), help="plot path (default: %(default)s)")
    d.set_defaults(func=run_demo)


def _add_model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model",
        default=None,
        help="'accurate' (default: musicnn embeddings + the paper's features), 'fast' (the paper's hybrid model) "
        "or the path of a checkpoint trained with `moodscope train`",
    )


def format_table(analyses, *, timeline: bool) -> str:
    from moodscope.constants import QUADRANTS

    lines = []
    for a in analyses:
        s = a.summary
        lines.append(
            f"{a.source}  [{a.duration:.0f} s, {len(a.starts)} segments, model {a.model}]\n"
            f"  mood: {s.quadrant} {s.mood}  confidence {s.confidence:.2f}  "
            f"valence {s.valence:+.2f}  arousal {s.arousal:+.2f}  "
            + "  ".join(f"{q} {s.probabilities[q]:.2f}" for q in QUADRANTS)
        )
        if timeline:
            lines.append(
                "    start    end  quad  mood            "
                + "  ".join(f"  {q}" for q in QUADRANTS)
                + "  valence arousal"
            )
            for row in a.to_dataframe().itertuples(index=False):
                probs = "  ".join(f"{getattr(row, f'p_{q}'):.2f}" for q in QUADRANTS)
                lines.append(
                    f"  {row.start:7.1f} {row.end:6.1f}  {row.quadrant}    {row.mood:<15} {probs}  "
                    f"{row.valence:+7.2f} {row.arousal:+7.2f}"
                )
    return "\n".join(lines)


def write_output(analyses, fmt: str, out: Path | None) -> None:
    """Write analyses as json (tracks with summaries and segments), csv or parquet (one row per segment)."""
    import json

    import pandas as pd

    from moodscope.errors import MoodscopeError
    from moodscope.fileio import atomic_write

    if fmt == "json":
        text = json.dumps([a.to_dict() for a in analyses], indent=1)
    else:
        frame = pd.concat([a.to_dataframe() for a in analyses], ignore_index=True) if analyses else pd.DataFrame()
        if fmt == "parquet":
            if out is None:
                raise MoodscopeError("--format parquet needs --out FILE.parquet")
            with atomic_write(out, "wb") as fh:
                frame.to_parquet(fh, index=False)
            return
        text = frame.to_csv(index=False)
    if out is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        with atomic_write(out, "w", encoding="utf-8") as fh:
            fh.write(text)


def run_analyze(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from moodscope.analysis import analyze_files
    from moodscope.audio import find_audio_files
    from moodscope.errors import MoodscopeError
    from moodscope.pretrained import load_model

    paths = find_audio_files(args.paths)
    if not paths:
        raise MoodscopeError(f"no audio files found in {', '.join(map(str, args.paths))}")
    load_model(args.model)  # fail early, once, on a bad --model
    workers = args.workers or min(os.cpu_count() or 1, len(paths))
    with tqdm(total=len(paths), unit="file", desc="analyze", disable=None if len(paths) > 1 else True) as bar:
        result = analyze_files(
            paths, model=args.model, workers=workers, progress=lambda done, total: bar.update(done - bar.n)
        )
    if args.format == "table" and args.out is None:
        if result.analyses:
            print(format_table(result.analyses, timeline=args.timeline or len(paths) == 1))
    else:
        write_output(result.analyses, "csv" if args.format == "table" else args.format, args.out)
    if args.plot and result.analyses:
        from moodscope.timeline import plot_timeline

        plot_timeline(result.analyses, args.plot)
        print(f"plot written to {args.plot}", file=sys.stderr)
    if result.failed:
        print(f"{len(result.failed)} of {len(paths)} files failed:", file=sys.stderr)
        for path, reason in result.failed.items():
            print(f"  {reason if path in reason else f'{path}: {reason}'}", file=sys.stderr)
        return 1
    return 0


def run_demo(args: argparse.Namespace) -> int:
    from moodscope.analysis import analyze
    from moodscope.timeline import plot_timeline

    analysis = analyze(DEMO_CLIP, model=args.model)
    print(format_table([analysis], timeline=True))
    print("\n'March Thee to Dis' by Max McCracken (Endgame: Singularity), CC BY-SA 3.0")
    plot_timeline([analysis], args.plot)
    print(f"plot written to {args.plot}")
    return 0
