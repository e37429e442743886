"""Benchmark: train one model on the 4Q clips to early stopping and print the wall-clock time.

    python benchmarks/train.py [--model hybrid] [--protocol song] [--root ../shared/data/4q/MER_audio_taffc_dataset]

Features are taken from (or extracted into) the cache first; only training is timed. The target
is `hybrid` to early stopping in at most 10 minutes on 2 CPU cores. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "4q" / "MER_audio_taffc_dataset"


def main() -> None:
    from moodscope.datasets import load_dataset
    from moodscope.engine.features import build_cache
    from moodscope.features.cache import DEFAULT_CACHE_DIR, store_dir
    from moodscope.training.loop import TrainConfig, run_experiment
    from moodscope.training.reproduce import protocol_table, song_labels

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="hybrid")
    p.add_argument("--protocol", default="song")
    p.add_argument("--root", type=Path, default=ROOT)
    p.add_argument("--cache", type=Path, default=DEFAULT_CACHE_DIR)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--epochs", type=int, default=TrainConfig().max_epochs, help="maximum epochs (%(default)s)")
    p.add_argument("--config", default="{}", help="model config overrides as JSON")
    args = p.parse_args()
    import json

    dataset = load_dataset("4q", args.root)
    store = store_dir(args.cache, dataset.name)
    build_cache(dataset.audio_items(), store, workers=2)
    table = protocol_table(dataset, store, args.protocol)
    config = TrainConfig(threads=args.threads, max_epochs=args.epochs)
    started = time.perf_counter()
    result = run_experiment(
        table,
        args.model,
        args.protocol,
        train_config=config,
        song_labels=song_labels(dataset),
        model_overrides=json.loads(args.config),
    )
    wall = time.perf_counter() - started
    fold = result["folds"][0]
    m = fold["metrics"]
    print(
        f"{args.model} / {args.protocol} on 4Q ({len(table)} segments, {fold['split_sizes']}): "
        f"{fold['epochs']} epochs (best {fold['best_epoch'] + 1}, cap {args.epochs}), "
        f"training {fold['train_seconds']:.1f} s, "
        f"wall {wall:.1f} s on {args.threads} threads ({os.cpu_count()} cores); test accuracy segment "
        f"{100 * m['segment']['accuracy']:.1f} %, song {100 * m['song']['accuracy']:.1f} %"
    )


if __name__ == "__main__":
    main()
