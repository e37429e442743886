"""On-disk feature store: extract once, reuse for every model and protocol.

Layout: ``<out>/<dataset>-<params_hash>/<track_id>.npz``, one NPZ per track holding the
:class:`~moodscope.features.extract.SegmentFeatures` arrays of *all* whole 5-s segments of the file plus
a ``stamp`` (source path, size, modification time) and the feature parameters as JSON. Clip
policies (the paper's 45 s, drop-last) are applied when loading, so one store serves them all.

Each file is written to a temporary name and renamed into place, so an interrupted run leaves no
half-written file and the next run resumes with the tracks still missing. A track whose audio
changed (size or modification time) is extracted again. Failures are collected, not raised.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, as_completed, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from moodscope.audio import load_audio, segment_audio
from moodscope.constants import SEGMENT_SECONDS
from moodscope.errors import MoodscopeError
from moodscope.features.extract import FEATURE_PARAMS, SegmentFeatures, extract_features, feature_params_hash
from moodscope.fileio import atomic_write

log = logging.getLogger(__name__)

DEFAULT_CACHE_DIR = Path(os.environ.get("MOODSCOPE_CACHE", Path.home() / ".cache" / "moodscope" / "features"))


@dataclass
class CacheResult:
    """What a cache build did: track ids extracted, skipped (already fresh) and failed (with reasons)."""

    store: Path
    extracted: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    audio_seconds: float = 0.0


def store_dir(out: str | Path, dataset: str) -> Path:
    return Path(out) / f"{dataset}-{feature_params_hash()}"


def _safe_name(track_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", track_id)


def track_file(store: Path, track_id: str) -> Path:
    return store / f"{_safe_name(track_id)}.npz"


def _stamp(path: Path) -> dict:
    st = path.stat()
    return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def atomic_write_npz(target: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` to ``target`` so that readers only ever see a complete file."""
    with atomic_write(target, "wb") as fh:
        np.savez(fh, **arrays)


def is_fresh(store: Path, track_id: str, audio_path: Path) -> bool:
    """True when the store holds features of ``audio_path`` as it is on disk now."""
    f = track_file(store, track_id)
    if not f.exists():
        return False
    try:
        with np.load(f) as data:
            stamp = json.loads(str(data["stamp"]))
    except Exception:  # unreadable: extract again
        return False
    now = _stamp(audio_path)
    return stamp.get("size") == now["size"] and stamp.get("mtime_ns") == now["mtime_ns"]


def extract_file(audio_path: Path) -> tuple[SegmentFeatures, float]:
    """Decode, segment and extract one file. Returns its features and its duration in seconds."""
    y = load_audio(audio_path)
    segments = segment_audio(y, source=str(audio_path))
    return extract_features(segments), len(y) / FEATURE_PARAMS["sample_rate"]


def _extract_to_store(store: Path, track_id: str, audio_path: Path) -> tuple[str, float, str | None]:
    try:
        feats, seconds = extract_file(audio_path)
        arrays = feats.as_dict() | {
            "stamp": np.array(json.dumps(_stamp(audio_path))),
            "params": np.array(json.dumps(FEATURE_PARAMS)),
            "duration": np.array(seconds),
        }
        atomic_write_npz(track_file(store, track_id), arrays)
        return track_id, seconds, None
    except MoodscopeError as exc:
        return track_id, 0.0, str(exc)
    except Exception as exc:  # a batch never dies on one file
        return track_id, 0.0, f"{audio_path}: {type(exc).__name__}: {exc}"


def _init_worker() -> None:
    import threadpoolctl

    threadpoolctl.threadpool_limits(1)


WORKER_DIED = "the process extracting this file died (a decoder crash or out of memory)"


