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

from moodscope.models import MoodModel, build_model, model_config, model_inputs
from moodscope.training.config import TrainConfig

log = logging.getLogger(__name__)

Progress = Callable[[str, dict], None]
"""``progress(event, info)``: events 'epoch' (epoch, batches), 'batch' (loss, acc: running means),
'epoch-end' (the history row) and 'fold' (fold, folds)."""


@dataclass
class TrainResult:
    history: list[dict] = field(default_factory=list)  # per epoch: train/val loss and accuracy, seconds
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
def evaluate_loss(model: MoodModel, inputs: dict[str, torch.Tensor], y: torch.Tensor, batch_size: int = 256):
    """Mean cross-entropy, accuracy and logits of ``model`` (in eval mode) on a whole set."""
    model.eval()
    logits = torch.cat([model(**{k: v[idx] for k, v in inputs.items()}) for idx in _batches(len(y), batch_size)])
    loss = torch.nn.functional.cross_entropy(logits, y).item() if len(y) else float("nan")
    return loss, (logits.argmax(1) == y).float().mean().item() if len(y) else float("nan"), logits


def fit(
    model: MoodModel,
    train: tuple[dict[str, np.ndarray], np.ndarray],
    val: tuple[dict[str, np.ndarray], np.ndarray],
    config: TrainConfig,
    *,
    workdir: Path | None = None,
    meta: dict | None = None,
    class_weights: np.ndarray | None = None,
    progress: Progress | None = None,
) -> TrainResult:
    """Train ``model`` in place on ``train`` = (inputs, labels) with early stopping on ``val``;
    the model ends with its best weights. ``meta`` describes the run in ``workdir/last.pt``."""
    from moodscope.models.checkpoint import read_checkpoint, save_checkpoint

    threads_before = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    x_train = {k: torch.from_numpy(v) for k, v in train[0].items()}
    y_train = torch.from_numpy(np.asarray(train[1], np.int64))
    x_val = {k: torch.from_numpy(v) for k, v in val[0].items()}
    y_val = torch.from_numpy(np.asarray(val[1], np.int64))
    weight = torch.as_tensor(class_weights, dtype=torch.float32) if class_weights is not None else None
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    result = TrainResult()
    best_state = copy.deepcopy(model.state_dict())
    bad_epochs, start_epoch = 0, 0
    fingerprint = json.dumps([model.name, model_config(model), asdict(config), len(y_train), len(y_val)])

    last = workdir / "last.pt" if workdir else None
    if last is not None and last.exists():
        payload = read_checkpoint(last)
        state = payload.get("train_state", {})
        if state.get("fingerprint") == fingerprint:
            model.load_state_dict(payload["state_dict"])
            optimizer.load_state_dict(state["optimizer"])
            best_state = state["best_state"]
            result.history = state["history"]
            result.best_epoch, result.best_val_loss = state["best_epoch"], state["best_val_loss"]
            bad_epochs, start_epoch = state["bad_epochs"], state["epoch"] + 1
            result.resumed_from = state["epoch"]
            log.info("resuming %s from epoch %d", last, start_epoch)
        else:
            log.warning("%s belongs to another run; starting afresh", last)

    t0 = time.perf_counter()
    for epoch in range(start_epoch, config.max_epochs):
        if bad_epochs >= config.patience:
            result.stopped_early = True
            break
        torch.manual_seed(config.seed + epoch)
        generator = torch.Generator().manual_seed(config.seed + epoch)
        n_batches = -(-len(y_train) // config.batch_size)
        if progress:
            progress("epoch", {"epoch": epoch, "batches": n_batches})
        model.train()
        started, loss_sum, correct, seen = time.perf_counter(), 0.0, 0, 0
        for idx in _batches(len(y_train), config.batch_size, generator):
            logits = model(**{k: v[idx] for k, v in x_train.items()})
            loss = torch.nn.functional.cross_entropy(logits, y_train[idx], weight=weight)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            loss_sum += loss.item() * len(idx)
            correct += int((logits.argmax(1) == y_train[idx]).sum())
            seen += len(idx)
            if progress:
                progress("batch", {"loss": loss_sum / seen, "acc": correct / seen})
        val_loss, val_acc, _ = evaluate_loss(model, x_val, y_val)
        row = {
            "epoch": epoch,
            "train_loss": loss_sum / max(seen, 1),
            "train_acc": correct / max(seen, 1),
            "val_loss": val_loss,
            "val_acc": val_acc,
            "seconds": time.perf_counter() - started,
        }
        result.history.append(row)
        if val_loss < result.best_val_loss:
            result.best_val_loss, result.best_epoch, bad_epochs = val_loss, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            bad_epochs += 1
        if progress:
            progress("epoch-end", row)
        if last is not None:
            train_state = {
                "fingerprint": fingerprint,
                "epoch": epoch,
                "optimizer": optimizer.state_dict(),
                "best_state": best_state,
                "history": result.history,
                "best_epoch": result.best_epoch,
                "best_val_loss": result.best_val_loss,
                "bad_epochs": bad_epochs,
            }
            save_checkpoint(last, model, dict(meta or {}, last_epoch=epoch), train_state=train_state)
    else:
        result.stopped_early = bad_epochs >= config.patience
    result.seconds = sum(r["seconds"] for r in result.history)
    log.debug(
        "trained %d epochs in %.1f s (this session %.1f s)",
        len(result.history),
        result.seconds,
        time.perf_counter() - t0,
    )
    model.load_state_dict(best_state)
    model.eval()
    torch.set_num_threads(threads_before)
    return result


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
    dataset_name: str = "",
    progress: Progress | None = None,
) -> dict:
    """Train and test ``model_name`` on a :class:`~moodscope.datasets.segments.SegmentTable` under ``protocol``.

    Returns ``{"model", "protocol", "folds": [per-fold result], "summary": mean ± std}``; each fold
    result holds its test metrics (segment and song level), history, timing and leakage figures.
    With ``out_dir``, each fold writes ``fold<i>/best.pt`` (+ ``last.pt`` while training), and a fold
    whose ``best.pt`` is complete is not trained again.
    """
    from moodscope.features.normalization import Normalization
    from moodscope.models.checkpoint import build_meta, read_checkpoint, save_checkpoint
    from moodscope.training.evaluate import evaluate_probs, summarize
    from moodscope.training.protocols import class_weights, leakage, make_splits

    config = train_config or TrainConfig()
    overrides = model_overrides or {}
    splits = make_splits(table.quadrant, table.artists, protocol, folds=folds, seed=config.seed, balance=config.balance)
    results = []
    for split in splits:
        if progress:
            progress("fold", {"fold": split.fold, "folds": folds})
        workdir = out_dir / f"fold{split.fold}" if out_dir else None
        if workdir and (workdir / "best.pt").exists():
            meta = read_checkpoint(workdir / "best.pt")["meta"]
            same_model = meta.get("arch") == model_name and meta.get("config") == model_config(
                build_model(model_name, **overrides)
            )
            if meta.get("complete") and same_model and meta.get("run", {}).get("train_config") == asdict(config):
                results.append(meta["result"])
                continue
        train_rows = np.unique(split.train)
        norm = Normalization.fit(table.features.select(train_rows))
        model = build_model(model_name, **overrides)
        normed = norm.apply(table.features)
        inputs = model_inputs(model, normed)
        del normed

        def part(rows: np.ndarray, inputs=inputs) -> tuple[dict[str, np.ndarray], np.ndarray]:
            return {k: v[rows] for k, v in inputs.items()}, table.quadrant[rows]

        run_info = {
            "dataset": dataset_name,
            "protocol": protocol,
            "fold": split.fold,
            "folds": folds,
            "train_config": asdict(config),
            "n_train": len(split.train),
            "n_val": len(split.val),
            "n_test": len(split.test),
        }
        meta = build_meta(model, norm, run=run_info)
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
        from moodscope.models.checkpoint import predict_proba

        probs = predict_proba(model, meta, table.features.select(split.test))
        metrics = evaluate_probs(
            probs, table.quadrant[split.test], table.track_ids[split.test], song_labels=song_labels
        )
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
        results.append(result)
        if workdir:
            split_info = {
                "train_songs": sorted(set(table.track_ids[split.train].tolist())),
                "test_songs": result["test_songs"],
            }
            meta = dict(meta, metrics=metrics, result=result, split=split_info, complete=True)
            save_checkpoint(workdir / "best.pt", model, meta)
            (workdir / "last.pt").unlink(missing_ok=True)
    return {
        "model": model_name,
        "protocol": protocol,
        "folds": results,
        "summary": summarize([r["metrics"] for r in results]),
        "train_seconds": float(sum(r["train_seconds"] for r in results)),
    }
