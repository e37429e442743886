"""Optional dependencies ("extras"): what each one enables, and the error that says how to install it.

The core install (``pip install moodscope``) is what ``analyze``, ``demo`` and ``library`` need.
The rest comes with extras, ``pip install 'moodscope[EXTRA]'`` (``[all]`` for every one):

==============  ======================================================================
``train``       training the ``accurate`` model's heads (scikit-learn)
``reference``   the librosa reference features (tests, ``benchmarks/features.py``)
``parquet``     Parquet output (pyarrow)
``web``         ``moodscope serve``: the web app and HTTP API
==============  ======================================================================

A feature whose extra is missing raises :class:`MissingExtraError` at the point of use, naming
the exact ``pip install`` line.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from moodscope.errors import MoodscopeError


class MissingExtraError(MoodscopeError):
    """A feature needs an optional dependency that is not installed."""


def install_line(extra: str) -> str:
    """The command that installs ``extra``: ``pip install 'moodscope[EXTRA]'``."""
    return f"pip install 'moodscope[{extra}]'"


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """Import ``module`` (e.g. ``"sklearn.metrics"``), or raise :class:`MissingExtraError` saying that
    ``purpose`` (e.g. ``"training metrics"``) needs ``extra`` and how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        raise MissingExtraError(
            f"{purpose} needs the optional package {top!r} (moodscope's '{extra}' extra); "
            f"install it with: {install_line(extra)}"
        ) from exc
