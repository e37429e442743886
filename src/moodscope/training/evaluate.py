"""Metrics at segment and song level.

Segment level scores every 5-s segment on its own. Song level first aggregates the segment
probabilities of each song — by default the mean of the segment log-probabilities (the geometric
mean of the probabilities, renormalised: each segment is treated as independent evidence, and one
confident segment cannot outvote the rest as easily as with a plain mean) — then takes the arg-max.
``method="mean-prob"`` averages probabilities instead. A song's true label is its dataset label
where given (``song_labels``), else the majority quadrant of its segments.
"""

from __future__ import annotations

import numpy as np

from moodscope.constants import QUADRANTS

AGGREGATIONS = ("mean-log-prob", "mean-prob")


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """Accuracy, per-quadrant precision/recall/F1/support, macro-F1 and the 4×4 confusion matrix
    (rows = true quadrant, columns = predicted), as plain JSON-ready types."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    labels = list(range(len(QUADRANTS)))
    y_true, y_pred = np.asarray(y_true, int), np.asarray(y_pred, int)
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    present = s > 0
    return {
        "n": len(y_true),
        "accuracy": float((y_true == y_pred).mean()) if len(y_true) else float("nan"),
        "macro_f1": float(f[present].mean()) if present.any() else float("nan"),
        "per_quadrant": {
            q: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
            for i, q in enumerate(QUADRANTS)
        },
        "confusion": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


def aggregate_songs(
    probs: np.ndarray, track_ids: np.ndarray, method: str = "mean-log-prob"
) -> tuple[np.ndarray, np.ndarray]:
    """Song ids (sorted) and their aggregated probabilities [shape=(n_songs, 4)]."""
    if method not in AGGREGATIONS:
        raise ValueError(f"method must be one of {AGGREGATIONS}")
    songs, inverse = np.unique(np.asarray(track_ids), return_inverse=True)
    values = np.log(np.clip(probs, 1e-12, 1.0)) if method == "mean-log-prob" else np.asarray(probs, float)
    sums = np.zeros((len(songs), probs.shape[1]))
    np.add.at(sums, inverse, values)
    mean = sums / np.bincount(inverse, minlength=len(songs))[:, None]
    if method == "mean-log-prob":
        mean = np.exp(mean - mean.max(axis=1, keepdims=True))
        mean /= mean.sum(axis=1, keepdims=True)
    return songs, mean


def majority_labels(labels: np.ndarray, track_ids: np.ndarray) -> dict[str, int]:
    """Each song's most frequent segment quadrant."""
    out = {}
    for song in np.unique(track_ids):
        out[str(song)] = int(np.bincount(labels[track_ids == song], minlength=len(QUADRANTS)).argmax())
    return out


def evaluate_probs(
    probs: np.ndarray,
    labels: np.ndarray,
    track_ids: np.ndarray,
    *,
    song_labels: dict[str, int] | None = None,
    method: str = "mean-log-prob",
) -> dict:
    """``{"segment": metrics, "song": metrics}`` of segment probabilities against their labels."""
    labels, track_ids = np.asarray(labels), np.asarray(track_ids)
    segment = classification_metrics(labels, probs.argmax(axis=1))
    songs, song_probs = aggregate_songs(probs, track_ids, method)
    truth = majority_labels(labels, track_ids) | (song_labels or {})
    song = classification_metrics(np.array([truth[str(s)] for s in songs]), song_probs.argmax(axis=1))
    song["aggregation"] = method
    return {"segment": segment, "song": song}


def summarize(runs: list[dict]) -> dict:
    """Mean and standard deviation over folds of accuracy, macro-F1 and per-quadrant F1, per level.

    ``runs`` are :func:`evaluate_probs` results. Returns ``{level: {metric: {"mean", "std"}}}``.
    """
    out: dict = {}
    for level in ("segment", "song"):
        table: dict[str, list[float]] = {"accuracy": [], "macro_f1": []}
        for q in QUADRANTS:
            table[f"f1_{q}"] = []
        for run in runs:
            m = run[level]
            table["accuracy"].append(m["accuracy"])
            table["macro_f1"].append(m["macro_f1"])
            for q in QUADRANTS:
                table[f"f1_{q}"].append(m["per_quadrant"][q]["f1"])
        out[level] = {
            k: {"mean": float(np.mean(v)), "std": float(np.std(v)), "values": [float(x) for x in v]}
            for k, v in table.items()
        }
    return out
