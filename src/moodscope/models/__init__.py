"""Models: the paper's three architectures registered by name, the pretrained musicnn taggers
(:mod:`~moodscope.models.musicnn`) and self-describing checkpoints (:mod:`~moodscope.models.checkpoint`).

====================  ============================================================  ==================
name                  inputs                                                        paper
====================  ============================================================  ==================
``cnn``               MFCC, delta, delta2 as 3 channels (13×216×3)                  Model 1
``cnn-lstm``          CNN over MFCC + delta (13×216×2) ∥ 2-layer LSTM over 5 series Model 2
``hybrid``            CNN over MFCC ∥ LSTM over RMS, ZCR ∥ DNN over 10 statics      Model 3
====================  ============================================================  ==================

Each model is a :class:`~moodscope.models.blocks.MoodNetwork` built from a dataclass config
(``build_model(name, **config)``) and returns logits over the four quadrants (Q1..Q4, Russell).
:func:`model_inputs` turns (normalised) :class:`~moodscope.features.extract.SegmentFeatures` into the
arrays a model reads.
"""

from __future__ import annotations

from dataclasses import asdict, fields

import numpy as np

from moodscope.constants import MODEL_NAMES, SERIES_NAMES
from moodscope.errors import ModelError
from moodscope.features.extract import SegmentFeatures
from moodscope.models.blocks import MoodNetwork
from moodscope.models.cnn import CNN, CNNConfig
from moodscope.models.cnn_lstm import CNNLSTM, CNNLSTMConfig
from moodscope.models.hybrid import Hybrid, HybridConfig

MODELS: dict[str, tuple[type[MoodNetwork], type]] = {
    "cnn": (CNN, CNNConfig),
    "cnn-lstm": (CNNLSTM, CNNLSTMConfig),
    "hybrid": (Hybrid, HybridConfig),
}
"""name -> (model class, config dataclass)."""
assert tuple(MODELS) == MODEL_NAMES, "constants.MODEL_NAMES must list the registered models"

PAPER_MODEL_NUMBERS = {"cnn": 1, "cnn-lstm": 2, "hybrid": 3}


def build_model(name: str, **config) -> MoodNetwork:
    """Build model ``name`` with its default config updated by ``config``."""
    if name not in MODELS:
        raise ModelError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    cls, config_cls = MODELS[name]
    known = {f.name for f in fields(config_cls)}
    unknown = set(config) - known
    if unknown:
        raise ModelError(f"unknown config keys for {name!r}: {sorted(unknown)}; known: {sorted(known)}")
    return cls(config_cls(**config))


def model_config(model: MoodNetwork) -> dict:
    """The model's config as a plain dict (lists instead of tuples), as stored in checkpoints."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(model.config).items()}


def model_inputs(model: MoodNetwork | type[MoodNetwork], features: SegmentFeatures) -> dict[str, np.ndarray]:
    """The float32 arrays ``model`` reads, keyed by ``forward`` argument name.

    ``image`` [shape=(n, channels, 13, 216)], ``series`` [shape=(n, 216, k)], ``static`` [shape=(n, 10)].
    """
    out: dict[str, np.ndarray] = {}
    if model.image_channels:
        out["image"] = np.stack([getattr(features, c) for c in model.image_channels], axis=1).astype(np.float32)
    if model.series_names:
        rows = [SERIES_NAMES.index(s) for s in model.series_names]
        out["series"] = np.ascontiguousarray(features.series[:, rows].transpose(0, 2, 1), dtype=np.float32)
    if model.uses_static:
        out["static"] = features.static.astype(np.float32)
    return out


__all__ = ["MODELS", "MoodNetwork", "build_model", "model_config", "model_inputs"]
