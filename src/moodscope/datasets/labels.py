"""Valence/arousal scales, Russell's quadrants and per-segment labels.

Quadrants use the standard numbering of Russell's circumplex, as the 4Q dataset and most of the
field do: Q1 = +valence +arousal, Q2 = -valence +arousal, Q3 = -valence -arousal,
Q4 = +valence -arousal. Kerhalkar et al. number Q2 and Q4 the other way round (their "Q2" is
+valence -arousal); :data:`PAPER_TO_RUSSELL` translates their tables.
"""

from __future__ import annotations

from typing import overload

import numpy as np

from moodscope.constants import NEAR_AXIS_THRESHOLD, QUADRANTS, SEGMENT_SECONDS, VA_RANGE

PAPER_TO_RUSSELL = {"Q1": "Q1", "Q2": "Q4", "Q3": "Q3", "Q4": "Q2"}
"""The paper's quadrant names -> the standard ones (the mapping is its own inverse)."""


def scale_1_9(x: np.ndarray | float) -> np.ndarray | float:
    """Map a 1–9 rating scale (DEAM, emoMusic static) to [-1, 1]: (x − 5) / 4."""
    return (np.asarray(x, dtype=float) - 5.0) / 4.0


def scale_0_1(x: np.ndarray | float) -> np.ndarray | float:
    """Map a 0–1 scale (PMEmo) to [-1, 1]: 2x − 1."""
    return 2.0 * np.asarray(x, dtype=float) - 1.0


def quadrant_index(valence: np.ndarray | float, arousal: np.ndarray | float) -> np.ndarray:
    """Quadrant index 0..3 (Q1..Q4, Russell's numbering) of valence/arousal points in [-1, 1].

    Points on an axis go to the positive side (valence 0 counts as positive, arousal 0 as positive).
    """
    v = np.asarray(valence, dtype=float)
    a = np.asarray(arousal, dtype=float)
    pos_v, pos_a = v >= 0, a >= 0
    return np.where(pos_a, np.where(pos_v, 0, 1), np.where(pos_v, 3, 2))


def quadrant_from_va(valence: float, arousal: float) -> str:
    """The quadrant name ('Q1'..'Q4') of one valence/arousal point in [-1, 1]."""
    return QUADRANTS[int(quadrant_index(valence, arousal))]


def reported_quadrant_index(valence: np.ndarray | float, arousal: np.ndarray | float) -> np.ndarray:
    """Quadrant index 0..3 (Q1..Q4) of points on the reported scale ``VA_RANGE`` (what analyses, the
    library and the web API hold): the boundaries lie at its midpoint, points on them go to the
    positive side. The quadrant a point is drawn in on every map."""
    v, a = (np.asarray(x, dtype=float) for x in (valence, arousal))
    return quadrant_index(from_reported_va(v), from_reported_va(a))


def reported_quadrant(valence: float, arousal: float) -> str:
    """The quadrant name ('Q1'..'Q4') of one point on the reported scale ``VA_RANGE``."""
    return QUADRANTS[int(reported_quadrant_index(valence, arousal))]


def near_axis(valence: np.ndarray, arousal: np.ndarray, threshold: float = NEAR_AXIS_THRESHOLD) -> np.ndarray:
    """True where a point lies within ``threshold`` of either axis (the paper drops those segments)."""
    return (np.abs(np.asarray(valence)) < threshold) | (np.abs(np.asarray(arousal)) < threshold)


