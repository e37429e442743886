"""scripts/finetune.py (nested measurement of fine-tuning musicnn's mid-end and back-end) on a tiny
synthetic set of cached front-end outputs: its probe is the shipped recipe, its outer folds are the
shipped protocol's, no outer test song's artist is ever trained on, and fine-tuning moves the model."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import load_script

FRAMES = 24  # frames per cached patch (187 in the real cache): keeps the networks' passes tiny


@pytest.fixture(scope="module")
def finetune():
    return load_script("scripts/finetune.py")


def _patches(finetune, n_songs: int = 40, seed: int = 0):
    """Songs of 1-3 segments (2 patches each), one artist per 2 songs, front-end outputs whose first
    channels are shifted by the song's quadrant."""
    rng = np.random.default_rng(seed)
    songs = np.array([f"S{i:03d}" for i in range(n_songs)])
    y = np.arange(n_songs) % 4
    groups = np.array([f"artist{i // 2}" for i in range(n_songs)])
    track_ids = np.repeat(songs, rng.integers(1, 4, n_songs))
    song_of_segment = np.searchsorted(songs, track_ids)
    fronts = {}
    for net in finetune.NETS:
        x = np.abs(rng.normal(size=(2 * len(track_ids), 561, FRAMES))).astype(np.float32)
        x[:, :40] += 0.3 * np.repeat(y[song_of_segment], 2)[:, None, None]
        fronts[net] = x.astype(np.float16)
    return finetune.Patches(fronts, track_ids, songs, y, groups)


def _config(finetune):
    return finetune.FineTuneConfig(lrs=(1e-3,), max_epochs=1, batch_songs=4, crop=16, mask_frames=4, eval_batch=16)


def test_probe_is_the_shipped_recipe(finetune):
    from moodscope.analysis.accurate import AccurateConfig, candidates

    d = _patches(finetune)
    pen = finetune.penultimate_blocks(d)
    assert pen.blocks["msd_penultimate"].shape == (len(d.track_ids), 200)
    train, test = np.arange(0, 30), np.arange(30, 40)
    curve = finetune.finetune_curve(d, pen, train, test, C=0.03, lr=1e-3, epochs=0, seed=0, config=_config(finetune))
    mine = finetune.song_proba(d, test, curve[0])(0.8)
    shipped = candidates(pen, d.songs, d.y, AccurateConfig())["C=0.03"](train, test)(0.8)
    np.testing.assert_allclose(mine, shipped, atol=1e-9)


def test_fine_tuning_changes_the_model_and_starts_from_the_probe(finetune):
    d = _patches(finetune)
    pen = finetune.penultimate_blocks(d)
    train, test = np.arange(0, 30), np.arange(30, 40)
    config = finetune.FineTuneConfig(lrs=(1e-3,), max_epochs=2, batch_songs=4, crop=16, mask_frames=4, dropout=0.0)
    curve = finetune.finetune_curve(d, pen, train, test, C=0.03, lr=1e-3, epochs=2, seed=0, config=config)
    assert len(curve["loss"]) == 2 and all(np.isfinite(curve["loss"]))
    assert curve[1].shape == curve[0].shape == (len(d.segments(test)), 2)
    assert not np.allclose(curve[2], curve[0], atol=1e-4)
    # before any step, the fine-tuned network on uncropped patches is the probe on the frozen descriptors
    model = finetune.build_model(finetune.fit_probe(d, pen, train, 0.03), dropout=0.0)
    np.testing.assert_allclose(finetune.segment_logits(model, d, test, 16), curve[0], atol=1e-3)


def test_nested_finetune_never_trains_on_a_test_artist(finetune):
    from moodscope.analysis.accurate import AccurateConfig

    d = _patches(finetune)
    pen = finetune.penultimate_blocks(d)
    config = _config(finetune)
    trained_on: list[np.ndarray] = []
    shipped, result, records = finetune.nested_finetune(
        d, pen, config, seeds=(0,), accurate=AccurateConfig(Cs=(0.03, 0.3)), trained_on=trained_on
    )
    assert len(result.folds) == len(shipped.folds) == len(records) == 5
    runs_per_fold = len(config.lrs) + 1  # one inner run per learning rate, then the refit
    assert len(trained_on) == runs_per_fold * 5
    for i, (fold, ref) in enumerate(zip(result.folds, shipped.folds)):
        np.testing.assert_array_equal(fold.test, ref.test)  # the shipped protocol's outer folds
        test_artists = set(d.groups[fold.test])
        runs = trained_on[runs_per_fold * i : runs_per_fold * (i + 1)]
        for songs in runs:
            assert not test_artists & set(d.groups[songs])
            assert set(songs) <= set(fold.train)
        np.testing.assert_array_equal(np.sort(runs[-1]), np.sort(fold.train))  # the refit: all training songs
        assert len(runs[0]) < len(fold.train)  # the inner run: its inner split's training part only
        assert fold.selection.chosen in finetune.candidate_names(config)
    predicted = result.predictions(0)
    assert not np.isnan(predicted).any()  # every song tested once
    np.testing.assert_allclose(predicted.sum(axis=1), 1.0)
    summary = result.summary()
    assert 0.0 <= summary["macro_f1"]["mean"] <= 1.0
