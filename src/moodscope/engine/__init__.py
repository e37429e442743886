"""Engine: running analysis and feature extraction over many files, on this machine or a Ray cluster.

``moodscope analyze``, ``moodscope library scan`` and ``moodscope features`` all run through one
interface (:mod:`~moodscope.engine.base`): an :class:`Engine` runs a :class:`Job` over
``(key, path)`` items and yields one :class:`FileResult` per file as each finishes. Two engines:

- ``local`` (:mod:`~moodscope.engine.local`, the default): worker processes on this machine;
- ``ray`` (:mod:`~moodscope.engine.ray_engine`, ``pip install 'moodscope[ray]'``): a Ray Data
  pipeline on a Ray cluster, or on a Ray instance started on this machine.

The batches built on them: :func:`~moodscope.engine.analysis.analyze_files` (and the resumable
Parquet dataset of :mod:`~moodscope.engine.dataset`) and
:func:`~moodscope.engine.features.build_cache`. The library's scan uses :meth:`Engine.analyze`
directly. Importing this package is cheap; the batches load numpy and the models on first use.
"""

from __future__ import annotations

from typing import Any

from moodscope.engine.base import ENGINES, Engine, FileResult, Job
from moodscope.engine.registry import open_engine

__all__ = ["ENGINES", "Engine", "FileResult", "Job", "analyze_files", "build_cache", "open_engine"]


def __getattr__(name: str) -> Any:
    if name == "analyze_files":
        from moodscope.engine.analysis import analyze_files

        return analyze_files
    if name == "build_cache":
        from moodscope.engine.features import build_cache

        return build_cache
    raise AttributeError(f"module 'moodscope.engine' has no attribute {name!r}")
