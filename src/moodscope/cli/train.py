"""``moodscope train`` / ``evaluate`` / ``reproduce``: models trained, measured and compared on labelled datasets."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from moodscope.cli.console import note, progress_bar


def _common(p: argparse.ArgumentParser, dataset_required: bool = True) -> None:
    from moodscope.paths import default_cache_dir
    from moodscope.training.config import TrainConfig

    p.add_argument(
        "--dataset",
        required=dataset_required,
        help="dataset name (4q, deam, mturk, pmemo, ...)" + ("" if dataset_required else "; --shipped: 4q"),
    )
    p.add_argument("--root", type=Path, required=True, help="dataset root folder (the official layout)")
    p.add_argument(
        "--cache",
        type=Path,
        default=default_cache_dir(),
        help="feature cache folder; missing features are extracted first (default: %(default)s)",
    )
    p.add_argument("--workers", type=int, default=None, help="processes for feature extraction (default: all cores)")
    p.add_argument(
        "--threads",
        type=int,
        default=TrainConfig.threads,
        help="torch CPU threads (%(default)s; 1 is faster on a busy machine)",
    )


def _training(p: argparse.ArgumentParser) -> None:
    from moodscope.training.config import BALANCES, TrainConfig

    d = TrainConfig()
    p.add_argument(
        "--folds",
        type=_positive_int,
        default=None,
        help="k-fold cross-validation; 1 = one 80/10/10 split (default); --shipped: outer and inner folds (5)",
    )
    p.add_argument("--seed", type=int, default=d.seed, help="seed of splits, initialisation and batches (%(default)s)")
    p.add_argument("--epochs", type=int, default=d.max_epochs, help="maximum epochs (%(default)s)")
    p.add_argument("--patience", type=int, default=d.patience, help="early-stopping patience in epochs (%(default)s)")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="mini-batch size (%(default)s)")
    p.add_argument("--lr", type=float, default=d.learning_rate, help="Adam learning rate (%(default)s, the paper's)")
    p.add_argument(
        "--balance",
        choices=BALANCES,
        default=None,
        help=f"class balancing of the training part under the song protocol (default: {d.balance}; none for --task va)",
    )
    p.add_argument(
        "--config",
        type=json.loads,
        default=None,
        metavar="JSON",
        help="model config overrides, e.g. '{\"lstm_units\": 32}' (reproduce: keyed by model name)",
    )


def register(sub: argparse._SubParsersAction) -> None:
    from moodscope.cli.options import add_engine_options
    from moodscope.constants import MODEL_NAMES
    from moodscope.training.config import PROTOCOLS, TASKS

    p = sub.add_parser(
        "train",
        help="train one of the paper's models on a dataset, or retrain a shipped model",
        description="Train MODEL on DATASET under a protocol ('song': split by song/artist, the "
        "default; 'paper': the paper's oversample-then-split segment protocol). Writes best.pt per "
        "fold, metrics.json, report.md and PNG plots to --out. Re-running resumes. "
        "--shipped accurate|fast retrains a shipped model on the 4Q clips at --root instead: its "
        "cross-validated figures (nested for accurate), then the model refitted on all clips, written "
        "to --out (default: the package's own weights file, replacing the shipped model).",
    )
    p.add_argument("--model", choices=list(MODEL_NAMES), help="the architecture to train (required without --shipped)")
    p.add_argument(
        "--shipped",
        choices=("accurate", "fast"),
        default=None,
        help="retrain this shipped model on 4Q (accurate: nested CV, then all clips; fast: the paper's hybrid, "
        "artist-grouped CV with fixed settings, then all clips)",
    )
    p.add_argument(
        "--nested-seeds",
        type=_positive_int,
        default=3,
        help="--shipped accurate: outer seeds of the nested cross-validation (%(default)s)",
    )
    p.add_argument(
        "--task",
        choices=TASKS,
        default=TASKS[0],
        help="quadrants: 4-way classification (default); va: valence/arousal regression (the same architecture "
        "with a 2-output head, mean squared error; reports R², Pearson r and CCC; deam, mturk, pmemo or folder)",
    )
    p.add_argument(
        "--targets",
        choices=("static", "dynamic"),
        default="static",
        help="--task va labels: static = the song's static rating on every segment (default); dynamic = the "
        "mean of the 2-Hz annotations inside each 5-s segment (segments before 15 s are not annotated)",
    )
    p.add_argument("--protocol", choices=PROTOCOLS, default="song", help="(default: %(default)s)")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output folder (default: runs/<dataset>-<model>-<protocol|va-TARGETS>); --shipped: the checkpoint "
        "file (default: the package's weights/<name>.pt); fast's CV runs go to <checkpoint name>-cv/ beside it",
    )
    _common(p, dataset_required=False)
    _training(p)
    p.set_defaults(func=run_train)

    p = sub.add_parser(
        "evaluate",
        help="evaluate a model (accurate, fast or a checkpoint) on a labelled dataset",
        description="Analyse every track of DATASET with MODEL, exactly as `moodscope analyze` does, and "
        "compare with the labels: quadrants (song and segment level: accuracy, macro-F1, per-quadrant F1, "
        "confusion matrix) for every model, and R², Pearson r and CCC for valence/arousal regressors "
        "(`train --task va` checkpoints). Songs a checkpoint was trained on are left out when it records them "
        "(--all keeps them); figures of a model trained on the whole dataset are marked as training-set figures.",
    )
    p.add_argument("model", help="'accurate', 'fast' or the path of a checkpoint written by `moodscope train`")
    p.add_argument("--dataset", required=True, help="dataset name (4q, deam, mturk, pmemo, folder)")
    p.add_argument("--root", type=Path, required=True, help="dataset root folder (the official layout)")
    p.add_argument("--out", type=Path, default=None, help="folder for metrics.json, report.md and plots")
    p.add_argument("--all", action="store_true", help="score every track, even ones the model was trained on")
    p.add_argument("--limit", type=_positive_int, default=None, help="score at most N tracks, in turn per quadrant")
    add_engine_options(p)
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
    result = build_cache(dataset.audio_items(), store, workers=args.workers)
    if result.extracted:
        note(f"{dataset.name}: extracted features of {len(result.extracted)} tracks -> {store}")
    for track_id, reason in sorted(result.failed.items()):
        print(f"  skipped {track_id}: {reason}", file=sys.stderr)
    return dataset, store


def _train_config(args: argparse.Namespace):
    from moodscope.training.config import TrainConfig

    task = getattr(args, "task", "quadrants")
    balance = args.balance or ("none" if task == "va" else TrainConfig.balance)
    return TrainConfig(
        learning_rate=args.lr,
        batch_size=args.batch_size,
        max_epochs=args.epochs,
        patience=args.patience,
        seed=args.seed,
        threads=args.threads,
        balance=balance,
        task=task,
    )


class _ProgressBar:
    """A tqdm bar per epoch with the running loss and accuracy, and a line per finished epoch."""

    def __init__(self, label: str = ""):
        self.label, self.bar = label, None

    def __call__(self, event: str, info: dict) -> None:
        if event == "run":
            self.label = f"{info['model']}/{info['protocol']}"
            note(f"== {self.label}: {info['segments']} segments")
        elif event == "fold" and info["folds"] > 1:
            note(f"-- fold {info['fold'] + 1}/{info['folds']}")
        elif event == "epoch":
            self.bar = progress_bar(
                total=info["batches"], desc=f"{self.label} epoch {info['epoch'] + 1}", unit="batch", leave=False
            )
        elif event == "batch" and self.bar is not None:
            self.bar.set_postfix({k: f"{v:.3f}" for k, v in info.items()}, refresh=False)
            self.bar.update()
        elif event == "epoch-end":
            if self.bar is not None:
                self.bar.close()
            score = "ccc" if "train_ccc" in info else "acc"
            note(
                f"{self.label} epoch {info['epoch'] + 1}: loss {info['train_loss']:.3f} {score} "
                f"{info[f'train_{score}']:.3f} | val loss {info['val_loss']:.3f} {score} {info[f'val_{score}']:.3f} "
                f"({info['seconds']:.1f} s)"
            )


def _va_summary_line(result: dict) -> str:
    pooled = len(result["folds"]) > 1
    song = result["pooled"]["song"] if pooled else result["folds"][0]["metrics"]["song"]
    parts = []
    for dim in ("valence", "arousal"):
        measures = (("r2", "R²"), ("pearson_r", "r"), ("ccc", "CCC"))
        parts.append(f"{dim} " + ", ".join(f"{name} {song[dim][key]:.3f}" for key, name in measures))
    scope = f"pooled over {len(result['folds'])} test folds" if pooled else "test songs"
    return f"{result['model']} / va regression, song level ({scope}, n = {song['n']}): " + "; ".join(parts)


def _summary_line(result: dict) -> str:
    if result.get("task") == "va":
        return _va_summary_line(result)
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


def run_shipped(args: argparse.Namespace) -> int:
    """``train --shipped accurate|fast``: cross-validated figures, then the model refitted on all 4Q clips."""
    from dataclasses import replace

    from moodscope.analysis import shipped
    from moodscope.analysis.pretrained import SHIPPED_MODELS
    from moodscope.errors import DatasetError

    if args.dataset not in (None, shipped.SHIPPED_DATASET):
        raise DatasetError(f"--shipped models are trained on {shipped.SHIPPED_DATASET}, not {args.dataset}")
    out = args.out or SHIPPED_MODELS[args.shipped]
    started = time.perf_counter()
    if args.shipped == "accurate":
        from moodscope.analysis.accurate import AccurateConfig

        config = replace(AccurateConfig(), folds=args.folds or AccurateConfig.folds)
        bar = progress_bar(unit="step", desc="accurate")

        def progress(event: str, info: dict) -> None:
            bar.set_description(f"accurate: {event}")
            bar.total = info["total"]
            bar.update(info["done"] - bar.n)

        with bar:
            metrics = shipped.train_accurate(
                args.root,
                out,
                cache=args.cache,
                config=config,
                seeds=tuple(range(args.nested_seeds)),
                workers=args.workers or 1,
                progress=progress,
            )
        nested, selection = metrics["nested"], metrics["selection"]
        f1 = "  ".join(f"{q} {v:.3f}" for q, v in nested["f1_per_quadrant"].items())
        print(
            f"accurate, nested CV ({len(nested['seeds'])} seeds x {nested['outer_folds']} folds, "
            f"{nested['n_songs']} songs): song macro-F1 {nested['macro_f1']['mean']:.3f} ± "
            f"{nested['macro_f1']['std']:.3f}, accuracy {nested['accuracy']['mean']:.3f}; F1 {f1}"
        )
        print(
            f"  calibration: ECE {nested['ece_before']['mean']:.3f} before, {nested['ece_after']['mean']:.3f} "
            f"after; shipped: C {selection['C']:g}, temperature {selection['temperature']:.2f}"
        )
    else:
        config = _train_config(args)
        args.dataset = shipped.SHIPPED_DATASET
        dataset, store = _prepare(args)
        metrics = shipped.train_fast(
            dataset,
            store,
            out,
            workdir=out.parent / f"{out.stem}-cv",
            folds=args.folds or 5,
            train_config=config,
            model_overrides=args.config,
            progress=_ProgressBar("fast/hybrid"),
        )
        song = metrics["cross_validation"]["summary"]["song"]
        print(
            f"fast, artist-grouped CV (fixed settings): song macro-F1 {song['macro_f1']['mean']:.3f} ± "
            f"{song['macro_f1']['std']:.3f}; refitted on all clips for {metrics['epochs']} epochs"
        )
    print(f"checkpoint: {out} ({time.perf_counter() - started:.0f} s)")
    return 0


def run_train(args: argparse.Namespace) -> int:
    if args.shipped:
        return run_shipped(args)
    from moodscope.errors import MoodscopeError

    if args.model is None or args.dataset is None:
        raise MoodscopeError("train needs --model and --dataset (or --shipped accurate|fast)")
    args.folds = args.folds or 1
    from moodscope.training.loop import run_experiment
    from moodscope.training.report import write_run_report
    from moodscope.training.reproduce import protocol_table, song_labels, song_va

    regression = args.task == "va"
    config = _train_config(args)
    dataset, store = _prepare(args)
    kind = f"va-{args.targets}" if regression else args.protocol
    out = args.out or Path("runs") / f"{dataset.name}-{args.model}-{kind}"
    table = protocol_table(dataset, store, args.protocol, task=args.task, va_targets=args.targets)
    progress = _ProgressBar(f"{args.model}/{kind}")
    songs = len(set(table.track_ids.tolist()))
    counts = f"valence/arousal ({args.targets} targets)" if regression else str(table.quadrant_counts())
    note(f"{dataset.name}: {len(table)} segments of {songs} songs, {counts}")
    started = time.perf_counter()
    result = run_experiment(
        table,
        args.model,
        args.protocol,
        folds=args.folds,
        model_overrides=args.config,
        train_config=config,
        out_dir=out,
        song_labels=song_labels(dataset),
        song_va=song_va(dataset),
        dataset_name=dataset.name,
        run_extra={"va_targets": args.targets} if regression else None,
        progress=progress,
    )
    result["wall_seconds"] = time.perf_counter() - started
    result["dataset"] = dataset.name
    title = f"{args.model} / valence-arousal regression ({args.targets} targets), {dataset.name}" if regression else ""
    report = write_run_report(result, out, title)
    print(_summary_line(result))
    print(f"checkpoints: {out}/fold*/best.pt; report: {report} ({result['wall_seconds']:.0f} s)")
    return 0


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def run_evaluate(args: argparse.Namespace) -> int:
    from moodscope.analysis.evaluation import evaluate_model, write_evaluation_report
    from moodscope.analysis.pretrained import load_model
    from moodscope.cli.options import engine_kwargs
    from moodscope.datasets import load_dataset
    from moodscope.engine.analysis import analyze_files

    load_model(args.model)  # a bad model fails now, in one line
    dataset = load_dataset(args.dataset, args.root)
    with progress_bar(unit="file", desc="evaluate") as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        def run(paths):
            batch = analyze_files(paths, model=args.model, progress=progress, **engine_kwargs(args))
            return batch.analyses, batch.failed

        result = evaluate_model(args.model, dataset, all_tracks=args.all, limit=args.limit, run=run)
    print(f"{result['model']} (sha256:{result['model_hash'][:12]}) on {dataset.name}: {result['scope']}")
    for level in ("song", "segment"):
        m = result["quadrants"][level]
        f1 = "  ".join(f"{q} {m['per_quadrant'][q]['f1']:.3f}" for q in m["per_quadrant"])
        print(
            f"  quadrants, {level}: accuracy {100 * m['accuracy']:.1f} %, macro-F1 {m['macro_f1']:.3f} "
            f"(n = {m['n']}); F1 {f1}"
        )
    if "va" in result:
        for level in ("song", "segment"):
            m = result["va"][level]
            cells = [
                f"{dim} R² {m[dim]['r2']:.3f} r {m[dim]['pearson_r']:.3f} CCC {m[dim]['ccc']:.3f}"
                for dim in ("valence", "arousal")
            ]
            print(f"  valence/arousal, {level} (n = {m['n']}): " + "; ".join(cells))
    for path, reason in result["failed"].items():
        print(f"  skipped {reason if path in reason else f'{path}: {reason}'}", file=sys.stderr)
    if args.out:
        print(f"report: {write_evaluation_report(result, args.out)}")
    return 0


def run_reproduce(args: argparse.Namespace) -> int:
    from moodscope.training.reproduce import reproduce

    args.folds = args.folds or 1
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