def segment_dynamic_va(
    n_segments: int, dynamic: tuple[np.ndarray, np.ndarray, np.ndarray], *, min_samples: int = 1
) -> np.ndarray:
    """Mean of the dynamic annotations inside each segment [shape=(n_segments, 2)], in [-1, 1]; NaN rows
    for segments with fewer than ``min_samples`` annotated samples.

    Segment ``i`` is the window ``[i * SEGMENT_SECONDS, (i + 1) * SEGMENT_SECONDS)``. ``dynamic`` is
    ``(times, valence, arousal)``: annotation times in seconds of the audio file and their values (NaN
    where missing).
    """
    out = np.full((n_segments, 2), np.nan)
    times, valence, arousal = (np.asarray(x, dtype=float) for x in dynamic)
    index = np.floor(times / SEGMENT_SECONDS).astype(int)
    ok = ~(np.isnan(valence) | np.isnan(arousal)) & (index >= 0) & (index < n_segments)
    counts = np.bincount(index[ok], minlength=n_segments)
    for i in np.flatnonzero(counts >= max(min_samples, 1)):
        inside = ok & (index == i)
        out[i] = (valence[inside].mean(), arousal[inside].mean())
    return out


def segment_va(
    n_segments: int,
    static_va: tuple[float, float],
    dynamic: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Valence/arousal of each segment [shape=(n_segments, 2)], in [-1, 1]: the mean of the dynamic
    annotations inside it where there are any (:func:`segment_dynamic_va`), otherwise the song's static label.
    """
    out = np.tile(np.asarray(static_va, dtype=float), (n_segments, 1))
    if dynamic is None:
        return out
    dyn = segment_dynamic_va(n_segments, dynamic)
    annotated = ~np.isnan(dyn[:, 0])
    out[annotated] = dyn[annotated]
    return out


@overload
def to_reported_va(x: np.ndarray) -> np.ndarray: ...


@overload
def to_reported_va(x: float) -> float: ...


def to_reported_va(x: np.ndarray | float) -> np.ndarray | float:
    """Map valence/arousal from the annotation scale [-1, 1] (every dataset's labels are mapped to it:
    :func:`scale_1_9`, :func:`scale_0_1`) linearly onto the reported range ``VA_RANGE`` (0..1): the
    neutral point 0 goes to its midpoint 0.5, where the quadrant boundaries are. This is how a ``va``
    checkpoint's regressed valence/arousal are reported: (x + 1) / 2, i.e. (r - 1) / 8 for a rating r on
    DEAM's and MTurk's 1-9 scale, PMEmo's own 0-1 scale unchanged. Inverse: :func:`from_reported_va`."""
    low, high = VA_RANGE
    return low + (np.asarray(x, dtype=float) + 1.0) * (high - low) / 2.0


@overload
def from_reported_va(x: np.ndarray) -> np.ndarray: ...


@overload
def from_reported_va(x: float) -> float: ...


def from_reported_va(x: np.ndarray | float) -> np.ndarray | float:
    """Map reported valence/arousal (``VA_RANGE``) back to the annotation scale [-1, 1]."""
    low, high = VA_RANGE
    return (np.asarray(x, dtype=float) - low) * 2.0 / (high - low) - 1.0


def normal_cdf(x: np.ndarray) -> np.ndarray:
    """Φ(x), the standard normal distribution function, elementwise (``scipy.special.ndtr`` without scipy)."""
    import math

    return 0.5 * np.vectorize(math.erfc, otypes=[float])(-np.asarray(x, dtype=float) / math.sqrt(2.0))


def quadrant_probabilities_from_va(va: np.ndarray, std: np.ndarray | tuple[float, float]) -> np.ndarray:
    """Probabilities of the four quadrants [shape=(n, 4)] (Q1..Q4) of regressed valence/arousal
    [shape=(n, 2)] on [-1, 1], taking the truth as Gaussian around each estimate with standard deviation
    ``std`` per dimension (a regressor's residual error, measured on held-out songs) and the two errors
    as independent: P(valence > 0) = Φ(v / σ_v), and so on.
    """
    va = np.atleast_2d(np.asarray(va, dtype=float))
    sigma = np.maximum(np.asarray(std, dtype=float), 1e-6)
    pos_v, pos_a = normal_cdf(va[:, 0] / sigma[0]), normal_cdf(va[:, 1] / sigma[1])
    return np.stack([pos_v * pos_a, (1 - pos_v) * pos_a, (1 - pos_v) * (1 - pos_a), pos_v * (1 - pos_a)], axis=1)
