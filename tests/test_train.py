"""Training loop, metrics, reports and the reproduction, on tiny synthetic fixtures."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from moodscope.datasets.base import Dataset, DatasetTrack
from moodscope.datasets.segments import build_segment_table
from moodscope.features.cache import atomic_write_npz, track_file
from moodscope.features.extract import SegmentFeatures
from moodscope.models import build_model, model_inputs
from moodscope.models.checkpoint import load_checkpoint, predict_proba
from moodscope.training.evaluate import (
    SONG_AGGREGATION,
    aggregate_songs,
    classification_metrics,
    evaluate_probs,
    song_probabilities,
    summarize,
)
from moodscope.training.loop import TrainConfig, evaluate_loss, fit, run_experiment
from moodscope.training.report import paper_table3_russell, table3_markdown
from moodscope.training.reproduce import reproduce
from test_models import TINY, TINY_RNN, random_features
from test_models import one_torch_thread as one_torch_thread  # autouse fixture, applies here too

TINY_OVERRIDES = {"cnn": TINY, "cnn-lstm": TINY | TINY_RNN, "hybrid": TINY | TINY_RNN | {"static_units": [4]}}
FAST = TrainConfig(learning_rate=3e-3, batch_size=16, max_epochs=3, patience=2, seed=7, threads=1)


def learnable_features(labels: np.ndarray, seed: int = 0) -> SegmentFeatures:
    """Random features whose MFCC level, RMS and a static feature shift with the quadrant."""
    f = random_features(len(labels), seed)
    shift = (labels[:, None, None] - 1.5).astype(np.float32)
    f.mfcc += shift
    f.series[:, 1] += 20 * shift[:, 0]
    f.static[:, 2] += shift[:, 0, 0]
    return f


class TinyDataset(Dataset):
    """Eight songs per quadrant by four artists, features written straight into a store."""

    name = "tiny"

    def _load(self):
        tracks = {}
        for i in range(32):
            q = i % 4
            tracks[f"song{i:02d}"] = DatasetTrack(
                f"song{i:02d}", None, quadrant_label=f"Q{q + 1}", artist=f"artist{i // 2}"
            )
        return tracks


@pytest.fixture(scope="module")
def tiny_store(tmp_path_factory):
    store = tmp_path_factory.mktemp("store")
    dataset = TinyDataset(store)
    for i, track in enumerate(dataset.tracks().values()):
        q = int(track.quadrant[1]) - 1
        feats = learnable_features(np.full(3, q), seed=i)
        atomic_write_npz(track_file(store, track.track_id), feats.as_dict())
    return dataset, store


def _xy(model, labels, seed=0):
    return model_inputs(model, learnable_features(labels, seed)), labels


def test_fit_learns_stops_early_and_keeps_the_best(tmp_path):
    torch.manual_seed(0)
    model = build_model("hybrid", **TINY_OVERRIDES["hybrid"])
    y = np.tile(np.arange(4), 16)
    cfg = TrainConfig(learning_rate=3e-3, batch_size=16, max_epochs=30, patience=2, seed=1, threads=1)
    val = _xy(model, y[:16], seed=1)
    result = fit(model, _xy(model, y), val, cfg)
    losses = [r["val_loss"] for r in result.history]
    assert result.best_epoch == int(np.argmin(losses))
    assert losses[result.best_epoch] < losses[0]  # it learned
    assert not model.training
    # it ends with the best epoch's weights, not the last epoch's
    x_val = {k: torch.from_numpy(v) for k, v in val[0].items()}
    assert evaluate_loss(model, x_val, torch.from_numpy(val[1]))[0] == pytest.approx(
        losses[result.best_epoch], rel=1e-5
    )

    # validation labels the features contradict: validation loss rises as training goes on, so
    # training must stop exactly `patience` epochs after its best epoch, long before max_epochs
    torch.manual_seed(0)
    model = build_model("hybrid", **TINY_OVERRIDES["hybrid"])
    misleading = (model_inputs(model, learnable_features(y[:16], seed=1)), (y[:16] + 2) % 4)
    result = fit(model, _xy(model, y), misleading, cfg)
    assert result.stopped_early
    assert len(result.history) == result.best_epoch + 1 + cfg.patience < cfg.max_epochs


def test_interrupted_training_resumes_exactly(tmp_path):
    y = np.tile(np.arange(4), 12)
    cfg = TrainConfig(learning_rate=3e-3, batch_size=16, max_epochs=4, patience=10, seed=3, threads=1)

    def train(workdir, progress=None):
        torch.manual_seed(0)
        model = build_model("cnn-lstm", **TINY_OVERRIDES["cnn-lstm"])
        return model, fit(model, _xy(model, y), _xy(model, y[:8], 1), cfg, workdir=workdir, progress=progress)

    _, straight = train(None)

    def interrupt(event, info):
        if event == "epoch" and info["epoch"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(tmp_path, interrupt)
    assert (tmp_path / "last.pt").exists()
    raw = torch.load(tmp_path / "last.pt", weights_only=True)
    assert raw["train_state"]["epoch"] == 1
    _, resumed = train(tmp_path)
    assert resumed.resumed_from == 1
    for a, b in zip(straight.history, resumed.history, strict=True):
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-5)
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)


def test_metrics_known_answers():
    m = classification_metrics(np.array([0, 0, 1, 2, 3, 3]), np.array([0, 1, 1, 2, 3, 0]))
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["per_quadrant"]["Q1"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert m["per_quadrant"]["Q3"]["f1"] == 1.0
    assert m["confusion"][3] == [1, 0, 0, 1]
    assert m["macro_f1"] == pytest.approx(np.mean([0.5, 2 / 3, 1.0, 2 / 3]))


@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_metrics_equal_scikit_learns(data):
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    n = data.draw(st.integers(1, 40))
    y_true = np.array(data.draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)))
    y_pred = np.array(data.draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)))
    m = classification_metrics(y_true, y_pred)
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=[0, 1, 2, 3], zero_division=0)
    for i, q in enumerate(("Q1", "Q2", "Q3", "Q4")):
        assert m["per_quadrant"][q] == pytest.approx({"precision": p[i], "recall": r[i], "f1": f[i], "support": s[i]})
    assert m["confusion"] == confusion_matrix(y_true, y_pred, labels=[0, 1, 2, 3]).tolist()
    assert m["macro_f1"] == pytest.approx(f[s > 0].mean())


def test_song_aggregation():
    probs = np.array([[0.9, 0.1, 0, 0], [0.2, 0.8, 0, 0], [0.3, 0.7, 0, 0], [0.1, 0.1, 0.1, 0.7]]) + 1e-3
    probs /= probs.sum(axis=1, keepdims=True)
    songs, agg = aggregate_songs(probs, np.array(["a", "a", "a", "b"]))
    assert songs.tolist() == ["a", "b"] and np.allclose(agg.sum(axis=1), 1)
    assert agg[0].argmax() == 1 and agg[1].argmax() == 3
    assert np.allclose(agg[0], probs[:3].mean(axis=0))  # the arithmetic mean of the segments
    assert np.allclose(agg[0], song_probabilities(probs[:3]))
    res = evaluate_probs(probs, np.array([1, 1, 1, 3]), np.array(["a", "a", "a", "b"]), song_labels={"a": 1})
    assert res["song"]["accuracy"] == 1.0 and res["segment"]["accuracy"] == 0.75
    assert res["song"]["aggregation"] == SONG_AGGREGATION == "mean-prob"
    s = summarize([res, res])
    assert s["song"]["accuracy"] == {"mean": 1.0, "std": 0.0, "values": [1.0, 1.0]}


def test_analyze_summary_and_song_metrics_share_one_aggregation_rule():
    """A quiet intro the model finds unlikely for Q1 must not veto Q1 (it would under a geometric mean)."""
    from moodscope.analysis.analyzer import summarize as summarize_track

    probs = np.array([[0.01, 0.60, 0.20, 0.19], *[[0.60, 0.30, 0.05, 0.05]] * 4])
    va = np.zeros((len(probs), 2))
    summary = summarize_track(probs, va)
    _, song = aggregate_songs(probs, np.array(["s"] * len(probs)))
    assert summary.quadrant == "Q1" and song[0].argmax() == 0
    assert [summary.probabilities[q] for q in ("Q1", "Q2", "Q3", "Q4")] == pytest.approx(song[0], abs=1e-4)


def test_run_experiment_kfold_checkpoints_and_resume(tiny_store, tmp_path):
    dataset, store = tiny_store
    table = build_segment_table(dataset, store)
    result = run_experiment(
        table,
        "cnn",
        "song",
        folds=3,
        model_overrides=TINY_OVERRIDES["cnn"],
        train_config=FAST,
        out_dir=tmp_path,
        dataset_name="tiny",
    )
    assert len(result["folds"]) == 3 and len(result["summary"]["segment"]["accuracy"]["values"]) == 3
    tested = sorted(s for f in result["folds"] for s in f["test_songs"])
    assert tested == sorted(dataset.track_ids())
    model, meta = load_checkpoint(tmp_path / "fold0" / "best.pt")
    assert meta["run"]["protocol"] == "song" and meta["complete"]
    assert meta["split"]["test_songs"] == result["folds"][0]["test_songs"]
    assert not set(meta["split"]["train_songs"]) & set(meta["split"]["test_songs"])
    # the normalisation in the checkpoint comes from the training songs only
    train_rows = np.flatnonzero(np.isin(table.track_ids, meta["split"]["train_songs"]))
    mean = table.features.static[train_rows].mean(axis=0)
    np.testing.assert_allclose(meta["normalization"]["mean"]["static"], mean, rtol=1e-4, atol=1e-5)
    probs = predict_proba(model, meta, table.features)
    assert probs.shape == (len(table), 4)
    again = run_experiment(
        table,
        "cnn",
        "song",
        folds=3,
        model_overrides=TINY_OVERRIDES["cnn"],
        train_config=FAST,
        out_dir=tmp_path,
        dataset_name="tiny",
    )
    assert again["summary"] == result["summary"]  # finished folds are reused, not retrained


def test_reproduce_end_to_end_on_a_tiny_fixture(tiny_store, tmp_path):
    dataset, store = tiny_store
    results, report = reproduce(dataset, store, tmp_path, train_config=FAST, model_overrides=TINY_OVERRIDES)
    assert [(r["model"], r["protocol"]) for r in results] == [
        (m, p) for p in ("paper", "song") for m in ("cnn", "cnn-lstm", "hybrid")
    ]
    text = report.read_text()
    assert "Test accuracy (%)" in text and "F1 Q4" in text and "renumbered" in text
    assert json.loads((tmp_path / "results.json").read_text())[0]["model"] == "cnn"
    for name in ("curves.png", "confusion-segment.png", "confusion-song.png"):
        assert (tmp_path / "hybrid-song" / "fold0" / name).read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "hybrid-song" / "report.md").exists()
    paper_runs = [r for r in results if r["protocol"] == "paper"]
    assert all(r["folds"][0]["leakage"]["test_songs_in_train"] > 0.5 for r in paper_runs)


def test_paper_table3_is_renumbered_to_russell():
    ref = paper_table3_russell("hybrid", "mturk")
    assert ref["accuracy"] == 0.87
    assert ref["f1"] == {"Q1": 0.83, "Q4": 0.89, "Q3": 0.89, "Q2": 0.85}
    fake = {
        "segment": {
            k: {"mean": 0.5, "std": 0.0, "values": [0.5]}
            for k in ["accuracy", "macro_f1", "f1_Q1", "f1_Q2", "f1_Q3", "f1_Q4"]
        }
    }
    md = table3_markdown([{"model": "hybrid", "protocol": "song", "summary": fake}], "4q")
    assert "| Test accuracy (%) | 50.0 | 89 | 87 |" in md


def test_cli_train_evaluate_reproduce(tiny_store, tmp_path, monkeypatch, capsys):
    import moodscope.datasets
    from moodscope.cli import main
    from moodscope.features.cache import store_dir

    _, store = tiny_store
    cache = tmp_path / "cache"
    store_dir(cache, "tiny").parent.mkdir(parents=True)
    store_dir(cache, "tiny").symlink_to(store)
    monkeypatch.setattr(moodscope.datasets, "load_dataset", lambda name, root, **kw: TinyDataset(root), raising=False)
    common = ["--dataset", "tiny", "--root", str(tmp_path), "--cache", str(cache), "--threads", "1"]
    fast = ["--epochs", "2", "--batch-size", "16", "--lr", "0.003"]
    config = json.dumps(TINY_OVERRIDES["hybrid"])
    out = tmp_path / "run"
    assert main(["train", "--model", "hybrid", "--out", str(out), "--config", config, *common, *fast]) == 0
    assert "hybrid / song: segment accuracy" in capsys.readouterr().out
    assert (out / "report.md").exists() and (out / "fold0" / "curves.png").exists()
    configs = json.dumps(TINY_OVERRIDES)
    rep = tmp_path / "rep"
    argv = ["reproduce", "--models", "cnn", "--out", str(rep), "--config", configs, *common, *fast]
    assert main(argv) == 0
    assert "| Test accuracy (%) |" in (rep / "report.md").read_text()
    assert main(["evaluate", str(tmp_path / "missing.pt"), "--dataset", "tiny", "--root", str(tmp_path)]) == 1
    assert "missing.pt: no such model" in capsys.readouterr().err
