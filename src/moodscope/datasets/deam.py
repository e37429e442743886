"""DEAM, the MediaEval Database for Emotional Analysis in Music (Aljanaki, Yang & Soleymani 2017).

Layout (``root`` is the folder that contains ``annotations/``, ``metadata/`` and ``MEMD_audio/``)::

    annotations/annotations averaged per song/song_level/static_annotations_averaged_songs_1_2000.csv
    annotations/annotations averaged per song/song_level/static_annotations_averaged_songs_2000_2058.csv
    annotations/annotations averaged per song/dynamic (per second annotations)/{valence,arousal}.csv
    metadata/metadata_{2013,2014,2015}.csv
    MEMD_audio/<song_id>.mp3

Labels: static ``valence_mean``/``arousal_mean`` (1–9, headers with leading spaces; the 2000_2058 file
has extra max/min columns) are mapped to [-1, 1] with :func:`~moodscope.datasets.labels.scale_1_9`. The
dynamic files are 2-Hz series already in [-1, 1], columns ``sample_15000ms`` … (the first 15 s of
every clip are not annotated), NaN-padded to the longest song; ``Dynamic.times`` are seconds of the
audio file. Songs 1–1000 (2013 campaign, 744 songs left) and 1001–2000 (2014, 1000 songs) are 45-s
excerpts; 2001–2058 (2015) are full songs. ``split`` follows the MediaEval 2015 benchmark: 2013+2014
songs are ``development``, the 58 songs of 2015 ``evaluation``. ``metadata['set']`` is the campaign.
The 2013 songs are the emoMusic ("MTurk") songs: never train on one and test on the other.

Metadata quirks handled: 2013 fields are padded with tab characters; 2014 rows carry a ragged
trailing list of last.fm tags (kept as ``metadata['tags']``); 2015 has a trailing empty column and,
from song 2030 on, tag lists after the genre. Song 2031's artist "No, Really" is an unquoted comma,
so its artist/album fields are split wrongly, as in the file.

Defects found in the distributed annotation files (cross-checking static against dynamic
annotations, and both against the emoMusic files that cover songs 2–1000):

- **Static valence and arousal are swapped for the whole 2013 set** (songs 2–1000, 744 songs), in
  ``static_annotations_averaged_songs_1_2000.csv`` and in the per-rater file. As labelled, the static
  "valence" of these songs correlates r = 0.96 with the mean of their *dynamic arousal* and only
  0.58 with their dynamic valence, and the static "arousal" 0.95 with dynamic valence (2014 songs:
  r = 0.91 valence–valence, 0.94 arousal–arousal; 2015: 0.98 and 0.93). emoMusic's static file,
  whose numbers are the same, labels that column arousal, and its dynamic files equal DEAM's; the
  spread across songs (arousal wider than valence, as in the 2014 set) agrees. The loader tests each
  campaign as a block and exchanges the columns back (one ``corrected`` issue, logged), see
  :func:`~moodscope.datasets.checks.correct_swapped_blocks`.
- Not corrected, reported or documented only: the 2014 static labels sit systematically lower than
  their dynamic means (about -0.15 valence, -0.30 arousal on [-1, 1]; a different rating procedure
  that year), so a few 2014 songs have a static label of the opposite sign to their dynamic mean
  (four "inconsistent" warnings from ``validate``: 1414, 1498, 1731, 1829). Six 2013 songs differ
  from emoMusic's static labels by up to 0.42 on the 1–9 scale (different rater sets; see
  :func:`~moodscope.datasets.emomusic.cross_check`).
- No duplicated ids, NaN-only rows, gaps or out-of-range values were found; the loader would report
  them (``duplicate-id``, ``missing-value``, ``out-of-range``, ``unreadable-row``).

Only a few clips of ``MEMD_audio`` may be present: the full audio (about 1.3 GB) is a separate
download, so missing audio is one summary warning, not an error per song.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from moodscope.constants import PAPER_CLIP_SECONDS
from moodscope.datasets.annotated import AnnotatedDataset
from moodscope.datasets.annotations import StaticLabels, WideDynamic
from moodscope.datasets.base import DatasetTrack, Issue
from moodscope.datasets.labels import scale_1_9
from moodscope.datasets.tables import clean_ids, find_column, read_ragged_csv

AVERAGED = Path("annotations") / "annotations averaged per song"
STATIC_FILES = (
    AVERAGED / "song_level" / "static_annotations_averaged_songs_1_2000.csv",
    AVERAGED / "song_level" / "static_annotations_averaged_songs_2000_2058.csv",
)
DYNAMIC_FILES = (
    AVERAGED / "dynamic (per second annotations)" / "valence.csv",
    AVERAGED / "dynamic (per second annotations)" / "arousal.csv",
)
METADATA_DIR = Path("metadata")
AUDIO_DIR = Path("MEMD_audio")
STATIC_RANGE = (1.0, 9.0)

CAMPAIGNS = (("2013", 1, 1000), ("2014", 1001, 2000), ("2015", 2001, 2058))
"""MediaEval 'Emotion in Music' campaigns by song id: each was annotated separately."""

EVALUATION_CAMPAIGNS = ("2015",)
"""The MediaEval 2015 benchmark trained on the 2013 and 2014 songs and tested on the 2015 ones."""

FULL_AUDIO = "DEAM_audio.zip (MEMD_audio/, about 1.3 GB) from https://cvml.unige.ch/databases/DEAM/"


def campaign(track_id: str) -> str | None:
    """The campaign ('2013', '2014', '2015') a DEAM song id belongs to, or None."""
    if not track_id.isdigit():
        return None
    number = int(track_id)
    return next((name for name, lo, hi in CAMPAIGNS if lo <= number <= hi), None)


def _metadata_fields(table: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Normalise one metadata file to columns artist, title, album, genre, tags (index = song id)."""
    columns = {
        "artist": find_column(table, "Artist", path=path, required=False),
        "title": find_column(table, "Song title", "DatasetTrack", "title", path=path, required=False),
        "album": find_column(table, "Album", path=path, required=False),
        "genre": find_column(table, "Genre", path=path, required=False),
    }
    out = pd.DataFrame(index=clean_ids(table[table.columns[0]]))
    for name, column in columns.items():
        out[name] = table[column].to_numpy() if column else None
    tag_column = find_column(table, "last.fm labels", path=path, required=False)
    first_tags = table[tag_column].to_numpy() if tag_column else [""] * len(table)
    out["tags"] = [[t for t in [first, *extra] if t] for first, extra in zip(first_tags, table["extra"])]
    return out.replace({"": None, "n/a": None})


