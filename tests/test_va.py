"""Valence/arousal regression: labels per segment, the regression measures, `train --task va`, and its
checkpoints in `analyze` — on synthetic fixtures with known answers, and a smoke test on the real clips."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import shared_data
from moodscope.analysis.analyzer import analyze
from moodscope.cli import main
from moodscope.constants import VA_RANGE
from moodscope.datasets.base import Dataset, DatasetTrack, Dynamic
from moodscope.datasets.labels import (
    from_reported_va,
    quadrant_probabilities_from_va,
    scale_0_1,
    scale_1_9,
    segment_dynamic_va,
    to_reported_va,
)
from moodscope.datasets.segments import build_segment_table, track_segment_va
from moodscope.features.cache import atomic_write_npz, track_file
from moodscope.models.checkpoint import load_checkpoint, predict_outputs, save_random_checkpoint
from moodscope.training.evaluate import concordance, evaluate_va, regression_metrics
from moodscope.training.loop import TrainConfig, run_experiment
from test_analyze_cli import write_audio
from test_models import TINY, TINY_RNN, random_features
from test_models import one_torch_thread as one_torch_thread  # autouse fixture, applies here too

HYBRID = TINY | TINY_RNN | {"static_units": [4]}


# --- labels --------------------------------------------------------------------------------------


def test_reported_scale_round_trip_and_midpoint():
    x = np.linspace(-1, 1, 9)
    low, high = VA_RANGE
    assert np.allclose(from_reported_va(to_reported_va(x)), x)
    assert to_reported_va(-1.0) == pytest.approx(low) and to_reported_va(1.0) == pytest.approx(high)
    assert to_reported_va(0.0) == pytest.approx((low + high) / 2)  # DEAM's neutral 5 sits on the quadrant boundary
    assert (low, high) == (0.0, 1.0)  # the 0-1 scale of the retired streaming audio-features API
    assert to_reported_va(scale_1_9(7.0)) == pytest.approx((7.0 - 1) / 8)  # DEAM/MTurk rating r -> (r - 1) / 8
    assert np.allclose(to_reported_va(scale_0_1(np.array([0.0, 0.3, 1.0]))), [0.0, 0.3, 1.0])  # PMEmo's own scale


def test_quadrant_probabilities_from_regressed_va():
    p = quadrant_probabilities_from_va(
        np.array([[0.0, 0.0], [0.9, 0.9], [-0.9, 0.9], [-0.9, -0.9], [0.9, -0.9]]), (0.1, 0.1)
    )
    assert np.allclose(p.sum(axis=1), 1)
    assert np.allclose(p[0], 0.25)  # on the origin: every quadrant equally likely
    assert (p[1:].argmax(axis=1) == [0, 1, 2, 3]).all() and (p[1:].max(axis=1) > 0.99).all()
    wide = quadrant_probabilities_from_va(np.array([[0.9, 0.9]]), (2.0, 2.0))
    assert 0.25 < wide[0, 0] < 0.5  # a large error makes the same estimate much less certain


def test_segment_labels_static_dynamic_and_mixed():
    times = np.arange(15.0, 45.0, 0.5)  # DEAM-like: 2 Hz from 15 s to 44.5 s
    valence, arousal = times / 100, -times / 100
    track = DatasetTrack("s", None, valence=0.4, arousal=-0.2, dynamic=Dynamic(times, valence, arousal))
    dyn = track_segment_va(track, 9, "dynamic")
    assert np.isnan(dyn[:3]).all()  # 0-15 s is not annotated
    assert dyn[3] == pytest.approx([np.mean(np.arange(15, 20, 0.5)) / 100, -np.mean(np.arange(15, 20, 0.5)) / 100])
    assert np.allclose(track_segment_va(track, 9, "static"), [0.4, -0.2])
    mixed = track_segment_va(track, 9, "mixed")
    assert np.allclose(mixed[:3], [0.4, -0.2]) and np.allclose(mixed[3:], dyn[3:])
    sparse = segment_dynamic_va(2, (np.array([5.0, 5.5, 6.0, 7.0]), np.ones(4), np.ones(4)), min_samples=5)
    assert np.isnan(sparse).all()  # 4 of a segment's 10 samples: below the coverage needed
    assert np.isnan(track_segment_va(DatasetTrack("q", None, quadrant_label="Q2"), 3, "static")).all()


# --- measures ------------------------------------------------------------------------------------


def test_regression_measures_known_answers():
    t = np.linspace(-0.8, 0.8, 20)
    target = np.stack([t, t[::-1]], axis=1)
    perfect = regression_metrics(target, target)
    assert perfect["n"] == 20
    for dim in ("valence", "arousal"):
        assert perfect[dim] == {"r2": 1.0, "pearson_r": pytest.approx(1.0), "ccc": 1.0, "rmse": 0.0, "mae": 0.0}
    doubled = regression_metrics(2 * target, target)["valence"]
    assert doubled["pearson_r"] == pytest.approx(1.0)
    var = t.var()
    assert doubled["ccc"] == pytest.approx(2 * 2 * var / (4 * var + var))  # Lin: 2 cov / (var_p + var_t + 0)
    assert doubled["r2"] == pytest.approx(1 - ((t) ** 2).sum() / ((t - t.mean()) ** 2).sum())
    shifted = regression_metrics(target + 0.5, target)["arousal"]
    assert shifted["pearson_r"] == pytest.approx(1.0) and shifted["ccc"] < 0.8 and shifted["rmse"] == pytest.approx(0.5)
    constant = regression_metrics(np.zeros_like(target), target)["valence"]
    assert constant["ccc"] == 0.0 and constant["r2"] == pytest.approx(0.0) and np.isnan(constant["pearson_r"])
    assert concordance(t, t) == pytest.approx(1.0)


def test_song_level_uses_static_targets_and_segment_means():
    pred = np.array([[0.1, 0.2], [0.3, 0.4], [-0.5, -0.5]])
    target = np.array([[0.0, 0.0], [0.0, 0.0], [-0.4, -0.6]])
    ids = np.array(["a", "a", "b"])
    res = evaluate_va(pred, target, ids, song_targets={"a": (0.2, 0.3), "b": (-0.5, -0.5)})
    assert res["segment"]["n"] == 3 and res["song"]["n"] == 2 and res["song"]["target"] == "static"
    assert res["song"]["valence"]["rmse"] == pytest.approx(0.0) and res["song"]["arousal"]["mae"] == pytest.approx(0.0)


# --- training ------------------------------------------------------------------------------------


class TinyVADataset(Dataset):
    """24 songs by 12 artists with valence/arousal spread over the plane; features written into a store."""

    name = "tinyva"

    def _load(self):
        rng = np.random.default_rng(0)
        tracks = {}
        for i in range(24):
            v, a = rng.uniform(-0.8, 0.8, 2)
            tracks[f"s{i:02d}"] = DatasetTrack(
                f"s{i:02d}", None, valence=float(v), arousal=float(a), artist=f"artist{i // 2}"
            )
        return tracks


@pytest.fixture(scope="module")
def va_store(tmp_path_factory):
    store = tmp_path_factory.mktemp("vastore")
    dataset = TinyVADataset(store)
    for i, track in enumerate(dataset.tracks().values()):
        f = random_features(4, seed=i)
        f.mfcc += 2 * track.valence  # the MFCC level carries valence
        f.delta += 2 * track.arousal  # the delta level carries arousal
        atomic_write_npz(track_file(store, track.track_id), f.as_dict())
    return dataset, store


def test_run_experiment_learns_valence_and_arousal(va_store, tmp_path):
    dataset, store = va_store
    table = build_segment_table(dataset, store, va_targets="static", require_va=True)
    cfg = TrainConfig(
        learning_rate=1e-2, batch_size=16, max_epochs=15, patience=15, seed=1, threads=1, balance="none", task="va"
    )
    song_va = {t.track_id: (t.valence, t.arousal) for t in dataset.tracks().values()}
    result = run_experiment(
        table,
        "cnn",
        folds=3,
        model_overrides=TINY,
        train_config=cfg,
        out_dir=tmp_path,
        song_va=song_va,
        dataset_name="tinyva",
        run_extra={"va_targets": "static"},
    )
    assert result["task"] == "va" and len(result["folds"]) == 3
    pooled = result["pooled"]
    assert pooled["segment"]["n"] == len(table) and pooled["song"]["n"] == 24
    assert pooled["song"]["valence"]["pearson_r"] > 0.6 and pooled["song"]["arousal"]["pearson_r"] > 0.6
    assert set(result["summary"]["song"]) >= {"valence_r2", "valence_ccc", "arousal_pearson_r"}
    for fold in result["folds"]:  # grouped split: no artist on both sides
        train_songs = set(table.track_ids[np.isin(table.track_ids, fold["test_songs"], invert=True)])
        test_artists = set(table.artists[np.isin(table.track_ids, fold["test_songs"])])
        model, meta = load_checkpoint(tmp_path / f"fold{fold['fold']}" / "best.pt")
        seen = set(meta["split"]["train_songs"])
        assert not test_artists & set(table.artists[np.isin(table.track_ids, list(seen))])
        assert train_songs >= seen
        assert meta["task"] == "va" and meta["labels"] == ["valence", "arousal"] and len(meta["va_val_rmse"]) == 2
        rows = np.isin(table.track_ids, fold["test_songs"])
        again = predict_outputs(model, meta, table.features.select(np.flatnonzero(rows)))
        assert np.allclose(again, fold["test_predictions"]["pred"], atol=1e-4)  # the checkpoint is what was scored


def test_cli_train_va_then_analyze(va_store, tmp_path, monkeypatch, capsys):
    import moodscope.datasets
    from moodscope.features.cache import store_dir

    _, store = va_store
    cache = tmp_path / "cache"
    store_dir(cache, "tinyva").parent.mkdir(parents=True)
    store_dir(cache, "tinyva").symlink_to(store)
    monkeypatch.setattr(moodscope.datasets, "load_dataset", lambda name, root, **kw: TinyVADataset(root))
    out = tmp_path / "run"
    argv = ["train", "--task", "va", "--model", "hybrid", "--dataset", "tinyva", "--root", str(tmp_path)]
    argv += ["--cache", str(cache), "--threads", "1", "--epochs", "3", "--folds", "2", "--lr", "0.003"]
    assert main([*argv, "--out", str(out), "--config", json.dumps(HYBRID)]) == 0
    printed = capsys.readouterr().out
    assert "va regression, song level (pooled over 2 test folds, n = 24): valence R²" in printed
    report = (out / "report.md").read_text()
    assert "| song | valence |" in report and "CCC" in report and (out / "fold0" / "scatter.png").exists()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["task"] == "va" and metrics["moodscope_version"]
    assert main([*argv, "--protocol", "paper", "--out", str(tmp_path / "paper")]) == 1
    assert "song protocol only" in capsys.readouterr().err

    song = write_audio(tmp_path / "song.wav", 11.0)
    result = analyze(song, model=out / "fold0" / "best.pt")
    assert result.va_meaning.startswith("regressed valence/arousal") and "tinyva" in result.va_meaning
    assert result.model_hash == metrics["folds"][0]["checkpoint_sha256"]  # the training report names the model
    assert np.allclose(result.probabilities.sum(axis=1), 1)
    model, meta = load_checkpoint(out / "fold0" / "best.pt")
    from moodscope.audio import load_audio, segment_audio
    from moodscope.features.extract import extract_features

    raw = predict_outputs(model, meta, extract_features(segment_audio(load_audio(song))))
    # analyze reports the regression (within the rating scale) mapped linearly onto [0, 1]
    assert np.allclose(from_reported_va(result.va), np.clip(raw, -1, 1), atol=1e-5)
    assert np.allclose(result.va, (np.clip(raw, -1, 1) + 1) / 2, atol=1e-5)
    # its quadrant probabilities' marginals lie on the same side of 0.5 as the regressed values
    from moodscope.analysis.analyzer import va_from_probabilities

    marginals = va_from_probabilities(result.probabilities)
    assert np.array_equal(marginals >= 0.5, result.va >= 0.5) or np.isclose(result.va, 0.5, atol=1e-6).any()
    assert main(["analyze", str(song), "--model", str(out / "fold0" / "best.pt")]) == 0
    assert "(regressed valence/arousal" in capsys.readouterr().out


def test_random_va_checkpoint_in_analyze(tmp_path):
    path = save_random_checkpoint(tmp_path / "va.pt", task="va")
    result = analyze(write_audio(tmp_path / "x.wav", 6.0), model=path)
    assert result.va.shape == (1, 2) and result.to_dict()["va_meaning"].startswith("regressed")
    assert ((result.va >= 0) & (result.va <= 1)).all()  # a random regressor's outputs are kept within the scale


# --- real clips ----------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "folder", "audio", "targets"),
    [
        ("deam", "deam", "MEMD_audio", "dynamic"),
        ("mturk", "emomusic", "clips_45seconds", "static"),
        ("pmemo", "pmemo/PMEmo2019", "chorus", "static"),
    ],
)
def test_train_va_end_to_end_on_the_real_clips(tmp_path, capsys, name, folder, audio, targets):
    root = shared_data(folder)
    out = tmp_path / name
    argv = ["train", "--task", "va", "--targets", targets, "--model", "cnn", "--dataset", name, "--root", str(root)]
    argv += ["--cache", str(tmp_path / "cache"), "--threads", "1", "--epochs", "2", "--folds", "2", "--out", str(out)]
    assert main([*argv, "--config", json.dumps(TINY), "--workers", "1"]) == 0
    printed = capsys.readouterr().out
    assert "va regression, song level (pooled over 2 test folds" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["pooled"]["song"]["n"] == len(
        list((root / {"deam": "MEMD_audio", "mturk": "clips_45seconds", "pmemo": "chorus"}[name]).glob("*.mp3"))
    )


@pytest.mark.slow
def test_train_va_on_a_full_deam_layout_grouped_by_artist(tmp_path, capsys):
    """The real DEAM annotation and metadata files (all 1802 songs) with generated audio for 30 songs of
    different campaigns, as a full download has: the loader, the artist grouping and the training run at once."""
    root = shared_data("deam")
    layout = tmp_path / "deam"
    layout.mkdir()
    for name in ("annotations", "metadata"):
        (layout / name).symlink_to(root / name)
    audio = layout / "MEMD_audio"
    audio.mkdir()
    from moodscope.datasets import load_dataset

    annotated = sorted(map(int, load_dataset("deam", layout).tracks()))
    ids = [s for s in annotated if s < 1000][:12] + [s for s in annotated if 1000 < s < 2000][:10]
    ids += [s for s in annotated if s > 2000][:8]  # songs of the 2013, 2014 and 2015 campaigns
    for i, song in enumerate(ids):
        write_audio(audio / f"{song}.mp3", 11.0, sr=22_050, seed=i, format="MP3")
    out = tmp_path / "run"
    argv = ["train", "--task", "va", "--model", "cnn", "--dataset", "deam", "--root", str(layout), "--folds", "3"]
    argv += ["--cache", str(tmp_path / "cache"), "--threads", "1", "--epochs", "2", "--out", str(out)]
    assert main([*argv, "--config", json.dumps(TINY), "--workers", "2"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["pooled"]["song"]["n"] == len(ids)
    artist = {t.track_id: t.artist for t in load_dataset("deam", layout).tracks().values()}
    folds = [set(f["test_songs"]) for f in metrics["folds"]]
    assert set().union(*folds) == {str(s) for s in ids}
    for a, b in ((0, 1), (0, 2), (1, 2)):  # no artist in two test folds (each fold trains on the others)
        assert not {artist[s] or s for s in folds[a]} & {artist[s] or s for s in folds[b]}


def test_regression_needs_valence_arousal_labels(tmp_path):
    from moodscope.errors import DatasetError
    from test_train import TinyDataset

    store = tmp_path / "store"
    dataset = TinyDataset(store)
    track = next(iter(dataset.tracks().values()))
    atomic_write_npz(track_file(store, track.track_id), random_features(2).as_dict())
    with pytest.raises(DatasetError, match="no segment of tiny has a valence/arousal label"):
        build_segment_table(dataset, store, va_targets="static", require_va=True)
