"""Features: the hybrid spectral-temporal vector of the paper's Table 2, computed per 5-s segment.

Five frame-level series (amplitude envelope, RMS, zero-crossing rate, spectral centroid and
spread), 13 MFCC with deltas and delta-deltas, and ten static mean/std features
(:mod:`~moodscope.features.extract`); an on-disk cache of them per dataset
(:mod:`~moodscope.features.cache`); and the normalisation fitted on a training part
(:mod:`~moodscope.features.normalization`).
"""

from __future__ import annotations

from moodscope.features.extract import FEATURE_PARAMS, SegmentFeatures, extract_features

__all__ = ["FEATURE_PARAMS", "SegmentFeatures", "extract_features"]
