"""Training the shipped models (``moodscope train --shipped accurate|fast``) on the 4Q clips.

``accurate``: musicnn descriptors of every segment (:func:`moodscope.analysis.accurate.dataset_blocks`,
cached), then the nested artist-grouped cross-validation of the whole recipe (C and calibration
temperature chosen in inner folds; :mod:`moodscope.training.nested`) for the figures, then the
choice of C and temperature by artist-grouped CV on all songs and the heads refitted on all of them.

``fast``: the paper's ``hybrid`` network with fixed settings (the paper's optimiser and learning rate,
early stopping on an artist-disjoint validation part): artist-grouped k-fold cross-validation
(:func:`moodscope.training.loop.run_experiment`) for the figures, then one network trained on all
songs for the median number of epochs the folds' early stopping chose.

Both write their checkpoint through :func:`moodscope.models.checkpoint.write_checkpoint` with the
config, seeds, metrics (``metrics.headline`` is what ``moodscope models`` shows) and licence.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from moodscope.constants import QUADRANTS

log = logging.getLogger(__name__)

SHIPPED_DATASET = "4q"
Progress = Callable[[str, dict], None]


def _headline(summary: dict, evaluation: str) -> dict:
    return {
        "evaluation": evaluation,
        "figures": {
            "song_macro_f1": summary["macro_f1"]["mean"],
            "song_macro_f1_std": summary["macro_f1"]["std"],
            "song_accuracy": summary["accuracy"]["mean"],
        },
    }


def _licence(name: str) -> str:
    from moodscope.analysis.cards import SHIPPED_CARDS

    return SHIPPED_CARDS[name]["licence"]


def _songs_labels_groups(dataset, track_ids) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sorted song ids present in ``track_ids``, their quadrant indices and artist groups (the song
    itself when the artist is unknown)."""
    by_id = dataset.tracks()
    songs = np.array(sorted(set(track_ids.tolist())))
    y = np.array([QUADRANTS.index(by_id[s].quadrant) for s in songs])
    groups = np.array([(by_id[s].artist or s).strip().lower() for s in songs])
    return songs, y, groups


def train_accurate(
    root: Path,
    out: Path,
    *,
    cache: Path,
    config=None,
    seeds: tuple[int, ...] = (0, 1, 2),
    workers: int = 1,
    progress: Progress | None = None,
) -> dict:
    """Train the ``accurate`` model on the 4Q dataset at ``root`` and write its checkpoint to ``out``.

    Returns the metrics stored in the checkpoint: ``nested`` (the nested CV summary), ``selection``
    (C and temperature chosen on all songs), ``headline``, ``ood`` when the OOD statistics are fitted.
    """
    from moodscope.analysis.accurate import (
        OOD_BLOCKS,
        AccurateConfig,
        dataset_blocks,
        fit_model_ood,
        fit_shipped,
        nested_cross_validate,
        save_embedding_model,
    )
    from moodscope.datasets import load_dataset

    config = config or AccurateConfig()
    dataset = load_dataset(SHIPPED_DATASET, root)
    blocks = tuple(sorted({b for head in config.heads for b in head} | set(OOD_BLOCKS)))
    items = dataset.audio_items()

    def blocks_progress(done: int, total: int) -> None:
        if progress:
            progress("descriptors", {"done": done, "total": total})

    sb = dataset_blocks(
        items, cache / f"accurate-{dataset.name}-blocks.npz", blocks=blocks, workers=workers, progress=blocks_progress
    )
    songs, y, groups = _songs_labels_groups(dataset, sb.track_ids)

    def fold_progress(done: int, total: int) -> None:
        if progress:
            progress("outer-fold", {"done": done, "total": total})

    nested = nested_cross_validate(sb, songs, y, groups, config, seeds=seeds, progress=fold_progress)
    heads, selection = fit_shipped(sb, songs, y, groups, config)
    metrics = {
        "dataset": dataset.name,
        "n_songs": len(songs),
        "n_segments": len(sb.track_ids),
        "nested": nested,
        "selection": selection,
        "headline": _headline(
            nested,
            f"song level, nested artist-grouped {config.folds}-fold cross-validation on {dataset.name} "
            f"({len(songs)} songs; C and temperature chosen in inner folds; mean over outer seeds {list(seeds)})",
        ),
    }
    train_config = asdict(config) | {"nested_seeds": list(seeds), "heads": [list(h) for h in config.heads]}
    save_embedding_model(
        out,
        heads,
        metrics=metrics,
        config=train_config,
        temperature=selection["temperature"],
        licence=_licence("accurate"),
        ood=fit_model_ood(sb, dict(zip(songs, groups))),  # the out-of-distribution score's statistics
    )
    return metrics


