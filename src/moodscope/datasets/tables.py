"""Reading annotation files: CSVs with padded or ragged fields, columns found by name, clean ids.

Problems in the data are recorded as :class:`~moodscope.datasets.base.Issue` objects instead of
failing on the first defect; a file that cannot be used at all is a
:class:`~moodscope.errors.DatasetError` naming it and saying what to check.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Literal, overload

import pandas as pd

from moodscope.constants import QUADRANTS
from moodscope.datasets.base import Issue
from moodscope.errors import DatasetError

log = logging.getLogger(__name__)


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


@overload
def find_column(table: pd.DataFrame, *names: str, path: Path | None = None, required: Literal[True] = True) -> str: ...


@overload
def find_column(table: pd.DataFrame, *names: str, path: Path | None = None, required: bool) -> str | None: ...


def find_column(table: pd.DataFrame, *names: str, path: Path | None = None, required: bool = True) -> str | None:
    """The first column whose name matches one of ``names`` (case-insensitive, spaces ignored); with
    ``required`` (the default) a :class:`DatasetError` naming the file when there is none."""
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
