"""The engine interface: run one job over many files, yield one result per file as each finishes.

A :class:`Job` is the work done on one file (analyse it, extract its features into the cache).
An :class:`Engine` runs a job over ``(key, path)`` items in parallel and yields a
:class:`FileResult` per item, in the order they finish, each item exactly once; a file that fails
(bad audio, a worker process that keeps dying on it) is a result with an ``error``, never an
exception that stops the others. Two engines implement it: :class:`~moodscope.engine.local.LocalEngine`
(processes on this machine) and :class:`~moodscope.engine.ray_engine.RayEngine` (a Ray cluster).
"""

from __future__ import annotations

import contextlib
import os
from abc import ABC, abstractmethod
from collections.abc import Generator, Sequence
from typing import Any, NamedTuple, Protocol

from moodscope.errors import MoodscopeError

ENGINES = ("local", "ray")

Item = tuple[str, str]
"""``(key, path)``: the name results are reported under (a path, a track id) and the file to read
(a local path or, with the ray engine, an fsspec URL such as ``s3://bucket/song.mp3``)."""

WORKER_DIED = "the process working on this file died (a decoder crash or out of memory)"


class FileResult(NamedTuple):
    """The outcome of a job on one file: a ``value`` or an ``error`` message naming the file."""

    key: str
    value: Any = None
    error: str | None = None


class Job(Protocol):
    """Work on one file, run in worker processes (or in the caller's process).

    Jobs are pickled to worker processes, so they hold only what is needed to rebuild their state
    (a model name, a folder), not loaded models.
    """

    def running(self, *, in_worker: bool) -> contextlib.AbstractContextManager:
        """Set up (load the model, limit threads) around a run of :meth:`run` calls.

        ``in_worker``: in a worker process of its own, one of several on the machine (one thread),
        rather than in the caller's process.
        """
        ...

    def run(self, key: str, path: str) -> FileResult:
        """Do the work on one file; per-file problems are returned as ``FileResult.error``, not raised."""
        ...


def failure(key: str, path: str, exc: BaseException) -> FileResult:
    """The result of a job that raised on one file: moodscope errors as they are (they name the
    file), anything else with its type and the file's path."""
    if isinstance(exc, MoodscopeError):
        return FileResult(key, None, str(exc))
    return FileResult(key, None, f"{path}: {type(exc).__name__}: {exc}")


def file_size(path: str) -> int:
    """Size in bytes of a local file (0 when it cannot be read or is a URL): to start large files first."""
    try:
        return os.path.getsize(path)
    except (OSError, ValueError):
        return 0


def largest_first(items: Sequence[Item]) -> list[Item]:
    """Items ordered by file size, largest first: workers then finish together instead of one
    working alone on a long file at the end."""
    return sorted(items, key=lambda item: file_size(item[1]), reverse=True)


class Engine(ABC):
    """Runs jobs over files in parallel. Use as a context manager (or call :meth:`close`)."""

    name: str

    @abstractmethod
    def map(self, job: Job, items: Sequence[Item]) -> Generator[FileResult, None, None]:
        """Run ``job`` on every item; yield one :class:`FileResult` per item as each finishes, each
        item exactly once. Closing the generator (or an exception in the consumer) stops the work."""

    @abstractmethod
    def analyze(self, items: Sequence[Item], model: Any = None) -> Generator[FileResult, None, None]:
        """Analyse every file with ``model`` (a name, a checkpoint path or a loaded model); values are
        :class:`~moodscope.analysis.analyzer.Analysis`. Same contract as :meth:`map`."""

    def close(self) -> None:
        """Release the engine's resources (processes, a cluster connection)."""
        return None

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
