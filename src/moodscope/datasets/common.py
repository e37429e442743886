"""Parsing and checking helpers shared by the dataset loaders.

The loaders read a handful of file shapes: plain CSVs with padded fields, ragged metadata CSVs,
static valence/arousal tables on some rating scale, and 2-Hz continuous annotations either *wide*
(one row per song, columns ``sample_15000ms``, ``sample_15500ms`` …: DEAM, emoMusic) or *long*
(one row per song and frame: PMEmo). Everything here turns them into clean tables and records what
was wrong as :class:`~moodscope.datasets.base.Issue` objects instead of failing on the first defect.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd

from moodscope.audio import find_audio_files
from moodscope.constants import QUADRANTS
from moodscope.datasets.base import Dataset, Dynamic, Issue, Track, ValidationReport
from moodscope.errors import DatasetError

log = logging.getLogger(__name__)

SAMPLE_COLUMN = re.compile(r"^sample_(\d+)ms$")
"""Header of one 2-Hz sample in the wide format: the sample time in milliseconds."""

SWAP_MARGIN = 0.3
"""A block of songs is declared valence/arousal-swapped when the summed static–dynamic correlation
is higher by at least this much with the columns exchanged than as labelled."""

MIN_BLOCK_SONGS = 20
"""Fewest songs with both static and dynamic labels needed to test a block for swapped columns."""

CONTRADICTION_LEVEL = 0.25
"""A static label and the mean of its dynamic series contradict each other when they have opposite
signs on one axis and both lie at least this far from zero (on the [-1, 1] scale)."""

MAX_LISTED = 20
"""Beyond this many files of one kind (missing or extra audio), issues are summarised in one line."""


# --- files and layout ------------------------------------------------------------------------------


def _subfolders(folder: Path) -> list[Path]:
    try:
        return sorted(d for d in folder.iterdir() if d.is_dir())
    except OSError:
        return []


def _layout_hint(root: Path, relative: str) -> str:
    """Where ``relative`` does exist below or above ``root``, phrased as advice (or '')."""
    children = _subfolders(root)
    grandchildren = [d for c in children for d in _subfolders(c)]
    for candidate in [root.parent, *children, *grandchildren]:
        if (candidate / relative).exists():
            return f" Found it under {candidate}: pass that folder as --root."
    return ""


def require_path(root: Path, relative: str, what: str) -> Path:
    """``root / relative``, or a :class:`DatasetError` saying what is missing and how to fix ``--root``."""
    if not root.is_dir():
        raise DatasetError(f"Dataset folder {root} does not exist or is not a folder. Check --root.")
    path = root / relative
    if not path.exists():
        parts = Path(relative).parts
        top = f"{parts[0]}/" if len(parts) > 1 else parts[0]
        raise DatasetError(
            f"{what} not found at {path}. Is --root the folder that contains '{top}'?{_layout_hint(root, relative)}"
        )
    return path


def read_table(path: Path, **kwargs) -> pd.DataFrame:
    """Read a CSV with pandas; strip spaces and tabs from headers and text fields.

    Raises :class:`DatasetError` naming the file when it cannot be parsed.
    """
    kwargs.setdefault("skipinitialspace", True)
    try:
        table = pd.read_csv(io.StringIO(_read_text(path)), **kwargs)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        raise DatasetError(f"Cannot parse {path}: {exc}. Is it the file of the official distribution?") from exc
    table.columns = [str(c).strip() for c in table.columns]
    return strip_text(table)


def strip_text(table: pd.DataFrame) -> pd.DataFrame:
    """Strip surrounding whitespace (the DEAM/emoMusic metadata pad fields with tabs) from text columns."""
    table = table.copy()
    for column in table.columns:
        if pd.api.types.is_string_dtype(table[column]) or pd.api.types.is_object_dtype(table[column]):
            table[column] = table[column].map(lambda x: x.strip() if isinstance(x, str) else x)
    return table


def read_ragged_csv(path: Path) -> pd.DataFrame:
    """Read a CSV whose rows may carry more fields than its header (trailing tag lists).

    Columns follow the header (empty trailing header fields dropped); the surplus non-empty fields of
    each row go to an ``extra`` column as a list. All values are stripped strings.
    """
    rows = list(csv.reader(io.StringIO(_read_text(path))))
    if not rows:
        raise DatasetError(f"{path} is empty. Is it the file of the official distribution?")
    header = [h.strip() for h in rows[0]]
    while header and not header[-1]:
        header.pop()
    n = len(header)
    records = []
    for row in rows[1:]:
        if not any(field.strip() for field in row):
            continue
        fields = [field.strip() for field in row] + [""] * max(0, n - len(row))
        records.append([*fields[:n], [f for f in fields[n:] if f]])
    return pd.DataFrame(records, columns=[*header, "extra"])


def _read_text(path: Path) -> str:
    """The file's text: UTF-8 (with or without BOM), else Latin-1 (which decodes any byte)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"Cannot read {path}: {exc.strerror}. Check the file and its permissions.") from exc
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def find_column(table: pd.DataFrame, *names: str, path: Path | None = None, required: bool = True) -> str | None:
    """The first column whose name matches one of ``names`` (case-insensitive, spaces ignored)."""
    keys = {re.sub(r"\s+", "", str(c)).lower(): c for c in table.columns}
    for name in names:
        column = keys.get(re.sub(r"\s+", "", name).lower())
        if column is not None:
            return column
    if required:
        raise DatasetError(
            f"{path or 'table'} has no column {' / '.join(repr(n) for n in names)} "
            f"(columns: {', '.join(map(str, table.columns))}). Is it the file of the official distribution?"
        )
    return None


