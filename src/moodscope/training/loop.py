"""Training: one mini-batch loop with early stopping, and the experiment around it.

:func:`fit` is the loop, readable top to bottom: Adam, cross-entropy, mini-batches in a seeded
order, validation loss after every epoch, the best weights kept, a stop after ``patience`` epochs
without improvement. With a ``workdir`` it writes ``last.pt`` after every epoch (weights,
optimizer, history, best weights so far) and resumes from it when run again with the same setup;
each epoch reseeds torch from ``seed + epoch``, so a resumed run continues exactly as an
uninterrupted one would.

:func:`run_experiment` is everything around it for one model under one protocol: splits, the
normalisation fitted on the training part, training per fold, test metrics at segment and song
level, and a self-describing ``best.pt`` per fold (see :mod:`moodscope.models.checkpoint`).

Defaults follow the paper where it speaks (Adam, learning rate 1e-4, cross-entropy) and are our
choice where it is silent: batch size 64, at most 40 epochs, patience 5.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from moodscope.models import MoodNetwork, build_model, model_config, model_inputs
from moodscope.training.config import TrainConfig
from moodscope.version import __version__

log = logging.getLogger(__name__)

Progress = Callable[[str, dict], None]
"""``progress(event, info)``: events 'epoch' (epoch, batches), 'batch' (loss and the task's score,
'acc' or 'ccc', over the epoch so far), 'epoch-end' (the history row) and 'fold' (fold, folds)."""


@dataclass(frozen=True)
class Objective:
    """What :func:`fit` minimises for a task, and the score it reports beside the loss."""

    metric: str  # the score's name in history rows and progress: 'acc' or 'ccc'
    target_dtype: np.dtype
    loss: Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]  # (outputs, y, class weights)
    score: Callable[[torch.Tensor, torch.Tensor], float]


def _accuracy(outputs: torch.Tensor, y: torch.Tensor) -> float:
    return (outputs.argmax(1) == y).float().mean().item() if len(y) else float("nan")


def _mean_ccc(outputs: torch.Tensor, y: torch.Tensor) -> float:
    from moodscope.training.evaluate import concordance

    return float(np.mean([concordance(outputs[:, d].numpy(), y[:, d].numpy()) for d in range(y.shape[1])]))


OBJECTIVES = {
    "quadrants": Objective(
        "acc", np.dtype(np.int64), lambda out, y, w: torch.nn.functional.cross_entropy(out, y, weight=w), _accuracy
    ),
    "va": Objective("ccc", np.dtype(np.float32), lambda out, y, w: torch.nn.functional.mse_loss(out, y), _mean_ccc),
}
"""Per task (:data:`~moodscope.training.config.TASKS`): cross-entropy and accuracy over the quadrants;
mean squared error and the mean concordance (CCC) of valence and arousal."""


def objective(task: str) -> Objective:
    if task not in OBJECTIVES:
        from moodscope.errors import ModelError

        raise ModelError(f"unknown task {task!r}; choose one of {', '.join(OBJECTIVES)}")
    return OBJECTIVES[task]


@dataclass
class TrainResult:
    history: list[dict] = field(default_factory=list)  # per epoch: train/val loss and score, seconds
    best_epoch: int = -1
    best_val_loss: float = float("inf")
    stopped_early: bool = False
    resumed_from: int | None = None
    seconds: float = 0.0


def _batches(n: int, batch_size: int, generator: torch.Generator | None = None):
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]


@torch.no_grad()
def evaluate_loss(
    model: MoodNetwork,
    inputs: dict[str, torch.Tensor],
    y: torch.Tensor,
    batch_size: int = 256,
    task: str = "quadrants",
):
    """The task's mean loss and score, and the outputs, of ``model`` (in eval mode) on a whole set."""
    goal = objective(task)
    model.eval()
    outputs = torch.cat([model(**{k: v[idx] for k, v in inputs.items()}) for idx in _batches(len(y), batch_size)])
    loss = goal.loss(outputs, y, None).item() if len(y) else float("nan")
    return loss, goal.score(outputs, y), outputs


