"""Valence/arousal annotations: static tables on some rating scale, and 2-Hz continuous series.

Continuous annotations come *wide* (one row per song, columns ``sample_15000ms``,
``sample_15500ms`` …: DEAM, emoMusic) or *long* (one row per song and frame: PMEmo); both become a
:class:`Series2Hz` per dimension, then one :class:`~moodscope.datasets.base.Dynamic` per song.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from moodscope.datasets.base import Dynamic, Issue
from moodscope.datasets.tables import clean_ids, corrected, drop_duplicate_ids, find_column, numeric, read_table
from moodscope.errors import DatasetError

SAMPLE_COLUMN = re.compile(r"^sample_(\d+)ms$")
"""Header of one 2-Hz sample in the wide format: the sample time in milliseconds."""


def static_table(
    table: pd.DataFrame,
    *,
    id_column: str,
    valence_column: str,
    arousal_column: str,
    scale: Callable[[np.ndarray], np.ndarray | float],
    valid_range: tuple[float, float],
    source: Path,
) -> tuple[pd.DataFrame, list[Issue]]:
    """Static labels indexed by track id, columns ``valence``/``arousal`` mapped to [-1, 1] by ``scale``.

    Values outside ``valid_range`` (the file's own scale) are reported and dropped (NaN); so are
    unparseable and missing cells. Repeated ids keep their first row.
    """
    table = table.set_index(clean_ids(table[id_column]))
    values, issues = numeric(table, {"valence": valence_column, "arousal": arousal_column}, source)
    values, dup_issues = drop_duplicate_ids(values, source)
    issues += dup_issues
    lo, hi = valid_range
    for name in ("valence", "arousal"):
        column = values[name]
        outside = column.notna() & ((column < lo) | (column > hi))
        for track_id, x in column[outside].items():
            issues.append(
                Issue("error", "out-of-range", f"{source.name}: static {name} {x:g} outside [{lo:g}, {hi:g}]", track_id)
            )
        values[name] = scale(column.where(~outside).to_numpy())
    reported = {i.track_id for i in issues}
    for track_id in values.index[values.isna().any(axis=1)]:
        if track_id not in reported:
            issues.append(Issue("warning", "missing-value", f"{source.name}: empty static label", track_id))
    return values, issues


@dataclass
class Series2Hz:
    """One dimension of continuous annotations: ``values`` [shape=(n_ids, n_times)], NaN where missing."""

    ids: pd.Index
    times: np.ndarray  # (n_times,) seconds
    values: np.ndarray  # (n_ids, n_times)

    def row_means(self) -> pd.Series:
        with np.errstate(invalid="ignore"):
            counts = np.isfinite(self.values).sum(axis=1)
            sums = np.nansum(self.values, axis=1)
        return pd.Series(np.where(counts > 0, sums / np.maximum(counts, 1), np.nan), index=self.ids)


def _checked_series(
    ids: pd.Index, times: np.ndarray, values: np.ndarray, source: Path
) -> tuple[Series2Hz, list[Issue]]:
    """Drop repeated ids, report and blank values outside [-1, 1]."""
    frame, issues = drop_duplicate_ids(pd.DataFrame(values, index=ids), source)
    values = frame.to_numpy(dtype=float, copy=True)
    outside = np.abs(values) > 1.0
    for row in np.flatnonzero(outside.any(axis=1)):
        n = int(outside[row].sum())
        issues.append(
            Issue(
                "error",
                "out-of-range",
                f"{source.name}: {n} dynamic value(s) outside the scale ([-1, 1] once mapped) blanked",
                frame.index[row],
            )
        )
    values[outside] = np.nan
    return Series2Hz(frame.index, times, values), issues


def read_wide_2hz(path: Path) -> tuple[Series2Hz, list[Issue]]:
    """Read the wide 2-Hz format: first column the song id, then ``sample_<ms>ms`` columns (NaN-padded)."""
    table = read_table(path)
    samples = [(c, m) for c in table.columns if (m := SAMPLE_COLUMN.match(c))]
    sample_columns = [c for c, _ in samples]
    if not sample_columns:
        raise DatasetError(f"{path} has no 'sample_<ms>ms' columns. Is it a 2-Hz continuous annotation file?")
    times = np.array([int(m.group(1)) for _, m in samples]) / 1000.0
    if np.any(np.diff(times) <= 0):
        raise DatasetError(f"{path}: sample columns are not in increasing time order.")
    table = table.set_index(clean_ids(table[table.columns[0]]))
    values, issues = numeric(table, {c: c for c in sample_columns}, path)
    series, more = _checked_series(values.index, times, values.to_numpy(dtype=float), path)
    return series, issues + more


def read_dynamic_pair(root: Path, files: tuple[Path, Path]) -> tuple[tuple[Series2Hz, Series2Hz] | None, list[Issue]]:
    """The (valence, arousal) wide 2-Hz files under ``root``; None with a warning when one is absent."""
    paths = [root / f for f in files]
    missing = [p for p in paths if not p.exists()]
    if missing:
        return None, [Issue("warning", "missing-file", f"{p} not found: no dynamic annotations") for p in missing]
    (valence, v_issues), (arousal, a_issues) = (read_wide_2hz(p) for p in paths)
    return (valence, arousal), v_issues + a_issues


def read_long_2hz(
    table: pd.DataFrame,
    *,
    id_column: str,
    time_column: str,
    value_column: str,
    source: Path,
    scale: Callable[[np.ndarray], np.ndarray | float] | None = None,
) -> tuple[Series2Hz, list[Issue]]:
    """The long format (one row per song and frame) reshaped to a :class:`Series2Hz`.

    ``scale`` maps the file's values to [-1, 1]; values that land outside are reported and blanked.
    """
    table = table.set_index(clean_ids(table[id_column]))
    values, issues = numeric(table, {"t": time_column, "x": value_column}, source)
    if scale is not None:
        values["x"] = scale(values["x"].to_numpy())
    values = values.reset_index(names="id")
    repeated = values.duplicated(["id", "t"], keep="first")
    for track_id in values.loc[repeated, "id"].unique():
        issues.append(corrected("duplicate-id", f"{source.name}: repeated frames of this song dropped", track_id))
    values = values[~repeated & values["t"].notna()]
    wide = values.pivot(index="id", columns="t", values="x").sort_index(axis=1)
    series, more = _checked_series(wide.index, wide.columns.to_numpy(dtype=float), wide.to_numpy(dtype=float), source)
    return series, issues + more


def dynamics(valence: Series2Hz, arousal: Series2Hz) -> dict[str, Dynamic]:
    """Pair the two dimensions song by song on a common time grid; trim the NaN padding at both ends."""
    times = np.union1d(valence.times, arousal.times)
    grids = {}
    for name, series in (("valence", valence), ("arousal", arousal)):
        grid = np.full((len(series.ids), len(times)), np.nan)
        grid[:, np.searchsorted(times, series.times)] = series.values
        grids[name] = pd.DataFrame(grid, index=series.ids)
    ids = grids["valence"].index.intersection(grids["arousal"].index, sort=False)
    v = grids["valence"].loc[ids].to_numpy()
    a = grids["arousal"].loc[ids].to_numpy()
    present = np.isfinite(v) | np.isfinite(a)
    out = {}
    for row, track_id in enumerate(ids):
        where = np.flatnonzero(present[row])
        if len(where) == 0:
            continue
        keep = slice(where[0], where[-1] + 1)
        out[track_id] = Dynamic(times[keep].copy(), v[row, keep].copy(), a[row, keep].copy())
    return out


def dynamic_means(valence: Series2Hz, arousal: Series2Hz) -> pd.DataFrame:
    """Per-song means of the continuous annotations, columns ``valence``/``arousal``."""
    return pd.concat({"valence": valence.row_means(), "arousal": arousal.row_means()}, axis=1)


def unpaired_dynamic_issues(valence: Series2Hz, arousal: Series2Hz) -> list[Issue]:
    """Songs present in only one of the two continuous files (they get no dynamic annotations)."""
    issues = []
    for have, lacking in ((valence, "arousal"), (arousal, "valence")):
        other = arousal if lacking == "arousal" else valence
        for track_id in have.ids.difference(other.ids):
            issues.append(Issue("warning", "missing-value", f"no continuous {lacking} annotations", track_id))
    return issues


# --- declarative readers: what a dataset's annotation files are, not how to parse them ----------------


@dataclass(frozen=True)
class StaticLabels:
    """Where a dataset keeps its static (per-song) valence/arousal labels, and on which scale.

    One reader (:meth:`read`) serves DEAM, emoMusic and PMEmo; each declares only its files, columns
    and scale.
    """

    what: str  # e.g. "DEAM static annotations", for messages
    files: tuple[Path, ...]  # relative to the dataset root, same columns; the first row of an id wins
    id_column: str
    valence_column: str
    arousal_column: str
    scale: Callable[[np.ndarray], np.ndarray | float]  # the files' scale -> [-1, 1]
    valid_range: tuple[float, float]  # on the files' scale

    @property
    def layout_path(self) -> Path:
        """What must exist under the root: the file, or the folder of several files (any may be missing)."""
        return self.files[0] if len(self.files) == 1 else self.files[0].parent

    def read(self, root: Path) -> tuple[pd.DataFrame, list[Issue]]:
        """Labels indexed by track id, columns ``valence``/``arousal`` in [-1, 1], and the issues found.

        A missing file is an error issue (its songs are missing); when every file is missing,
        :class:`DatasetError`.
        """
        parts, issues = [], []
        for relative in self.files:
            path = root / relative
            if not path.exists():
                issues.append(Issue("error", "missing-file", f"{path} not found: its songs are missing"))
                continue
            table = read_table(path)
            part, found = static_table(
                table,
                id_column=find_column(table, self.id_column, path=path),
                valence_column=find_column(table, self.valence_column, path=path),
                arousal_column=find_column(table, self.arousal_column, path=path),
                scale=self.scale,
                valid_range=self.valid_range,
                source=path,
            )
            parts.append(part)
            issues += found
        if not parts:
            raise DatasetError(
                f"No {self.what} file found in {root / self.layout_path}. "
                f"Is --root the folder that contains '{self.files[0].parts[0]}/'?"
            )
        if len(parts) == 1:
            return parts[0], issues
        static, repeated = drop_duplicate_ids(pd.concat(parts), root / self.layout_path)
        return static, issues + repeated


@dataclass(frozen=True)
class WideDynamic:
    """Continuous annotations as two wide 2-Hz files (valence, arousal), values already in [-1, 1]."""

    valence_file: Path
    arousal_file: Path

    def read(self, root: Path) -> tuple[tuple[Series2Hz, Series2Hz] | None, list[Issue]]:
        return read_dynamic_pair(root, (self.valence_file, self.arousal_file))


@dataclass(frozen=True)
class LongDynamic:
    """Continuous annotations as one long file: a row per song and frame, both dimensions as columns."""

    file: Path
    id_column: str
    time_column: str
    valence_column: str
    arousal_column: str
    scale: Callable[[np.ndarray], np.ndarray | float]  # the file's scale -> [-1, 1]

    def read(self, root: Path) -> tuple[tuple[Series2Hz, Series2Hz] | None, list[Issue]]:
        path = root / self.file
        if not path.exists():
            return None, [Issue("warning", "missing-file", f"{path} not found: no dynamic annotations")]
        table = read_table(path)
        pair, issues = [], []
        for column in (self.valence_column, self.arousal_column):
            series, found = read_long_2hz(
                table,
                id_column=find_column(table, self.id_column, path=path),
                time_column=find_column(table, self.time_column, path=path),
                value_column=find_column(table, column, path=path),
                scale=self.scale,
                source=path,
            )
            pair.append(series)
            issues += found
        return (pair[0], pair[1]), issues
