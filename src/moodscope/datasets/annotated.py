"""The skeleton every annotated dataset shares: tracks assembled from labels, metadata and audio,
checked on construction and validated with the checks of :mod:`~moodscope.datasets.checks`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from moodscope.audio import find_audio_files
from moodscope.constants import QUADRANTS
from moodscope.datasets.annotations import (
    LongDynamic,
    Series2Hz,
    StaticLabels,
    WideDynamic,
    dynamic_means,
    dynamics,
    unpaired_dynamic_issues,
)
from moodscope.datasets.base import Dataset, DatasetTrack, Dynamic, Issue, ValidationReport
from moodscope.datasets.checks import (
    correct_swapped_blocks,
    extra_audio_issues,
    missing_audio_issues,
    static_dynamic_issues,
)
from moodscope.datasets.tables import require_path


def natural_key(track_id: str) -> tuple[int, int | str]:
    """Sort numeric ids numerically (2 < 10), then the rest alphabetically."""
    return (0, int(track_id)) if track_id.isdigit() else (1, track_id)


def _label(x: float | None) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def build_tracks(
    static: pd.DataFrame,
    dynamic: tuple[Series2Hz, Series2Hz] | None,
    *,
    source: str,
    audio_path: Callable[[str], Path | None],
    info: Mapping[str, Mapping[str, object]],
    blocks: pd.Series | None = None,
) -> tuple[dict[str, DatasetTrack], list[Issue]]:
    """Tracks from static labels (index = id, columns ``valence``/``arousal`` in [-1, 1]) and dynamics.

    Static blocks whose valence and arousal are swapped relative to the dynamic annotations are
    corrected (see :func:`correct_swapped_blocks`; ``blocks`` defaults to one block for all songs).
    ``info[id]`` supplies ``artist``, ``title`` and ``split``; its other keys go to ``metadata``.
    """
    issues: list[Issue] = []
    paired: dict[str, Dynamic] = {}
    if dynamic is not None:
        valence, arousal = dynamic
        if blocks is None:
            blocks = pd.Series("all songs", index=static.index)
        static, fixed = correct_swapped_blocks(static, dynamic_means(valence, arousal), blocks, source)
        issues += fixed
        paired = dynamics(valence, arousal)
        issues += unpaired_dynamic_issues(valence, arousal)
        issues += [
            Issue("warning", "missing-value", "static label but no continuous annotations", track_id)
            for track_id in static.index.difference(valence.ids.union(arousal.ids))
        ]
        issues += [
            Issue("warning", "missing-value", "continuous annotations but no static label", track_id)
            for track_id in pd.Index(list(paired), dtype=object).difference(static.index)
        ]
    tracks = {}
    for track_id in sorted(set(static.index) | set(paired), key=natural_key):
        meta: dict[str, Any] = dict(info.get(track_id, {}))
        v, a = static.loc[track_id].tolist() if track_id in static.index else (None, None)
        tracks[track_id] = DatasetTrack(
            track_id=track_id,
            audio_path=audio_path(track_id),
            valence=_label(v),
            arousal=_label(a),
            dynamic=paired.get(track_id),
            artist=meta.pop("artist", None) or None,
            title=meta.pop("title", None) or None,
            split=meta.pop("split", None) or None,
            metadata=meta,
        )
    return tracks, issues


def audio_index(folder: Path) -> dict[str, Path]:
    """Audio files directly inside ``folder`` by file stem (empty when the folder is absent)."""
    if not folder.is_dir():
        return {}
    return {p.stem: p for p in find_audio_files(folder) if p.parent == folder}


class AnnotatedDataset(Dataset):
    """A :class:`Dataset` that checks its layout on construction and keeps the issues found while loading.

    A dataset of static and continuous valence/arousal labels (DEAM, emoMusic, PMEmo) only *declares*
    its files: :attr:`static_labels` (a :class:`~moodscope.datasets.annotations.StaticLabels`),
    :attr:`dynamic_labels` (``WideDynamic`` or ``LongDynamic``) and :attr:`audio_dir`; the reading is
    done here (:meth:`_load`: labels, continuous annotations, metadata from :meth:`_read_info`, tracks).
    A dataset of another shape (4Q, folder) overrides ``_check_layout``, ``_load`` (appending to
    ``self._load_issues``) and ``_audio_files``. ``separate_download`` says where the full audio is
    published when a partial copy is normal.
    """

    separate_download: ClassVar[str | None] = None
    static_labels: ClassVar[StaticLabels | None] = None
    dynamic_labels: ClassVar[WideDynamic | LongDynamic | None] = None
    audio_dir: ClassVar[Path] = Path(".")
    audio_suffix: ClassVar[str] = ".mp3"

    def __init__(self, root: str | Path):
        super().__init__(root)
        self._load_issues: list[Issue] = []
        self._check_layout()

    def _check_layout(self) -> None:
        """Raise :class:`~moodscope.errors.DatasetError` early when ``root`` is not the dataset's folder."""
        if self.static_labels is None:
            raise NotImplementedError
        require_path(self.root, str(self.static_labels.layout_path), self.static_labels.what)

    def _audio_files(self) -> list[Path]:
        """The audio files on disk."""
        return list(audio_index(self.root / self.audio_dir).values())

    def _audio_path(self, track_id: str) -> Path:
        return self.root / self.audio_dir / f"{track_id}{self.audio_suffix}"

    def _load(self) -> dict[str, DatasetTrack]:
        """Tracks from the declared static and continuous labels and the metadata of :meth:`_read_info`."""
        if self.static_labels is None:
            raise NotImplementedError
        static, issues = self.static_labels.read(self.root)
        self._load_issues += issues
        dynamic, issues = self.dynamic_labels.read(self.root) if self.dynamic_labels else (None, [])
        self._load_issues += issues
        tracks, issues = build_tracks(
            static,
            dynamic,
            source=self.static_labels.what,
            audio_path=self._audio_path,
            info=self._read_info(static.index),
            blocks=self._swap_blocks(static.index),
        )
        self._load_issues += issues
        return tracks

    def _read_info(self, annotated: pd.Index) -> Mapping[str, Mapping[str, object]]:
        """Per-track ``artist``, ``title``, ``split`` and other metadata (none by default)."""
        return {}

    def _swap_blocks(self, ids: pd.Index) -> pd.Series | None:
        """The block (annotation campaign) of each track, tested as a whole for swapped columns; None = one block."""
        return None

    def _extra_checks(self) -> list[Issue]:
        return static_dynamic_issues(self.tracks().values()) if self.has_dynamic else []

    def tracks(self) -> dict[str, DatasetTrack]:
        if self._tracks is None:
            self._load_issues = []
            self._tracks = self._load()
        return self._tracks

    def load_issues(self) -> list[Issue]:
        """Issues found (and corrections made) while reading the annotations."""
        self.tracks()
        return list(self._load_issues)

    def validate(self) -> ValidationReport:
        tracks = self.tracks()
        issues = [
            *self._load_issues,
            *missing_audio_issues(tracks.values(), separate_download=self.separate_download),
            *extra_audio_issues(self._audio_files(), (t.audio_path for t in tracks.values())),
            *self._extra_checks(),
        ]
        return ValidationReport(self.name, self.root, len(tracks), len(self.with_audio()), issues)


def summary(dataset: Dataset) -> dict[str, Any]:
    """Counts describing a dataset: tracks, audio, labels, quadrants, splits, artists."""
    tracks = list(dataset.tracks().values())
    quadrants = pd.Series([t.quadrant for t in tracks], dtype=object).value_counts()
    splits = pd.Series([t.split for t in tracks], dtype=object).value_counts()
    return {
        "dataset": dataset.name,
        "root": str(dataset.root),
        "n_tracks": len(tracks),
        "n_with_audio": len(dataset.with_audio()),
        "n_static": sum(t.valence is not None and t.arousal is not None for t in tracks),
        "n_dynamic": sum(t.dynamic is not None for t in tracks),
        "quadrants": {q: int(quadrants.get(q, 0)) for q in QUADRANTS},
        "splits": {str(k): int(v) for k, v in splits.items()},
        "n_artists": len({t.artist for t in tracks if t.artist}),
        "clip_seconds": dataset.clip_seconds,
    }
