"""scripts/levers.py (the nested measurement of the accurate model's levers) on a tiny synthetic set:
its va-product heads reproduce the shipped recipe, augmented descriptors reach training songs only, and
every lever runs through the nested protocol."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from moodscope.analysis.accurate import SegmentBlocks

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "levers.py"


@pytest.fixture(scope="module")
def levers():
    spec = importlib.util.spec_from_file_location("levers_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _songs(levers, n_songs: int = 48, seed: int = 0):
    """Songs with 2-4 segments each, descriptors shifted by their quadrant, one artist per 2 songs."""
    rng = np.random.default_rng(seed)
    songs = np.array([f"S{i:03d}" for i in range(n_songs)])
    y = np.arange(n_songs) % 4
    groups = np.array([f"artist{i // 2}" for i in range(n_songs)])
    n_seg = rng.integers(2, 5, n_songs)
    track_ids = np.repeat(songs, n_seg)
    signs = np.array([[1, 1], [-1, 1], [-1, -1], [1, -1]], float)[np.repeat(y, n_seg)]

    def blocks(noise_seed: int) -> SegmentBlocks:
        r = np.random.default_rng(noise_seed)
        out = {}
        for b, d in (("msd_penultimate", 6), ("mtt_penultimate", 5), ("msd_taggram", 3), ("mtt_taggram", 3)):
            x = r.normal(size=(len(track_ids), d))
            x[:, :2] += 2 * signs
            out[b] = x
        return SegmentBlocks(out, track_ids)

    augmented = {"gain+6": blocks(seed + 1), "mask": blocks(seed + 2)}
    return levers.Songs(songs, y, groups, rng.uniform(0.5, 1, n_songs), blocks(seed), augmented)


def test_product_heads_reproduce_the_shipped_recipe(levers):
    d = _songs(levers)
    train, test = np.arange(0, 36), np.arange(36, 48)
    shipped, mine = levers.shipped_candidates(d), levers.product_candidates(d)
    assert list(shipped) == list(mine)
    for name in shipped:
        np.testing.assert_allclose(mine[name](train, test)(0.8), shipped[name](train, test)(0.8), atol=1e-6)


def test_augmented_test_songs_are_never_used_without_tta(levers):
    d = _songs(levers)
    train, test = np.arange(0, 36), np.arange(36, 48)
    before = levers.product_candidates(d, augs=("gain+6", "mask"))["C=0.1"](train, test)(1.0)
    tta_before = levers.product_candidates(d, augs=("gain+6", "mask"), tta=True)["C=0.1"](train, test)(1.0)
    rows = d.rows(test)
    for sb in d.augmented.values():  # change only the augmented versions of the test songs
        sb.blocks = {b: np.where(rows[:, None], v + 5.0, v) for b, v in sb.blocks.items()}
    d.aug_means = {a: levers.song_means(s, d.songs) for a, s in d.augmented.items()}
    after = levers.product_candidates(d, augs=("gain+6", "mask"))["C=0.1"](train, test)(1.0)
    tta_after = levers.product_candidates(d, augs=("gain+6", "mask"), tta=True)["C=0.1"](train, test)(1.0)
    np.testing.assert_array_equal(before, after)
    assert not np.allclose(tta_before, tta_after)  # test-time averaging does use them
    # augmented copies of training songs do change the fit
    plain = levers.product_candidates(d)["C=0.1"](train, test)(1.0)
    assert not np.allclose(plain, before)


@pytest.mark.parametrize("lever", ["segments", "svm-linear", "mlp", "tags-product", "pquad", "aug-gain"])
def test_levers_run_nested(levers, lever, monkeypatch):
    d = _songs(levers, n_songs=40)
    monkeypatch.setitem(levers.AUG_SETS, "gain", ("gain+6",))
    cands = levers.LEVERS[lever][1](d) if lever != "aug-gain" else levers.product_candidates(d, augs=("gain+6",))
    from moodscope.training.nested import nested_cv

    summary = nested_cv(dict(list(cands.items())[:2]), d.y, d.groups, seeds=(0,), outer_k=2, inner_k=2).summary()
    assert 0.0 <= summary["macro_f1"]["mean"] <= 1.0
    assert sum(summary["chosen"].values()) == 2
    assert summary["macro_f1"]["mean"] > 0.35  # above chance (0.25): the quadrant signal is learnt
