"""The batched Table 2 features (moodscope.features.extract): against librosa and against known answers."""

from __future__ import annotations

import numpy as np
import pytest

from moodscope.constants import N_FRAMES, N_MFCC, SAMPLE_RATE, SEGMENT_SAMPLES, SERIES_NAMES, STATIC_NAMES
from moodscope.features.extract import (
    FEATURE_PARAMS,
    SegmentFeatures,
    amplitude_envelope,
    extract_features,
    feature_params_hash,
    mel_filters,
    reference_segment_features,
    static_features,
)

RTOL = 1e-4  # relative to the scale (max |value|) of each reference feature
T = np.arange(SEGMENT_SAMPLES) / SAMPLE_RATE
ENVELOPE, RMS, ZCR, CENTROID, SPREAD = range(5)


def sine(freq: float, amp: float = 0.5) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * freq * T)).astype(np.float32)


def test_signals() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    chirp = np.sin(2 * np.pi * (100 * T + 400 * T**2))
    bursts = np.where((T % 1.0) < 0.3, rng.standard_normal(len(T)), 0.0) * 0.2
    quiet_then_loud = np.concatenate([1e-4 * rng.standard_normal(50_000), 0.8 * np.sin(2 * np.pi * 3000 * T[:60_250])])
    return {
        "sine": sine(440.0),
        "chord": (sine(220.0, 0.3) + sine(330.0, 0.2) + sine(5000.0, 0.1)),
        "noise": (0.3 * rng.standard_normal(SEGMENT_SAMPLES)).astype(np.float32),
        "chirp": (0.5 * chirp).astype(np.float32),
        "bursts": bursts.astype(np.float32),
        "quiet_then_loud": quiet_then_loud.astype(np.float32),
        "constant": np.full(SEGMENT_SAMPLES, 0.25, np.float32),
        "silence": np.zeros(SEGMENT_SAMPLES, np.float32),
    }


test_signals.__test__ = False  # a helper, not a test


def assert_close_to_reference(got: np.ndarray, want: np.ndarray, *, scale: float, what: str) -> None:
    err = float(np.abs(got - want).max())
    assert err <= RTOL * max(scale, 1e-6), f"{what}: max error {err:.3g} > {RTOL} x scale {scale:.3g}"


def check_against_reference(segments: np.ndarray, names: list[str]) -> None:
    batched = extract_features(segments)
    for i, name in enumerate(names):
        ref = reference_segment_features(segments[i])
        mfcc_scale = float(np.abs(ref["mfcc"]).max())
        for key in ("mfcc", "delta", "delta2"):  # deltas are linear in the MFCC: judge them on its scale
            got = getattr(batched, key)[i]
            assert got.shape == ref[key].shape == (N_MFCC, N_FRAMES)
            assert_close_to_reference(got, ref[key], scale=mfcc_scale, what=f"{name} {key}")
        for j, series in enumerate(SERIES_NAMES):
            want = ref["series"][j]
            scale = float(np.abs(want).max())  # the mean and std of a series are judged on its scale
            assert_close_to_reference(batched.series[i, j], want, scale=scale, what=f"{name} {series}")
            for k in (2 * j, 2 * j + 1):
                assert_close_to_reference(
                    batched.static[i, k], ref["static"][k], scale=scale, what=f"{name} {STATIC_NAMES[k]}"
                )


def test_batched_equals_per_segment_librosa_on_synthetic_signals():
    signals = test_signals()
    check_against_reference(np.stack(list(signals.values())), list(signals))


