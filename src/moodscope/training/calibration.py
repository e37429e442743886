"""Calibration of quadrant probabilities: temperature scaling and the expected calibration error.

A *temperature* ``T`` divides a model's logits before the softmax (or each binary head's logit before
its sigmoid): ``T > 1`` softens over-confident probabilities, ``T < 1`` sharpens timid ones; the
arg-max of a softmax does not change. It is fitted by minimising the negative log-likelihood of
held-out predictions (never the data the model was fitted on).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

ECE_BINS = 10
"""Equal-width confidence bins of :func:`expected_calibration_error`."""
TEMPERATURE_BOUNDS = (0.05, 20.0)
"""The range searched by :func:`fit_temperature`."""

ProbaAt = Callable[[float], np.ndarray]
"""Probabilities [shape=(n, k)] of a set of held-out items at a given temperature."""


def expected_calibration_error(probs: np.ndarray, y: np.ndarray, n_bins: int = ECE_BINS) -> float:
    """Top-label ECE of ``probs`` [shape=(n, k)] against labels ``y`` [shape=(n,)]: the items are binned by
    their highest probability (``n_bins`` equal-width bins of [0, 1]); the mean over bins, weighted by
    their share of the items, of |accuracy - mean confidence|. 0 = perfectly calibrated."""
    probs, y = np.asarray(probs, np.float64), np.asarray(y, int)
    if len(y) == 0:
        return float("nan")
    confidence = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == y).astype(float)
    bins = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    total = 0.0
    for b in np.unique(bins):
        inside = bins == b
        total += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return float(total)


def log_loss(probs: np.ndarray, y: np.ndarray) -> float:
    """Mean negative log-likelihood of the labels ``y`` under ``probs`` [shape=(n, k)]."""
    p = np.asarray(probs, np.float64)[np.arange(len(y)), np.asarray(y, int)]
    return float(-np.log(np.clip(p, 1e-12, 1.0)).mean())


def fit_temperature(predictions: Sequence[tuple[ProbaAt, np.ndarray]]) -> float:
    """The temperature minimising the log-loss of held-out ``predictions``: pairs of (probabilities as a
    function of the temperature, the items' labels), e.g. the out-of-fold predictions of inner folds."""
    from scipy.optimize import minimize_scalar

    y = np.concatenate([labels for _, labels in predictions])

    def loss(log_t: float) -> float:
        return log_loss(np.concatenate([proba(float(np.exp(log_t))) for proba, _ in predictions]), y)

    low, high = np.log(TEMPERATURE_BOUNDS)
    best = minimize_scalar(loss, bounds=(low, high), method="bounded", options={"xatol": 1e-3})
    return float(np.exp(best.x))
