"""One contract for every dataset, in the spirit of mirdata.

A :class:`Dataset` reads an official layout from ``root`` and exposes :class:`DatasetTrack` objects with
their audio path, static valence/arousal in [-1, 1], dynamic annotations where present, quadrant,
artist, official split and raw metadata. ``validate()`` returns a :class:`ValidationReport`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np

from moodscope.datasets.labels import quadrant_from_va


@dataclass
class Dynamic:
    """Continuous annotations of one song, in [-1, 1]: ``times`` in seconds of the audio file."""

    times: np.ndarray  # (t,)
    valence: np.ndarray  # (t,) NaN where missing
    arousal: np.ndarray  # (t,)


@dataclass
class DatasetTrack:
    """One track of a dataset: its labels, annotations and audio file (a track of the user's mood
    library is :class:`moodscope.library.db.Track`)."""

    track_id: str
    audio_path: Path | None
    valence: float | None = None  # static, [-1, 1]
    arousal: float | None = None  # static, [-1, 1]
    quadrant_label: str | None = None  # given by the dataset (4Q); else derived from valence/arousal
    dynamic: Dynamic | None = None
    artist: str | None = None
    title: str | None = None
    split: str | None = None  # official split, where the dataset has one
    metadata: dict = field(default_factory=dict)

    @property
    def quadrant(self) -> str | None:
        if self.quadrant_label is not None:
            return self.quadrant_label
        if self.valence is None or self.arousal is None:
            return None
        return quadrant_from_va(self.valence, self.arousal)


@dataclass
class Issue:
    """One finding of ``validate()``: ``severity`` is 'error', 'warning' or 'corrected'."""

    severity: str
    kind: str  # e.g. 'missing-audio', 'extra-audio', 'out-of-range', 'unreadable-row', 'inconsistent'
    message: str
    track_id: str | None = None


@dataclass
class ValidationReport:
    dataset: str
    root: Path
    n_tracks: int = 0
    n_with_audio: int = 0
    issues: list[Issue] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(i.severity == "error" for i in self.issues)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for i in self.issues:
            key = f"{i.severity}:{i.kind}"
            out[key] = out.get(key, 0) + 1
        return out


class Dataset:
    """Base class. Subclasses set ``name`` and implement ``_load`` (and extend ``validate``)."""

    name: ClassVar[str] = ""
    clip_seconds: ClassVar[float | None] = None  # the paper's clip length for this dataset, if any
    has_dynamic: ClassVar[bool] = False

    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser()
        self._tracks: dict[str, DatasetTrack] | None = None

    def tracks(self) -> dict[str, DatasetTrack]:
        if self._tracks is None:
            self._tracks = self._load()
        return self._tracks

    def track(self, track_id: str) -> DatasetTrack:
        return self.tracks()[track_id]

    def track_ids(self) -> list[str]:
        return list(self.tracks())

    def with_audio(self) -> list[DatasetTrack]:
        """Tracks whose audio file is present on disk."""
        return [t for t in self.tracks().values() if t.audio_path is not None and t.audio_path.exists()]

    def audio_items(self) -> list[tuple[str, Path]]:
        """``(track_id, audio_path)`` of every track whose audio is on disk: what feature caches read."""
        return [(t.track_id, t.audio_path) for t in self.with_audio() if t.audio_path is not None]

    def _load(self) -> dict[str, DatasetTrack]:
        raise NotImplementedError

    def validate(self) -> ValidationReport:
        raise NotImplementedError
