"""The emotion profile of a track: one fixed-length vector built from its analysis.

The vector [shape=(PROFILE_SIZE,)] float32 holds, in this order:

- ``valence``, ``arousal``: means over the segments (``Summary.valence``/``arousal``);
- ``p_Q1..p_Q4``: song-level quadrant probabilities (mean of the segment probabilities);
- ``share_Q1..share_Q4``: fraction of segments whose top quadrant is each (the quadrant distribution);
- ``valence_std``, ``arousal_std``: how much the mood moves within the track;
- ``shape``: the valence then the arousal timeline minus its mean, resampled to ``SHAPE_POINTS``
  points over the track's length (the shape of the timeline, whatever the track's duration).

It is stored as a BLOB per track so that a whole library loads into one matrix with one query.
"""

from __future__ import annotations

import numpy as np

from moodscope.constants import QUADRANTS

SHAPE_POINTS = 8
"""Points per timeline (valence, arousal) in the resampled shape."""

N_Q = len(QUADRANTS)
VA = slice(0, 2)
PROBS = slice(2, 2 + N_Q)
SHARE = slice(2 + N_Q, 2 + 2 * N_Q)
STD = slice(2 + 2 * N_Q, 4 + 2 * N_Q)
SHAPE = slice(4 + 2 * N_Q, 4 + 2 * N_Q + 2 * SHAPE_POINTS)
PROFILE_SIZE = SHAPE.stop


def resample_timelines(values: np.ndarray, points: int = SHAPE_POINTS) -> np.ndarray:
    """Linear resampling of timelines of one length [shape=(m, n)] to [shape=(m, points)] over their relative
    length, each row computed with the arithmetic of ``np.interp`` (so results are identical to it, bit for bit)."""
    values = np.asarray(values, dtype=np.float64)
    n = values.shape[1]
    if n == 1:
        return np.repeat(values, points, axis=1)
    x, xp = np.linspace(0, 1, points), np.linspace(0, 1, n)
    out = np.empty((len(values), points))
    for i, at in enumerate(x):  # np.interp: the left knot j with xp[j] <= x < xp[j + 1]; exact knots copied
        j = int(np.searchsorted(xp, at, side="right")) - 1
        if j >= n - 1 or xp[j] == at:
            out[:, i] = values[:, min(j, n - 1)]
        else:
            slope = (values[:, j + 1] - values[:, j]) / (xp[j + 1] - xp[j])
            out[:, i] = slope * (at - xp[j]) + values[:, j]
    return out


def resample_timeline(values: np.ndarray, points: int = SHAPE_POINTS) -> np.ndarray:
    """Linear resampling of a timeline [shape=(n,)] to [shape=(points,)] over its relative length."""
    return resample_timelines(np.asarray(values, dtype=np.float64)[None], points)[0]


def profile_vectors(probabilities: np.ndarray, va: np.ndarray) -> np.ndarray:
    """The profiles [shape=(m, PROFILE_SIZE)] float32 of ``m`` tracks of ``n`` segments each, from their segment
    probabilities [shape=(m, n, 4)] and valence/arousal [shape=(m, n, 2)]: row ``i`` equals
    ``profile_vector(probabilities[i], va[i])`` exactly (the same reductions over the same axis)."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    va = np.asarray(va, dtype=np.float64)
    if probabilities.ndim != 3 or probabilities.shape[2] != N_Q or probabilities.shape[1] == 0:
        raise ValueError(f"expected probabilities of shape (m, n>0, {N_Q}), got {probabilities.shape}")
    m, n = probabilities.shape[:2]
    if va.shape != (m, n, 2):
        raise ValueError(f"expected va of shape ({m}, {n}, 2), got {va.shape}")
    out = np.empty((m, PROFILE_SIZE), dtype=np.float64)
    mean = va.mean(axis=1)
    out[:, VA] = mean
    out[:, PROBS] = probabilities.mean(axis=1)
    top = probabilities.argmax(axis=2)
    out[:, SHARE] = (top[:, :, None] == np.arange(N_Q)).sum(axis=1) / n
    out[:, STD] = va.std(axis=1)
    centred = va - mean[:, None, :]
    out[:, SHAPE] = np.concatenate([resample_timelines(centred[:, :, 0]), resample_timelines(centred[:, :, 1])], axis=1)
    return out.astype(np.float32)


def profile_vector(probabilities: np.ndarray, va: np.ndarray) -> np.ndarray:
    """The profile [shape=(PROFILE_SIZE,)] of a track from its segment probabilities [shape=(n, 4)]
    and valence/arousal [shape=(n, 2)]."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    va = np.asarray(va, dtype=np.float64)
    if probabilities.ndim != 2 or probabilities.shape[1] != N_Q or len(probabilities) == 0:
        raise ValueError(f"expected probabilities of shape (n>0, {N_Q}), got {probabilities.shape}")
    if va.shape != (len(probabilities), 2):
        raise ValueError(f"expected va of shape ({len(probabilities)}, 2), got {va.shape}")
    return profile_vectors(probabilities[None], va[None])[0]
