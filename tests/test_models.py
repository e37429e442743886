"""The paper's three models: shapes, learning, checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from moodscope.constants import N_FRAMES, N_MFCC
from moodscope.errors import ModelError
from moodscope.features.extract import SegmentFeatures
from moodscope.features.normalization import Normalization
from moodscope.models import MODELS, build_model, model_inputs
from moodscope.models.checkpoint import (
    build_meta,
    load_checkpoint,
    predict_proba,
    read_checkpoint,
    save_checkpoint,
    save_random_checkpoint,
)

TINY = {"filters": [4, 8, 8], "hidden": 8}
TINY_RNN = {"lstm_units": 8}


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny models run fastest on one thread, and a busy CI machine does not slow them down."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny(name: str, **extra):
    return build_model(name, **(TINY | ({} if name == "cnn" else TINY_RNN) | extra))


def random_features(n: int, seed: int = 0) -> SegmentFeatures:
    rng = np.random.default_rng(seed)
    f = lambda *shape: rng.normal(size=shape).astype(np.float32)  # noqa: E731
    return SegmentFeatures(
        f(n, N_MFCC, N_FRAMES),
        f(n, N_MFCC, N_FRAMES),
        f(n, N_MFCC, N_FRAMES),
        np.abs(f(n, 5, N_FRAMES)) * 100,
        f(n, 10),
    )


EXPECTED_INPUTS = {
    "cnn": {"image": (3, 3, N_MFCC, N_FRAMES)},
    "cnn-lstm": {"image": (3, 2, N_MFCC, N_FRAMES), "series": (3, N_FRAMES, 5)},
    "hybrid": {"image": (3, 1, N_MFCC, N_FRAMES), "series": (3, N_FRAMES, 2), "static": (3, 10)},
}


@pytest.mark.parametrize("name", list(MODELS))
def test_input_and_output_shapes(name):
    model = build_model(name)  # the full default size
    inputs = model_inputs(model, random_features(3))
    assert {k: v.shape for k, v in inputs.items()} == EXPECTED_INPUTS[name]
    model.eval()
    out = model(**{k: torch.from_numpy(v) for k, v in inputs.items()})
    assert out.shape == (3, 4)
    assert torch.isfinite(out).all()


def test_hybrid_reads_rms_and_zcr():
    feats = random_features(2)
    series = model_inputs(build_model("hybrid"), feats)["series"]
    np.testing.assert_array_equal(series[..., 0], feats.series[:, 1])  # rms
    np.testing.assert_array_equal(series[..., 1], feats.series[:, 2])  # zero-crossing rate


def test_unknown_model_and_config_are_errors():
    with pytest.raises(ModelError, match="choose one of"):
        build_model("transformer")
    with pytest.raises(ModelError, match="unknown config keys"):
        build_model("cnn", lstm_units=3)


@pytest.mark.parametrize("name", list(MODELS))
def test_one_optimisation_step_lowers_the_loss(name):
    torch.manual_seed(0)
    model = tiny(name, dropout=0.0)
    inputs = {k: torch.from_numpy(v) for k, v in model_inputs(model, random_features(8)).items()}
    y = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    before = torch.nn.functional.cross_entropy(model(**inputs), y)
    opt.zero_grad()
    before.backward()
    opt.step()
    after = torch.nn.functional.cross_entropy(model(**inputs), y)
    assert after.item() < before.item()


def test_normalization_is_fitted_and_applied_per_feature_row():
    feats = random_features(20)
    feats.series[:, 3] = feats.series[:, 3] * 10 + 2000  # a centroid in Hz
    norm = Normalization.fit(feats)
    z = norm.apply(feats)
    assert np.allclose(z.series.mean(axis=(0, 2)), 0, atol=1e-4)
    assert np.allclose(z.series.std(axis=(0, 2)), 1, atol=1e-3)
    assert np.allclose(z.static.mean(axis=0), 0, atol=1e-4)
    assert np.allclose(Normalization.from_dict(norm.to_dict()).apply(feats).mfcc, z.mfcc)


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
@pytest.mark.parametrize("name", list(MODELS))
def test_checkpoint_round_trip_gives_identical_predictions(tmp_path, name, suffix):
    torch.manual_seed(1)
    model = tiny(name)
    feats = random_features(5)
    norm = Normalization.fit(random_features(30, seed=2))
    meta = build_meta(model, norm, metrics={"accuracy": 0.5})
    path = save_checkpoint(tmp_path / f"m{suffix}", model, meta)
    expected = predict_proba(model, meta, feats)
    loaded, loaded_meta = load_checkpoint(path)
    assert not loaded.training
    assert loaded_meta["arch"] == name and loaded_meta["labels"] == ["Q1", "Q2", "Q3", "Q4"]
    assert loaded_meta["metrics"] == {"accuracy": 0.5} and len(loaded_meta["weights_sha256"]) == 64
    got = predict_proba(loaded, loaded_meta, feats)
    np.testing.assert_array_equal(got, expected)
    assert got.shape == (5, 4) and np.allclose(got.sum(axis=1), 1, atol=1e-5)
    if suffix == ".pt":
        raw = torch.load(path, weights_only=True)  # no pickled classes
        assert raw["meta"]["config"]["filters"] == [4, 8, 8]


def test_corrupt_or_foreign_checkpoints_are_model_errors(tmp_path):
    path = save_random_checkpoint(tmp_path / "r.pt")
    raw = torch.load(path, weights_only=True)
    raw["state_dict"]["head.body.4.bias"] += 1
    torch.save(raw, tmp_path / "bad.pt")
    with pytest.raises(ModelError, match="sha256"):
        load_checkpoint(tmp_path / "bad.pt")
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(ModelError, match="not a moodscope checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(ModelError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")
    meta = read_checkpoint(path)["meta"]
    meta["feature_params"] = dict(meta["feature_params"], version=0)
    model, _ = load_checkpoint(path)
    save_checkpoint(tmp_path / "old-features.pt", model, meta)
    with pytest.raises(ModelError, match=r"features version 0.*retrain"):
        load_checkpoint(tmp_path / "old-features.pt")


def test_every_checkpoint_goes_through_one_fsynced_atomic_writer(tmp_path, monkeypatch):
    """Both file formats and both kinds of model (a network, the accurate ensemble) are written by
    ``write_checkpoint``: fsynced before the rename, and a failed write leaves the old file intact."""
    import os

    from moodscope.analysis.accurate import Head, save_embedding_model
    from moodscope.analysis.pretrained import load_model

    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    model, norm = tiny("hybrid"), Normalization.identity()
    meta = build_meta(model, norm)
    head = Head(("paper",), np.zeros(36), np.ones(36), np.ones((4, 36)), np.arange(4.0))
    writers = {
        "net.pt": lambda path: save_checkpoint(path, model, meta),
        "net.safetensors": lambda path: save_checkpoint(path, model, meta),
        "ensemble.pt": lambda path: save_embedding_model(path, [head], metrics={}, config={}),
    }
    for name, write in writers.items():
        before = len(synced)
        path = write(tmp_path / name)
        assert len(synced) == before + 1, f"{name} was not fsynced"
        assert read_checkpoint(path)["meta"]["weights_sha256"]
        load_model(path)  # the one loader reads every one of them

        def broken(*args, **kwargs):
            raise OSError("disk full")

        good = path.read_bytes()
        monkeypatch.setattr(torch, "save", broken)
        monkeypatch.setattr("safetensors.torch.save", broken)
        with pytest.raises(OSError, match="disk full"):
            write(path)
        monkeypatch.undo()
        monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
        assert path.read_bytes() == good
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize("arch", list(MODELS))
def test_random_checkpoint_for_smoke_tests(tmp_path, arch):
    path = save_random_checkpoint(tmp_path / "random.pt", arch=arch, seed=3)
    assert path.stat().st_size < 200_000
    model, meta = load_checkpoint(path)
    assert meta["random"] is True and meta["arch"] == arch
    probs = predict_proba(model, meta, random_features(4))
    assert probs.shape == (4, 4)
    assert read_checkpoint(path)["format_version"] == 1
    again, _ = load_checkpoint(save_random_checkpoint(tmp_path / "again.pt", arch=arch, seed=3))
    np.testing.assert_array_equal(predict_proba(again, meta, random_features(4)), probs)


def test_random_checkpoint_predicts_a_real_clip(tmp_path):
    from conftest import shared_data
    from moodscope.features.cache import extract_file

    clip = shared_data("4q", "MER_audio_taffc_dataset", "Q1", "MT0000364027.mp3")
    feats, seconds = extract_file(clip)
    model, meta = load_checkpoint(save_random_checkpoint(tmp_path / "r.pt"))
    probs = predict_proba(model, meta, feats)
    assert probs.shape == (len(feats), 4) and len(feats) == int(seconds // 5)
    assert np.isfinite(probs).all() and np.allclose(probs.sum(axis=1), 1, atol=1e-5)