def build_cache(
    items: Iterable[tuple[str, Path]],
    store: Path,
    *,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> CacheResult:
    """Extract features of ``(track_id, audio_path)`` items into ``store``, skipping fresh ones.

    ``workers`` processes work in parallel (default: all cores); each uses one BLAS thread, as does
    the serial path (``workers=1``). ``progress(done, total)`` is called after each file. A file that
    fails (or whose worker process dies) is recorded in ``result.failed`` and ``failures.json``; the
    others go on. On an interruption (Ctrl-C) queued files are cancelled; finished ones are kept.
    Temporary files left by a run that was killed outright are removed first (so one build per
    store at a time).
    """
    import threadpoolctl

    store.mkdir(parents=True, exist_ok=True)
    _remove_temporary_files(store)  # of a run that was killed outright
    with atomic_write(store / "params.json") as fh:
        fh.write(json.dumps(FEATURE_PARAMS, indent=1))
    result = CacheResult(store=store)
    todo = []
    for track_id, path in items:
        path = Path(path)
        if path.exists() and is_fresh(store, track_id, path):
            result.skipped.append(track_id)
        else:
            todo.append((track_id, path))
    total = len(todo)
    workers = max(1, workers or os.cpu_count() or 1)
    done = 0

    def record(track_id: str, seconds: float, error: str | None) -> None:
        nonlocal done
        done += 1
        if error is None:
            result.extracted.append(track_id)
            result.audio_seconds += seconds
        else:
            log.warning("%s", error)
            result.failed[track_id] = error
        if progress:
            progress(done, total)

    if workers == 1 or total <= 1:
        # one BLAS thread: on small matrices OpenBLAS's extra threads only slow this down (3x seen)
        with threadpoolctl.threadpool_limits(1):
            for track_id, path in todo:
                record(*_extract_to_store(store, track_id, path))
    else:
        lost = _run_pool(store, todo, workers, record)
        if lost:
            # a worker died and took the pool's pending files with it: run those again, each in a
            # process of its own, so that a file that kills its process fails alone
            log.warning("a worker process died; retrying %d files one process each", len(lost))
            _remove_temporary_files(store)  # the broken pool killed its other workers mid-write
            _run_isolated(store, lost, workers, record)
            _remove_temporary_files(store)
    _write_failures(store, result.failed)
    return result


def _remove_temporary_files(store: Path) -> None:
    for stale in store.glob(".*.tmp"):
        stale.unlink(missing_ok=True)


def _run_pool(
    store: Path, todo: list[tuple[str, Path]], workers: int, record: Callable[[str, float, str | None], None]
) -> list[tuple[str, Path]]:
    """Extract ``todo`` in one process pool; return the files lost to a dead worker process."""
    lost = []
    pool = ProcessPoolExecutor(max_workers=min(workers, len(todo)), initializer=_init_worker)
    try:
        futures = {pool.submit(_extract_to_store, store, tid, p): (tid, p) for tid, p in todo}
        for fut in as_completed(futures):
            try:
                record(*fut.result())
            except BrokenProcessPool:
                lost.append(futures[fut])
    except BaseException:
        # interrupted: do not wait for the queued files; finished ones are already in place
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    return sorted(lost, key=lambda item: todo.index(item))


def _run_isolated(
    store: Path, todo: list[tuple[str, Path]], workers: int, record: Callable[[str, float, str | None], None]
) -> None:
    """Extract each file of ``todo`` in a fresh process, ``workers`` at a time."""
    pending = list(todo)
    running: dict = {}
    try:
        while pending or running:
            while pending and len(running) < workers:
                tid, p = pending.pop(0)
                pool = ProcessPoolExecutor(max_workers=1, initializer=_init_worker)
                running[pool.submit(_extract_to_store, store, tid, p)] = (tid, p, pool)
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in finished:
                tid, p, pool = running.pop(fut)
                pool.shutdown(wait=False)
                try:
                    record(*fut.result())
                except BrokenProcessPool:
                    record(tid, 0.0, f"{p}: {WORKER_DIED}")
    finally:
        for *_, pool in running.values():
            pool.shutdown(wait=False, cancel_futures=True)


def _write_failures(store: Path, failed: dict[str, str]) -> None:
    target = store / "failures.json"
    with atomic_write(target) as fh:
        fh.write(json.dumps(failed, indent=1, sort_keys=True))


def load_track_features(store: Path, track_id: str) -> SegmentFeatures:
    f = track_file(store, track_id)
    if not f.exists():
        raise MoodscopeError(f"{f}: no cached features for track {track_id!r}; run `moodscope features` first")
    with np.load(f) as data:
        return SegmentFeatures(**{k: data[k] for k in ("mfcc", "delta", "delta2", "series", "static")})


def clip_segments(n_segments: int, *, clip_seconds: float | None = None, drop_last: bool = False) -> int:
    """How many leading segments a clip policy keeps out of ``n_segments`` whole ones."""
    n = n_segments if clip_seconds is None else min(n_segments, int(clip_seconds // SEGMENT_SECONDS))
    if drop_last and n > 1:
        n -= 1
    return n
