"""PMEmo2019 (Zhang et al. 2018): choruses of popular songs with static and 2-Hz dynamic labels.

Layout (``root`` is the ``PMEmo2019`` folder)::

    annotations/static_annotations.csv    musicId,Arousal(mean),Valence(mean)   (0–1)
    annotations/dynamic_annotations.csv   musicId,frameTime,Arousal(mean),Valence(mean)   (long format, 0–1)
    metadata.csv                          musicId,fileName,title,artist,album,duration,chorus_start_time,…
    chorus/<musicId>.mp3

Labels: static and dynamic values are on 0–1 and mapped to [-1, 1] with
:func:`~moodscope.datasets.labels.scale_0_1`. ``frameTime`` is in seconds from the start of the chorus clip
(the audio file), not of the full song: checked on the clips present, whose durations equal
``metadata.csv``'s ``duration`` and exceed the last ``frameTime`` by about 0.1 s (for every song
``duration`` − last ``frameTime`` is between −0.35 and 0.63 s, while the chorus window in the full
song starts minutes in). Frames start at 15.5 s, every 0.5 s, so ``Dynamic.times`` = ``frameTime``.
There is no official split; ``clip_seconds`` is None (choruses last 16–88 s).

Defects: none found. Static labels agree with the means of the dynamic ones (r = 0.99 on both
axes as labelled), ids are unique, every annotated song has dynamic annotations, all values lie in
0–1. ``metadata.csv`` lists 794 songs of which 767 are annotated (one summary warning). The loader
runs the same swap, range, duplicate and consistency checks as for DEAM.

Only a few choruses may be present; the full audio is a separate download (one summary warning).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from moodscope.datasets.annotated import AnnotatedDataset
from moodscope.datasets.annotations import LongDynamic, StaticLabels
from moodscope.datasets.base import Issue
from moodscope.datasets.labels import scale_0_1
from moodscope.datasets.tables import clean_ids, find_column, read_table

ANNOTATIONS = Path("annotations")
STATIC_FILE = ANNOTATIONS / "static_annotations.csv"
DYNAMIC_FILE = ANNOTATIONS / "dynamic_annotations.csv"
METADATA_FILES = (Path("metadata.csv"), ANNOTATIONS / "metadata.csv")
AUDIO_DIR = Path("chorus")
VALUE_RANGE = (0.0, 1.0)
FULL_AUDIO = "the chorus/ folder of the PMEmo2019 download (https://github.com/HuiZhangDB/PMEmo)"
METADATA_FIELDS = ("title", "artist", "album", "duration", "chorus_start_time", "chorus_end_time")


class PMEmo(AnnotatedDataset):
    """PMEmo2019: 767 choruses with static and dynamic valence/arousal (0–1)."""

    name = "pmemo"
    has_dynamic = True
    separate_download = FULL_AUDIO

    static_labels = StaticLabels(
        what="PMEmo static annotations",
        files=(STATIC_FILE,),
        id_column="musicId",
        valence_column="Valence(mean)",
        arousal_column="Arousal(mean)",
        scale=scale_0_1,
        valid_range=VALUE_RANGE,
    )
    dynamic_labels = LongDynamic(
        DYNAMIC_FILE,
        id_column="musicId",
        time_column="frameTime",
        valence_column="Valence(mean)",
        arousal_column="Arousal(mean)",
        scale=scale_0_1,
    )
    audio_dir = AUDIO_DIR

    def _read_info(self, annotated: pd.Index) -> dict[str, dict[str, object]]:
        path = next((self.root / p for p in METADATA_FILES if (self.root / p).exists()), None)
        if path is None:
            self._load_issues.append(Issue("warning", "missing-file", f"no metadata.csv in {self.root}: no artists"))
            return {}
        table = read_table(path, dtype=str)
        table.index = clean_ids(table[find_column(table, "musicId", path=path)])
        columns = {name: find_column(table, name, path=path, required=False) for name in METADATA_FIELDS}
        unannotated = table.index.difference(annotated)
        if len(unannotated):
            self._load_issues.append(
                Issue("warning", "unannotated", f"{path.name}: {len(unannotated)} songs have no annotations (skipped)")
            )
        info = {
            track_id: {name: row[c] for name, c in columns.items() if c and isinstance(row[c], str)}
            for track_id, row in table.iterrows()
        }
        for meta in info.values():
            if "duration" in meta:
                meta["duration"] = pd.to_numeric(meta["duration"], errors="coerce")
        return info
