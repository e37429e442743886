"""emoMusic, "1000 songs for emotional analysis of music" (Soleymani et al. 2013): the paper's "MTurk" set.

Layout (``root`` is the folder that contains ``annotations/`` and ``clips_45seconds/``)::

    annotations/static_annotations.csv        song_id,mean_arousal,std_arousal,mean_valence,std_valence (1–9)
    annotations/songs_info.csv                artist, title, genre, 'Mediaeval 2013 set'
    annotations/{valence,arousal}_cont_average.csv   2 Hz from 15 s, in [-1, 1]
    clips_45seconds/<song_id>.mp3

Labels: static means are mapped to [-1, 1] with :func:`~moodscope.datasets.labels.scale_1_9`; the continuous
averages are read with the same wide-format parser as DEAM's. ``songs_info.csv`` quotes every field
and pads them with tab characters (stripped). ``split`` is the MediaEval 2013 set (``development``
619 songs, ``evaluation`` 125).

All 744 songs are DEAM songs 2–1000 with the same clips: never train on one and test on the other.
:func:`cross_check` compares the two distributions song by song.

Defects: none found in these files. Their static labels agree with their own dynamic annotations
(r = 0.96 / 0.95 as labelled); it is DEAM's copy of the same static labels that has valence and
arousal swapped (see :mod:`moodscope.datasets.deam`). The dynamic averages equal DEAM's to 1e-5
(emoMusic has one more sample, at 45.0 s). Six songs' static labels differ from DEAM's (448, 452,
609, 652, 850, 1000, by up to 0.42 on the 1–9 scale), apparently from different rater sets (means
such as 6.5556 here come from 9 raters; DEAM's per-rater file has 20 ratings for 452 and 609);
:func:`cross_check` reports the four that differ by more than ``STATIC_TOLERANCE``.
The loader still runs the same swap, range, duplicate and static-vs-dynamic checks as for DEAM.

Only a few clips may be present; the full audio is a separate download (one summary warning).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from moodscope.constants import PAPER_CLIP_SECONDS
from moodscope.datasets.annotated import AnnotatedDataset
from moodscope.datasets.annotations import StaticLabels, WideDynamic
from moodscope.datasets.base import Dataset, DatasetTrack, Issue
from moodscope.datasets.labels import scale_1_9
from moodscope.datasets.tables import find_column, read_table

ANNOTATIONS = Path("annotations")
STATIC_FILE = ANNOTATIONS / "static_annotations.csv"
INFO_FILE = ANNOTATIONS / "songs_info.csv"
DYNAMIC_FILES = (ANNOTATIONS / "valence_cont_average.csv", ANNOTATIONS / "arousal_cont_average.csv")
AUDIO_DIR = Path("clips_45seconds")
STATIC_RANGE = (1.0, 9.0)
FULL_AUDIO = "the clips_45seconds/ folder of the emoMusic download (https://cvml.unige.ch/databases/emoMusic/)"

STATIC_TOLERANCE = 0.05
"""Largest difference (on [-1, 1], i.e. 0.2 on the 1–9 scale) between two copies of a static label."""

DYNAMIC_TOLERANCE = 0.01
"""Largest difference between two copies of a continuous annotation sample."""


class EmoMusic(AnnotatedDataset):
    """emoMusic / MTurk: 744 songs, static (1–9) and 2-Hz dynamic valence/arousal, 45-s clips."""

    name = "mturk"
    clip_seconds = PAPER_CLIP_SECONDS
    has_dynamic = True
    separate_download = FULL_AUDIO

    static_labels = StaticLabels(
        what="emoMusic static annotations",
        files=(STATIC_FILE,),
        id_column="song_id",
        valence_column="mean_valence",
        arousal_column="mean_arousal",
        scale=scale_1_9,
        valid_range=STATIC_RANGE,
    )
    dynamic_labels = WideDynamic(*DYNAMIC_FILES)
    audio_dir = AUDIO_DIR

    def _read_info(self, annotated: pd.Index) -> dict[str, dict[str, object]]:
        path = self.root / INFO_FILE
        if not path.exists():
            self._load_issues.append(Issue("warning", "missing-file", f"{path} not found: no artists or splits"))
            return {}
        table = read_table(path, dtype=str)
        fields = {
            "artist": find_column(table, "Artist", path=path, required=False),
            "title": find_column(table, "Song title", path=path, required=False),
            "genre": find_column(table, "Genre", path=path, required=False),
            "split": find_column(table, "Mediaeval 2013 set", path=path, required=False),
        }
        ids = table[find_column(table, "song_id", path=path)]
        return {
            track_id: {name: row[column] for name, column in fields.items() if column and isinstance(row[column], str)}
            for track_id, (_, row) in zip(ids, table.iterrows())
        }


def _static_issue(track_id: str, deam: DatasetTrack, emo: DatasetTrack) -> Issue | None:
    ours = np.array([deam.valence, deam.arousal])
    theirs = np.array([emo.valence, emo.arousal])
    gap = np.abs(ours - theirs).max()
    if gap <= STATIC_TOLERANCE:
        return None
    if np.abs(ours - theirs[::-1]).max() <= STATIC_TOLERANCE:
        return Issue(
            "error", "cross-dataset", "static valence and arousal are swapped between DEAM and emoMusic", track_id
        )
    return Issue(
        "warning",
        "cross-dataset",
        f"static labels differ: DEAM (v={deam.valence:+.3f}, a={deam.arousal:+.3f}) vs emoMusic "
        f"(v={emo.valence:+.3f}, a={emo.arousal:+.3f})",
        track_id,
    )


def _dynamic_issue(track_id: str, deam: DatasetTrack, emo: DatasetTrack) -> Issue | None:
    ours_dynamic, theirs_dynamic = deam.dynamic, emo.dynamic
    assert ours_dynamic is not None and theirs_dynamic is not None  # cross_check compares tracks that have both
    times, i, j = np.intersect1d(ours_dynamic.times, theirs_dynamic.times, return_indices=True)
    if len(times) == 0:
        return Issue("warning", "cross-dataset", "dynamic annotations share no sample times", track_id)
    ours = np.stack([ours_dynamic.valence[i], ours_dynamic.arousal[i]])
    theirs = np.stack([theirs_dynamic.valence[j], theirs_dynamic.arousal[j]])
    with np.errstate(invalid="ignore"):
        gap = np.nanmax(np.abs(ours - theirs)) if np.isfinite(ours - theirs).any() else 0.0
        swapped = np.nanmax(np.abs(ours - theirs[::-1])) if np.isfinite(ours - theirs).any() else 0.0
    if gap <= DYNAMIC_TOLERANCE:
        return None
    if swapped <= DYNAMIC_TOLERANCE:
        return Issue(
            "error", "cross-dataset", "dynamic valence and arousal are swapped between DEAM and emoMusic", track_id
        )
    return Issue("warning", "cross-dataset", f"dynamic annotations differ by up to {gap:.3f}", track_id)


def cross_check(deam: Dataset, emomusic: Dataset) -> list[Issue]:
    """Compare the songs DEAM and emoMusic share (all emoMusic songs are DEAM songs 2–1000).

    Reports emoMusic songs missing from DEAM, static labels that differ by more than
    ``STATIC_TOLERANCE`` (or match only with valence and arousal exchanged), and continuous
    annotations that differ by more than ``DYNAMIC_TOLERANCE`` on their common sample times.
    """
    ours, theirs = deam.tracks(), emomusic.tracks()
    issues: list[Issue | None] = [
        Issue("warning", "cross-dataset", "emoMusic song not found in DEAM", track_id)
        for track_id in theirs
        if track_id not in ours
    ]
    for track_id, emo in theirs.items():
        track = ours.get(track_id)
        if track is None:
            continue
        if None not in (track.valence, track.arousal, emo.valence, emo.arousal):
            issues.append(_static_issue(track_id, track, emo))
        if track.dynamic is not None and emo.dynamic is not None:
            issues.append(_dynamic_issue(track_id, track, emo))
    return [i for i in issues if i is not None]
