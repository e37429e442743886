"""What the command line writes besides its results: notes and progress bars on stderr, silenced by -q.

Results go to stdout (or ``--out``); errors are always shown. Informational lines (files written,
timings) go through :func:`note` and progress bars through :func:`progress_bar`, so that
``-q/--quiet`` silences both in one place.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any

_quiet = False


@contextlib.contextmanager
def quiet(enabled: bool) -> Iterator[None]:
    """Silence notes and progress bars for the duration of one command."""
    global _quiet
    before, _quiet = _quiet, enabled
    try:
        yield
    finally:
        _quiet = before


def note(message: str) -> None:
    """An informational line on stderr (not shown with -q)."""
    if not _quiet:
        print(message, file=sys.stderr)


def progress_bar(*, show: bool = True, **kwargs: Any):
    """A tqdm bar on stderr; hidden with -q, when ``show`` is false, and when stderr is not a terminal."""
    from tqdm import tqdm

    return tqdm(disable=True if (_quiet or not show) else None, file=sys.stderr, **kwargs)
