"""The jobs the engines run on each file: analyse it, extract its features into the cache, or embed it."""

from __future__ import annotations

import contextlib
import ctypes
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moodscope.engine.base import FileResult, failure


def limit_threads_to_one() -> None:
    """One BLAS/OpenMP thread in this process, and one torch thread if torch is loaded (the ``fast``
    model, checkpoints of the paper's networks): a worker among one per core. The ``accurate``
    model's ONNX Runtime sessions have one thread already, and it does not import torch."""
    import threadpoolctl

    threadpoolctl.threadpool_limits(1)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters, from glibc's <malloc.h>
MALLOC_MMAP_THRESHOLD = 32 << 20
"""Allocations below this size come from the heap (glibc's largest allowed value on 64-bit systems)."""
MALLOC_TRIM_THRESHOLD = 256 << 20
"""Free memory at the top of the heap is handed back to the system only beyond this size."""


def keep_freed_memory() -> bool:
    """Make malloc keep the memory this (worker) process frees, for its next file, instead of handing
    it back to the system; returns whether it could (glibc only).

    By default glibc trims the heap as soon as a file's arrays are freed (its dynamic threshold is
    a few MB) and the next file faults the same pages in again, zero-filled by the kernel: about
    4,500 page faults per 30-s clip, up to a seventh of the CPU time of ``moodscope features``
    (``benchmarks/features.py``). With these settings
    arrays up to :data:`MALLOC_MMAP_THRESHOLD` come from the heap and are reused; a worker keeps at
    most its peak heap, plus :data:`MALLOC_TRIM_THRESHOLD` of free memory.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, MALLOC_MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, MALLOC_TRIM_THRESHOLD)
    )


@dataclass
class AnalyzeJob:
    """:func:`~moodscope.analysis.analyzer.analyze` on one file with ``model`` (a shipped model name,
    a checkpoint path, a loaded model or None for the default), loaded once per process."""

    model: Any = None
    _loaded: Any = field(default=None, init=False, repr=False, compare=False)

    def __getstate__(self) -> dict:
        return {"model": self.model, "_loaded": None}  # workers load the model themselves

    @contextlib.contextmanager
    def running(self, *, in_worker: bool) -> Iterator[None]:
        """Load the model, unless it is already loaded: a forked worker inherits its parent's
        (:func:`moodscope.engine.local.set_up_for_forked_workers`)."""
        from moodscope.analysis.pretrained import load_model

        inherited = self._loaded
        if inherited is None:
            self._loaded = load_model(self.model)
        if in_worker:
            limit_threads_to_one()  # after loading: whether torch is there depends on the model
        try:
            yield
        finally:
            self._loaded = inherited

    def run(self, key: str, path: str) -> FileResult:
        from moodscope.analysis.analyzer import analyze
        from moodscope.engine.sources import local_copy

        try:
            with local_copy(path) as local:
                analysis = analyze(local, model=self._loaded)
            analysis.source = path
            return FileResult(key, analysis)
        except Exception as exc:  # one bad file never stops a batch
            return failure(key, path, exc)


@dataclass
class ExtractJob:
    """Extract one file's features into ``store`` (the worker writes the file); the value is the
    file's duration in seconds."""

    store: str

    @contextlib.contextmanager
    def running(self, *, in_worker: bool) -> Iterator[None]:
        import numpy.fft  # noqa: F401  (numpy imports it on first use)
        import threadpoolctl

        from moodscope.audio import import_decoders

        import_decoders()  # in the caller's process: workers forked from it inherit them
        if in_worker:
            keep_freed_memory()
        # one BLAS thread, in workers and in the caller's process alike: on these small matrices
        # OpenBLAS's extra threads only slow it down (3x seen)
        with threadpoolctl.threadpool_limits(1):
            yield

    def run(self, key: str, path: str) -> FileResult:
        from moodscope.features import cache

        try:
            return FileResult(key, cache.extract_to_store(Path(self.store), key, Path(path)))
        except Exception as exc:  # a batch never dies on one file
            return failure(key, path, exc)


@dataclass
class EmbedJob:
    """Per-segment embeddings of one file (:func:`~moodscope.analysis.embeddings.track_embeddings`):
    the value is ``(segment start times, {block: vectors})``."""

    blocks: tuple[str, ...]

    @contextlib.contextmanager
    def running(self, *, in_worker: bool) -> Iterator[None]:
        if in_worker:
            limit_threads_to_one()
        yield

    def run(self, key: str, path: str) -> FileResult:
        from moodscope.analysis.embeddings import track_embeddings

        try:
            return FileResult(key, track_embeddings(path, self.blocks))
        except Exception as exc:  # one bad file never stops a batch
            return failure(key, path, exc)