class DEAM(AnnotatedDataset):
    """DEAM: 1802 songs with static (1–9) and 2-Hz dynamic valence/arousal; 45-s clips."""

    name = "deam"
    clip_seconds = PAPER_CLIP_SECONDS
    has_dynamic = True
    separate_download = FULL_AUDIO
    static_labels = StaticLabels(
        what="DEAM static annotations",
        files=STATIC_FILES,
        id_column="song_id",
        valence_column="valence_mean",
        arousal_column="arousal_mean",
        scale=scale_1_9,
        valid_range=STATIC_RANGE,
    )
    dynamic_labels = WideDynamic(*DYNAMIC_FILES)
    audio_dir = AUDIO_DIR

    def _load(self) -> dict[str, DatasetTrack]:
        tracks = super()._load()
        for track_id, track in tracks.items():
            track.metadata["set"] = campaign(track_id)
            track.split = "evaluation" if campaign(track_id) in EVALUATION_CAMPAIGNS else "development"
        return tracks

    def _swap_blocks(self, ids: pd.Index) -> pd.Series:
        """Each campaign was annotated separately: its songs are tested as one block for swapped columns."""
        return pd.Series([f"the {campaign(i) or 'other'} set" for i in ids], index=ids)

    def _read_info(self, annotated: pd.Index) -> dict[str, dict[str, object]]:
        return self._read_metadata()

    def _read_metadata(self) -> dict[str, dict[str, object]]:
        folder = self.root / METADATA_DIR
        paths = sorted(folder.glob("metadata_*.csv")) if folder.is_dir() else []
        if not paths:
            self._load_issues.append(Issue("warning", "missing-file", f"no metadata_*.csv in {folder}: no artists"))
            return {}
        tables = [_metadata_fields(read_ragged_csv(p), p) for p in paths]
        table = pd.concat(tables)
        table = table[~table.index.duplicated(keep="first")]
        return {
            track_id: {k: v for k, v in row.items() if isinstance(v, str) or (isinstance(v, list) and v)}
            for track_id, row in table.to_dict("index").items()
        }
