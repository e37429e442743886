"""``moodscope features``: extract the Table 2 features of a dataset (or a folder) into the cache."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from moodscope.cli.console import progress_bar
from moodscope.cli.options import add_engine_options, engine_kwargs


def register(sub: argparse._SubParsersAction) -> None:
    from moodscope.paths import default_cache_dir

    p = sub.add_parser(
        "features",
        help="extract the paper's feature vector of every track into the on-disk cache",
        description="Decode every track, cut it into 5-s segments and store the Table 2 features "
        "(MFCC + deltas, five frame series, ten static features) as one NPZ per track under "
        "OUT/<dataset>-<params hash>/. Re-running processes only new or changed files; an interrupted run "
        "resumes; a file that fails is reported and the others go on.",
    )
    p.add_argument("dataset", help="dataset name (deam, mturk, pmemo, 4q, folder) or a folder of audio files")
    p.add_argument("--root", type=Path, help="dataset root folder (the official layout); not needed for a folder")
    p.add_argument("--csv", type=Path, help="labels CSV for the 'folder' dataset")
    p.add_argument("--out", type=Path, default=default_cache_dir(), help="cache folder (default: %(default)s)")
    add_engine_options(p, what="extraction")
    p.set_defaults(func=run)


def dataset_items(name: str, root: Path | None, csv: Path | None = None) -> tuple[str, list[tuple[str, Path]]]:
    """(store name, [(track_id, audio_path)]) for a dataset name or a plain folder of audio."""
    from moodscope.audio import find_audio_files
    from moodscope.errors import MoodscopeError

    folder = Path(name)
    if root is None and folder.is_dir():
        files = find_audio_files(folder)
        return folder.resolve().name, [(str(f.relative_to(folder)), f) for f in files]
    if root is None:
        raise MoodscopeError(f"{name!r} is not a folder; give a dataset name with --root PATH")
    from moodscope.datasets import load_dataset

    kwargs = {"csv": csv} if csv else {}
    dataset = load_dataset(name, root, **kwargs)
    return dataset.name, dataset.audio_items()


def run(args: argparse.Namespace) -> int:
    from moodscope.engine.features import build_cache
    from moodscope.features.cache import store_dir

    name, items = dataset_items(args.dataset, args.root, args.csv)
    store = store_dir(args.out, name)
    with progress_bar(total=0, unit="file", desc=f"features {name}") as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        result = build_cache(items, store, progress=progress, **engine_kwargs(args))
    print(
        f"{name}: {len(result.extracted)} extracted ({result.audio_seconds / 60:.1f} min of audio), "
        f"{len(result.skipped)} already cached, {len(result.failed)} failed -> {result.store}"
    )
    for track_id, reason in sorted(result.failed.items()):
        print(f"  FAILED {track_id}: {reason}", file=sys.stderr)
    return 1 if result.failed else 0
