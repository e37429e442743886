"""The local engine: worker processes on this machine, the default.

Each worker process sets the job up once (loads the model, one thread per process) and is handed
one file at a time, largest files first, so the workers finish together. Where workers are forked
(Linux), the job is first set up in this process too: the workers inherit what it imported and
loaded (for ``accurate``: ONNX Runtime and the model's two sessions, which survive the fork; for
``fast``: torch and its network) instead of each importing and loading it again. The parent knows which
file each worker holds: a worker that dies (a decoder crash, the OOM killer) is replaced and its
file tried once more in a fresh process; if that one dies too, only that file fails.

Workers never outlive the parent: on Linux they get ``SIGKILL`` when it dies (``PR_SET_PDEATHSIG``),
and everywhere a watchdog thread exits them when their parent process is gone. They ignore
``SIGINT``; the parent stops them when it is interrupted.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

from moodscope.engine.base import WORKER_DIED, Engine, FileResult, Item, Job, failure, largest_first
from moodscope.engine.jobs import AnalyzeJob

log = logging.getLogger(__name__)

ATTEMPTS = 2
"""How many worker processes may die on one file before it is reported as failed."""

WATCHDOG_SECONDS = 0.5
"""How often a worker checks that its parent process is still alive."""

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def exit_with_parent(parent_pid: int, *, death_signal: bool = True) -> None:
    """Make this (worker) process exit when the process ``parent_pid`` that started it dies.

    A daemon thread checks every :data:`WATCHDOG_SECONDS` that the parent is still there (an orphan
    is adopted by another process and its parent id changes). With ``death_signal``, on Linux, the
    kernel also sends ``SIGKILL`` at once when the parent dies (``PR_SET_PDEATHSIG``); only for a
    process started from the parent's main thread, since the signal follows the thread that started
    it, not its process.
    """
    if death_signal and sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:  # the parent died before this was set up
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(WATCHDOG_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="moodscope-parent-watchdog", daemon=True).start()


def run_safely(job: Job, key: str, path: str) -> FileResult:
    """``job.run(key, path)``; a job that raises still gives its file a result."""
    try:
        return job.run(key, path)
    except Exception as exc:
        return failure(key, path, exc)


def _worker_main(job: Job, conn: Connection, parent_pid: int, from_main_thread: bool) -> None:
    """A worker process: set the job up, then run it on each ``(key, path)`` received until ``None``."""
    exit_with_parent(parent_pid, death_signal=from_main_thread)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not a handler inherited from the parent: just stop
    with job.running(in_worker=True):
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                return
            if message is None:
                return
            conn.send(run_safely(job, *message))


@dataclass
class _Worker:
    process: multiprocessing.process.BaseProcess
    conn: Connection
    item: Item | None = None  # what it is working on


@dataclass
class _Pool:
    """Worker processes handed one item at a time (see the module docstring)."""

    job: Job
    size: int
    workers: list[_Worker] = field(default_factory=list)

    def spawn(self) -> _Worker:
        context = multiprocessing.get_context()
        parent_end, child_end = context.Pipe()
        from_main = threading.current_thread() is threading.main_thread()
        process = context.Process(
            target=_worker_main,
            args=(self.job, child_end, os.getpid(), from_main),
            name="moodscope-worker",
            daemon=True,
        )
        process.start()
        child_end.close()
        worker = _Worker(process, parent_end)
        self.workers.append(worker)
        return worker

    def run(self, items: Sequence[Item]) -> Iterator[FileResult]:
        pending = list(items)
        deaths: dict[str, int] = {}
        for _ in range(min(self.size, len(pending))):
            self._give(self.spawn(), pending)
        while busy := [w for w in self.workers if w.item is not None]:
            ready = set(wait([w.conn for w in busy] + [w.process.sentinel for w in busy]))
            for worker in busy:
                if worker.conn in ready:
                    try:
                        result = worker.conn.recv()
                    except (EOFError, OSError):  # the worker died: its end of the pipe closed
                        result = self._died(worker, deaths, pending)
                    else:
                        worker.item = None
                        self._give(worker, pending)
                elif worker.process.sentinel in ready:
                    result = self._died(worker, deaths, pending)
                else:
                    continue
                if result is not None:
                    yield result

    def _give(self, worker: _Worker, pending: list[Item]) -> None:
        if pending:
            worker.item = pending.pop(0)
            worker.conn.send(worker.item)

    def _died(self, worker: _Worker, deaths: dict[str, int], pending: list[Item]) -> FileResult | None:
        """A worker died holding its item: replace it and try the item again in the new process,
        or report the item as failed after :data:`ATTEMPTS` deaths."""
        assert worker.item is not None  # only a busy worker can die holding an item
        key, path = worker.item
        worker.process.join()
        worker.conn.close()
        self.workers.remove(worker)
        deaths[key] = deaths.get(key, 0) + 1
        log.warning("a worker process died (exit code %s) working on %s", worker.process.exitcode, path)
        result = None
        if deaths[key] >= ATTEMPTS:
            result = FileResult(key, None, f"{path}: {WORKER_DIED}")
        else:
            pending.insert(0, (key, path))
        if pending:
            self._give(self.spawn(), pending)
        return result

    def close(self) -> None:
        """Stop every worker: ask idle ones to finish, terminate busy ones, then reap them."""
        for worker in self.workers:
            try:
                if worker.item is None:
                    worker.conn.send(None)
                else:
                    worker.process.terminate()
            except (OSError, ValueError):
                worker.process.terminate()
        deadline = time.monotonic() + 5.0
        for worker in self.workers:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.conn.close()
        self.workers.clear()


class LocalEngine(Engine):
    """Processes on this machine: ``workers`` of them (default: one per core).

    With one worker (or one file) the job runs in this process, where it may use every core
    (the analysis of a single file does).
    """

    name = "local"

    def __init__(self, workers: int | None = None):
        self.workers = max(1, workers or os.cpu_count() or 1)

    def analyze(self, items: Sequence[Item], model: Any = None) -> Generator[FileResult, None, None]:
        return self.map(AnalyzeJob(model), items)

    def map(self, job: Job, items: Sequence[Item]) -> Generator[FileResult, None, None]:
        items = list(items)
        if not items:
            return
        if self.workers == 1 or len(items) == 1:
            with job.running(in_worker=False):
                for key, path in items:
                    yield run_safely(job, key, path)
            return
        with set_up_for_forked_workers(job):
            pool = _Pool(job, min(self.workers, len(items)))
            try:
                yield from pool.run(largest_first(items))
            finally:
                pool.close()


@contextlib.contextmanager
def set_up_for_forked_workers(job: Job) -> Iterator[None]:
    """``job.running(in_worker=False)`` in this process around the pool when workers are forked, so
    that each inherits the setup (imports, a loaded model: copy-on-write memory) rather than redoing
    it; with the spawn or forkserver start methods there is nothing to inherit and nothing is done.

    With ``accurate`` this is ``import onnxruntime`` and the sessions' creation (about 0.3 CPU-seconds)
    once instead of once per worker; with ``fast`` about 1.2 CPU-seconds of ``import torch`` fewer per worker.
    """
    if multiprocessing.get_context().get_start_method() != "fork":
        yield
        return
    with job.running(in_worker=False):
        yield
