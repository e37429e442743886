"""The accurate model's training pieces: descriptors, heads, grouped CV, checkpoint round trip."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from moodscope.analysis.accurate import (
    ARCH,
    AccurateConfig,
    EmbeddingModel,
    SegmentBlocks,
    dataset_blocks,
    fit_head,
    fit_heads,
    fit_shipped,
    nested_cross_validate,
    quadrant_proba,
    save_embedding_model,
    segment_blocks,
    song_means,
    song_probabilities,
)
from moodscope.analysis.pretrained import load_model
from moodscope.constants import SEGMENT_SAMPLES
from moodscope.models.checkpoint import weights_sha256


def synthetic_blocks(n_songs: int = 80, per_song: int = 4, seed: int = 0):
    """Songs whose descriptors carry their quadrant in two dimensions, plus noise."""
    rng = np.random.default_rng(seed)
    songs = np.array([f"s{i:03d}" for i in range(n_songs)])
    y = np.arange(n_songs) % 4
    centres = np.array([[1, 1], [-1, 1], [-1, -1], [1, -1]], float) * 2
    rows = np.repeat(np.arange(n_songs), per_song)
    x = centres[y[rows]] + rng.normal(0, 0.7, (len(rows), 2))
    blocks = {"msd_penultimate": np.hstack([x, rng.normal(size=(len(rows), 6))]).astype(np.float32)}
    return SegmentBlocks(blocks, songs[rows]), songs, y


def test_nested_cross_validation_learns_a_separable_task_and_not_a_shuffled_one():
    sb, songs, y = synthetic_blocks()
    groups = np.array([f"artist{i // 2}" for i in range(len(songs))])  # two songs per artist
    config = AccurateConfig(heads=(("msd_penultimate",),), Cs=(0.1, 1.0), folds=4)
    result = nested_cross_validate(sb, songs, y, groups, config, seeds=(0,))
    assert result["macro_f1"]["mean"] > 0.9
    assert set(result["chosen"]) <= {"C=0.1", "C=1"} and len(result["temperatures"]) == 4
    # a shuffled labelling cannot be learned: the CV must not leak
    shuffled = np.random.default_rng(1).permutation(y)
    assert nested_cross_validate(sb, songs, shuffled, groups, config, seeds=(0,))["macro_f1"]["mean"] < 0.5


@pytest.mark.parametrize("kind", ["softmax", "va-product"])
def test_head_kinds_give_distributions_and_the_product_factorises(kind):
    sb, songs, y = synthetic_blocks(n_songs=40)
    head = fit_head(song_means(sb, songs), y, ("msd_penultimate",), C=1.0, kind=kind)
    p = head.predict_proba(sb.blocks)
    assert p.shape == (len(sb.track_ids), 4) and np.allclose(p.sum(axis=1), 1)
    rows = np.repeat(np.arange(len(songs)), 4)
    assert (p.argmax(axis=1) == y[rows]).mean() > 0.8
    if kind == "va-product":  # P(Q1) P(Q3) = P(Q2) P(Q4) when the quadrants are a product of two binaries
        assert np.allclose(p[:, 0] * p[:, 2], p[:, 1] * p[:, 3])
        assert head.weight.shape == (2, 8)
    softer = head.predict_proba(sb.blocks, temperature=3.0)
    assert (softer.max(axis=1) <= p.max(axis=1) + 1e-12).all()


def test_va_product_of_extreme_logits_is_exact_and_silent():
    """A sigmoid of a logit beyond ±709 must not overflow (a RuntimeWarning on the user's console)."""
    logits = np.array([[1000.0, -1000.0], [-800.0, 800.0], [0.0, 0.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = quadrant_proba(logits, "va-product")
    np.testing.assert_allclose(p[0], [0, 0, 0, 1], atol=1e-300)  # valence +, arousal -: Q4
    np.testing.assert_allclose(p[1], [0, 1, 0, 0], atol=1e-300)  # valence -, arousal +: Q2
    np.testing.assert_allclose(p[2], [0.25] * 4, rtol=1e-15)


def test_fit_shipped_chooses_C_and_temperature_on_all_songs():
    sb, songs, y = synthetic_blocks()
    groups = np.array([f"artist{i // 2}" for i in range(len(songs))])
    config = AccurateConfig(heads=(("msd_penultimate",),), Cs=(0.01, 1.0), folds=4)
    heads, selection = fit_shipped(sb, songs, y, groups, config)
    assert selection["C"] in config.Cs and selection["temperature"] > 0
    assert set(selection["inner_macro_f1"]) == {"C=0.01", "C=1"}
    assert heads[0].kind == "va-product"


def test_song_probabilities_are_segment_means():
    sb, songs, y = synthetic_blocks(n_songs=8)
    heads = fit_heads(song_means(sb, songs), y, AccurateConfig(heads=(("msd_penultimate",),)))
    probs = song_probabilities(heads, sb, songs)
    first = heads[0].predict_proba({k: v[sb.track_ids == songs[0]] for k, v in sb.blocks.items()}).mean(axis=0)
    assert np.allclose(probs[0], first)
    assert np.allclose(probs.sum(axis=1), 1)


def test_checkpoint_round_trip(tmp_path):
    """The ensemble is written in the one checkpoint format and comes back through the one loader."""
    sb, songs, y = synthetic_blocks(n_songs=12)
    config = AccurateConfig(heads=(("msd_penultimate",),))
    heads = fit_heads(song_means(sb, songs), y, config)
    path = save_embedding_model(
        tmp_path / "acc.pt", heads, metrics={"macro_f1": 1.0}, config={"C": config.C}, temperature=2.0
    )
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == "moodscope-checkpoint" and raw["meta"]["arch"] == ARCH
    assert raw["meta"]["weights_sha256"] == weights_sha256(raw["state_dict"])
    assert raw["meta"]["train_config"] == {"C": config.C} and raw["meta"]["metrics"] == {"macro_f1": 1.0}
    model = load_model(path)
    assert isinstance(model, EmbeddingModel) and model.name == "accurate:acc.pt"
    assert model.temperature == 2.0 and model.heads[0].kind == config.head == "va-product"
    assert np.allclose(model.heads[0].predict_proba(sb.blocks), heads[0].predict_proba(sb.blocks), atol=1e-5)
    assert not list(tmp_path.glob(".*.tmp"))


def test_descriptors_of_real_segments_and_cache(make_wav, tmp_path):
    a = make_wav("a.wav", 11.0, freqs=(220.0, 330.0))
    b = make_wav("b.wav", 6.0, freqs=(880.0,), seed=1)
    bad = tmp_path / "bad.mp3"
    bad.write_text("not audio")
    blocks = ("msd_penultimate", "mtt_taggram", "paper")
    cache = tmp_path / "blocks.npz"
    sb = dataset_blocks([("a", a), ("b", b), ("bad", bad)], cache, blocks=blocks)
    assert list(sb.track_ids) == ["a", "a", "b"]  # whole segments only; the bad file is skipped
    assert sb.blocks["msd_penultimate"].shape == (3, 200) and sb.blocks["paper"].shape == (3, 36)
    assert np.all((sb.blocks["mtt_taggram"] >= 0) & (sb.blocks["mtt_taggram"] <= 1))
    again = dataset_blocks([("a", a), ("b", b), ("bad", bad)], cache, blocks=blocks)  # from the cache
    assert np.array_equal(again.blocks["paper"], sb.blocks["paper"])
    direct = segment_blocks(np.zeros((1, SEGMENT_SAMPLES), np.float32), ("msd_penultimate",))
    assert np.isfinite(direct["msd_penultimate"]).all()
