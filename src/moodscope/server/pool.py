"""The bounded analysis pool: uploads are analysed by a few threads; beyond the queue, 503.

``workers`` threads analyse at once (torch and the feature code release the GIL, so the event
loop keeps answering ``/health`` and library queries meanwhile); ``queue`` more requests may wait.
A request takes a :class:`Slot` *before* its body is received — when all ``workers + queue`` slots
are taken it gets 503 with ``Retry-After`` straight away, without uploading anything — and gives it
back when its analysis ends (or when it fails or is cancelled before the analysis starts).
Each worker thread lets torch use ``cores // workers`` threads, so the pool never asks for more
cores than the machine has.
"""

from __future__ import annotations

import asyncio
import math
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from moodscope.server.errors import ApiError

DEFAULT_SECONDS = 5.0
"""Assumed duration of one analysis before any has finished (for ``Retry-After``)."""


class Slot:
    """One admitted request; :meth:`release` is idempotent."""

    def __init__(self, pool: AnalysisPool):
        self._pool = pool
        self._released = False

    def release(self) -> None:
        with self._pool._lock:
            if not self._released:
                self._released = True
                self._pool._admitted -= 1


class AnalysisPool:
    def __init__(self, workers: int, queue: int):
        self.workers = workers
        self.capacity = workers + queue
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="moodscope-analysis")
        self._lock = threading.Lock()
        self._admitted = 0
        self._running = 0
        self._mean_seconds: float | None = None
        self.threads_per_worker = max(1, (os.cpu_count() or 1) // workers)

    def status(self) -> dict:
        with self._lock:
            return {"workers": self.workers, "capacity": self.capacity, "admitted": self._admitted,
                    "running": self._running}  # fmt: skip

    def retry_after(self) -> int:
        """Seconds until a slot is likely free: the waiting work spread over the workers."""
        with self._lock:
            mean = self._mean_seconds or DEFAULT_SECONDS
            backlog = max(1, self._admitted - self.capacity + self.workers)
        return max(1, min(120, math.ceil(mean * backlog / self.workers)))

    def reserve(self) -> Slot:
        """A slot for one analysis, or :class:`ApiError` 503 with ``Retry-After`` when the queue is full."""
        with self._lock:
            if self._admitted < self.capacity:
                self._admitted += 1
                return Slot(self)
        seconds = self.retry_after()
        raise ApiError(
            503,
            f"the server is analysing {self.capacity} files already; try again in {seconds} s",
            headers={"Retry-After": str(seconds)},
        )

    def submit(self, slot: Slot, fn: Callable, *args) -> Future:
        """Run ``fn(*args)`` on a worker thread; the slot is released when it ends."""

        def work():
            import torch

            with self._lock:
                self._running += 1
            started = time.perf_counter()
            try:
                if torch.get_num_threads() != self.threads_per_worker:
                    torch.set_num_threads(self.threads_per_worker)
                return fn(*args)
            finally:
                seconds = time.perf_counter() - started
                with self._lock:
                    self._running -= 1
                    self._mean_seconds = (
                        seconds if self._mean_seconds is None else 0.8 * self._mean_seconds + 0.2 * seconds
                    )
                slot.release()

        return self._executor.submit(work)

    async def run(self, slot: Slot, fn: Callable, *args, cancelled: Callable | None = None, poll: float = 0.5):
        """Await ``fn(*args)`` on the pool. ``cancelled`` (an async callable, e.g. the request's
        ``is_disconnected``) is polled while waiting: when it says yes, a job that has not started is
        dropped and its slot released, and :class:`ApiError` 400 is raised (nobody reads it)."""
        future = self.submit(slot, fn, *args)
        wrapped = asyncio.wrap_future(future)
        while True:
            done, _ = await asyncio.wait({wrapped}, timeout=poll)
            if done:
                return wrapped.result()
            if cancelled is not None and await cancelled():
                if future.cancel():
                    slot.release()
                raise ApiError(400, "the client disconnected before the analysis ended")

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
