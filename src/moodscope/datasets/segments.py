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

from moodscope.constants import QUADRANTS
from moodscope.datasets.base import Dataset
from moodscope.datasets.labels import near_axis, quadrant_index, segment_va
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


def build_segment_table(
    dataset: Dataset,
    store: Path,
    *,
    clip_seconds: float | None = None,
    drop_last: bool = False,
    near_axis_filter: bool = False,
) -> SegmentTable:
    """Join the cached features of ``dataset``'s tracks with per-segment labels.

    Tracks without cached features (audio missing or failed) are skipped with a log message.
    ``near_axis_filter`` drops segments whose valence or arousal is within 0.025 of an axis
    (the paper's filter; it has no effect on datasets labelled by quadrant only).
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
        if track.valence is not None and track.arousal is not None:
            dyn = None
            if track.dynamic is not None:
                dyn = (track.dynamic.times, track.dynamic.valence, track.dynamic.arousal)
            va = segment_va(n, (track.valence, track.arousal), dyn)
            quad = quadrant_index(va[:, 0], va[:, 1])
        else:
            va = np.full((n, 2), np.nan)
            quad = np.full(n, QUADRANTS.index(track.quadrant))
        keep = ~near_axis(va[:, 0], va[:, 1]) if near_axis_filter else np.ones(n, bool)
        parts.append(feats.select(keep))
        ids += [track.track_id] * int(keep.sum())
        index.append(np.arange(n)[keep])
        artists += [track.artist or track.track_id] * int(keep.sum())
        vas.append(va[keep])
        quads.append(quad[keep])
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