def clean_ids(values: Iterable) -> pd.Index:
    """Track ids as strings: integers lose any '.0', text is stripped."""

    def one(x: object) -> str:
        if isinstance(x, float) and x.is_integer():
            return str(int(x))
        return str(x).strip()

    return pd.Index([one(x) for x in values], dtype=object)


def normalise_quadrant(value: object) -> str | None:
    """'Q1'..'Q4' from 'Q1', 'q1', ' 1 ' or 1; None when it is none of them."""
    text = str(value).strip().upper()
    text = text if text.startswith("Q") else f"Q{text.removesuffix('.0')}"
    return text if text in QUADRANTS else None


# --- issues ----------------------------------------------------------------------------------------


def corrected(kind: str, message: str, track_id: str | None = None) -> Issue:
    """A 'corrected' issue, also logged: the loader changed the data it read, and says why."""
    log.warning("%s%s", f"{track_id}: " if track_id else "", message)
    return Issue("corrected", kind, message, track_id)


def drop_duplicate_ids(table: pd.DataFrame, source: Path) -> tuple[pd.DataFrame, list[Issue]]:
    """Keep the first row of each id (the index). Identical repeats are 'corrected', conflicting ones errors."""
    dup = table.index.duplicated(keep="first")
    if not dup.any():
        return table, []
    issues = []
    for track_id in table.index[dup].unique():
        rows = table.loc[[track_id]]
        if len(rows.drop_duplicates()) == 1:
            issues.append(corrected("duplicate-id", f"{source.name}: repeated identical row dropped", track_id))
        else:
            issues.append(
                Issue(
                    "error",
                    "duplicate-id",
                    f"{source.name}: {len(rows)} conflicting rows for this id; kept the first",
                    track_id,
                )
            )
    return table[~dup], issues


def numeric(table: pd.DataFrame, columns: Mapping[str, str], source: Path) -> tuple[pd.DataFrame, list[Issue]]:
    """Columns ``{new_name: source_column}`` as floats; unparseable cells become NaN and are reported."""
    arrays = {}
    issues = []
    for name, column in columns.items():
        raw = table[column]
        if pd.api.types.is_numeric_dtype(raw):
            arrays[name] = raw.to_numpy(dtype=float)
            continue
        values = pd.to_numeric(raw, errors="coerce")
        bad = values.isna() & raw.notna() & (raw.astype(str).str.strip() != "")
        for track_id, text in raw[bad].items():
            issues.append(
                Issue("error", "unreadable-row", f"{source.name}: {column} = {text!r} is not a number", track_id)
            )
        arrays[name] = values.to_numpy(dtype=float)
    return pd.DataFrame(arrays, index=table.index), issues


