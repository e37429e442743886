"""The PyTorch musicnn against TensorFlow's musicnn: golden outputs, shapes, and tags on real music.

``tests/data/musicnn_golden.npz`` holds the original TF graph's outputs (``musicnn.models`` with the
checkpoints of the ``musicnn`` 0.1.0 wheel) for :func:`synthetic_signal`, made by
``scripts/convert_musicnn.py --golden`` (see its docstring).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

GOLDEN = Path(__file__).parent / "data" / "musicnn_golden.npz"
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def synthetic_signal(sr: int = 16_000, seconds: float = 10.0) -> np.ndarray:
    """A deterministic test piece: an A-minor chord with harmonics and vibrato, a kick-and-hat pattern
    at 120 BPM and a little noise (seed 0). float32, peak about 0.5."""
    rng = np.random.default_rng(0)
    t = np.arange(round(sr * seconds)) / sr
    y = np.zeros_like(t)
    for f0 in (220.0, 261.63, 329.63):
        phase = 2 * np.pi * f0 * t + 0.3 * np.sin(2 * np.pi * 5.0 * t)
        for h in range(1, 6):
            y += 0.08 / h * np.sin(h * phase)
    beat = (t % 0.5) / 0.5  # position within each beat
    y += 0.4 * np.sin(2 * np.pi * 55.0 * t) * np.exp(-beat * 20)  # kick
    y += 0.05 * rng.standard_normal(len(t)) * np.exp(-((t % 0.25) / 0.25) * 30)  # hi-hat
    y += 0.01 * rng.standard_normal(len(t))
    return (0.5 * y / np.abs(y).max()).astype(np.float32)


@pytest.fixture(scope="module")
def golden() -> dict[str, np.ndarray]:
    with np.load(GOLDEN) as data:
        return {k: data[k] for k in data.files}


@pytest.mark.parametrize("name", ["msd", "mtt"])
def test_matches_tensorflow_musicnn(golden: dict[str, np.ndarray], name: str) -> None:
    from moodscope.models.musicnn import musicnn_embeddings

    y = synthetic_signal()
    assert np.allclose(y[:: len(y) // 50], golden["signal_probe"], atol=1e-6), "synthetic_signal() changed"
    out = musicnn_embeddings(y, 16_000, name=name)
    assert out["tags"] == list(golden[f"{name}_tags"])
    # TF's graph was fed librosa's mel; ours is numpy's FFT, so a few float16-rounded bins may differ by 1 ulp
    np.testing.assert_allclose(out["taggram"], golden[f"{name}_taggram"], atol=1e-3, rtol=0)
    np.testing.assert_allclose(out["penultimate"], golden[f"{name}_penultimate"], atol=1e-2, rtol=0)
    for key in ("max_pool", "mean_pool"):
        np.testing.assert_allclose(out[key], golden[f"{name}_{key}"], atol=1e-2, rtol=1e-3)


def test_log_mel_matches_librosa() -> None:
    import librosa

    from moodscope.models.musicnn import musicnn_log_mel

    y = synthetic_signal(seconds=3.0)
    mel = librosa.feature.melspectrogram(y=y, sr=16_000, hop_length=256, n_fft=512, n_mels=96).T
    reference = np.log10(10_000 * mel.astype(np.float16).astype(np.float32) + 1)
    ours = musicnn_log_mel(y)
    assert ours.shape == reference.shape == (188, 96)
    # float16 rounding can flip by one ulp (~5e-4 relative) between two float32 STFTs
    np.testing.assert_allclose(ours, reference, atol=1e-3, rtol=0)


def test_shapes_times_and_short_audio() -> None:
    from moodscope.models.musicnn import PATCH_SECONDS, load_musicnn, musicnn_embeddings, patch_times

    model = load_musicnn("msd")
    assert model is load_musicnn("msd")  # cached
    y = synthetic_signal(sr=22_050, seconds=10.0)
    out = musicnn_embeddings(y, 22_050, model=model)
    n = 3  # 10 s -> 626 frames -> 3 whole patches of 187
    assert out["taggram"].shape == (n, 50) and out["penultimate"].shape == (n, 200)
    assert out["max_pool"].shape == out["mean_pool"].shape == (n, 753)
    assert all(out[k].dtype == np.float32 and np.isfinite(out[k]).all() for k in ("taggram", "penultimate"))
    assert ((out["taggram"] > 0) & (out["taggram"] < 1)).all()
    assert len(out["tags"]) == 50 and out["tags"][0] == "rock" and out["model"] == "msd"
    np.testing.assert_allclose(out["times"], patch_times(n))
    np.testing.assert_allclose(out["times"][1], [PATCH_SECONDS, 2 * PATCH_SECONDS])

    stereo = np.stack([y, y])
    np.testing.assert_allclose(musicnn_embeddings(stereo, 22_050, model=model)["taggram"], out["taggram"], atol=1e-5)
    overlapped = musicnn_embeddings(y, 22_050, model=model, hop_seconds=1.0)
    assert len(overlapped["taggram"]) == 8  # starts every 62 frames: 0, 62, ..., 434
    short = musicnn_embeddings(y[:22_050], 22_050, model=model)  # 1 s: repeat-padded to one patch
    assert short["taggram"].shape == (1, 50)


def test_errors() -> None:
    from moodscope.errors import AudioError, ModelError
    from moodscope.models.musicnn import load_musicnn, musicnn_embeddings

    with pytest.raises(ModelError):
        load_musicnn("nope")
    with pytest.raises(AudioError):
        musicnn_embeddings(np.zeros(0, np.float32), 22_050)


def test_batch_size_does_not_change_results() -> None:
    from moodscope.models.musicnn import musicnn_embeddings

    y = synthetic_signal(sr=22_050, seconds=12.0)
    a = musicnn_embeddings(y, 22_050, batch_size=1)
    b = musicnn_embeddings(y, 22_050, batch_size=64)
    np.testing.assert_allclose(a["penultimate"], b["penultimate"], atol=1e-4)


@pytest.mark.slow
def test_tags_on_real_music() -> None:
    music = SHARED_DATA / "music"
    if not music.is_dir():
        pytest.skip(f"real data not available: {music} is absent (clone the project beside ../shared)")
    from moodscope.audio import load_audio
    from moodscope.constants import SAMPLE_RATE
    from moodscope.models.musicnn import load_musicnn, musicnn_embeddings

    # machine_wars.mp3: driving electronic/rock game music (asc-hq.org, GPL-2+)
    y = load_audio(music / "machine_wars.mp3", duration=60.0)
    msd = musicnn_embeddings(y, SAMPLE_RATE, model=load_musicnn("msd"))
    top = [msd["tags"][i] for i in np.argsort(-msd["taggram"].mean(axis=0))[:5]]
    assert {"electronic", "rock"} <= set(top), top
    mtt = musicnn_embeddings(y, SAMPLE_RATE, model=load_musicnn("mtt"))
    top = [mtt["tags"][i] for i in np.argsort(-mtt["taggram"].mean(axis=0))[:5]]
    assert {"drums", "techno"} & set(top), top
    assert not {"classical", "opera", "choir", "harpsichord"} & set(top), top


@pytest.mark.parametrize("n_time", [1, 5, 187, 200])
def test_polyphase_temporal_branch_is_the_direct_convolution(n_time: int) -> None:
    import torch

    from moodscope.models.musicnn import FrontEndBranch, load_musicnn

    torch.manual_seed(0)
    x = torch.randn(2, 1, n_time, 96)
    for branch in load_musicnn("msd").temporal:
        with torch.inference_mode():
            direct = FrontEndBranch.forward(branch, x)
            assert branch(x).shape == direct.shape == (2, 51, n_time)
            torch.testing.assert_close(branch(x), direct, atol=1e-4, rtol=1e-5)


def test_prepared_filters_follow_the_weights() -> None:
    import torch

    from moodscope.models.musicnn import MusiCNN

    torch.manual_seed(0)
    x = torch.randn(1, 20, 96)
    model, other = MusiCNN().eval(), MusiCNN().eval()
    for m in (model, other):  # non-trivial batch norms (some negative scales)
        for buf in m.buffers():
            buf.copy_(torch.randn_like(buf).abs() + 0.1 if buf.numel() > 1 else torch.ones_like(buf))
        for bn in [b.bn for b in (*m.timbral, *m.temporal)]:
            bn.weight.copy_(torch.randn_like(bn.weight))
    with torch.inference_mode():
        before = model(x)["penultimate"]  # the branches prepare (and keep) their filters
        model.load_state_dict(other.state_dict())  # in place: the kept filters are stale
        after = model(x)["penultimate"]
        torch.testing.assert_close(after, other(x)["penultimate"])
        assert not torch.allclose(before, after)
