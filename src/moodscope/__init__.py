"""moodscope: music emotion recognition on Russell's four quadrants.

    >>> import moodscope
    >>> result = moodscope.analyze("song.mp3")          # doctest: +SKIP
    >>> result.summary.mood, result.to_dataframe()      # doctest: +SKIP
    >>> library = moodscope.MoodLibrary("moods.db")     # doctest: +SKIP

The pipeline, one package per stage (data flows down this list, never up):
``audio`` → ``features`` → ``datasets`` → ``models`` → ``training`` → ``analysis`` → ``engine``
→ ``library`` → ``server``, with ``cli`` on top and ``constants``, ``errors``, ``extras``,
``fileio``, ``paths`` and ``version`` as the ground floor. Importing the package is cheap: heavy
libraries load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from moodscope.errors import AudioError, DatasetError, LibraryError, ModelError, MoodscopeError, OutputError
from moodscope.version import __version__

if TYPE_CHECKING:
    import os

    import numpy as np

    from moodscope.analysis import Analysis
    from moodscope.analysis.pretrained import MoodModel
    from moodscope.library import MoodLibrary

__all__ = [
    "AudioError",
    "DatasetError",
    "LibraryError",
    "ModelError",
    "MoodLibrary",
    "MoodscopeError",
    "OutputError",
    "__version__",
    "analyze",
    "load_model",
]


def analyze(
    path_or_array: str | os.PathLike | np.ndarray,
    sr: int | None = None,
    model: str | os.PathLike | MoodModel | None = None,
) -> Analysis:
    """Analyse a file or an array; see :func:`moodscope.analysis.analyze`."""
    from moodscope.analysis import analyze as _analyze

    return _analyze(path_or_array, sr=sr, model=model)


def load_model(name_or_path: str | os.PathLike | None = None) -> MoodModel:
    """Load a mood model by name ('accurate', 'fast') or checkpoint path; see :mod:`moodscope.analysis.pretrained`."""
    from moodscope.analysis import load_model as _load_model

    return _load_model(name_or_path)


def __getattr__(name: str) -> Any:
    if name == "MoodLibrary":  # imported on first use: it pulls in numpy and the analysis stack
        from moodscope.library import MoodLibrary

        return MoodLibrary
    raise AttributeError(f"module 'moodscope' has no attribute {name!r}")
