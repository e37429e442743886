"""Evaluate any mood model — a shipped one or a ``train`` checkpoint — on a labelled dataset, as users meet it.

Every track is analysed by :func:`~moodscope.analysis.analyzer.analyze`, the code path of ``moodscope
analyze`` (decoding, whole 5-s segments, the model, the track summary) — in this process, or by any
runner given (the command line passes the engine's ``analyze_files``, which spreads the files over
processes or a cluster) — and compared with the dataset's labels:

- quadrants, for every model: segment level (each segment's top quadrant against its label: the
  dataset's quadrant, or the quadrant of the segment's valence/arousal where the dataset has them)
  and song level (the summary's quadrant, what ``analyze`` tells a user, against the song's own
  label): accuracy, macro-F1, per-quadrant precision/recall/F1 and the confusion matrix;
- valence/arousal, for a regressor (a checkpoint of ``train --task va``) on a dataset annotated with
  them: R², Pearson r, CCC, RMSE and MAE per dimension on the [-1, 1] annotation scale, at segment
  level (against the labels the model was trained on: static or dynamic) and song level (the
  summary's mean valence/arousal against the song's static rating).

Songs the model was trained on are left out when its checkpoint says which they were (a ``train``
checkpoint keeps its test songs: only those are scored). DEAM songs 2–1000 are the MTurk/emoMusic
songs, so a model trained on one of the two is treated as trained on the other. When a model was
trained on the whole dataset (the shipped models on 4Q), the result says that its figures are
training-set figures.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from moodscope.analysis.analyzer import Analysis
from moodscope.constants import QUADRANTS
from moodscope.datasets.base import Dataset, DatasetTrack
from moodscope.errors import DatasetError

log = logging.getLogger(__name__)

SAME_SONGS = {"mturk": "deam", "emomusic": "deam"}
"""Datasets whose track ids name the same songs as another's (emoMusic's 744 songs are DEAM songs 2–1000)."""


def song_family(dataset_name: str | None) -> str | None:
    """The dataset whose song ids ``dataset_name`` uses (itself unless listed in :data:`SAME_SONGS`)."""
    return SAME_SONGS.get(dataset_name, dataset_name) if dataset_name else None


@dataclass
class Scope:
    """Which tracks an evaluation scores, and what the figures mean."""

    tracks: list[DatasetTrack]
    description: str
    trained_on: str | None  # the dataset the model was trained on, when its checkpoint says


def training_record(model) -> tuple[str | None, list[str] | None]:
    """(dataset the model was trained on, its held-out test songs) as far as its checkpoint records them.

    ``train`` checkpoints keep ``run.dataset`` and ``split.test_songs``; the shipped ``accurate`` model
    keeps ``metrics.dataset`` (it was refitted on all of it: no test songs).
    """
    meta = getattr(model, "meta", None) or {}
    dataset = meta.get("run", {}).get("dataset") or (meta.get("metrics") or {}).get("dataset")
    return dataset or None, meta.get("split", {}).get("test_songs")


def select_scope(model, dataset: Dataset, *, all_tracks: bool = False, limit: int | None = None) -> Scope:
    """The labelled tracks with audio that an evaluation of ``model`` on ``dataset`` scores.

    ``limit`` keeps at most that many, taken in turn from each quadrant (in track order), for a quick look.
    """
    tracks = [t for t in dataset.with_audio() if t.quadrant is not None]
    trained_on, test_songs = training_record(model)
    same = song_family(trained_on) == song_family(dataset.name)
    if not tracks:
        raise DatasetError(f"{dataset.name}: no labelled track with audio under {dataset.root}; check --root")
    if same and test_songs is not None and not all_tracks:
        keep = set(test_songs)
        tracks = [t for t in tracks if t.track_id in keep]
        description = f"the model's {len(keep)} held-out test songs of {trained_on} present here ({len(tracks)})"
    elif same:
        description = (
            f"all {len(tracks)} tracks; the model was trained on {trained_on}"
            + (" including these songs" if test_songs is None else " (--all: its training songs are included)")
            + ": these are training-set figures, not an estimate for new music"
        )
    else:
        description = f"all {len(tracks)} tracks (the model was not trained on {dataset.name})"
    if limit is not None and limit < len(tracks):
        tracks = _round_robin(tracks, limit)
        description += f"; limited to {len(tracks)} taken in turn from each quadrant"
    if not tracks:
        raise DatasetError(f"{dataset.name}: none of the model's test songs has audio here; use --all to score all")
    return Scope(tracks, description, trained_on)


def _round_robin(tracks: list[DatasetTrack], limit: int) -> list[DatasetTrack]:
    by_quadrant = {q: [t for t in tracks if t.quadrant == q] for q in QUADRANTS}
    out: list[DatasetTrack] = []
    for i in range(max(len(v) for v in by_quadrant.values())):
        for q in QUADRANTS:
            if i < len(by_quadrant[q]) and len(out) < limit:
                out.append(by_quadrant[q][i])
    return out


Runner = Callable[[list[Path]], tuple[list[Analysis], dict[str, str]]]
"""Analyses files: returns the analyses of those that worked and ``{path: reason}`` for the others."""


def in_process(model, progress: Callable[[int, int], None] | None = None) -> Runner:
    """A :data:`Runner` analysing the files one after the other in this process."""
    from moodscope.analysis.analyzer import analyze
    from moodscope.errors import MoodscopeError

    def run(paths: list[Path]) -> tuple[list[Analysis], dict[str, str]]:
        analyses, failed = [], {}
        for i, path in enumerate(paths):
            try:
                analyses.append(analyze(path, model=model))
            except MoodscopeError as exc:
                failed[str(path)] = str(exc)
            if progress:
                progress(i + 1, len(paths))
        return analyses, failed

    return run


def evaluate_model(
    model_spec,
    dataset: Dataset,
    *,
    all_tracks: bool = False,
    limit: int | None = None,
    run: Runner | None = None,
) -> dict:
    """Metrics of a model on a labelled dataset (see the module docstring), as a JSON-ready dict.

    ``model_spec``: 'accurate', 'fast', a checkpoint path or a loaded model. ``run`` analyses the
    tracks' files with that same model (default: :func:`in_process`). Tracks that fail to decode are
    listed under ``failed`` and left out.
    """
    from moodscope.analysis.pretrained import load_model

    model = load_model(model_spec)
    scope = select_scope(model, dataset, all_tracks=all_tracks, limit=limit)
    by_path = {str(t.audio_path): t for t in scope.tracks}
    analyses, failed = (run or in_process(model))([t.audio_path for t in scope.tracks if t.audio_path is not None])
    if not analyses:
        raise DatasetError(f"{dataset.name}: no track could be analysed ({len(failed)} failed)")
    pairs = [(by_path[a.source], a) for a in analyses]
    first = analyses[0]
    result = {
        "model": first.model,
        "model_hash": first.model_hash,
        "moodscope_version": first.moodscope_version,
        "dataset": dataset.name,
        "root": str(dataset.root),
        "scope": scope.description,
        "trained_on": scope.trained_on,
        "n_tracks": len(pairs),
        "failed": dict(failed),
        "quadrants": _quadrant_metrics(pairs),
    }
    if getattr(model, "task", "quadrants") == "va":
        targets = (getattr(model, "meta", {}) or {}).get("run", {}).get("va_targets", "static")
        va = _va_metrics(pairs, targets)
        if va is not None:
            result["va"] = va | {"targets": targets, "va_meaning": first.va_meaning}
    return result


def _quadrant_metrics(pairs) -> dict:
    from moodscope.datasets.labels import quadrant_index
    from moodscope.datasets.segments import track_segment_va
    from moodscope.training.evaluate import classification_metrics

    seg_true, seg_pred, song_true, song_pred = [], [], [], []
    for track, analysis in pairs:
        n = len(analysis.probabilities)
        va = track_segment_va(track, n, "mixed")
        if np.isnan(va).any():  # quadrant labels only (4Q)
            labels = np.full(n, QUADRANTS.index(track.quadrant))
        else:
            labels = quadrant_index(va[:, 0], va[:, 1])
        seg_true.append(labels)
        seg_pred.append(analysis.probabilities.argmax(axis=1))
        song_true.append(QUADRANTS.index(track.quadrant))
        song_pred.append(QUADRANTS.index(analysis.summary.quadrant))
    song = classification_metrics(np.array(song_true), np.array(song_pred))
    song["aggregation"] = "the analysis summary (what `moodscope analyze` reports per track)"
    return {"segment": classification_metrics(np.concatenate(seg_true), np.concatenate(seg_pred)), "song": song}


def _va_metrics(pairs, targets: str) -> dict | None:
    from moodscope.datasets.labels import from_reported_va
    from moodscope.datasets.segments import track_segment_va
    from moodscope.training.evaluate import regression_metrics

    seg_pred, seg_true, song_pred, song_true = [], [], [], []
    for track, analysis in pairs:
        if track.valence is None or track.arousal is None:
            continue
        truth = track_segment_va(track, len(analysis.va), targets)
        labelled = ~np.isnan(truth[:, 0])
        seg_pred.append(from_reported_va(analysis.va)[labelled])
        seg_true.append(truth[labelled])
        song_pred.append(from_reported_va(np.array([analysis.summary.valence, analysis.summary.arousal])))
        song_true.append((track.valence, track.arousal))
    if not song_true:
        return None
    return {
        "segment": regression_metrics(np.concatenate(seg_pred), np.concatenate(seg_true)),
        "song": regression_metrics(np.array(song_pred), np.array(song_true)),
    }


def write_evaluation_report(result: dict, out_dir: Path) -> Path:
    """``metrics.json``, ``report.md`` and song/segment confusion matrices (PNG) under ``out_dir``."""
    from moodscope.training.report import metrics_markdown, plot_confusion, va_markdown, write_json

    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(result, out_dir / "metrics.json")
    lines = [
        f"# {result['model']} on {result['dataset']}",
        "",
        f"Model `{result['model']}` (sha256 `{result['model_hash']}`), moodscope {result['moodscope_version']}; "
        f"dataset `{result['dataset']}` at `{result['root']}`; scored: {result['scope']}.",
        "",
    ]
    if result["failed"]:
        lines += [f"{len(result['failed'])} tracks could not be analysed and are left out.", ""]
    for level in ("song", "segment"):
        metrics = result["quadrants"][level]
        plot_confusion(metrics["confusion"], out_dir / f"confusion-{level}.png", f"{result['model']} ({level})")
        lines += [metrics_markdown(metrics, f"quadrants, {level} level"), f"![confusion](confusion-{level}.png)", ""]
    if "va" in result:
        lines += [f"Valence/arousal ({result['va']['targets']} targets), on the [-1, 1] annotation scale.", ""]
        lines += [va_markdown(result["va"][level], f"valence/arousal, {level} level") for level in ("song", "segment")]
    from moodscope.fileio import write_text

    return write_text(out_dir / "report.md", "\n".join(lines))
