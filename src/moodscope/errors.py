"""The project's one exception type and its subclasses. Messages say what to do."""

from __future__ import annotations


class MoodscopeError(Exception):
    """Base class for every error moodscope raises on purpose."""


class AudioError(MoodscopeError):
    """A file could not be read as audio, or is unusable (empty, too short, corrupt)."""


class DatasetError(MoodscopeError):
    """A dataset folder is missing files or has malformed annotations."""


class ModelError(MoodscopeError):
    """A model or checkpoint cannot be found, loaded or used."""


class LibraryError(MoodscopeError):
    """The music library database cannot be used as asked."""


class OutputError(MoodscopeError):
    """An output file cannot be written where it was asked for."""


class UnsupportedFormatError(AudioError):
    """A file's format cannot do what was asked (for instance hold moodscope's tags)."""
