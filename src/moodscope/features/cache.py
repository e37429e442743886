"""On-disk feature store: extract once, reuse for every model and protocol.

Layout: ``<out>/<dataset>-<params_hash>/<track_id>.npz``, one NPZ per track holding the
:class:`~moodscope.features.extract.SegmentFeatures` arrays of *all* whole 5-s segments of the file plus
a ``stamp`` (source path, size, modification time) and the feature parameters as JSON. Clip
policies (the paper's 45 s, drop-last) are applied when loading, so one store serves them all.

Each file is written to a temporary name and renamed into place, so an interrupted run leaves no
half-written file and the next run resumes with the tracks still missing. A track whose audio
changed (size or modification time) is extracted again. The batch that fills a store runs on an
engine: :func:`moodscope.engine.features.build_cache`.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from moodscope.audio import load_audio, segment_audio
from moodscope.constants import SAMPLE_RATE, SEGMENT_SECONDS
from moodscope.errors import MoodscopeError
from moodscope.features.extract import FEATURE_PARAMS, SegmentFeatures, extract_features, feature_params_hash
from moodscope.fileio import atomic_write

log = logging.getLogger(__name__)


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
        np.savez(fh, **arrays)  # type: ignore[arg-type]  # numpy's stubs type **kwds as the allow_pickle flag


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
    return extract_features(segments), len(y) / SAMPLE_RATE


def extract_to_store(store: Path, track_id: str, audio_path: Path) -> float:
    """Extract the features of one file into ``store``; return its duration in seconds.

    Raises :class:`~moodscope.errors.AudioError` (naming the file) when it cannot be used.
    """
    feats, seconds = extract_file(audio_path)
    arrays = feats.as_dict() | {
        "stamp": np.array(json.dumps(_stamp(audio_path))),
        "params": np.array(json.dumps(FEATURE_PARAMS)),
        "duration": np.array(seconds),
    }
    atomic_write_npz(track_file(store, track_id), arrays)
    return seconds


def prepare_store(store: Path) -> None:
    """Create ``store`` with its ``params.json``; remove temporary files of a run killed outright
    (so one build per store at a time)."""
    store.mkdir(parents=True, exist_ok=True)
    remove_temporary_files(store)
    with atomic_write(store / "params.json") as fh:
        fh.write(json.dumps(FEATURE_PARAMS, indent=1))


def split_fresh(items: Iterable[tuple[str, Path]], store: Path) -> tuple[list[tuple[str, Path]], list[str]]:
    """``(items to extract, track ids already fresh in the store)``."""
    todo, fresh = [], []
    for track_id, path in items:
        path = Path(path)
        if path.exists() and is_fresh(store, track_id, path):
            fresh.append(track_id)
        else:
            todo.append((track_id, path))
    return todo, fresh


def remove_temporary_files(store: Path) -> None:
    for stale in store.glob(".*.tmp"):
        stale.unlink(missing_ok=True)


def write_failures(store: Path, failed: dict[str, str]) -> None:
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
