"""How a :class:`~moodscope.datasets.segments.SegmentTable` is split into train / validation / test.

``paper`` — the paper's protocol, kept for reproduction: (near-axis filter when the table is
built,) random oversampling of every quadrant to the largest one's count, *then* a random
segment-level split. The paper says "a split of 70, 10 and 10", which cannot sum to 100; we use
80/10/10, the only reading in which the two 10s hold. Because oversampling happens before the
split, copies of one segment land in both train and test, and the other segments of a test
segment's song are almost always in train: the test set measures recall of seen songs.

``song`` — the default: the split is by group — the artist where the dataset has one, else the
song — stratified by quadrant, so no song (or artist) is on both sides. Oversampling (or class
weights) is applied to the training part only; validation and test keep their natural counts.

Both support k-fold cross-validation (:func:`make_splits` with ``folds > 1``): fold ``i`` is the
test part and a validation part is carved out of the rest the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from moodscope.constants import N_QUADRANTS
from moodscope.errors import DatasetError
from moodscope.training.config import PROTOCOLS

TEST_FRACTION = 0.1
VAL_FRACTION = 0.1


@dataclass
class Split:
    """Row indices into a segment table. ``train`` may repeat rows (oversampling); under ``paper``
    ``val`` and ``test`` may too (they were drawn after oversampling)."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    protocol: str
    fold: int = 0


def oversample(index: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``index`` plus random duplicates of the rows of every minority class, so that each class of
    ``labels[index]`` reaches the largest class's count. Rows outside ``index`` are never added."""
    index = np.asarray(index)
    y = labels[index]
    classes, counts = np.unique(y, return_counts=True)
    extra = [rng.choice(index[y == c], size=counts.max() - n, replace=True) for c, n in zip(classes, counts)]
    return np.concatenate([index, *extra]).astype(int)


def class_weights(labels: np.ndarray, n_classes: int = N_QUADRANTS) -> np.ndarray:
    """Inverse-frequency weights (mean 1 over the classes present) for a weighted cross-entropy."""
    counts = np.bincount(labels, minlength=n_classes).astype(float)
    w = np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / max((counts > 0).sum(), 1), 0.0)
    return w.astype(np.float32)


def stratified_folds(labels: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Assign each item a fold 0..k-1: items of each label are shuffled and dealt round-robin,
    the deal continuing across labels so that folds differ in size by at most one."""
    labels = np.asarray(labels)
    folds = np.empty(len(labels), int)
    start = int(rng.integers(k))
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        folds[members] = (start + np.arange(len(members))) % k
        start = (start + len(members)) % k
    return folds


def _group_labels(groups: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unique groups, each one's majority label, and each row's position in the unique groups."""
    uniq, inverse = np.unique(groups, return_inverse=True)
    counts = np.zeros((len(uniq), int(labels.max()) + 1), int)
    np.add.at(counts, (inverse, labels), 1)
    return uniq, counts.argmax(axis=1), inverse


def stratified_group_folds(labels: np.ndarray, groups: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Assign each row a fold 0..k-1 with every group (artist or song) whole in one fold.

    The project's one stratified group splitter (training splits, the ``accurate`` model's
    cross-validation): each group takes its majority label and the groups are dealt to folds by
    :func:`stratified_folds`, so every fold gets about the same number of groups of each label.
    """
    _, glabels, inverse = _group_labels(np.asarray(groups), np.asarray(labels))
    return stratified_folds(glabels, k, rng)[inverse]


def _holdout_groups(rows: np.ndarray, groups: np.ndarray, labels: np.ndarray, fraction: float, rng) -> np.ndarray:
    """A boolean mask over ``rows``: a stratified group-level holdout of about ``fraction`` of them."""
    k = max(2, min(len(np.unique(groups[rows])), round(1 / fraction)))
    return stratified_group_folds(labels[rows], groups[rows], k, rng) == 0


def _check_groups(groups: np.ndarray, need: int) -> None:
    n = len(np.unique(groups))
    if n < need:
        raise DatasetError(
            f"only {n} songs/artists with labelled segments; a song-level split needs at least {need} "
            "(cache features of more tracks)"
        )


def song_splits(
    labels: np.ndarray,
    groups: np.ndarray,
    *,
    folds: int = 1,
    seed: int = 0,
    balance: str = "oversample",
    test_fraction: float = TEST_FRACTION,
    val_fraction: float = VAL_FRACTION,
) -> list[Split]:
    """Group-disjoint, quadrant-stratified splits. ``groups`` are artists (or song ids)."""
    labels, groups = np.asarray(labels), np.asarray(groups)
    _check_groups(groups, 3)
    rng = np.random.default_rng(seed)
    rows = np.arange(len(labels))
    k = folds if folds > 1 else max(2, min(len(np.unique(groups)), round(1 / test_fraction)))
    gfold = stratified_group_folds(labels, groups, k, rng)
    out = []
    for fold in range(folds):
        test = rows[gfold == fold]
        rest = rows[gfold != fold]
        in_val = _holdout_groups(rest, groups, labels, val_fraction / (1 - len(test) / len(rows)), rng)
        val, train = rest[in_val], rest[~in_val]
        if balance == "oversample":
            train = oversample(train, labels, rng)
        out.append(Split(train=train, val=val, test=test, protocol="song", fold=fold))
    return out


def paper_splits(
    labels: np.ndarray,
    *,
    folds: int = 1,
    seed: int = 0,
    test_fraction: float = TEST_FRACTION,
    val_fraction: float = VAL_FRACTION,
) -> list[Split]:
    """The paper's protocol: oversample every quadrant to the largest, then split segments at random
    (stratified by quadrant) — 80/10/10, or k folds with a validation part carved from the rest."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    pool = rng.permutation(oversample(np.arange(len(labels)), labels, rng))
    k = folds if folds > 1 else round(1 / test_fraction)
    fold_of = stratified_folds(labels[pool], k, rng)
    out = []
    for fold in range(folds):
        test = pool[fold_of == fold]
        rest = pool[fold_of != fold]
        vk = max(2, round((1 - len(test) / len(pool)) / val_fraction))
        in_val = stratified_folds(labels[rest], vk, rng) == 0
        out.append(Split(train=rest[~in_val], val=rest[in_val], test=test, protocol="paper", fold=fold))
    return out


def make_splits(
    labels: np.ndarray,
    groups: np.ndarray,
    protocol: str = "song",
    *,
    folds: int = 1,
    seed: int = 0,
    balance: str = "oversample",
) -> list[Split]:
    """Splits of a segment table's rows under ``protocol`` ('song' or 'paper'); one per fold."""
    if protocol == "song":
        return song_splits(labels, groups, folds=folds, seed=seed, balance=balance)
    if protocol == "paper":
        return paper_splits(labels, folds=folds, seed=seed)
    raise DatasetError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")


def leakage(split: Split, track_ids: np.ndarray) -> dict[str, float]:
    """How much of the test part was seen in training: the fraction of test rows whose very segment
    is also a training row, and the fraction of test songs with some segment in training."""
    train_rows = set(split.train.tolist())
    train_songs = set(track_ids[split.train].tolist())
    test_songs = set(track_ids[split.test].tolist())
    return {
        "test_segments_in_train": float(np.mean([r in train_rows for r in split.test.tolist()])),
        "test_songs_in_train": len(test_songs & train_songs) / max(len(test_songs), 1),
    }
