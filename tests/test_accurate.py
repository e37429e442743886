"""The accurate model's training pieces: descriptors, heads, grouped CV, checkpoint round trip."""

from __future__ import annotations

import numpy as np
import torch

from moodscope.analysis.accurate import (
    ARCH,
    AccurateConfig,
    EmbeddingModel,
    SegmentBlocks,
    cross_validate,
    dataset_blocks,
    fit_heads,
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


def test_cross_validation_learns_a_separable_task_and_keeps_groups_apart():
    sb, songs, y = synthetic_blocks()
    groups = np.array([f"artist{i // 2}" for i in range(len(songs))])  # two songs per artist
    config = AccurateConfig(heads=(("msd_penultimate",),), C=1.0)
    result = cross_validate(sb, songs, y, groups, config)
    assert result["pooled"]["macro_f1"] > 0.9
    assert len(result["folds"]["macro_f1"]["values"]) == 5
    # a shuffled labelling cannot be learned: the CV must not leak
    shuffled = np.random.default_rng(1).permutation(y)
    assert cross_validate(sb, songs, shuffled, groups, config)["pooled"]["macro_f1"] < 0.5


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
    path = save_embedding_model(tmp_path / "acc.pt", heads, metrics={"macro_f1": 1.0}, config={"C": config.C})
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == "moodscope-checkpoint" and raw["meta"]["arch"] == ARCH
    assert raw["meta"]["weights_sha256"] == weights_sha256(raw["state_dict"])
    assert raw["meta"]["train_config"] == {"C": config.C} and raw["meta"]["metrics"] == {"macro_f1": 1.0}
    model = load_model(path)
    assert isinstance(model, EmbeddingModel) and model.name == "accurate:acc.pt"
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
