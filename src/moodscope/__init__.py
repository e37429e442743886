"""moodscope: music emotion recognition on Russell's four quadrants.

    >>> import moodscope
    >>> result = moodscope.analyze("song.mp3")          # doctest: +SKIP
    >>> result.summary.mood, result.to_dataframe()      # doctest: +SKIP

Importing the package is cheap: heavy libraries load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from moodscope.errors import AudioError, DatasetError, LibraryError, ModelError, MoodscopeError

__version__ = "0.1.0"

if TYPE_CHECKING:
    from moodscope.analysis import Analysis

__all__ = [
    "AudioError",
    "DatasetError",
    "LibraryError",
    "ModelError",
    "MoodscopeError",
    "__version__",
    "analyze",
    "load_model",
]


def analyze(path_or_array, sr: int | None = None, model=None) -> Analysis:
    """Analyse a file or an array; see :func:`moodscope.analysis.analyze`."""
    from moodscope.analysis import analyze as _analyze

    return _analyze(path_or_array, sr=sr, model=model)


def load_model(name_or_path=None):
    """Load a mood model by name ('accurate', 'fast') or checkpoint path; see :mod:`moodscope.pretrained`."""
    from moodscope.pretrained import load_model as _load_model

    return _load_model(name_or_path)
