"""Training and evaluation: split protocols (song-level grouped, and the paper's), the training
loop, metrics, reports and the reproduction of the paper's Table 3.

Only the (torch-free) :class:`TrainConfig` is exported here, so that the command line can build
its ``--help`` from it without importing torch; the rest lives in the modules
:mod:`~moodscope.training.protocols`, :mod:`~moodscope.training.loop`,
:mod:`~moodscope.training.evaluate`, :mod:`~moodscope.training.report`,
:mod:`~moodscope.training.reproduce`, :mod:`~moodscope.training.nested` (nested artist-grouped
cross-validation) and :mod:`~moodscope.training.calibration` (temperature scaling, ECE).
"""

from __future__ import annotations

from moodscope.training.config import TrainConfig

__all__ = ["TrainConfig"]
