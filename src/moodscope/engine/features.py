"""Filling the feature cache (:mod:`moodscope.features.cache`) on an engine: ``moodscope features``."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path

from moodscope.engine.base import Engine
from moodscope.engine.jobs import ExtractJob
from moodscope.engine.registry import engine_scope
from moodscope.features.cache import CacheResult, prepare_store, remove_temporary_files, split_fresh, write_failures

log = logging.getLogger(__name__)


def build_cache(
    items: Iterable[tuple[str, Path]],
    store: Path,
    *,
    engine: Engine | str = "local",
    workers: int | None = None,
    address: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> CacheResult:
    """Extract features of ``(track_id, audio_path)`` items into ``store``, skipping fresh ones.

    Runs on ``engine`` ('local' with ``workers`` processes, default all cores; 'ray' at ``address``;
    or an open :class:`Engine`); with the ray engine the store must be on a file system every node
    sees. ``progress(done, total)`` is called after each file. A file that fails (or whose worker
    keeps dying) is recorded in ``result.failed`` and ``failures.json``; the others go on. On an
    interruption (Ctrl-C) the workers are stopped; finished files are kept. Temporary files left
    by a run that was killed outright are removed first (so one build per store at a time).
    """
    store = Path(store)
    prepare_store(store)
    todo, fresh = split_fresh(items, store)
    result = CacheResult(store=store, skipped=fresh)
    with engine_scope(engine, workers=workers, address=address) as runner:
        results = runner.map(ExtractJob(str(store)), [(track_id, str(path)) for track_id, path in todo])
        try:
            for done, (track_id, seconds, error) in enumerate(results, 1):
                if error is None:
                    result.extracted.append(track_id)
                    result.audio_seconds += seconds
                else:
                    log.warning("%s", error)
                    result.failed[track_id] = error
                if progress:
                    progress(done, len(todo))
        finally:
            results.close()  # stop the workers now, before cleaning up after them
            remove_temporary_files(store)  # of workers stopped mid-write
    write_failures(store, result.failed)
    return result
