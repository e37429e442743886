"""Datasets: loaders sharing one contract (:class:`~moodscope.datasets.base.Dataset`), valence/arousal
scales and Russell's quadrants (:mod:`~moodscope.datasets.labels`), and the table of labelled 5-s
segments that training reads (:mod:`~moodscope.datasets.segments`).

``load_dataset(name, root)`` builds a loader by name; the layouts, label conversions and the defects
found in the distributed files are described in each module and in ``docs/datasets.md``.
"""

from __future__ import annotations

import inspect
from pathlib import Path

from moodscope.datasets.base import Dataset, DatasetTrack, Dynamic, Issue, ValidationReport
from moodscope.datasets.deam import DEAM
from moodscope.datasets.emomusic import EmoMusic, cross_check
from moodscope.datasets.folder import FolderDataset
from moodscope.datasets.fourq import FourQ
from moodscope.datasets.pmemo import PMEmo
from moodscope.errors import DatasetError

DATASETS: dict[str, type[Dataset]] = {
    "deam": DEAM,
    "mturk": EmoMusic,
    "emomusic": EmoMusic,
    "pmemo": PMEmo,
    "4q": FourQ,
    "folder": FolderDataset,
}
"""Loader classes by name; 'emomusic' is an alias of 'mturk'."""


def load_dataset(name: str, root: str | Path, **kwargs: object) -> Dataset:
    """The loader for dataset ``name`` reading ``root``.

    ``kwargs`` go to the loader (only ``folder`` takes options: ``csv``, ``scale``). The
    layout is checked at once: a wrong ``root``, an unknown name or an option the loader does not
    take raises :class:`DatasetError` saying what to do; the annotations are read on first use.
    """
    cls = DATASETS.get(name.strip().lower())
    if cls is None:
        raise DatasetError(f"Unknown dataset {name!r}. Known datasets: {', '.join(DATASETS)}.")
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self", "root"}
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
        takes = f"takes only {', '.join(sorted(accepted))}" if accepted else "takes no options"
        raise DatasetError(f"Dataset {name!r} {takes}; got {', '.join(unknown)}.")
    return cls(root, **kwargs)


__all__ = [
    "DATASETS",
    "DEAM",
    "Dataset",
    "DatasetError",
    "DatasetTrack",
    "Dynamic",
    "EmoMusic",
    "FolderDataset",
    "FourQ",
    "Issue",
    "PMEmo",
    "ValidationReport",
    "cross_check",
    "load_dataset",
]
