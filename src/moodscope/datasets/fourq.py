"""4Q audio emotion dataset (Panda, Malheiro & Paiva, IEEE TAFFC 2018).

Layout (``root`` is the ``MER_audio_taffc_dataset`` folder)::

    panda_dataset_taffc_annotations.csv   Song,Quadrant   (CRLF line ends)
    panda_dataset_taffc_metadata.csv      Song,Artist,Title,Quadrant,PQuad,…,MoodsStrSplit,…,GenresStr,…
    Q1/ Q2/ Q3/ Q4/<Song>.mp3             ~30-s AllMusic previews

Labels: the Russell quadrant given by the dataset becomes ``DatasetTrack.quadrant_label`` (same numbering as
:mod:`moodscope.datasets.labels`). ``valence`` and ``arousal`` stay None: the dataset has no dimensional
ratings, and putting every song at its quadrant centre would invent regression targets (use
:data:`~moodscope.constants.QUADRANT_CENTRES` explicitly where a point is needed). There is no
official split; ``artist`` is there for artist-grouped splits (many artists have several songs).
``metadata`` holds ``moods`` and ``genres`` (lists, from ``MoodsStrSplit``/``GenresStr``) and
``pquad`` (share of the song's mood tags in its quadrant).

Checks: unknown quadrant names, repeated songs, a quadrant that differs between the two CSVs, audio
filed under another quadrant's folder than its label, missing and extra audio (errors: the audio is
part of this dataset's distribution). Defects: none found in the 540-song copy (135 per quadrant,
every file in its quadrant's folder; three songs have no artist).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from moodscope.constants import QUADRANTS
from moodscope.datasets.annotated import AnnotatedDataset, audio_index, natural_key
from moodscope.datasets.base import DatasetTrack, Issue
from moodscope.datasets.tables import clean_ids, corrected, find_column, normalise_quadrant, read_table, require_path

ANNOTATION_FILE = Path("panda_dataset_taffc_annotations.csv")
METADATA_FILE = Path("panda_dataset_taffc_metadata.csv")


def _split_list(text: object) -> list[str]:
    return [t.strip() for t in text.split(";") if t.strip()] if isinstance(text, str) else []


class FourQ(AnnotatedDataset):
    """4Q: 900 (here 540) ~30-s clips labelled with a Russell quadrant."""

    name = "4q"
    has_dynamic = False

    def _check_layout(self) -> None:
        require_path(self.root, str(ANNOTATION_FILE), "4Q annotations")

    def _audio_files(self) -> list[Path]:
        return [p for q in QUADRANTS for p in audio_index(self.root / q).values()]

    def _audio_by_song(self) -> dict[str, Path]:
        found: dict[str, Path] = {}
        for path in self._audio_files():
            if path.stem in found:
                self._load_issues.append(
                    Issue("warning", "duplicate-id", f"audio in two folders: {found[path.stem]} and {path}", path.stem)
                )
                continue
            found[path.stem] = path
        return found

    def _load(self) -> dict[str, DatasetTrack]:
        labels = self._read_labels()
        metadata = self._read_metadata()
        audio = self._audio_by_song()
        tracks = {}
        for song in sorted(labels, key=natural_key):
            quadrant = labels[song]
            meta: dict[str, Any] = metadata.get(song, {})
            self._check_quadrants(song, quadrant, meta.pop("quadrant", None), audio.get(song))
            tracks[song] = DatasetTrack(
                track_id=song,
                audio_path=audio.get(song, self.root / quadrant / f"{song}.mp3"),
                quadrant_label=quadrant,
                artist=meta.pop("artist", None),
                title=meta.pop("title", None),
                metadata=meta,
            )
        unlabelled = sorted(set(metadata) - set(labels), key=natural_key)
        self._load_issues += [
            Issue("warning", "unannotated", f"{METADATA_FILE.name}: song has metadata but no annotation", song)
            for song in unlabelled
        ]
        return tracks

    def _check_quadrants(self, song: str, label: str, in_metadata: str | None, audio: Path | None) -> None:
        if in_metadata is not None and in_metadata != label:
            self._load_issues.append(
                Issue(
                    "error",
                    "inconsistent",
                    f"quadrant {label} in the annotations but {in_metadata} in the metadata",
                    song,
                )
            )
        if audio is not None and audio.parent.name != label:
            self._load_issues.append(
                Issue("warning", "inconsistent", f"labelled {label} but its audio is in {audio.parent.name}/", song)
            )

    def _read_labels(self) -> dict[str, str]:
        path = self.root / ANNOTATION_FILE
        table = read_table(path, dtype=str)
        songs = clean_ids(table[find_column(table, "Song", path=path)])
        quadrants = table[find_column(table, "Quadrant", path=path)]
        labels: dict[str, str] = {}
        for song, raw in zip(songs, quadrants):
            quadrant = normalise_quadrant(raw)
            if quadrant is None:
                self._load_issues.append(Issue("error", "unreadable-row", f"{path.name}: quadrant {raw!r}", song))
            elif song in labels:
                self._load_issues.append(
                    corrected("duplicate-id", f"{path.name}: repeated row dropped", song)
                    if labels[song] == quadrant
                    else Issue(
                        "error", "duplicate-id", f"{path.name}: conflicting quadrants; kept {labels[song]}", song
                    )
                )
            else:
                labels[song] = quadrant
        return labels

    def _read_metadata(self) -> dict[str, dict[str, object]]:
        path = self.root / METADATA_FILE
        if not path.exists():
            self._load_issues.append(
                Issue("warning", "missing-file", f"{path} not found: no artists (needed for splits)")
            )
            return {}
        table = read_table(path, dtype=str)
        table.index = clean_ids(table[find_column(table, "Song", path=path)])
        table = table[~table.index.duplicated(keep="first")]

        def column(name: str) -> pd.Series:
            found = find_column(table, name, path=path, required=False)
            return table[found] if found else pd.Series(None, index=table.index, dtype=object)

        quadrant = column("Quadrant").map(normalise_quadrant)
        pquad = pd.to_numeric(column("PQuad"), errors="coerce")
        return {
            song: {
                "artist": artist if isinstance(artist, str) and artist else None,
                "title": title if isinstance(title, str) and title else None,
                "quadrant": q,
                "moods": _split_list(moods),
                "genres": _split_list(genres),
                "pquad": None if pd.isna(p) else float(p),
            }
            for song, artist, title, q, moods, genres, p in zip(
                table.index,
                column("Artist"),
                column("Title"),
                quadrant,
                column("MoodsStrSplit"),
                column("GenresStr"),
                pquad,
            )
        }
