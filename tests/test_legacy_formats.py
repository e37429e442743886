"""Checkpoints and feature caches written by earlier versions of moodscope still load.

``tests/data/legacy`` holds files written by moodscope 0.1.0 before the package layout changed
(see its README): a checkpoint of each format and a feature-cache entry of a known signal.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from moodscope.analysis import load_model
from moodscope.constants import SAMPLE_RATE, SEGMENT_SAMPLES
from moodscope.features.cache import extract_file, load_track_features

LEGACY = Path(__file__).parent / "data" / "legacy"
EXPECTED = json.loads((LEGACY / "expected.json").read_text())


def signal(seconds: float = 6.0) -> np.ndarray:
    """The signal of ``expected.json`` [shape=(n,)]."""
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (0.3 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 660 * t * (1 + 0.1 * t))).astype(np.float32)


def legacy_signal() -> np.ndarray:
    """Its first 5-s segment [shape=(1, SEGMENT_SAMPLES)]."""
    return signal()[:SEGMENT_SAMPLES][None, :]


@pytest.mark.parametrize("name", ["hybrid-tiny.pt", "accurate-tiny.pt"])
def test_legacy_checkpoint_loads_and_predicts_as_before(name, monkeypatch):
    # the expected outputs were computed by float32 musicnn: the int8 graphs analyze runs (docs/speed.md)
    # move them by ~0.1, which is not what this test is about, so musicnn runs as the float32 reference
    from moodscope.analysis import musicnn_onnx
    from moodscope.models.musicnn import load_musicnn, run_musicnn

    def float32_musicnn(mels: np.ndarray, net: str, *, batch_size: int = 3) -> dict[str, np.ndarray]:
        return run_musicnn(mels, model=load_musicnn(net), batch_size=batch_size)

    monkeypatch.setattr(musicnn_onnx, "run_musicnn_onnx", float32_musicnn)
    model = load_model(LEGACY / name)
    probs, _ = model.predict_segments(legacy_signal())
    np.testing.assert_allclose(probs, EXPECTED["probabilities"][name], atol=1e-5)


def test_legacy_feature_cache_entry_loads_and_matches_todays_features(tmp_path):
    """The entry was extracted from the signal written as a 16-bit WAV (soundfile's default)."""
    sf.write(tmp_path / "tone.wav", signal(), SAMPLE_RATE)
    cached = load_track_features(LEGACY / "cache", "tone")
    fresh, _ = extract_file(tmp_path / "tone.wav")
    for key in ("mfcc", "delta", "delta2", "series", "static"):
        a, b = getattr(cached, key), getattr(fresh, key)
        assert a.shape == b.shape, key
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * float(np.abs(b).max()), err_msg=key)
