"""``moodscope analyze INPUTS --out DIR/``: a Parquet dataset written as results stream in, resumable.

Layout (readable as one table per folder by pandas, pyarrow and Spark)::

    DIR/segments/part-<run>-<n>.parquet   one row per segment (the columns of Analysis.to_dataframe)
    DIR/tracks/part-<run>-<n>.parquet     one row per input file: its summary, or its error

Results are written in parts of up to :data:`TRACKS_PER_PART` tracks (or every
:data:`SECONDS_PER_PART` seconds), each file atomically; a part's ``tracks`` file is written after
its ``segments`` file and is what makes the part count. A re-run with the same ``DIR`` skips the
tracks already in ``tracks/`` (analysed or failed) and removes what a killed run left half done (a
``segments`` part without its ``tracks`` part, temporary files), so an interrupted run, re-run,
gives the same rows as an uninterrupted one, each track once. Delete ``DIR`` to start over.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moodscope.analysis.analyzer import Analysis
from moodscope.constants import QUADRANTS
from moodscope.engine.base import Engine, FileResult
from moodscope.engine.registry import engine_scope
from moodscope.errors import MoodscopeError, OutputError
from moodscope.fileio import atomic_write

log = logging.getLogger(__name__)

TRACKS_PER_PART = 256
SECONDS_PER_PART = 60.0
SEGMENTS, TRACKS = "segments", "tracks"


def track_schema():
    """The ``tracks`` table: the summary of each track, or its error (then the summary is null)."""
    import pyarrow as pa

    f8 = pa.float64()
    return pa.schema(
        [
            ("track", pa.string()),
            ("error", pa.string()),
            ("duration", f8),
            ("n_segments", pa.int64()),
            ("quadrant", pa.string()),
            ("mood", pa.string()),
            ("confidence", f8),
            *((f"p_{q}", f8) for q in QUADRANTS),
            ("valence", f8),
            ("arousal", f8),
            *((f"share_{q}", f8) for q in QUADRANTS),
            ("uncertain", pa.bool_()),
            ("ood_fraction", f8),
            ("moodscope_version", pa.string()),
            ("model", pa.string()),
            ("model_hash", pa.string()),
            ("va_meaning", pa.string()),
        ]
    )


def track_row(result: FileResult) -> dict[str, Any]:
    """The ``tracks`` row of one result."""
    row: dict[str, Any] = dict.fromkeys(track_schema().names)
    row["track"] = result.key
    if result.value is None:
        row["error"] = result.error or "unknown error"
        return row
    a: Analysis = result.value
    row.update(a.summary_row())
    return row


def segment_table(analyses: Sequence[Analysis]):
    """The ``segments`` rows of ``analyses`` as a pyarrow Table (floats as float64, so every part
    has the same schema)."""
    import pandas as pd
    import pyarrow as pa

    frame = pd.concat([a.to_dataframe() for a in analyses], ignore_index=True)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    return table.cast(
        pa.schema([(f.name, pa.float64() if pa.types.is_floating(f.type) else f.type) for f in table.schema])
    )


def _write_table(table, path: Path) -> None:
    import pyarrow.parquet as pq

    with atomic_write(path, "wb") as fh:
        pq.write_table(table, fh)


def check_dataset_folder(root: str | os.PathLike) -> None:
    """Raise :class:`~moodscope.errors.OutputError` (one line) when a dataset cannot be written in ``root``."""
    from moodscope.fileio import check_writable

    root = Path(root)
    if root.exists() and not root.is_dir():
        raise OutputError(f"{root}: exists and is not a folder; give a folder for the Parquet dataset")
    check_writable(root / TRACKS / "part.parquet")


@dataclass
class TrackDataset:
    """A dataset folder being written; see the module docstring."""

    root: Path
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    parts: int = 0

    def __post_init__(self) -> None:
        check_dataset_folder(self.root)
        for sub in (SEGMENTS, TRACKS):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    def written(self) -> set[str]:
        """Tracks already in the dataset; also removes what an interrupted run left half written."""
        import pyarrow.parquet as pq

        for stale in [*self.root.glob(f"{SEGMENTS}/.*.tmp"), *self.root.glob(f"{TRACKS}/.*.tmp")]:
            stale.unlink(missing_ok=True)
        committed = {p.name for p in (self.root / TRACKS).glob("part-*.parquet")}
        for orphan in (self.root / SEGMENTS).glob("part-*.parquet"):
            if orphan.name not in committed:
                log.info("removing %s, written by a run interrupted before its tracks part", orphan)
                orphan.unlink()
        done: set[str] = set()
        for name in sorted(committed):
            try:
                done.update(pq.read_table(self.root / TRACKS / name, columns=["track"]).column(0).to_pylist())
            except Exception as exc:
                raise MoodscopeError(
                    f"{self.root / TRACKS / name}: cannot be read ({exc}); remove it and its segments part to redo them"
                ) from exc
        return done

    def write(self, results: Sequence[FileResult]) -> None:
        """Write one part: the segments of the analysed results, then every result's tracks row."""
        import pyarrow as pa

        if not results:
            return
        name = f"part-{self.run}-{self.parts:05d}.parquet"
        analyses = [r.value for r in results if r.value is not None]
        if analyses:
            _write_table(segment_table(analyses), self.root / SEGMENTS / name)
        _write_table(
            pa.Table.from_pylist([track_row(r) for r in results], schema=track_schema()), self.root / TRACKS / name
        )
        self.parts += 1


@dataclass
class DatasetResult:
    """What a dataset run did."""

    root: Path
    analysed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # path -> reason
    skipped: list[str] = field(default_factory=list)  # already in the dataset


def analyze_to_dataset(
    paths: Iterable[str | os.PathLike],
    root: str | os.PathLike,
    *,
    model: Any = None,
    engine: Engine | str = "local",
    workers: int | None = None,
    address: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> DatasetResult:
    """Analyse ``paths`` (files or URLs) on ``engine`` into the Parquet dataset ``root`` (see the
    module docstring), skipping tracks already there; failed files are ``tracks`` rows with their error.

    An interruption (Ctrl-C, SIGTERM) writes what has arrived before it stops.
    """
    from moodscope.engine.analysis import as_items, check_model

    check_model(model)
    dataset = TrackDataset(Path(root))
    done = dataset.written()
    keys = [str(p) for p in paths]
    result = DatasetResult(root=Path(root), skipped=[k for k in keys if k in done])
    todo = [k for k in keys if k not in done]
    if not todo:
        return result
    pending: list[FileResult] = []
    last_write = time.monotonic()
    with engine_scope(engine, workers=workers, address=address) as runner:
        try:
            for n, item in enumerate(runner.analyze(as_items(todo), model), 1):
                pending.append(item)
                if item.value is not None:
                    result.analysed.append(item.key)
                else:
                    result.failed[item.key] = item.error or "unknown error"
                if len(pending) >= TRACKS_PER_PART or time.monotonic() - last_write >= SECONDS_PER_PART:
                    dataset.write(pending)
                    pending, last_write = [], time.monotonic()
                if progress:
                    progress(n, len(todo))
        finally:
            dataset.write(pending)
    return result
