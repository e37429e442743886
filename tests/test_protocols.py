"""Splits: the song protocol never shares a song or artist across parts; the paper protocol leaks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moodscope.errors import DatasetError
from moodscope.training.protocols import (
    class_weights,
    leakage,
    make_splits,
    oversample,
    stratified_folds,
    stratified_group_folds,
)


@st.composite
def segment_tables(draw):
    """Random tables: songs with 1-8 segments, artists with 1-4 songs, a quadrant per song."""
    n_songs = draw(st.integers(6, 40))
    n_artists = draw(st.integers(3, n_songs))
    artist_of = draw(st.lists(st.integers(0, n_artists - 1), min_size=n_songs, max_size=n_songs))
    quadrant_of = draw(st.lists(st.integers(0, 3), min_size=n_songs, max_size=n_songs))
    lengths = draw(st.lists(st.integers(1, 8), min_size=n_songs, max_size=n_songs))
    songs = np.repeat(np.arange(n_songs), lengths)
    artists = np.array([f"artist{artist_of[s]}" for s in songs])
    labels = np.array([quadrant_of[s] for s in songs])
    return songs.astype(str), artists, labels


@settings(max_examples=60, deadline=None)
@given(segment_tables(), st.integers(1, 4), st.integers(0, 10_000), st.sampled_from(["oversample", "none"]))
def test_song_protocol_never_shares_a_song_or_artist(table, folds, seed, balance):
    songs, artists, labels = table
    if len(np.unique(artists)) < max(3, folds):
        return
    splits = make_splits(labels, artists, "song", folds=folds, seed=seed, balance=balance)
    assert len(splits) == folds
    for split in splits:
        parts = {name: set(getattr(split, name).tolist()) for name in ("train", "val", "test")}
        for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
            rows_a, rows_b = getattr(split, a), getattr(split, b)
            assert not set(songs[rows_a]) & set(songs[rows_b])
            assert not set(artists[rows_a]) & set(artists[rows_b])
            assert not parts[a] & parts[b]
        # every row is in exactly one part; only training rows are ever repeated
        assert parts["train"] | parts["val"] | parts["test"] == set(range(len(labels)))
        assert len(split.val) == len(parts["val"]) and len(split.test) == len(parts["test"])
        if balance == "none":
            assert len(split.train) == len(parts["train"])
    if folds > 1:  # k-fold: each row is tested exactly once
        tested = np.concatenate([s.test for s in splits])
        assert sorted(tested.tolist()) == list(range(len(labels)))


def test_oversampling_touches_only_training_rows():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2, 3], [400, 100, 200, 50])
    artists = np.array([f"a{i // 5}" for i in range(len(labels))])
    (split,) = make_splits(labels, artists, "song", seed=1)
    counts = np.bincount(labels[split.train], minlength=4)
    assert (counts == counts.max()).all()  # training part balanced by duplication
    assert set(split.train.tolist()) == set(range(len(labels))) - set(split.val.tolist()) - set(split.test.tolist())
    # validation and test keep their natural (imbalanced) counts and contain no duplicates
    for part in (split.val, split.test):
        assert len(np.unique(part)) == len(part)
        assert np.bincount(labels[part], minlength=4)[0] > np.bincount(labels[part], minlength=4)[3]
    extra = oversample(np.arange(10), np.array([0] * 7 + [1] * 3), rng)
    assert np.bincount(np.array([0] * 7 + [1] * 3)[extra]).tolist() == [7, 7]
    assert set(extra.tolist()) <= set(range(10))


def test_song_split_is_stratified_and_roughly_80_10_10():
    labels = np.repeat(np.arange(4), 300)
    songs = np.array([f"s{i // 6}" for i in range(len(labels))])
    (split,) = make_splits(labels, songs, "song", seed=0, balance="none")
    assert len(split.test) == pytest.approx(120, abs=12) and len(split.val) == pytest.approx(120, abs=18)
    assert np.bincount(labels[split.test], minlength=4).min() >= 24


def test_paper_protocol_oversamples_before_splitting_and_so_leaks():
    labels = np.repeat([0, 1, 2, 3], [120, 60, 90, 60])
    songs = np.array([f"s{i // 6}" for i in range(len(labels))])
    (split,) = make_splits(labels, songs, "paper", seed=0)
    everything = np.concatenate([split.train, split.val, split.test])
    assert np.bincount(labels[everything]).tolist() == [120] * 4
    assert len(everything) == 480 and len(split.test) == 48
    leak = leakage(split, songs)
    assert leak["test_songs_in_train"] > 0.9 and leak["test_segments_in_train"] > 0.1
    (song_split,) = make_splits(labels, songs, "song", seed=0)
    assert leakage(song_split, songs) == {"test_segments_in_train": 0.0, "test_songs_in_train": 0.0}


def test_stratified_folds_balance_sizes():
    rng = np.random.default_rng(0)
    folds = stratified_folds(np.repeat([0, 1, 2], [7, 5, 9]), 4, rng)
    sizes = np.bincount(folds, minlength=4)
    assert sizes.max() - sizes.min() <= 1


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), k=st.integers(2, 6))
def test_stratified_group_folds_keep_groups_whole_and_balance_labels(seed, k):
    rng = np.random.default_rng(seed)
    groups = rng.integers(0, 60, 300).astype(str)
    glabel = {g: int(rng.integers(4)) for g in np.unique(groups)}
    labels = np.array([glabel[g] for g in groups])
    fold = stratified_group_folds(labels, groups, k, np.random.default_rng(seed))
    assert set(fold.tolist()) <= set(range(k))
    for g in np.unique(groups):
        assert len(set(fold[groups == g].tolist())) == 1, "a group was split across folds"
    for c in range(4):  # groups of each label dealt evenly: fold counts differ by at most one
        per_fold = [len({g for g in np.unique(groups[(fold == f) & (labels == c)])}) for f in range(k)]
        assert max(per_fold) - min(per_fold) <= 1


def test_accurate_cross_validation_uses_the_same_splitter(monkeypatch):
    """One splitter: the accurate model's outer and inner CV folds are those of stratified_group_folds."""
    from moodscope.analysis import accurate
    from moodscope.training import protocols

    calls = []
    real = protocols.stratified_group_folds
    monkeypatch.setattr(protocols, "stratified_group_folds", lambda *a: calls.append(a) or real(*a))
    rng = np.random.default_rng(0)
    songs = np.array([f"s{i}" for i in range(40)])
    y = np.arange(40) % 4
    x = np.eye(4)[y].repeat(2, axis=0) + rng.normal(0, 0.1, (80, 4))
    sb = accurate.SegmentBlocks({"paper": x}, songs.repeat(2))
    groups = np.array([f"a{i // 2}" for i in range(40)])
    config = accurate.AccurateConfig(heads=(("paper",),), folds=4, Cs=(1.0,))
    accurate.nested_cross_validate(sb, songs, y, groups, config, seeds=(5,))
    assert len(calls) == 1 + 4 and all(c[2] == 4 for c in calls)  # outer folds, then inner folds of each


def test_errors_and_class_weights():
    with pytest.raises(DatasetError, match="at least 3"):
        make_splits(np.array([0, 1, 0]), np.array(["a", "a", "b"]), "song")
    with pytest.raises(DatasetError, match="unknown protocol"):
        make_splits(np.array([0, 1]), np.array(["a", "b"]), "random")
    w = class_weights(np.array([0, 0, 0, 1]))
    assert w[1] == pytest.approx(3 * w[0]) and w[2] == 0
