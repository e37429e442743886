"""``moodscope embed``: per-segment embeddings of audio files, to Parquet, for researchers."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from moodscope.cli.console import note, progress_bar


def register(sub: argparse._SubParsersAction) -> None:
    from moodscope.cli.options import add_engine_options

    p = sub.add_parser(
        "embed",
        help="per-segment embeddings (the accurate model's musicnn descriptors, Table 2 features) to Parquet",
        description="Write one row per whole 5-s segment of every audio file: track, segment, start, end, and one "
        "float32 vector column per descriptor block (default: the blocks the accurate model reads), plus "
        "provenance columns. Schema: docs/models.md (Embeddings). A file that fails is reported and the others "
        "are written (exit status 1).",
    )
    p.add_argument("paths", nargs="+", type=Path, help="audio files or folders")
    p.add_argument("--out", type=Path, required=True, help="the Parquet file to write (X.parquet)")
    p.add_argument(
        "--blocks",
        nargs="+",
        default=None,
        metavar="BLOCK",
        help="descriptor blocks: msd_/mtt_ + taggram|penultimate|mean_pool|max_pool (musicnn), paper (the Table 2 "
        "statics and MFCC mean/std), or all (default: the accurate model's blocks)",
    )
    add_engine_options(p, what="embedding")
    p.set_defaults(func=run_embed)


def run_embed(args: argparse.Namespace) -> int:
    from moodscope.analysis.accurate import BLOCKS
    from moodscope.analysis.embeddings import embed_files
    from moodscope.audio import find_audio_files
    from moodscope.engine.analysis import as_items
    from moodscope.engine.jobs import EmbedJob
    from moodscope.engine.registry import engine_scope
    from moodscope.errors import MoodscopeError

    paths = find_audio_files(args.paths)
    if not paths:
        raise MoodscopeError(f"no audio files found in {', '.join(map(str, args.paths))}")
    blocks = BLOCKS if args.blocks == ["all"] else args.blocks

    def run(files, chosen):
        with engine_scope(args.engine, workers=args.workers, address=args.address) as engine:
            for r in engine.map(EmbedJob(chosen), as_items(files)):
                yield r.key, r.value, r.error

    with progress_bar(total=len(paths), unit="file", desc="embed", show=len(paths) > 1) as bar:
        result = embed_files(
            paths, args.out, blocks=blocks, run=run, progress=lambda done, total: bar.update(done - bar.n)
        )
    if result.out is not None:
        note(f"{result.segments} segments of {result.tracks} files written to {result.out}")
    if result.failed:
        print(f"{len(result.failed)} of {len(paths)} files failed:", file=sys.stderr)
        for path, reason in result.failed.items():
            print(f"  {reason if path in reason else f'{path}: {reason}'}", file=sys.stderr)
        if result.out is None:
            print(f"nothing written; {args.out} left as it was", file=sys.stderr)
        return 1
    return 0
