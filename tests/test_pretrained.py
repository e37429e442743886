"""The shipped models: they load, describe themselves, and reproduce golden outputs on the demo clip."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from moodscope.analysis.analyzer import analyze
from moodscope.analysis.pretrained import SHIPPED_MODELS, load_model
from moodscope.constants import QUADRANTS
from moodscope.errors import ModelError
from moodscope.models.checkpoint import read_checkpoint
from moodscope.paths import DEMO_CLIP

GOLDEN = Path(__file__).parent / "data" / "golden_demo.json"
"""Written by ``python tests/test_pretrained.py`` from the shipped models; update it only on purpose."""


@pytest.mark.parametrize("name", list(SHIPPED_MODELS))
def test_shipped_checkpoint_is_self_describing(name):
    path = SHIPPED_MODELS[name]
    assert path.stat().st_size < 10 * 2**20, "shipped models must stay small"
    if path.suffix == ".pt":
        payload = torch.load(path, map_location="cpu", weights_only=True)  # no pickled classes
        assert payload["format"] == "moodscope-checkpoint"  # one format for every model
    else:  # accurate: safetensors, read without torch
        from safetensors import safe_open

        with safe_open(str(path), framework="np") as fh:
            payload = {"meta": json.loads(fh.metadata()["moodscope"])}
    meta = read_checkpoint(path)["meta"]  # weights match their sha256
    assert meta["weights_sha256"] == payload["meta"]["weights_sha256"]
    assert list(meta["labels"]) == list(QUADRANTS)
    assert meta["feature_params"]["sample_rate"] == 22_050
    assert meta["metrics"], "a shipped model carries its evaluation"


def test_shipped_fast_is_what_train_shipped_fast_produces():
    """The shipped ``fast`` carries its own cross-validation: one run, every fold, the epochs their median."""
    metrics = read_checkpoint(SHIPPED_MODELS["fast"])["meta"]["metrics"]
    folds = metrics["fold_best_epochs"]
    assert len(folds) == 5 and metrics["epochs"] == int(np.median(folds))
    assert "source" not in metrics["cross_validation"], "figures of this checkpoint's own run, not an earlier one"
    assert len(metrics["cross_validation"]["summary"]["song"]["macro_f1"]["values"]) == 5


def golden_outputs() -> dict:
    return {name: analyze(DEMO_CLIP, model=name).to_dict() for name in SHIPPED_MODELS}


@pytest.mark.parametrize("name", list(SHIPPED_MODELS))
def test_golden_output_on_demo_clip(name):
    expected = json.loads(GOLDEN.read_text())[name]
    got = analyze(DEMO_CLIP, model=name).to_dict()
    assert got["summary"]["quadrant"] == expected["summary"]["quadrant"]
    assert len(got["segments"]) == len(expected["segments"]) == 8
    for g, e in zip(got["segments"], expected["segments"]):
        assert g["start"] == e["start"]
        for q in QUADRANTS:
            assert g["probabilities"][q] == pytest.approx(e["probabilities"][q], abs=0.02)
        for key in ("valence", "arousal"):  # probabilities of a positive / high rating, in [0, 1]
            assert 0 <= g[key] <= 1 and g[key] == pytest.approx(e[key], abs=0.02)
    for key in ("valence", "arousal"):
        assert got["summary"][key] == pytest.approx(expected["summary"][key], abs=0.02)


def test_default_model_is_accurate():
    assert load_model().name == "accurate"
    assert load_model("fast").name == "fast"


def test_unknown_model_names_the_choices(tmp_path):
    with pytest.raises(ModelError, match="accurate, fast"):
        load_model("nonexistent-model")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match=r"junk\.pt"):
        load_model(junk)


def test_accurate_probabilities_are_distributions():
    model = load_model("accurate")
    rng = np.random.default_rng(0)
    segments = (0.1 * rng.standard_normal((3, 110_250))).astype(np.float32)
    probs, va = model.predict_segments(segments)
    assert probs.shape == (3, 4) and va is None
    assert np.allclose(probs.sum(axis=1), 1) and (probs >= 0).all()


if __name__ == "__main__":
    GOLDEN.write_text(json.dumps(golden_outputs(), indent=1))
    print(f"wrote {GOLDEN}")
