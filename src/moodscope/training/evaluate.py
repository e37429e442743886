"""Metrics at segment and song level, and the one rule that turns segment predictions into a song's.

Segment level scores every 5-s segment on its own. Song level first aggregates each song's segment
probabilities with :func:`song_probabilities` — the rule ``analyze`` uses for a track's summary
too, so that song-level figures describe what users get — then takes the arg-max. A song's true
label is its dataset label where given (``song_labels``), else the majority quadrant of its segments.
"""

from __future__ import annotations

import numpy as np

from moodscope.constants import QUADRANTS

SONG_AGGREGATION = "mean-prob"
"""The song-aggregation rule, recorded in song-level metrics: the arithmetic mean of the segments'
probabilities. It is the probability that a segment drawn at random from the song is in each
quadrant, it lies between the segments' own values, and one segment the model finds very unlikely
for a quadrant (a quiet intro, a break) lowers that quadrant by its share of the song only; a
geometric mean (mean log-probability) lets such a segment veto the song's true quadrant."""


def song_probabilities(probs: np.ndarray) -> np.ndarray:
    """A song's quadrant probabilities [shape=(4,)] from its segments' [shape=(n, 4)]: their mean."""
    return np.asarray(probs, dtype=np.float64).mean(axis=0)


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


def aggregate_songs(probs: np.ndarray, track_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Song ids (sorted) and their probabilities [shape=(n_songs, 4)] by :func:`song_probabilities`."""
    songs, inverse = np.unique(np.asarray(track_ids), return_inverse=True)
    sums = np.zeros((len(songs), probs.shape[1]))
    np.add.at(sums, inverse, np.asarray(probs, np.float64))
    return songs, sums / np.bincount(inverse, minlength=len(songs))[:, None]


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
) -> dict:
    """``{"segment": metrics, "song": metrics}`` of segment probabilities against their labels."""
    labels, track_ids = np.asarray(labels), np.asarray(track_ids)
    segment = classification_metrics(labels, probs.argmax(axis=1))
    songs, song_probs = aggregate_songs(probs, track_ids)
    truth = majority_labels(labels, track_ids) | (song_labels or {})
    song = classification_metrics(np.array([truth[str(s)] for s in songs]), song_probs.argmax(axis=1))
    song["aggregation"] = SONG_AGGREGATION
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
