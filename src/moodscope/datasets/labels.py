"""Valence/arousal scales, Russell's quadrants and per-segment labels.

Quadrants use the standard numbering of Russell's circumplex, as the 4Q dataset and most of the
field do: Q1 = +valence +arousal, Q2 = -valence +arousal, Q3 = -valence -arousal,
Q4 = +valence -arousal. Kerhalkar et al. number Q2 and Q4 the other way round (their "Q2" is
+valence -arousal); :data:`PAPER_TO_RUSSELL` translates their tables.
"""

from __future__ import annotations

import numpy as np

from moodscope.constants import NEAR_AXIS_THRESHOLD, QUADRANTS, SEGMENT_SECONDS

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
    """The quadrant name ('Q1'..'Q4') of one valence/arousal point."""
    return QUADRANTS[int(quadrant_index(valence, arousal))]


def near_axis(valence: np.ndarray, arousal: np.ndarray, threshold: float = NEAR_AXIS_THRESHOLD) -> np.ndarray:
    """True where a point lies within ``threshold`` of either axis (the paper drops those segments)."""
    return (np.abs(np.asarray(valence)) < threshold) | (np.abs(np.asarray(arousal)) < threshold)


def segment_va(
    n_segments: int,
    static_va: tuple[float, float],
    dynamic: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Valence/arousal of each segment [shape=(n_segments, 2)], in [-1, 1].

    A segment takes the mean of the dynamic annotations that fall inside its time window
    ``[i * SEGMENT_SECONDS, (i + 1) * SEGMENT_SECONDS)`` where there are any, otherwise the song's
    static label. ``dynamic`` is ``(times, valence, arousal)``: annotation times in seconds of the
    audio file and their values (NaN where missing).
    """
    out = np.tile(np.asarray(static_va, dtype=float), (n_segments, 1))
    if dynamic is None:
        return out
    times, valence, arousal = (np.asarray(x, dtype=float) for x in dynamic)
    index = np.floor(times / SEGMENT_SECONDS).astype(int)
    ok = ~(np.isnan(valence) | np.isnan(arousal)) & (index >= 0) & (index < n_segments)
    for i in np.unique(index[ok]):
        inside = ok & (index == i)
        out[i] = (valence[inside].mean(), arousal[inside].mean())
    return out
