"""Reproduce the paper's Table 3: all three models under both protocols, one report.

For each protocol a segment table is built with the dataset's clip policy (the paper's 45-s clips
with the last 5-s segment dropped for DEAM/MTurk; whole files otherwise); the ``paper`` protocol
also applies the near-axis filter. Every model is trained and tested under each protocol by
:func:`moodscope.training.loop.run_experiment`, and :func:`moodscope.training.report.write_reproduce_report` writes
the Table-3-shaped report beside the paper's figures.
"""

from __future__ import annotations

import time
from pathlib import Path

from moodscope.datasets.base import Dataset
from moodscope.models import MODELS
from moodscope.training.config import PROTOCOLS
from moodscope.training.loop import Progress, TrainConfig, run_experiment


def protocol_table(
    dataset: Dataset, store: Path, protocol: str, *, task: str = "quadrants", va_targets: str = "static"
):
    """The segment table a protocol trains on.

    Quadrants: the dataset's clip policy, the near-axis filter under ``paper`` only. Valence/arousal
    regression (``task="va"``): every whole segment of each file (DEAM's 2015 songs are whole songs,
    annotated throughout), labelled by ``va_targets`` (``static`` or ``dynamic``, see
    :func:`~moodscope.datasets.segments.track_segment_va`), unlabelled segments left out.
    """
    from moodscope.datasets.segments import build_segment_table

    if task == "va":
        return build_segment_table(dataset, store, va_targets=va_targets, require_va=True)
    clip = dataset.clip_seconds
    return build_segment_table(
        dataset, store, clip_seconds=clip, drop_last=clip is not None, near_axis_filter=protocol == "paper"
    )


def song_labels(dataset: Dataset) -> dict[str, int]:
    """Each track's song-level quadrant index (its static label), for song-level metrics."""
    from moodscope.constants import QUADRANTS

    return {t.track_id: QUADRANTS.index(t.quadrant) for t in dataset.tracks().values() if t.quadrant is not None}


def song_va(dataset: Dataset) -> dict[str, tuple[float, float]]:
    """Each track's static valence/arousal on [-1, 1], for song-level regression metrics."""
    return {
        t.track_id: (t.valence, t.arousal)
        for t in dataset.tracks().values()
        if t.valence is not None and t.arousal is not None
    }


def reproduce(
    dataset: Dataset,
    store: Path,
    out_dir: Path,
    *,
    models: tuple[str, ...] = tuple(MODELS),
    protocols: tuple[str, ...] = ("paper", "song"),
    folds: int = 1,
    train_config: TrainConfig | None = None,
    model_overrides: dict[str, dict] | None = None,
    header: str = "",
    progress: Progress | None = None,
) -> tuple[list[dict], Path]:
    """Train and test every model under every protocol; returns the results and the report path.

    Each run keeps its checkpoints under ``out_dir/<model>-<protocol>/fold<i>/``, so an interrupted
    reproduction resumes where it stopped. ``model_overrides`` maps a model name to config changes.
    """
    for p in protocols:
        if p not in PROTOCOLS:
            raise ValueError(f"unknown protocol {p!r}")
    labels = song_labels(dataset)
    results = []
    for protocol in protocols:
        table = protocol_table(dataset, store, protocol)
        for name in models:
            if progress:
                progress("run", {"model": name, "protocol": protocol, "segments": len(table)})
            started = time.perf_counter()
            result = run_experiment(
                table,
                name,
                protocol,
                folds=folds,
                model_overrides=(model_overrides or {}).get(name),
                train_config=train_config,
                out_dir=out_dir / f"{name}-{protocol}",
                song_labels=labels,
                dataset_name=dataset.name,
                progress=progress,
            )
            result["wall_seconds"] = time.perf_counter() - started
            result["segments"] = len(table)
            result["quadrant_counts"] = table.quadrant_counts()
            results.append(result)
    from moodscope.training.report import write_reproduce_report

    return results, write_reproduce_report(results, out_dir, dataset.name, header)