def fit(
    model: MoodNetwork,
    train: tuple[dict[str, np.ndarray], np.ndarray],
    val: tuple[dict[str, np.ndarray], np.ndarray] | None,
    config: TrainConfig,
    *,
    workdir: Path | None = None,
    meta: dict | None = None,
    class_weights: np.ndarray | None = None,
    progress: Progress | None = None,
) -> TrainResult:
    """Train ``model`` in place on ``train`` = (inputs, targets) with early stopping on ``val``; the
    model ends with its best weights (``val=None``: ``config.max_epochs`` epochs, the last weights
    kept). Targets are quadrant indices [shape=(n,)] for the ``quadrants``
    task, valence/arousal [shape=(n, 2)] for ``va`` (``config.task``). ``meta`` describes the run in
    ``workdir/last.pt``."""
    goal = objective(config.task)
    threads_before = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    x_train, y_train = _as_tensors(train, goal)
    x_val, y_val = _as_tensors(val, goal) if val is not None else ({}, torch.zeros(0))
    weight = torch.as_tensor(class_weights, dtype=torch.float32) if class_weights is not None else None
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    result = TrainResult()
    run = _RunState(best_state=copy.deepcopy(model.state_dict()))
    fingerprint = json.dumps([model.name, model_config(model), asdict(config), len(y_train), len(y_val)])
    last = workdir / "last.pt" if workdir else None
    if last is not None and last.exists():
        _resume(last, fingerprint, model, optimizer, result, run)

    t0 = time.perf_counter()
    for epoch in range(run.start_epoch, config.max_epochs):
        if run.bad_epochs >= config.patience:
            result.stopped_early = True
            break
        started = time.perf_counter()
        train_loss, train_score = _train_one_epoch(
            model, optimizer, goal, x_train, y_train, weight, config, epoch, progress
        )
        val_loss, val_score = float("nan"), float("nan")
        if val is not None:
            val_loss, val_score, _ = evaluate_loss(model, x_val, y_val, task=config.task)
        row = {
            "epoch": epoch,
            "train_loss": train_loss,
            f"train_{goal.metric}": train_score,
            "val_loss": val_loss,
            f"val_{goal.metric}": val_score,
            "seconds": time.perf_counter() - started,
        }
        result.history.append(row)
        if val is not None:
            _keep_if_best(model, epoch, val_loss, result, run)
        if progress:
            progress("epoch-end", row)
        if last is not None:
            _save_last(last, model, meta, fingerprint, epoch, optimizer, result, run)
    else:
        result.stopped_early = run.bad_epochs >= config.patience
    result.seconds = sum(r["seconds"] for r in result.history)
    log.debug(
        "trained %d epochs in %.1f s (this session %.1f s)",
        len(result.history),
        result.seconds,
        time.perf_counter() - t0,
    )
    if val is not None:
        model.load_state_dict(run.best_state)
    else:
        result.best_epoch = len(result.history) - 1
    model.eval()
    torch.set_num_threads(threads_before)
    return result


@dataclass
class _RunState:
    """What :func:`fit` carries from epoch to epoch besides the history: the best weights so far, the
    epochs since they improved, and where a resumed run starts."""

    best_state: dict
    bad_epochs: int = 0
    start_epoch: int = 0


def _as_tensors(part: tuple[dict[str, np.ndarray], np.ndarray], goal: Objective):
    inputs, targets = part
    return {k: torch.from_numpy(v) for k, v in inputs.items()}, torch.from_numpy(np.asarray(targets, goal.target_dtype))


def fit_all(model: MoodNetwork, table, config: TrainConfig, *, progress: Progress | None = None):
    """Train ``model`` in place on every row of a segment table for ``config.max_epochs`` epochs (no
    validation part and no early stopping: the epoch count comes from a cross-validation), balanced by
    ``config.balance``. Returns the feature normalisation fitted on all rows."""
    from moodscope.features.normalization import Normalization
    from moodscope.training.protocols import class_weights, oversample

    rows = np.arange(len(table))
    norm = Normalization.fit(table.features)
    inputs = model_inputs(model, norm.apply(table.features))
    rng = np.random.default_rng(config.seed)
    train = oversample(rows, table.quadrant, rng) if config.balance == "oversample" else rows
    weights = class_weights(table.quadrant) if config.balance == "class-weights" else None
    part = ({k: v[train] for k, v in inputs.items()}, table.quadrant[train])
    fit(model, part, None, config, class_weights=weights, progress=progress)
    return norm


