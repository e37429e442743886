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

from moodscope.datasets.base import Issue, Track
from moodscope.datasets.common import (
    AnnotatedDataset,
    Series2Hz,
    audio_index,
    build_tracks,
    clean_ids,
    find_column,
    read_long_2hz,
    read_table,
    require_path,
    static_table,
)
from moodscope.datasets.labels import scale_0_1

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

    def _check_layout(self) -> None:
        require_path(self.root, str(STATIC_FILE), "PMEmo static annotations")

    def _audio_files(self) -> list[Path]:
        return list(audio_index(self.root / AUDIO_DIR).values())

    def _load(self) -> dict[str, Track]:
        path = self.root / STATIC_FILE
        table = read_table(path)
        static, issues = static_table(
            table,
            id_column=find_column(table, "musicId", path=path),
            valence_column=find_column(table, "Valence(mean)", path=path),
            arousal_column=find_column(table, "Arousal(mean)", path=path),
            scale=scale_0_1,
            valid_range=VALUE_RANGE,
            source=path,
        )
        self._load_issues += issues
        tracks, issues = build_tracks(
            static,
            self._read_dynamic(),
            source="PMEmo static annotations",
            audio_path=lambda track_id: self.root / AUDIO_DIR / f"{track_id}.mp3",
            info=self._read_metadata(static.index),
        )
        self._load_issues += issues
        return tracks

    def _read_dynamic(self) -> tuple[Series2Hz, Series2Hz] | None:
        path = self.root / DYNAMIC_FILE
        if not path.exists():
            self._load_issues.append(Issue("warning", "missing-file", f"{path} not found: no dynamic annotations"))
            return None
        table = read_table(path)
        pair = []
        for name in ("Valence(mean)", "Arousal(mean)"):
            series, issues = read_long_2hz(
                table,
                id_column=find_column(table, "musicId", path=path),
                time_column=find_column(table, "frameTime", path=path),
                value_column=find_column(table, name, path=path),
                scale=scale_0_1,
                source=path,
            )
            pair.append(series)
            self._load_issues += issues
        return pair[0], pair[1]

    def _read_metadata(self, annotated: pd.Index) -> dict[str, dict[str, object]]:
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