def test_batched_equals_per_segment_librosa_on_a_real_clip():
    from conftest import shared_data
    from moodscope.audio import load_audio, segment_audio

    folder = shared_data("4q", "MER_audio_taffc_dataset")
    clips = sorted(folder.glob("Q*/*.mp3"))
    if not clips:
        pytest.skip(f"no 4Q clips in {folder}")
    segments = np.concatenate([segment_audio(load_audio(clips[i]))[:3] for i in (0, len(clips) // 2, -1)])
    check_against_reference(segments, [f"clip segment {i}" for i in range(len(segments))])


def test_segments_are_independent_of_their_batch():
    signals = np.stack(list(test_signals().values()))
    together = extract_features(signals)
    for i in (0, 2, len(signals) - 1):
        alone = extract_features(signals[i : i + 1])
        for key, value in alone.as_dict().items():  # equal up to the summation order of a matrix product
            want = together.as_dict()[key][i]
            np.testing.assert_allclose(value[0], want, rtol=0, atol=1e-6 * max(1.0, float(np.abs(want).max())))


def test_shapes_and_dtypes():
    feats = extract_features(np.stack([sine(440.0), sine(880.0), sine(1760.0)]))
    assert len(feats) == 3
    assert feats.mfcc.shape == feats.delta.shape == feats.delta2.shape == (3, N_MFCC, N_FRAMES) == (3, 13, 216)
    assert feats.series.shape == (3, len(SERIES_NAMES), 216)
    assert feats.static.shape == (3, 10) == (3, len(STATIC_NAMES))
    assert all(v.dtype == np.float32 for v in feats.as_dict().values())


def test_rejects_wrong_shapes():
    with pytest.raises(ValueError, match="110250"):
        extract_features(np.zeros((2, 1000), np.float32))
    with pytest.raises(ValueError):
        extract_features(np.zeros(SEGMENT_SAMPLES, np.float32))


# --- known answers ----------------------------------------------------------------------------

INTERIOR = slice(4, -4)  # frames whose window lies wholly inside the segment


@pytest.mark.parametrize("freq", [250.0, 1000.0, 3000.0, 6000.0])
def test_sine_centroid_is_its_frequency(freq):
    feats = extract_features(sine(freq)[None])
    centroid = feats.series[0, CENTROID, INTERIOR]
    assert np.median(centroid) == pytest.approx(freq, rel=0.03)
    # a pure tone is narrow: its spread is a few FFT bins (10.8 Hz each), not hundreds of Hz
    assert np.median(feats.series[0, SPREAD, INTERIOR]) < 0.1 * freq + 50


@pytest.mark.parametrize("freq", [100.0, 440.0, 2000.0])
def test_sine_zero_crossing_rate_is_2f_over_sr(freq):
    feats = extract_features(sine(freq, 0.7)[None])
    assert np.mean(feats.series[0, ZCR, INTERIOR]) == pytest.approx(2 * freq / SAMPLE_RATE, rel=0.02)


@pytest.mark.parametrize("c", [0.5, -0.25, 1e-3])
def test_constant_rms_and_envelope_are_its_magnitude(c):
    feats = extract_features(np.full((1, SEGMENT_SAMPLES), c, np.float32))
    np.testing.assert_allclose(feats.series[0, RMS, INTERIOR], abs(c), rtol=1e-5)
    np.testing.assert_allclose(feats.series[0, ENVELOPE], abs(c), rtol=1e-6)  # even at the edges
    # centred, zero-padded frames: the first frame is half padding, so its RMS is |c| / sqrt(2)
    assert feats.series[0, RMS, 0] == pytest.approx(abs(c) / np.sqrt(2), rel=1e-3)
    assert np.all(feats.series[0, ZCR] == 0)


def test_sine_rms_and_envelope():
    feats = extract_features(sine(440.0, 0.8)[None])
    np.testing.assert_allclose(feats.series[0, RMS, INTERIOR], 0.8 / np.sqrt(2), rtol=5e-3)
    np.testing.assert_allclose(feats.series[0, ENVELOPE, INTERIOR], 0.8, rtol=1e-3)


def test_static_is_mean_and_std_of_each_series():
    signals = np.stack(list(test_signals().values()))
    feats = extract_features(signals)
    for j in range(len(SERIES_NAMES)):
        np.testing.assert_allclose(feats.static[:, 2 * j], feats.series[:, j].mean(axis=-1), rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(feats.static[:, 2 * j + 1], feats.series[:, j].std(axis=-1), rtol=1e-4, atol=1e-6)
    series = np.random.default_rng(1).random((4, 5, 216))
    stats = static_features(series)
    assert stats.shape == (4, 10)
    np.testing.assert_allclose(stats[:, 0::2], series.mean(-1))
    np.testing.assert_allclose(stats[:, 1::2], series.std(-1))
    assert STATIC_NAMES[:2] == ("amplitude_envelope_mean", "amplitude_envelope_std")


def test_silence_gives_finite_zero_ish_features():
    feats = extract_features(np.zeros((2, SEGMENT_SAMPLES), np.float32))
    for key, value in feats.as_dict().items():
        assert np.isfinite(value).all(), key
    assert np.all(feats.series == 0) and np.all(feats.static == 0)
    # the mel spectrum is flat at the -100 dB floor: only the DC cepstral term, no change over time
    assert np.allclose(feats.mfcc[:, 0], -100 * np.sqrt(128), rtol=1e-5)
    assert np.abs(feats.mfcc[:, 1:]).max() < 1e-3
    assert np.abs(feats.delta).max() < 1e-6 and np.abs(feats.delta2).max() < 1e-6


def test_amplitude_envelope_matches_frame_maxima():
    y = np.random.default_rng(2).standard_normal((2, 5000)).astype(np.float32)
    env = amplitude_envelope(y, frame_length=256, hop_length=64)
    padded = np.pad(np.abs(y), ((0, 0), (128, 128)))
    want = np.array([[padded[k, i * 64 : i * 64 + 256].max() for i in range(env.shape[1])] for k in range(2)])
    np.testing.assert_array_equal(env, want)
    assert env.shape[1] == 1 + 5000 // 64


def test_mel_filters_equal_librosa():
    import librosa

    want = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=FEATURE_PARAMS["n_fft"], n_mels=FEATURE_PARAMS["n_mels"])
    np.testing.assert_allclose(mel_filters(), want, rtol=1e-5, atol=1e-9)


def test_segment_features_concatenate_and_select():
    feats = extract_features(np.stack([sine(440.0), sine(880.0)]))
    both = SegmentFeatures.concatenate([feats, feats.select(slice(0, 1))])
    assert len(both) == 3
    np.testing.assert_array_equal(both.mfcc[2], feats.mfcc[0])
    assert len(feats.select(np.array([False, True]))) == 1


def test_params_hash_is_stable_and_sensitive():
    assert feature_params_hash() == feature_params_hash(dict(FEATURE_PARAMS))
    assert len(feature_params_hash()) == 12
    assert feature_params_hash(FEATURE_PARAMS | {"n_mfcc": 20}) != feature_params_hash()
