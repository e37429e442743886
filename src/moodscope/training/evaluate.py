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
    """Accuracy, per-quadrant precision/recall/F1/support, macro-F1 (over the quadrants present) and
    the 4×4 confusion matrix (rows = true quadrant, columns = predicted), as plain JSON-ready types.

    A precision, recall or F1 whose denominator is 0 is 0 (scikit-learn's ``zero_division=0``).
    """
    k = len(QUADRANTS)
    y_true, y_pred = np.asarray(y_true, int), np.asarray(y_pred, int)
    confusion = np.zeros((k, k), dtype=int)
    np.add.at(confusion, (y_true, y_pred), 1)
    hits, support, predicted = np.diag(confusion), confusion.sum(axis=1), confusion.sum(axis=0)
    precision = np.divide(hits, predicted, out=np.zeros(k), where=predicted > 0)
    recall = np.divide(hits, support, out=np.zeros(k), where=support > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(k), where=precision + recall > 0)
    present = support > 0
    return {
        "n": len(y_true),
        "accuracy": float((y_true == y_pred).mean()) if len(y_true) else float("nan"),
        "macro_f1": float(f1[present].mean()) if present.any() else float("nan"),
        "per_quadrant": {
            q: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, q in enumerate(QUADRANTS)
        },
        "confusion": confusion.tolist(),
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


# --- valence/arousal regression ------------------------------------------------------------------

VA_DIMENSIONS = ("valence", "arousal")
REGRESSION_MEASURES = ("r2", "pearson_r", "ccc", "rmse", "mae")
"""Per dimension: coefficient of determination R², Pearson's r, Lin's concordance correlation
coefficient (CCC), root mean squared and mean absolute error (the last two on the [-1, 1] scale)."""


def concordance(pred: np.ndarray, target: np.ndarray) -> float:
    """Lin's concordance correlation coefficient 2·cov / (var_p + var_t + (mean_p − mean_t)²), population
    moments: 1 for perfect agreement, 0 for a constant prediction; it penalises bias and scale, unlike r."""
    pred, target = np.asarray(pred, float), np.asarray(target, float)
    if len(pred) < 2:
        return float("nan")
    mp, mt = pred.mean(), target.mean()
    cov = ((pred - mp) * (target - mt)).mean()
    denominator = pred.var() + target.var() + (mp - mt) ** 2
    return float(2 * cov / denominator) if denominator > 0 else float("nan")


def regression_metrics(pred: np.ndarray, target: np.ndarray) -> dict:
    """:data:`REGRESSION_MEASURES` per dimension of ``pred`` and ``target`` [shape=(n, 2)] (valence,
    arousal), and ``n``, as plain JSON-ready types. R² is 1 − SS_res / SS_tot (negative when the
    prediction is worse than the targets' mean); r and R² are NaN when either side is constant."""
    pred, target = np.asarray(pred, float), np.asarray(target, float)
    out: dict = {"n": len(pred)}
    for d, name in enumerate(VA_DIMENSIONS):
        p, t = pred[:, d], target[:, d]
        err = p - t
        ss_tot = ((t - t.mean()) ** 2).sum() if len(t) else 0.0
        r = float(np.corrcoef(p, t)[0, 1]) if len(p) > 1 and p.std() > 0 and t.std() > 0 else float("nan")
        out[name] = {
            "r2": float(1 - (err**2).sum() / ss_tot) if ss_tot > 0 else float("nan"),
            "pearson_r": r,
            "ccc": concordance(p, t),
            "rmse": float(np.sqrt((err**2).mean())) if len(err) else float("nan"),
            "mae": float(np.abs(err).mean()) if len(err) else float("nan"),
        }
    return out


def song_means(values: np.ndarray, track_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Song ids (sorted) and the mean of each song's rows of ``values`` [shape=(n_songs, d)]."""
    songs, inverse = np.unique(np.asarray(track_ids), return_inverse=True)
    sums = np.zeros((len(songs), values.shape[1]))
    np.add.at(sums, inverse, values)
    return songs, sums / np.bincount(inverse, minlength=len(songs))[:, None]


def evaluate_va(
    pred: np.ndarray,
    target: np.ndarray,
    track_ids: np.ndarray,
    *,
    song_targets: dict[str, tuple[float, float]] | None = None,
) -> dict:
    """``{"segment": metrics, "song": metrics}`` of regressed valence/arousal [shape=(n, 2)].

    Segment level compares every segment with its own label. Song level compares the mean of a song's
    segment estimates with the song's label: its static annotation where given (``song_targets``, the
    per-song figure Music2Emo and MARBLE report), else the mean of its segment labels.
    """
    pred, target = np.asarray(pred, float), np.asarray(target, float)
    songs, song_pred = song_means(pred, track_ids)
    _, song_mean_target = song_means(target, track_ids)
    truth = song_targets or {}
    song_target = np.array([truth.get(str(s), tuple(m)) for s, m in zip(songs, song_mean_target)], float)
    song = regression_metrics(song_pred, song_target)
    song["target"] = "static" if song_targets else "segment-mean"
    return {"segment": regression_metrics(pred, target), "song": song}


def summarize_va(runs: list[dict]) -> dict:
    """Mean and standard deviation over folds of every regression measure, per level and dimension.

    ``runs`` are :func:`evaluate_va` results. Returns ``{level: {f"{dim}_{measure}": {"mean", "std", "values"}}}``.
    """
    out: dict = {}
    for level in ("segment", "song"):
        table = {
            f"{dim}_{m}": [run[level][dim][m] for run in runs] for dim in VA_DIMENSIONS for m in REGRESSION_MEASURES
        }
        out[level] = {
            k: {"mean": float(np.nanmean(v)), "std": float(np.nanstd(v)), "values": [float(x) for x in v]}
            if np.isfinite(v).any()
            else {"mean": float("nan"), "std": float("nan"), "values": [float(x) for x in v]}
            for k, v in table.items()
        }
    return out
