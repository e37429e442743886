"""Analysing many files on an engine: the job, and the batch behind ``moodscope analyze``."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moodscope.analysis.analyzer import Analysis
from moodscope.engine.base import Engine
from moodscope.engine.registry import engine_scope

Progress = Callable[[int, int], None]
"""``progress(done, total)``, called after each file."""


def check_model(model: Any) -> None:
    """Fail once, early, on a model that cannot be found (not once per file in every worker)."""
    if isinstance(model, (str, os.PathLike)):
        from moodscope.analysis.pretrained import resolve_model_path

        resolve_model_path(model)


@dataclass
class BatchResult:
    analyses: list[Analysis]  # in the order of the paths given
    failed: dict[str, str]  # path -> reason


def analyze_files(
    paths: Sequence[str | os.PathLike],
    *,
    model: Any = None,
    engine: Engine | str = "local",
    workers: int | None = None,
    address: str | None = None,
    progress: Progress | None = None,
) -> BatchResult:
    """Analyse many files on ``engine`` ('local', 'ray' or an open :class:`Engine`); failures are
    collected with their reasons. Results come back in the order of ``paths``."""
    check_model(model)
    keys = [str(p) for p in paths]
    results: dict[str, Analysis] = {}
    failed: dict[str, str] = {}
    with engine_scope(engine, workers=workers, address=address) as runner:
        for done, (key, analysis, error) in enumerate(runner.analyze(as_items(keys), model), 1):
            if analysis is not None:
                results[key] = analysis
            else:
                failed[key] = error or "unknown error"
            if progress:
                progress(done, len(keys))
    return BatchResult(analyses=[results[k] for k in keys if k in results], failed=failed)


def as_items(paths: Sequence[str | Path]) -> list[tuple[str, str]]:
    """``(key, path)`` items of files whose results are reported under their own path."""
    return [(str(p), str(p)) for p in paths]
