"""Labelled segments of a dataset: cached features joined with per-segment labels and groups.

This is the table every model and protocol trains on: one row per 5-s segment, with the track it
came from, its artist (for grouped splits), its valence/arousal where the dataset has them and its
quadrant index (0..3 = Q1..Q4, Russell's numbering).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from moodscope.constants import DYNAMIC_RATE_HZ, MIN_DYNAMIC_COVERAGE, QUADRANTS, SEGMENT_SECONDS
from moodscope.datasets.base import Dataset, DatasetTrack
from moodscope.datasets.labels import near_axis, quadrant_index, segment_dynamic_va, segment_va
from moodscope.errors import DatasetError
from moodscope.features.cache import clip_segments, load_track_features, track_file
from moodscope.features.extract import SegmentFeatures

log = logging.getLogger(__name__)


@dataclass
class SegmentTable:
    features: SegmentFeatures
    track_ids: np.ndarray  # (n,) str
    segment_index: np.ndarray  # (n,) int, position of the segment in its track
    artists: np.ndarray  # (n,) str; the track id where the dataset has no artist
    va: np.ndarray  # (n, 2) valence, arousal in [-1, 1]; NaN where the dataset has only quadrants
    quadrant: np.ndarray  # (n,) int 0..3

    def __len__(self) -> int:
        return len(self.track_ids)

    def select(self, index: np.ndarray) -> SegmentTable:
        return SegmentTable(
            features=self.features.select(index),
            track_ids=self.track_ids[index],
            segment_index=self.segment_index[index],
            artists=self.artists[index],
            va=self.va[index],
            quadrant=self.quadrant[index],
        )

    def quadrant_counts(self) -> dict[str, int]:
        return {q: int((self.quadrant == i).sum()) for i, q in enumerate(QUADRANTS)}


VA_TARGETS = ("mixed", "static", "dynamic")
"""Which valence/arousal a segment is labelled with (see :func:`track_segment_va`)."""


def track_segment_va(track: DatasetTrack, n_segments: int, targets: str = "mixed") -> np.ndarray:
    """Valence/arousal labels of a track's first ``n_segments`` segments [shape=(n, 2)], on [-1, 1]; NaN
    rows for segments without a label (and all NaN when the dataset has only quadrants).

    ``targets``: ``mixed`` — the mean of the segment's dynamic annotations where there are any, else the
    song's static label; ``static`` — the song's static label on every segment; ``dynamic`` — the mean of
    the segment's dynamic annotations, for segments with at least ``MIN_DYNAMIC_COVERAGE`` of their
    samples annotated (DEAM, emoMusic and PMEmo annotate from 15 s on), NaN elsewhere.
    """
    if targets not in VA_TARGETS:
        raise DatasetError(f"unknown valence/arousal targets {targets!r}; choose one of {', '.join(VA_TARGETS)}")
    if track.valence is None or track.arousal is None:
        return np.full((n_segments, 2), np.nan)
    dyn = None
    if track.dynamic is not None:
        dyn = (track.dynamic.times, track.dynamic.valence, track.dynamic.arousal)
    if targets == "static":
        return segment_va(n_segments, (track.valence, track.arousal))
    if targets == "mixed":
        return segment_va(n_segments, (track.valence, track.arousal), dyn)
    if dyn is None:
        return np.full((n_segments, 2), np.nan)
    need = int(np.ceil(MIN_DYNAMIC_COVERAGE * DYNAMIC_RATE_HZ * SEGMENT_SECONDS))
    return segment_dynamic_va(n_segments, dyn, min_samples=need)


def build_segment_table(
    dataset: Dataset,
    store: Path,
    *,
    clip_seconds: float | None = None,
    drop_last: bool = False,
    near_axis_filter: bool = False,
    va_targets: str = "mixed",
    require_va: bool = False,
) -> SegmentTable:
    """Join the cached features of ``dataset``'s tracks with per-segment labels.

    Tracks without cached features (audio missing or failed) are skipped with a log message.
    ``near_axis_filter`` drops segments whose valence or arousal is within 0.025 of an axis
    (the paper's filter; it has no effect on datasets labelled by quadrant only). ``va_targets``
    chooses the segments' valence/arousal labels (:func:`track_segment_va`); ``require_va`` keeps only
    segments that have one (for valence/arousal regression).
    """
    parts, ids, index, artists, vas, quads = [], [], [], [], [], []
    missing = 0
    for track in dataset.tracks().values():
        if track.quadrant is None or not track_file(store, track.track_id).exists():
            missing += 1
            continue
        feats = load_track_features(store, track.track_id)
        n = clip_segments(len(feats), clip_seconds=clip_seconds, drop_last=drop_last)
        feats = feats.select(slice(0, n))
        va = track_segment_va(track, n, va_targets)
        labelled = ~np.isnan(va[:, 0])
        if track.valence is not None and track.arousal is not None:
            quad = quadrant_index(np.nan_to_num(va[:, 0]), np.nan_to_num(va[:, 1]))  # unlabelled rows: dropped
        else:
            quad = np.full(n, QUADRANTS.index(track.quadrant))
        keep = ~near_axis(va[:, 0], va[:, 1]) if near_axis_filter else np.ones(n, bool)
        if require_va:
            keep &= labelled
        parts.append(feats.select(keep))
        ids += [track.track_id] * int(keep.sum())
        index.append(np.arange(n)[keep])
        artists += [track.artist or track.track_id] * int(keep.sum())
        vas.append(va[keep])
        quads.append(quad[keep])
    if require_va and parts and not sum(len(v) for v in vas):
        raise DatasetError(
            f"no segment of {dataset.name} has a valence/arousal label ({va_targets} targets); valence/arousal "
            "regression needs a dataset annotated with them (deam, mturk, pmemo, or folder with valence/arousal)"
        )
    if not parts:
        raise DatasetError(
            f"no cached features for any track of {dataset.name} in {store}; "
            f"run `moodscope features {dataset.name} --root {dataset.root}` first"
        )
    if missing:
        log.info("%s: %d tracks without labels or cached features were skipped", dataset.name, missing)
    return SegmentTable(
        features=SegmentFeatures.concatenate(parts),
        track_ids=np.array(ids),
        segment_index=np.concatenate(index),
        artists=np.array(artists),
        va=np.concatenate(vas),
        quadrant=np.concatenate(quads).astype(int),
    )
