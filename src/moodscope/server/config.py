"""What a server serves and how much work it accepts (the options of ``moodscope serve``)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

MAX_UPLOAD_MB = 50
"""Default upload size limit (MiB), ``--max-upload-mb``."""


def default_workers() -> int:
    """Analyses run at once by default: half the cores (one on a 2-core machine), so one core stays
    free to answer library queries and ``/health`` while uploads are analysed."""
    return max(1, (os.cpu_count() or 2) // 2)


@dataclass
class ServerConfig:
    """Everything :func:`~moodscope.server.app.create_app` needs.

    ``db`` None is the default library (:func:`~moodscope.library.db.default_library_path`);
    ``model`` None is the default model. ``roots`` are the only folders ``POST /api/v1/scan`` may
    scan (none: scanning disabled). ``queue`` analyses may wait beside the ``workers`` running ones;
    beyond that an upload gets 503 with ``Retry-After``.
    """

    db: Path | None = None
    model: str | None = None
    workers: int = field(default_factory=default_workers)
    queue: int | None = None  # default: 4 per worker
    roots: tuple[Path, ...] = ()
    max_upload_bytes: int = MAX_UPLOAD_MB * 2**20
    cors_origin: str | None = None
    connections: int = 2  # library connections lent to the request threads (each keeps its own query caches)

    def __post_init__(self) -> None:
        from moodscope.errors import MoodscopeError

        if self.workers < 1:
            raise MoodscopeError(f"--workers must be at least 1 (got {self.workers})")
        if self.queue is None:
            self.queue = 4 * self.workers
        if self.queue < 0:
            raise MoodscopeError(f"--queue must be 0 or more (got {self.queue})")
        if self.max_upload_bytes < 1:
            raise MoodscopeError("--max-upload-mb must be positive")
        roots = []
        for root in self.roots:
            path = Path(root).expanduser()
            if not path.is_dir():
                raise MoodscopeError(f"--root {root}: not a folder; give a folder of music the server may scan")
            roots.append(Path(os.path.realpath(path)))
        self.roots = tuple(roots)
