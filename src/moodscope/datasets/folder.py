"""A user's own dataset: a folder of audio files and one CSV that labels them.

The CSV needs a path column (``path``, ``file``, ``filename``, ``audio`` or ``audio_path``; relative to
the folder, or absolute) and either a ``quadrant`` column (``Q1``..``Q4`` or ``1``..``4``, Russell's
numbering) or ``valence`` and ``arousal`` columns, or both. Valence/arousal are read on the scale
given by ``scale`` ("-1..1", "1..9" or "0..1") and mapped to [-1, 1]; the default "auto" picks the
scale from the values and refuses to guess when they all lie in [0, 1] (both "0..1" and "-1..1" fit).
Track ids come from an ``id`` (or ``track_id``/``song_id``) column when there is one, else from the
file stem (the path without extension where two files share a stem). An ``artist`` column, if
present, is kept for grouped splits; a ``split`` column becomes ``DatasetTrack.split``.

The CSV is ``csv`` when given (absolute, or relative to the folder); else ``annotations.csv``
or ``labels.csv`` in the folder; else the folder's only CSV.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from moodscope.audio import find_audio_files
from moodscope.datasets.annotated import AnnotatedDataset, natural_key
from moodscope.datasets.annotations import static_table
from moodscope.datasets.base import DatasetTrack, Issue
from moodscope.datasets.labels import quadrant_from_va, scale_0_1, scale_1_9
from moodscope.datasets.tables import corrected, find_column, normalise_quadrant, numeric, read_table
from moodscope.errors import DatasetError

PATH_COLUMNS = ("path", "file", "filename", "file_name", "audio", "audio_path")
ID_COLUMNS = ("id", "track_id", "song_id")
DEFAULT_CSV_NAMES = ("annotations.csv", "labels.csv")


def _identity(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=float)


SCALES = {"-1..1": (_identity, (-1.0, 1.0)), "1..9": (scale_1_9, (1.0, 9.0)), "0..1": (scale_0_1, (0.0, 1.0))}
"""Accepted valence/arousal scales: the mapping to [-1, 1] and the valid range of the raw values."""


def detect_scale(values: np.ndarray, source: Path) -> str:
    """The scale (a key of ``SCALES``) that raw valence/arousal ``values`` are on.

    Raises :class:`DatasetError` when no value is numeric, when all lie in [0, 1] (ambiguous) or when
    their range fits no scale.
    """
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        raise DatasetError(f"{source}: no numeric valence/arousal values.")
    lo, hi = float(finite.min()), float(finite.max())
    if lo < 0:
        return "-1..1"
    if lo >= 1:
        return "1..9"
    if hi <= 1:
        raise DatasetError(
            f"{source}: valence/arousal values all lie in [{lo:g}, {hi:g}], which fits both the 0..1 and the "
            "-1..1 scale. Say which: scale='0..1' or scale='-1..1' (--scale on the command line)."
        )
    raise DatasetError(
        f"{source}: valence/arousal values span [{lo:g}, {hi:g}], which fits none of the scales "
        f"{', '.join(SCALES)}. Rescale them or pass scale= explicitly."
    )


class FolderDataset(AnnotatedDataset):
    """Audio files in a folder, labelled by a CSV with a path column and quadrants or valence/arousal."""

    name = "folder"

    def __init__(self, root: str | Path, csv: str | Path | None = None, scale: str = "auto"):
        if scale != "auto" and scale not in SCALES:
            raise DatasetError(f"Unknown scale {scale!r}: use 'auto' or one of {', '.join(SCALES)}.")
        self.scale = scale
        self._csv = csv
        self.csv_path = Path()
        super().__init__(root)

    def _check_layout(self) -> None:
        if not self.root.is_dir():
            raise DatasetError(f"Dataset folder {self.root} does not exist or is not a folder. Check --root.")
        self.csv_path = self._find_csv()

    def _find_csv(self) -> Path:
        if self._csv is not None:
            path = Path(self._csv).expanduser()
            path = path if path.is_absolute() else self.root / path
            if not path.is_file():
                raise DatasetError(f"Annotations CSV {path} not found. Give it relative to --root, or absolute.")
            return path
        for name in DEFAULT_CSV_NAMES:
            if (self.root / name).is_file():
                return self.root / name
        found = sorted(self.root.glob("*.csv"))
        if len(found) == 1:
            return found[0]
        what = "no CSV" if not found else f"several CSVs ({', '.join(p.name for p in found)})"
        raise DatasetError(
            f"Annotations not found: {self.root} has {what}. Name the labels file annotations.csv or pass it "
            "with csv= (--csv)."
        )

    def _audio_files(self) -> list[Path]:
        return find_audio_files(self.root)

    def _load(self) -> dict[str, DatasetTrack]:
        path = self.csv_path
        table = read_table(path, dtype=str)
        path_column = find_column(table, *PATH_COLUMNS, path=path)
        empty = table[path_column].isna() | (table[path_column].astype(str).str.strip() == "")
        self._load_issues += [
            Issue("error", "unreadable-row", f"{path.name}: row {i + 2} has no {path_column}")
            for i in np.flatnonzero(empty)
        ]
        table = table[~empty.to_numpy()].reset_index(drop=True)
        table["_path"] = [self._resolve(p) for p in table[path_column]]
        table["_id"] = self._track_ids(table)
        static = self._read_values(table)
        quadrants = self._read_quadrants(table)
        if static is None and quadrants is None:
            raise DatasetError(
                f"{path} has neither a 'quadrant' column nor 'valence' and 'arousal' columns. Add one of them."
            )
        return self._tracks_from(table, static, quadrants)

    def _resolve(self, text: str) -> Path:
        path = Path(str(text).strip()).expanduser()
        return path if path.is_absolute() else self.root / path

    def _track_ids(self, table: pd.DataFrame) -> list[str]:
        id_column = find_column(table, *ID_COLUMNS, path=self.csv_path, required=False)
        if id_column is not None:
            return [str(x).strip() for x in table[id_column]]
        stems = pd.Series([p.stem for p in table["_path"]])
        clash = stems.duplicated(keep=False).to_numpy()
        ids = []
        for path, stem, clashes in zip(table["_path"], stems, clash):
            if not clashes:
                ids.append(stem)
                continue
            relative = path.relative_to(self.root) if path.is_relative_to(self.root) else path
            ids.append(relative.with_suffix("").as_posix())
        if clash.any():
            self._load_issues.append(
                corrected(
                    "duplicate-id", f"{int(clash.sum())} files share a stem: their ids are paths without extension"
                )
            )
        return ids

    def _read_values(self, table: pd.DataFrame) -> pd.DataFrame | None:
        valence = find_column(table, "valence", path=self.csv_path, required=False)
        arousal = find_column(table, "arousal", path=self.csv_path, required=False)
        if valence is None or arousal is None:
            return None
        raw, _ = numeric(table, {"v": valence, "a": arousal}, self.csv_path)
        scale = self.scale if self.scale != "auto" else detect_scale(raw.to_numpy().ravel(), self.csv_path)
        mapping, valid_range = SCALES[scale]
        static, issues = static_table(
            table,
            id_column="_id",
            valence_column=valence,
            arousal_column=arousal,
            scale=mapping,
            valid_range=valid_range,
            source=self.csv_path,
        )
        self._load_issues += issues
        return static

    def _read_quadrants(self, table: pd.DataFrame) -> pd.Series | None:
        column = find_column(table, "quadrant", path=self.csv_path, required=False)
        if column is None:
            return None
        quadrants = pd.Series([normalise_quadrant(q) for q in table[column]], index=table["_id"], dtype=object)
        for track_id, raw, q in zip(table["_id"], table[column], quadrants):
            if q is None:
                self._load_issues.append(
                    Issue("error", "unreadable-row", f"{self.csv_path.name}: quadrant {raw!r} is not Q1..Q4", track_id)
                )
        return quadrants

    def _tracks_from(self, table: pd.DataFrame, static: pd.DataFrame | None, quadrants: pd.Series | None) -> dict:
        extras = {
            name: find_column(table, name, path=self.csv_path, required=False) for name in ("artist", "title", "split")
        }
        tracks: dict[str, DatasetTrack] = {}
        for i, track_id in enumerate(table["_id"]):
            if track_id in tracks:
                if static is None:  # static_table already reported repeated ids
                    self._load_issues.append(Issue("error", "duplicate-id", "listed twice; kept the first", track_id))
                continue
            row = table.iloc[i]
            v, a = static.loc[track_id].tolist() if static is not None else (np.nan, np.nan)
            label = quadrants.iloc[i] if quadrants is not None else None
            fields: dict[str, Any] = {
                k: row[c] if c and isinstance(row[c], str) and row[c] else None for k, c in extras.items()
            }
            track = DatasetTrack(
                track_id=track_id,
                audio_path=row["_path"],
                valence=None if np.isnan(v) else float(v),
                arousal=None if np.isnan(a) else float(a),
                quadrant_label=label,
                **fields,
            )
            if label is not None and track.valence is not None and track.arousal is not None:
                derived = quadrant_from_va(track.valence, track.arousal)
                if derived != label:
                    self._load_issues.append(
                        Issue(
                            "warning",
                            "inconsistent",
                            f"quadrant {label} but valence/arousal are in {derived}",
                            track_id,
                        )
                    )
            tracks[track_id] = track
        return dict(sorted(tracks.items(), key=lambda item: natural_key(item[0])))