def static_table(
    table: pd.DataFrame,
    *,
    id_column: str,
    valence_column: str,
    arousal_column: str,
    scale: Callable[[np.ndarray], np.ndarray],
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


# --- continuous (2 Hz) annotations -----------------------------------------------------------------


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
    sample_columns = [c for c in table.columns if SAMPLE_COLUMN.match(c)]
    if not sample_columns:
        raise DatasetError(f"{path} has no 'sample_<ms>ms' columns. Is it a 2-Hz continuous annotation file?")
    times = np.array([int(SAMPLE_COLUMN.match(c).group(1)) for c in sample_columns]) / 1000.0
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
    scale: Callable[[np.ndarray], np.ndarray] | None = None,
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


# --- swapped valence/arousal -----------------------------------------------------------------------


def _corr(x: pd.Series, y: pd.Series) -> float:
    return float(np.corrcoef(x, y)[0, 1]) if x.std() > 0 and y.std() > 0 else 0.0


def swap_evidence(static: pd.DataFrame, dynamic_mean: pd.DataFrame) -> tuple[float, float, int]:
    """(as labelled, swapped, n): summed correlations of static with dynamic means, both ways round."""
    both = static.join(dynamic_mean, rsuffix="_dyn", how="inner").dropna()
    if len(both) < MIN_BLOCK_SONGS:
        return float("nan"), float("nan"), len(both)
    direct = _corr(both.valence, both.valence_dyn) + _corr(both.arousal, both.arousal_dyn)
    swapped = _corr(both.valence, both.arousal_dyn) + _corr(both.arousal, both.valence_dyn)
    return direct, swapped, len(both)


def correct_swapped_blocks(
    static: pd.DataFrame, dynamic_mean: pd.DataFrame, blocks: pd.Series, source: str
) -> tuple[pd.DataFrame, list[Issue]]:
    """Exchange valence and arousal of every block whose static labels fit the dynamic ones only swapped.

    ``blocks`` maps each track id to the block (e.g. annotation campaign) it was labelled in; a block
    is tested as a whole because one song's static label and its dynamic mean can disagree by chance.
    Blocks where neither orientation fits are reported (rows may be shifted), not changed.
    """
    static = static.copy()
    issues = []
    for block, ids in blocks.groupby(blocks).groups.items():
        ids = static.index.intersection(ids)
        direct, swapped, n = swap_evidence(static.loc[ids], dynamic_mean)
        if n < MIN_BLOCK_SONGS:
            continue
        if swapped - direct >= SWAP_MARGIN:
            static.loc[ids, ["valence", "arousal"]] = static.loc[ids, ["arousal", "valence"]].to_numpy()
            issues.append(
                corrected(
                    "swapped-columns",
                    f"{source}, {block} ({len(ids)} songs): static valence and arousal are swapped — they correlate "
                    f"{swapped:.2f} (summed r) with the dynamic annotations when exchanged against {direct:.2f} as "
                    f"labelled; exchanged back",
                )
            )
        elif max(direct, swapped) < 1.0:
            issues.append(
                Issue(
                    "error",
                    "inconsistent",
                    f"{source}, {block} ({n} songs): static labels barely match the dynamic annotations either way "
                    f"(summed r {direct:.2f} as labelled, {swapped:.2f} swapped); rows may be shifted",
                )
            )
    return static, issues


def _nanmean(x: np.ndarray) -> float:
    finite = x[np.isfinite(x)]
    return float(finite.mean()) if finite.size else float("nan")


def static_dynamic_issues(tracks: Iterable[Track]) -> list[Issue]:
    """Songs whose static label contradicts the mean of their own dynamic annotations.

    Contradiction: opposite signs on an axis with both values at least ``CONTRADICTION_LEVEL`` from
    zero. When the label fits the dynamic mean with valence and arousal exchanged, the message says so.
    """
    issues = []
    for track in tracks:
        if track.dynamic is None or track.valence is None or track.arousal is None:
            continue
        dv, da = _nanmean(track.dynamic.valence), _nanmean(track.dynamic.arousal)
        if not (np.isfinite(dv) and np.isfinite(da)):
            continue
        static = np.array([track.valence, track.arousal])
        dyn = np.array([dv, da])
        clash = (np.sign(static) != np.sign(dyn)) & (np.abs(static) >= CONTRADICTION_LEVEL)
        clash &= np.abs(dyn) >= CONTRADICTION_LEVEL
        if not clash.any():
            continue
        axes = " and ".join(name for name, c in zip(("valence", "arousal"), clash) if c)
        message = (
            f"static label (v={track.valence:+.2f}, a={track.arousal:+.2f}) contradicts the mean of its dynamic "
            f"annotations (v={dv:+.2f}, a={da:+.2f}) on {axes}"
        )
        if np.abs(static[::-1] - dyn).max() < 0.5 * np.abs(static - dyn).max():
            message += "; it fits with valence and arousal swapped"
        issues.append(Issue("warning", "inconsistent", message, track.track_id))
    return issues


# --- assembling tracks -----------------------------------------------------------------------------


def natural_key(track_id: str) -> tuple[int, int | str]:
    """Sort numeric ids numerically (2 < 10), then the rest alphabetically."""
    return (0, int(track_id)) if track_id.isdigit() else (1, track_id)


def _label(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def build_tracks(
    static: pd.DataFrame,
    dynamic: tuple[Series2Hz, Series2Hz] | None,
    *,
    source: str,
    audio_path: Callable[[str], Path | None],
    info: Mapping[str, Mapping[str, object]],
    blocks: pd.Series | None = None,
) -> tuple[dict[str, Track], list[Issue]]:
    """Tracks from static labels (index = id, columns ``valence``/``arousal`` in [-1, 1]) and dynamics.

    Static blocks whose valence and arousal are swapped relative to the dynamic annotations are
    corrected (see :func:`correct_swapped_blocks`; ``blocks`` defaults to one block for all songs).
    ``info[id]`` supplies ``artist``, ``title`` and ``split``; its other keys go to ``metadata``.
    """
    issues: list[Issue] = []
    paired: dict[str, Dynamic] = {}
    if dynamic is not None:
        valence, arousal = dynamic
        if blocks is None:
            blocks = pd.Series("all songs", index=static.index)
        static, fixed = correct_swapped_blocks(static, dynamic_means(valence, arousal), blocks, source)
        issues += fixed
        paired = dynamics(valence, arousal)
        issues += unpaired_dynamic_issues(valence, arousal)
        issues += [
            Issue("warning", "missing-value", "static label but no continuous annotations", track_id)
            for track_id in static.index.difference(valence.ids.union(arousal.ids))
        ]
        issues += [
            Issue("warning", "missing-value", "continuous annotations but no static label", track_id)
            for track_id in pd.Index(list(paired), dtype=object).difference(static.index)
        ]
    tracks = {}
    for track_id in sorted(set(static.index) | set(paired), key=natural_key):
        meta = dict(info.get(track_id, {}))
        v, a = static.loc[track_id].tolist() if track_id in static.index else (None, None)
        tracks[track_id] = Track(
            track_id=track_id,
            audio_path=audio_path(track_id),
            valence=_label(v),
            arousal=_label(a),
            dynamic=paired.get(track_id),
            artist=meta.pop("artist", None) or None,
            title=meta.pop("title", None) or None,
            split=meta.pop("split", None) or None,
            metadata=meta,
        )
    return tracks, issues


# --- audio -----------------------------------------------------------------------------------------


def audio_index(folder: Path) -> dict[str, Path]:
    """Audio files directly inside ``folder`` by file stem (empty when the folder is absent)."""
    if not folder.is_dir():
        return {}
    return {p.stem: p for p in find_audio_files(folder) if p.parent == folder}


def missing_audio_issues(tracks: Iterable[Track], *, separate_download: str | None) -> list[Issue]:
    """Annotated tracks without their audio file.

    With ``separate_download`` (where the full audio comes from), the absence is expected on a partial
    copy: one summary warning. Otherwise each missing file is an error (summarised beyond
    ``MAX_LISTED``).
    """
    missing = [t for t in tracks if t.audio_path is None or not t.audio_path.exists()]
    if not missing:
        return []
    if separate_download is not None:
        examples = ", ".join(t.track_id for t in missing[:5])
        return [
            Issue(
                "warning",
                "missing-audio",
                f"{len(missing)} annotated tracks have no audio file (e.g. {examples}); the full audio is a "
                f"separate download: {separate_download}",
            )
        ]
    issues = [
        Issue("error", "missing-audio", f"audio file not found: {t.audio_path}", t.track_id)
        for t in missing[:MAX_LISTED]
    ]
    if len(missing) > MAX_LISTED:
        issues.append(Issue("error", "missing-audio", f"… and {len(missing) - MAX_LISTED} more tracks without audio"))
    return issues


def extra_audio_issues(found: Iterable[Path], annotated: Iterable[Path | None]) -> list[Issue]:
    """Audio files on disk that no annotation refers to (summarised beyond ``MAX_LISTED``)."""
    known = {p.resolve() for p in annotated if p is not None}
    extra = sorted(p for p in found if p.resolve() not in known)
    issues = [Issue("warning", "extra-audio", f"audio file without annotation: {p}") for p in extra[:MAX_LISTED]]
    if len(extra) > MAX_LISTED:
        issues.append(Issue("warning", "extra-audio", f"… and {len(extra) - MAX_LISTED} more files without annotation"))
    return issues


# --- the shared Dataset skeleton -------------------------------------------------------------------


class AnnotatedDataset(Dataset):
    """A :class:`Dataset` that checks its layout on construction and keeps the issues found while loading.

    Subclasses implement ``_check_layout`` (raise :class:`DatasetError` early when ``root`` is wrong),
    ``_load`` (appending to ``self._load_issues``), ``_audio_files`` (what is on disk) and may extend
    ``_extra_checks``. ``separate_download`` says where the full audio is published when a partial copy
    is normal.
    """

    separate_download: ClassVar[str | None] = None

    def __init__(self, root: str | Path):
        super().__init__(root)
        self._load_issues: list[Issue] = []
        self._check_layout()

    def _check_layout(self) -> None:
        raise NotImplementedError

    def _audio_files(self) -> list[Path]:
        raise NotImplementedError

    def _extra_checks(self) -> list[Issue]:
        return static_dynamic_issues(self.tracks().values()) if self.has_dynamic else []

    def tracks(self) -> dict[str, Track]:
        if self._tracks is None:
            self._load_issues = []
            self._tracks = self._load()
        return self._tracks

    def load_issues(self) -> list[Issue]:
        """Issues found (and corrections made) while reading the annotations."""
        self.tracks()
        return list(self._load_issues)

    def validate(self) -> ValidationReport:
        tracks = self.tracks()
        issues = [
            *self._load_issues,
            *missing_audio_issues(tracks.values(), separate_download=self.separate_download),
            *extra_audio_issues(self._audio_files(), (t.audio_path for t in tracks.values())),
            *self._extra_checks(),
        ]
        return ValidationReport(self.name, self.root, len(tracks), len(self.with_audio()), issues)


def summary(dataset: Dataset) -> dict[str, object]:
    """Counts describing a dataset: tracks, audio, labels, quadrants, splits, artists."""
    tracks = list(dataset.tracks().values())
    quadrants = pd.Series([t.quadrant for t in tracks], dtype=object).value_counts()
    splits = pd.Series([t.split for t in tracks], dtype=object).value_counts()
    return {
        "dataset": dataset.name,
        "root": str(dataset.root),
        "n_tracks": len(tracks),
        "n_with_audio": len(dataset.with_audio()),
        "n_static": sum(t.valence is not None and t.arousal is not None for t in tracks),
        "n_dynamic": sum(t.dynamic is not None for t in tracks),
        "quadrants": {q: int(quadrants.get(q, 0)) for q in QUADRANTS},
        "splits": {str(k): int(v) for k, v in splits.items()},
        "n_artists": len({t.artist for t in tracks if t.artist}),
        "clip_seconds": dataset.clip_seconds,
    }
