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


def resample_timeline(values: np.ndarray, points: int = SHAPE_POINTS) -> np.ndarray:
    """Linear resampling of a timeline [shape=(n,)] to [shape=(points,)] over its relative length."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) == 1:
        return np.repeat(values, points)
    return np.interp(np.linspace(0, 1, points), np.linspace(0, 1, len(values)), values)


def profile_vector(probabilities: np.ndarray, va: np.ndarray) -> np.ndarray:
    """The profile [shape=(PROFILE_SIZE,)] of a track from its segment probabilities [shape=(n, 4)]
    and valence/arousal [shape=(n, 2)]."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    va = np.asarray(va, dtype=np.float64)
    if probabilities.ndim != 2 or probabilities.shape[1] != N_Q or len(probabilities) == 0:
        raise ValueError(f"expected probabilities of shape (n>0, {N_Q}), got {probabilities.shape}")
    if va.shape != (len(probabilities), 2):
        raise ValueError(f"expected va of shape ({len(probabilities)}, 2), got {va.shape}")
    out = np.empty(PROFILE_SIZE, dtype=np.float64)
    mean = va.mean(axis=0)
    out[VA] = mean
    out[PROBS] = probabilities.mean(axis=0)
    out[SHARE] = np.bincount(probabilities.argmax(axis=1), minlength=N_Q) / len(probabilities)
    out[STD] = va.std(axis=0)
    centred = va - mean
    out[SHAPE] = np.concatenate([resample_timeline(centred[:, 0]), resample_timeline(centred[:, 1])])
    return out.astype(np.float32)