def _resume(last: Path, fingerprint: str, model: MoodNetwork, optimizer, result: TrainResult, run: _RunState) -> None:
    """Continue from ``last.pt`` when it belongs to this very run (same model, config and data sizes)."""
    from moodscope.models.checkpoint import read_checkpoint

    payload = read_checkpoint(last)
    state = payload.get("train_state", {})
    if state.get("fingerprint") != fingerprint:
        log.warning("%s belongs to another run; starting afresh", last)
        return
    model.load_state_dict(payload["state_dict"])
    optimizer.load_state_dict(state["optimizer"])
    run.best_state = state["best_state"]
    result.history = state["history"]
    result.best_epoch, result.best_val_loss = state["best_epoch"], state["best_val_loss"]
    run.bad_epochs, run.start_epoch = state["bad_epochs"], state["epoch"] + 1
    result.resumed_from = state["epoch"]
    log.info("resuming %s from epoch %d", last, run.start_epoch)


def _train_one_epoch(
    model: MoodNetwork,
    optimizer,
    goal: Objective,
    x: dict[str, torch.Tensor],
    y: torch.Tensor,
    weight: torch.Tensor | None,
    config: TrainConfig,
    epoch: int,
    progress: Progress | None,
) -> tuple[float, float]:
    """One pass over the training part in mini-batches of a seeded order (reseeded from ``seed + epoch``,
    so a resumed run continues exactly). Returns the epoch's mean loss and score."""
    torch.manual_seed(config.seed + epoch)
    generator = torch.Generator().manual_seed(config.seed + epoch)
    if progress:
        progress("epoch", {"epoch": epoch, "batches": -(-len(y) // config.batch_size)})
    model.train()
    loss_sum, seen = 0.0, 0
    outputs, targets = [], []
    for idx in _batches(len(y), config.batch_size, generator):
        out = model(**{k: v[idx] for k, v in x.items()})
        loss = goal.loss(out, y[idx], weight)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        loss_sum += loss.item() * len(idx)
        seen += len(idx)
        outputs.append(out.detach())
        targets.append(y[idx])
        if progress:
            progress(
                "batch", {"loss": loss_sum / seen, goal.metric: goal.score(torch.cat(outputs), torch.cat(targets))}
            )
    score = goal.score(torch.cat(outputs), torch.cat(targets)) if outputs else float("nan")
    return loss_sum / max(seen, 1), score


def _keep_if_best(model: MoodNetwork, epoch: int, val_loss: float, result: TrainResult, run: _RunState) -> None:
    """Early stopping's bookkeeping: keep the weights of the best validation loss, count the epochs since."""
    if val_loss < result.best_val_loss:
        result.best_val_loss, result.best_epoch, run.bad_epochs = val_loss, epoch, 0
        run.best_state = copy.deepcopy(model.state_dict())
    else:
        run.bad_epochs += 1


def _save_last(
    last: Path,
    model: MoodNetwork,
    meta: dict | None,
    fingerprint: str,
    epoch: int,
    optimizer,
    result: TrainResult,
    run: _RunState,
) -> None:
    """``last.pt``: the weights after ``epoch`` and everything :func:`_resume` needs to continue."""
    from moodscope.models.checkpoint import save_checkpoint

    train_state = {
        "fingerprint": fingerprint,
        "epoch": epoch,
        "optimizer": optimizer.state_dict(),
        "best_state": run.best_state,
        "history": result.history,
        "best_epoch": result.best_epoch,
        "best_val_loss": result.best_val_loss,
        "bad_epochs": run.bad_epochs,
    }
    save_checkpoint(last, model, dict(meta or {}, last_epoch=epoch), train_state=train_state)


def run_experiment(
    table,
    model_name: str,
    protocol: str = "song",
    *,
    folds: int = 1,
    model_overrides: dict | None = None,
    train_config: TrainConfig | None = None,
    out_dir: Path | None = None,
    song_labels: dict[str, int] | None = None,
    song_va: dict[str, tuple[float, float]] | None = None,
    dataset_name: str = "",
    run_extra: dict | None = None,
    progress: Progress | None = None,
) -> dict:
    """Train and test ``model_name`` on a :class:`~moodscope.datasets.segments.SegmentTable` under ``protocol``.

    ``train_config.task`` says what is learnt: ``quadrants`` (the table's quadrant of each segment;
    ``song_labels`` give songs' own quadrants for song-level metrics) or ``va`` (the table's
    valence/arousal, a 2-output regression head on the same architecture; ``song_va`` gives songs'
    static labels for song-level metrics; song protocol only).

    Returns ``{"model", "protocol", "task", "moodscope_version", "folds": [per-fold result], "summary":
    mean ± std}``; each fold result holds its test metrics (segment and song level), history, timing,
    leakage figures and, with ``out_dir``, ``checkpoint_sha256`` (the model hash ``analyze`` reports).
    With ``out_dir``, each fold writes ``fold<i>/best.pt`` (+ ``last.pt`` while training), and a fold
    whose ``best.pt`` is complete is not trained again. ``run_extra`` is stored in each checkpoint's
    ``run`` record (e.g. the valence/arousal targets).
    """
    from moodscope.training.evaluate import summarize, summarize_va
    from moodscope.training.protocols import make_splits

    config = train_config or TrainConfig()
    regression = config.task == "va"
    overrides = dict(model_overrides or {}) | ({"n_classes": table.va.shape[1]} if regression else {})
    if regression:
        _check_va_setup(table, protocol, config)
    splits = make_splits(table.quadrant, table.artists, protocol, folds=folds, seed=config.seed, balance=config.balance)
    results = []
    for split in splits:
        if progress:
            progress("fold", {"fold": split.fold, "folds": folds})
        workdir = out_dir / f"fold{split.fold}" if out_dir else None
        finished = _finished_fold(workdir, model_name, overrides, config)
        if finished is not None:
            results.append(finished)
            continue
        run_info = {
            "dataset": dataset_name,
            "protocol": protocol,
            "fold": split.fold,
            "folds": folds,
            "train_config": asdict(config),
            "n_train": len(split.train),
            "n_val": len(split.val),
            "n_test": len(split.test),
        } | (run_extra or {})
        results.append(
            _train_fold(
                table,
                split,
                build_model(model_name, **overrides),
                config,
                run_info=run_info,
                workdir=workdir,
                song_labels=song_labels,
                song_va=song_va,
                progress=progress,
            )
        )
    out = {
        "model": model_name,
        "protocol": protocol,
        "task": config.task,
        "moodscope_version": __version__,
        "folds": results,
        "summary": (summarize_va if regression else summarize)([r["metrics"] for r in results]),
        "train_seconds": float(sum(r["train_seconds"] for r in results)),
    }
    if regression:
        out["pooled"] = _pooled_va(results, song_va)
    return out


def _finished_fold(workdir: Path | None, model_name: str, overrides: dict, config: TrainConfig) -> dict | None:
    """The result of a fold whose ``best.pt`` is complete and was trained with this model and config."""
    from moodscope.fileio import sha256_files
    from moodscope.models.checkpoint import read_checkpoint

    if workdir is None or not (workdir / "best.pt").exists():
        return None
    meta = read_checkpoint(workdir / "best.pt")["meta"]
    same_model = meta.get("arch") == model_name and meta.get("config") == model_config(
        build_model(model_name, **overrides)
    )
    stored = {"task": "quadrants"} | meta.get("run", {}).get("train_config", {})
    if meta.get("complete") and same_model and stored == asdict(config):
        return meta["result"] | {"checkpoint_sha256": sha256_files(workdir / "best.pt")}
    return None


def _train_fold(
    table,
    split,
    model: MoodNetwork,
    config: TrainConfig,
    *,
    run_info: dict,
    workdir: Path | None,
    song_labels: dict[str, int] | None,
    song_va: dict[str, tuple[float, float]] | None,
    progress: Progress | None,
) -> dict:
    """One fold: normalisation fitted on its training rows, :func:`fit`, test metrics, and (with a
    ``workdir``) its complete ``best.pt``. Returns the fold's result."""
    from moodscope.features.normalization import Normalization
    from moodscope.fileio import sha256_files
    from moodscope.models.checkpoint import build_meta, save_checkpoint
    from moodscope.training.protocols import class_weights, leakage

    regression = config.task == "va"
    targets = table.va.astype(np.float32) if regression else table.quadrant
    train_rows = np.unique(split.train)
    norm = Normalization.fit(table.features.select(train_rows))
    inputs = model_inputs(model, norm.apply(table.features))

    def part(rows: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        return {k: v[rows] for k, v in inputs.items()}, targets[rows]

    meta = build_meta(model, norm, task=config.task, run=run_info)
    weights = class_weights(table.quadrant[split.train]) if config.balance == "class-weights" else None
    fitted = fit(
        model,
        part(split.train),
        part(split.val),
        config,
        workdir=workdir,
        meta=meta,
        class_weights=weights,
        progress=progress,
    )
    if regression:
        meta["va_val_rmse"] = _residual_rmse(model, meta, table, split.val if len(split.val) else train_rows)
    test = table.select(split.test)
    metrics = _test_metrics(model, meta, test, song_labels=song_labels, song_va=song_va)
    result = {
        "fold": split.fold,
        "metrics": metrics,
        "history": fitted.history,
        "best_epoch": fitted.best_epoch,
        "epochs": len(fitted.history),
        "train_seconds": fitted.seconds,
        "leakage": leakage(split, table.track_ids),
        "split_sizes": {"train": len(split.train), "val": len(split.val), "test": len(split.test)},
        "test_songs": sorted(set(table.track_ids[split.test].tolist())),
    }
    if regression:
        result["test_predictions"] = _va_predictions(model, meta, test)
    if workdir:
        split_info = {
            "train_songs": sorted(set(table.track_ids[split.train].tolist())),
            "test_songs": result["test_songs"],
        }
        meta = dict(meta, metrics=metrics, result=result, split=split_info, complete=True)
        save_checkpoint(workdir / "best.pt", model, meta)
        (workdir / "last.pt").unlink(missing_ok=True)
        result["checkpoint_sha256"] = sha256_files(workdir / "best.pt")  # its model_hash in analyze
    return result


def _va_predictions(model: MoodNetwork, meta: dict, test) -> dict:
    """A fold's test estimates and labels, per segment (kept to pool the folds and to plot them)."""
    from moodscope.models.checkpoint import predict_outputs

    pred = predict_outputs(model, meta, test.features)
    return {
        "track_ids": test.track_ids.tolist(),
        "pred": np.round(pred, 5).tolist(),
        "target": np.round(test.va, 5).tolist(),
    }


def _pooled_va(results: list[dict], song_va: dict | None) -> dict:
    """Regression metrics of every fold's test estimates together: with k folds each song is tested once,
    so on a small dataset this is the more stable figure (the per-fold mean ± std is in ``summary``)."""
    from moodscope.training.evaluate import evaluate_va

    parts = [r["test_predictions"] for r in results]
    ids = np.concatenate([np.asarray(p["track_ids"], dtype=str) for p in parts])
    pred = np.concatenate([np.asarray(p["pred"], float).reshape(-1, 2) for p in parts])
    target = np.concatenate([np.asarray(p["target"], float).reshape(-1, 2) for p in parts])
    return evaluate_va(pred, target, ids, song_targets=song_va)


def _check_va_setup(table, protocol: str, config: TrainConfig) -> None:
    from moodscope.errors import DatasetError, ModelError

    if protocol != "song":
        raise ModelError("valence/arousal regression trains under the song protocol only (--protocol song)")
    if config.balance == "class-weights":
        raise ModelError(
            "class weights are for quadrant classification; use --balance none or oversample with --task va"
        )
    if not len(table) or np.isnan(table.va).any():
        raise DatasetError(
            "valence/arousal regression needs a label on every segment; build the table with require_va=True"
        )


def _residual_rmse(model: MoodNetwork, meta: dict, table, rows: np.ndarray) -> list[float]:
    """Root mean squared error per dimension on ``rows`` (the validation part): how far the truth typically
    lies from an estimate, used to turn estimates into quadrant probabilities."""
    from moodscope.models.checkpoint import predict_outputs

    error = predict_outputs(model, meta, table.features.select(rows)) - table.va[rows]
    return [float(x) for x in np.sqrt((error**2).mean(axis=0))]


def _test_metrics(model: MoodNetwork, meta: dict, test, *, song_labels=None, song_va=None) -> dict:
    """Segment- and song-level metrics of a trained model on the test part of a segment table."""
    from moodscope.models.checkpoint import predict_outputs, predict_proba
    from moodscope.training.evaluate import evaluate_probs, evaluate_va

    if meta.get("task") == "va":
        pred = predict_outputs(model, meta, test.features)
        return evaluate_va(pred, test.va, test.track_ids, song_targets=song_va)
    probs = predict_proba(model, meta, test.features)
    return evaluate_probs(probs, test.quadrant, test.track_ids, song_labels=song_labels)