def train_fast(
    dataset,
    store: Path,
    out: Path,
    *,
    workdir: Path,
    folds: int = 5,
    train_config=None,
    model_overrides: dict | None = None,
    progress: Progress | None = None,
) -> dict:
    """Train the ``fast`` model (the paper's ``hybrid``) on a 4Q ``dataset`` whose features are cached in
    ``store``: artist-grouped ``folds``-fold CV in ``workdir`` (resumable) for the figures, then a network
    on all songs for the median of the folds' best epochs, written to ``out``. Returns the metrics
    stored in the checkpoint."""
    from moodscope.analysis.ood import with_ood
    from moodscope.models import build_model
    from moodscope.models.checkpoint import build_meta, save_checkpoint
    from moodscope.training.config import TrainConfig
    from moodscope.training.loop import fit_all, run_experiment
    from moodscope.training.reproduce import protocol_table, song_labels

    config = train_config or TrainConfig(threads=1)
    table = protocol_table(dataset, store, "song")
    result = run_experiment(
        table,
        "hybrid",
        "song",
        folds=folds,
        model_overrides=model_overrides,
        train_config=config,
        out_dir=workdir,
        song_labels=song_labels(dataset),
        dataset_name=dataset.name,
        progress=progress,
    )
    epochs = int(np.median([r["best_epoch"] + 1 for r in result["folds"]]))
    model = build_model("hybrid", **(model_overrides or {}))
    norm = fit_all(model, table, replace(config, max_epochs=epochs), progress=progress)
    song = result["summary"]["song"]
    pooled = _pooled_song_metrics(result)
    metrics = {
        "dataset": dataset.name,
        "n_songs": len(set(table.track_ids.tolist())),
        "n_segments": len(table),
        "cross_validation": {"summary": result["summary"], "pooled_song": pooled},
        "epochs": epochs,
        "fold_best_epochs": [r["best_epoch"] + 1 for r in result["folds"]],
        "headline": {
            "evaluation": f"song level, artist-grouped {folds}-fold cross-validation on {dataset.name} with the "
            f"paper's fixed settings (not nested: nothing is chosen), mean over folds; the shipped network is "
            f"then trained on all songs for {epochs} epochs",
            "figures": {
                "song_macro_f1": song["macro_f1"]["mean"],
                "song_macro_f1_std": song["macro_f1"]["std"],
                "song_accuracy": song["accuracy"]["mean"],
                "segment_macro_f1": result["summary"]["segment"]["macro_f1"]["mean"],
            },
        },
    }
    run = {"dataset": dataset.name, "protocol": "song", "folds": "all", "train_config": asdict(config)}
    meta = build_meta(model, norm, run=run, metrics=metrics, licence=_licence("fast"))
    save_checkpoint(out, model, meta)
    with_ood(out, _fast_ood(dataset, workdir))
    return metrics


def _fast_ood(dataset, workdir: Path):
    """The statistics of the ``fast`` model's out-of-distribution score: the paper block of every segment
    of ``dataset``, calibrated on artist-disjoint folds."""
    from moodscope.analysis.accurate import FAST_OOD_BLOCKS, dataset_blocks, fit_model_ood

    cache = workdir.parent / f"fast-{dataset.name}-paper.npz"  # beside the CV folder, in the cache folder
    sb = dataset_blocks(dataset.audio_items(), cache, blocks=FAST_OOD_BLOCKS)
    artist_of = {tid: (t.artist or tid).strip().lower() for tid, t in dataset.tracks().items()}
    return fit_model_ood(sb, artist_of, FAST_OOD_BLOCKS)


def _pooled_song_metrics(result: dict) -> dict:
    """Song-level metrics of the test folds pooled (every song once): from their summed confusion matrices."""
    from moodscope.training.evaluate import classification_metrics

    confusion = np.sum([fold["metrics"]["song"]["confusion"] for fold in result["folds"]], axis=0)
    truth = np.repeat(np.arange(len(QUADRANTS)), confusion.sum(axis=1))
    predicted = np.concatenate([np.repeat(np.arange(len(QUADRANTS)), row) for row in confusion])
    return classification_metrics(truth, predicted)
