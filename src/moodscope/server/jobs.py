"""Scan jobs: ``POST /api/v1/scan`` queues a library scan of a folder inside the configured roots.

Which folders may be scanned (:func:`resolve_scan_folder`): only those whose real path — after
``..`` and every symbolic link are resolved — is one of the ``--root`` folders or inside one.
Client text is never decoded again (``%2e%2e`` is a folder literally named so) and never reaches a
shell. Jobs run one at a time on a background thread, each with its own library connection, through
:meth:`moodscope.library.MoodLibrary.scan` (the call ``moodscope library scan`` makes); their
progress is kept in memory (the last :data:`KEEP_JOBS`).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from moodscope.server.errors import ApiError

log = logging.getLogger(__name__)

KEEP_JOBS = 100
MAX_WAITING = 8


def resolve_scan_folder(folder: str | None, roots: tuple[Path, ...]) -> Path:
    """The folder to scan: ``folder`` (absolute, or relative to the first root; None = the first
    root) if its real path is inside one of ``roots`` (real paths), else :class:`ApiError`."""
    if not roots:
        raise ApiError(403, "scanning is disabled on this server; start it with --root DIR to allow scans of DIR")
    if folder is None or folder == "":
        return roots[0]
    if "\x00" in folder:
        raise ApiError(400, "the folder name contains a NUL character")
    candidate = Path(folder)
    if not candidate.is_absolute():
        candidate = roots[0] / candidate
    try:
        real = Path(os.path.realpath(candidate))
        inside = any(real == root or real.is_relative_to(root) for root in roots)
        if not inside:
            allowed = ", ".join(map(str, roots))
            raise ApiError(403, f"{folder}: outside the folders this server may scan ({allowed})")
        if not real.is_dir():
            raise ApiError(400, f"{folder}: not a folder")
    except OSError as exc:
        raise ApiError(400, f"{folder}: cannot be used ({exc.strerror or exc})") from exc
    return real


@dataclass
class ScanJob:
    id: int
    folder: str
    options: dict
    state: str = "queued"  # queued, running, done, failed
    stage: str | None = None  # "hash" or "analyse" while running
    done: int = 0
    total: int = 0
    failures: dict[str, str] = field(default_factory=dict)
    result: dict | None = None
    error: str | None = None
    created: float = field(default_factory=time.time)
    finished: float | None = None

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "folder": self.folder,
            "options": self.options,
            "state": self.state,
            "stage": self.stage,
            "done": self.done,
            "total": self.total,
            "failures": dict(self.failures),
            "result": self.result,
            "error": self.error,
            "created": self.created,
            "finished": self.finished,
        }


class ScanJobs:
    """Queued scans of one library, run one after the other."""

    def __init__(self, db: Path, *, model: str | None, workers: int):
        self.db = db
        self.model = model
        self.workers = workers
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="moodscope-scan")
        self._jobs: dict[int, ScanJob] = {}
        self._lock = threading.Lock()
        self._next = 1

    def submit(self, folder: Path, *, force: bool = False, retry_failed: bool = False, prune: bool = True) -> ScanJob:
        with self._lock:
            waiting = sum(job.state in ("queued", "running") for job in self._jobs.values())
            if waiting >= MAX_WAITING:
                raise ApiError(
                    503, f"{waiting} scans are waiting already; try again later", headers={"Retry-After": "30"}
                )
            options = {"force": force, "retry_failed": retry_failed, "prune": prune}
            job = ScanJob(self._next, str(folder), options)
            self._next += 1
            self._jobs[job.id] = job
            for old in sorted(self._jobs)[: max(0, len(self._jobs) - KEEP_JOBS)]:
                if self._jobs[old].state in ("done", "failed"):
                    del self._jobs[old]
        self._executor.submit(self._run, job, folder)
        return job

    def get(self, job_id: int) -> ScanJob | None:
        with self._lock:
            return self._jobs.get(job_id)

    def _run(self, job: ScanJob, folder: Path) -> None:
        from moodscope.errors import MoodscopeError
        from moodscope.library import MoodLibrary

        def progress(stage: str, done: int, total: int) -> None:
            job.stage, job.done, job.total = stage, done, total

        job.state = "running"
        try:
            with MoodLibrary(self.db) as lib:
                result = lib.scan(folder, model=self.model, workers=self.workers, progress=progress, **job.options)
            job.failures = dict(result.failed)
            job.result = {
                "analysed": len(result.analysed),
                "reused": len(result.reused),
                "moved": len(result.moved),
                "touched": len(result.touched),
                "pruned": len(result.pruned),
                "unchanged": result.unchanged,
                "failed": len(result.failed),
                "skipped_failed": len(result.skipped_failed),
                "seconds": round(result.seconds, 3),
            }
            job.state = "done"
        except MoodscopeError as exc:
            job.error, job.state = str(exc), "failed"
        except Exception as exc:  # a bug: keep the server up and say so in the job
            log.exception("scan job %d failed", job.id)
            job.error, job.state = f"{type(exc).__name__}: {exc}", "failed"
        finally:
            job.finished = time.time()

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
