"""``moodscope train`` / ``evaluate`` / ``reproduce``: the paper's models on a labelled dataset."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def _common(p: argparse.ArgumentParser) -> None:
    from moodscope.features.cache import DEFAULT_CACHE_DIR

    p.add_argument("--dataset", required=True, help="dataset name (4q, deam, mturk, pmemo, ...)")
    p.add_argument("--root", type=Path, required=True, help="dataset root folder (the official layout)")
    p.add_argument(
        "--cache",
        type=Path,
        default=DEFAULT_CACHE_DIR,
        help="feature cache folder; missing features are extracted first (default: %(default)s)",
    )
    p.add_argument("--workers", type=int, default=None, help="processes for feature extraction (default: all cores)")
    p.add_argument(
        "--threads", type=int, default=2, help="torch CPU threads (%(default)s; 1 is faster on a busy machine)"
    )


def _training(p: argparse.ArgumentParser) -> None:
    from moodscope.training.config import TrainConfig

    d = TrainConfig()
    p.add_argument("--folds", type=int, default=1, help="k-fold cross-validation; 1 = one 80/10/10 split (default)")
    p.add_argument("--seed", type=int, default=d.seed, help="seed of splits, initialisation and batches (%(default)s)")
    p.add_argument("--epochs", type=int, default=d.max_epochs, help="maximum epochs (%(default)s)")
    p.add_argument("--patience", type=int, default=d.patience, help="early-stopping patience in epochs (%(default)s)")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="mini-batch size (%(default)s)")
    p.add_argument("--lr", type=float, default=d.learning_rate, help="Adam learning rate (%(default)s, the paper's)")
    p.add_argument(
        "--balance",
        choices=("oversample", "class-weights", "none"),
        default=d.balance,
        help="class balancing of the training part under the song protocol (%(default)s)",
    )
    p.add_argument(
        "--config",
        type=json.loads,
        default=None,
        metavar="JSON",
        help="model config overrides, e.g. '{\"lstm_units\": 32}' (reproduce: keyed by model name)",
    )


def register(sub: argparse._SubParsersAction) -> None:
    from moodscope.constants import MODEL_NAMES
    from moodscope.training.protocols import PROTOCOLS

    p = sub.add_parser(
        "train",
        help="train one of the paper's models on a dataset",
        description="Train MODEL on DATASET under a protocol ('song': split by song/artist, the "
        "default; 'paper': the paper's oversample-then-split segment protocol). Writes best.pt per "
        "fold, metrics.json, report.md and PNG plots to --out. Re-running resumes.",
    )
    p.add_argument("--model", required=True, choices=list(MODEL_NAMES))
    p.add_argument("--protocol", choices=PROTOCOLS, default="song", help="(default: %(default)s)")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: runs/<dataset>-<model>-<protocol>)")
    _common(p)
    _training(p)
    p.set_defaults(func=run_train)

    p = sub.add_parser(
        "evaluate",
        help="evaluate a checkpoint on a dataset",
        description="Segment- and song-level metrics of CHECKPOINT on DATASET. When the checkpoint "
        "was trained on the same dataset only its test songs are scored (use --all for all).",
    )
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--out", type=Path, default=None, help="folder for metrics.json, report.md and plots")
    p.add_argument("--all", action="store_true", help="score every track, even ones the model was trained on")
    _common(p)
    p.set_defaults(func=run_evaluate)

    p = sub.add_parser(
        "reproduce",
        help="reproduce the paper's Table 3: all models under both protocols",
        description="Train cnn, cnn-lstm and hybrid under the paper and song protocols and write "
        "report.md shaped like the paper's Table 3, beside the paper's figures (renumbered to "
        "Russell's quadrants). Re-running resumes finished and interrupted runs.",
    )
    p.add_argument("--out", type=Path, default=None, help="output folder (default: runs/reproduce-<dataset>)")
    p.add_argument("--models", nargs="+", choices=list(MODEL_NAMES), default=list(MODEL_NAMES))
    p.add_argument("--protocols", nargs="+", choices=PROTOCOLS, default=["paper", "song"])
    _common(p)
    _training(p)
    p.set_defaults(func=run_reproduce)


def _prepare(args: argparse.Namespace):
    """Load the dataset, extract any missing features, and return (dataset, store)."""
    from moodscope.datasets import load_dataset
    from moodscope.engine.features import build_cache
    from moodscope.features.cache import store_dir

    dataset = load_dataset(args.dataset, args.root)
    store = store_dir(args.cache, dataset.name)
    items = [(t.track_id, t.audio_path) for t in dataset.with_audio()]
    result = build_cache(items, store, workers=args.workers)
    if result.extracted:
        print(f"{dataset.name}: extracted features of {len(result.extracted)} tracks -> {store}", file=sys.stderr)
    for track_id, reason in sorted(result.failed.items()):
        print(f"  skipped {track_id}: {reason}", file=sys.stderr)
    return dataset, store


def _train_config(args: argparse.Namespace):
    from moodscope.training.config import TrainConfig

    return TrainConfig(
        learning_rate=args.lr,
        batch_size=args.batch_size,
        max_epochs=args.epochs,
        patience=args.patience,
        seed=args.seed,
        threads=args.threads,
        balance=args.balance,
    )


class _ProgressBar:
    """A tqdm bar per epoch with the running loss and accuracy, and a line per finished epoch."""

    def __init__(self, label: str = ""):
        self.label, self.bar = label, None

    def __call__(self, event: str, info: dict) -> None:
        from tqdm import tqdm

        if event == "run":
            self.label = f"{info['model']}/{info['protocol']}"
            print(f"== {self.label}: {info['segments']} segments", file=sys.stderr)
        elif event == "fold" and info["folds"] > 1:
            print(f"-- fold {info['fold'] + 1}/{info['folds']}", file=sys.stderr)
        elif event == "epoch":
            self.bar = tqdm(
                total=info["batches"],
                desc=f"{self.label} epoch {info['epoch'] + 1}",
                unit="batch",
                leave=False,
                disable=None,
            )
        elif event == "batch" and self.bar is not None:
            self.bar.set_postfix(loss=f"{info['loss']:.3f}", acc=f"{info['acc']:.3f}", refresh=False)
            self.bar.update()
        elif event == "epoch-end":
            if self.bar is not None:
                self.bar.close()
            print(
                f"{self.label} epoch {info['epoch'] + 1}: loss {info['train_loss']:.3f} acc {info['train_acc']:.3f}"
                f" | val loss {info['val_loss']:.3f} acc {info['val_acc']:.3f} ({info['seconds']:.1f} s)",
                file=sys.stderr,
            )


def _summary_line(result: dict) -> str:
    s = result["summary"]
    parts = []
    for level in ("segment", "song"):
        acc, f1 = s[level]["accuracy"], s[level]["macro_f1"]
        pm = (
            (lambda m: f"{100 * m['mean']:.1f} ± {100 * m['std']:.1f}")
            if len(acc["values"]) > 1
            else (lambda m: f"{100 * m['mean']:.1f}")
        )
        parts.append(f"{level} accuracy {pm(acc)} %, macro-F1 {pm(f1)} %")
    return f"{result['model']} / {result['protocol']}: " + "; ".join(parts)


def run_train(args: argparse.Namespace) -> int:
    from moodscope.training.loop import run_experiment
    from moodscope.training.report import write_run_report
    from moodscope.training.reproduce import protocol_table, song_labels

    dataset, store = _prepare(args)
    out = args.out or Path("runs") / f"{dataset.name}-{args.model}-{args.protocol}"
    table = protocol_table(dataset, store, args.protocol)
    progress = _ProgressBar(f"{args.model}/{args.protocol}")
    print(f"{dataset.name}: {len(table)} segments {table.quadrant_counts()}", file=sys.stderr)
    started = time.perf_counter()
    result = run_experiment(
        table,
        args.model,
        args.protocol,
        folds=args.folds,
        model_overrides=args.config,
        train_config=_train_config(args),
        out_dir=out,
        song_labels=song_labels(dataset),
        dataset_name=dataset.name,
        progress=progress,
    )
    result["wall_seconds"] = time.perf_counter() - started
    report = write_run_report(result, out)
    print(_summary_line(result))
    print(f"checkpoints: {out}/fold*/best.pt; report: {report} ({result['wall_seconds']:.0f} s)")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from moodscope.models.checkpoint import load_checkpoint, predict_proba
    from moodscope.training.evaluate import evaluate_probs
    from moodscope.training.report import metrics_markdown, plot_confusion, write_json
    from moodscope.training.reproduce import protocol_table, song_labels

    torch.set_num_threads(args.threads)
    model, meta = load_checkpoint(args.checkpoint)
    dataset, store = _prepare(args)
    run = meta.get("run", {})
    table = protocol_table(dataset, store, run.get("protocol", "song"))
    rows = np.arange(len(table))
    scope = "all tracks"
    test_songs = meta.get("split", {}).get("test_songs")
    if run.get("dataset") == dataset.name and test_songs and not args.all:
        rows = np.flatnonzero(np.isin(table.track_ids, test_songs))
        scope = f"the checkpoint's {len(test_songs)} test songs"
        if run.get("protocol") == "paper":
            scope += " (paper protocol: other segments of these songs were in its training set)"
    if not len(rows):
        from moodscope.errors import DatasetError

        raise DatasetError(f"no segments of {dataset.name} to evaluate; check --root and --cache")
    sub = table.select(rows)
    metrics = evaluate_probs(
        predict_proba(model, meta, sub.features), sub.quadrant, sub.track_ids, song_labels=song_labels(dataset)
    )
    for level in ("segment", "song"):
        m = metrics[level]
        print(f"{level}: accuracy {100 * m['accuracy']:.1f} %, macro-F1 {100 * m['macro_f1']:.1f} % (n = {m['n']})")
    print(f"({meta['arch']} on {dataset.name}, {scope})")
    if args.out:
        write_json({"checkpoint": str(args.checkpoint), "scope": scope, "metrics": metrics}, args.out / "metrics.json")
        text = [f"# {meta['arch']} on {dataset.name} ({scope})", ""]
        for level in ("segment", "song"):
            plot_confusion(metrics[level]["confusion"], args.out / f"confusion-{level}.png", f"{meta['arch']} {level}")
            text.append(metrics_markdown(metrics[level], f"{level} level"))
        (args.out / "report.md").write_text("\n".join(text))
        print(f"report: {args.out / 'report.md'}")
    return 0


def run_reproduce(args: argparse.Namespace) -> int:
    from moodscope.training.reproduce import reproduce

    dataset, store = _prepare(args)
    out = args.out or Path("runs") / f"reproduce-{dataset.name}"
    cmd = "moodscope " + " ".join(sys.argv[1:]) if sys.argv and "moodscope" in sys.argv[0] else "moodscope reproduce"
    cfg = _train_config(args)
    header = (
        f"Command: `{cmd}`. Seed {cfg.seed}; Adam lr {cfg.learning_rate}, batch {cfg.batch_size}, "
        f"≤ {cfg.max_epochs} epochs, patience {cfg.patience}; {args.folds} fold(s)."
    )
    started = time.perf_counter()
    results, report = reproduce(
        dataset,
        store,
        out,
        models=tuple(args.models),
        protocols=tuple(args.protocols),
        folds=args.folds,
        train_config=cfg,
        model_overrides=args.config,
        header=header,
        progress=_ProgressBar(),
    )
    for r in results:
        print(_summary_line(r) + f" [{r['wall_seconds']:.0f} s]")
    print(f"report: {report} (total {time.perf_counter() - started:.0f} s)")
    return 0
