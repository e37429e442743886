"""Per-feature standardisation whose statistics come from the training part only.

One mean and standard deviation per MFCC coefficient (for ``mfcc``, ``delta`` and ``delta2``,
pooled over segments and frames), per frame series (pooled over segments and frames) and per
static feature. The statistics travel in the checkpoint as plain lists, so a model always sees
features scaled exactly as in training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from moodscope.constants import N_MFCC, N_SERIES, N_STATIC
from moodscope.features.extract import SegmentFeatures

FEATURE_KEYS = ("mfcc", "delta", "delta2", "series", "static")
EPS = 1e-6


@dataclass
class Normalization:
    """``mean[key]``, ``std[key]``: one value per row of each feature (``N_MFCC`` for ``mfcc``, ``delta`` and
    ``delta2``, ``N_SERIES`` for ``series``, ``N_STATIC`` for ``static``)."""

    mean: dict[str, np.ndarray]
    std: dict[str, np.ndarray]

    @classmethod
    def fit(cls, features: SegmentFeatures) -> Normalization:
        """Statistics of ``features`` (the training segments; duplicates from oversampling excluded)."""
        mean, std = {}, {}
        for key, x in features.as_dict().items():
            axes = (0,) if x.ndim == 2 else (0, 2)  # static: per column; others: per row over frames
            x64 = x.astype(np.float64)
            mean[key] = x64.mean(axis=axes).astype(np.float32)
            std[key] = np.maximum(x64.std(axis=axes), EPS).astype(np.float32)
        return cls(mean, std)

    @classmethod
    def identity(cls) -> Normalization:
        sizes = {"mfcc": N_MFCC, "delta": N_MFCC, "delta2": N_MFCC, "series": N_SERIES, "static": N_STATIC}
        return cls(
            {k: np.zeros(n, np.float32) for k, n in sizes.items()},
            {k: np.ones(n, np.float32) for k, n in sizes.items()},
        )

    def apply(self, features: SegmentFeatures) -> SegmentFeatures:
        out = {}
        for key, x in features.as_dict().items():
            shape = (1, -1) if x.ndim == 2 else (1, -1, 1)
            m, s = self.mean[key].reshape(shape), self.std[key].reshape(shape)
            out[key] = ((x - m) / s).astype(np.float32)
        return SegmentFeatures(**out)

    def to_dict(self) -> dict[str, dict[str, list[float]]]:
        return {
            "mean": {k: [float(v) for v in a] for k, a in self.mean.items()},
            "std": {k: [float(v) for v in a] for k, a in self.std.items()},
        }

    @classmethod
    def from_dict(cls, d: dict) -> Normalization:
        return cls(
            {k: np.asarray(v, np.float32) for k, v in d["mean"].items()},
            {k: np.asarray(v, np.float32) for k, v in d["std"].items()},
        )
