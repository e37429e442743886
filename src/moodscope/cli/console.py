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


class HiddenBar:
    """What :func:`progress_bar` gives when nothing is shown: the part of tqdm's interface the
    commands use, doing nothing (so that tqdm is not even imported)."""

    def __init__(self, total: float | None = None, **kwargs: Any):
        self.total = total
        self.n: float = 0

    def update(self, n: float = 1) -> None:
        self.n += n

    def set_description(self, *args: Any, **kwargs: Any) -> None:
        pass

    def set_postfix(self, *args: Any, **kwargs: Any) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> HiddenBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # None (no console), or closed
        return False


def progress_bar(*, show: bool = True, **kwargs: Any):
    """A tqdm bar on stderr (``kwargs`` as for tqdm); a :class:`HiddenBar` with -q, when ``show`` is
    false, and when stderr is not a terminal (scripts, pipes, logs)."""
    if _quiet or not show or not _is_terminal(sys.stderr):
        return HiddenBar(**kwargs)
    from tqdm import tqdm

    return tqdm(file=sys.stderr, **kwargs)
