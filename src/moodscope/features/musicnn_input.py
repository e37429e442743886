"""musicnn's input: 16-kHz log-mel patches, computed with numpy (no torch on the analysis path).

musicnn (Pons & Serra, 2019; :mod:`moodscope.models.musicnn` in PyTorch, the ONNX graphs of
:mod:`moodscope.analysis.musicnn_onnx` at analysis time) reads log-mel patches of 16 kHz audio:
STFT n_fft 512 / hop 256 (periodic Hann window, centred frames, zero padded), 96 Slaney mel bands
(librosa's defaults), the power spectrum, rounded to float16 as musicnn's training data were, then
``log10(10000 * mel + 1)`` in float32; patches of 187 frames (2.992 s), non-overlapping, a trailing
remainder dropped (as ``musicnn.extractor``).
"""

from __future__ import annotations

import functools

import numpy as np

from moodscope.errors import AudioError

NETWORKS = {"msd": "musicnn trained on the Million Song Dataset", "mtt": "musicnn trained on MagnaTagATune"}
"""The two musicnn networks (taggers) moodscope ships, by name."""

MUSICNN_SR = 16_000
N_FFT = 512
HOP = 256
N_MELS = 96
PATCH_FRAMES = 187
"""Frames per patch: ``librosa.time_to_frames(3, sr=16000, n_fft=512, hop_length=256) + 1``."""
PATCH_SECONDS = PATCH_FRAMES * HOP / MUSICNN_SR  # 2.992 s
FLOAT16_MAX = float(np.finfo(np.float16).max)

N_TAGS = 50
N_PENULTIMATE = 200
N_MIDEND = 753  # 561 front-end + 3 x 64 mid-end channels
OUTPUT_DIMS = {"taggram": N_TAGS, "penultimate": N_PENULTIMATE, "max_pool": N_MIDEND, "mean_pool": N_MIDEND}
"""musicnn's outputs per patch and their sizes (the PyTorch network and the ONNX graphs alike)."""


@functools.cache
def _mel_basis_t() -> np.ndarray:
    """The (257, 96) transposed mel filter bank (librosa.filters.mel's) and the periodic Hann window."""
    from moodscope.features.extract import mel_filters

    return np.ascontiguousarray(mel_filters(sr=MUSICNN_SR, n_fft=N_FFT, n_mels=N_MELS).T)


@functools.cache
def _window() -> np.ndarray:
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)  # periodic Hann


def musicnn_log_mel(y16: np.ndarray) -> np.ndarray:
    """musicnn's input representation of 16 kHz mono audio [shape=(n,)]: log-mel [shape=(1 + n // 256, 96)] float32.

    Equals ``librosa.feature.melspectrogram(y=y16, sr=16000, hop_length=256, n_fft=512, n_mels=96).T``
    (librosa >= 0.10 defaults: centred frames, zero padding), rounded to float16 as musicnn's training
    data were, then ``log10(10000 * mel + 1)`` in float32 (see :mod:`moodscope.models.musicnn` on why
    the logarithm is not taken in float16).
    """
    y = np.ascontiguousarray(y16, dtype=np.float32).reshape(-1)
    padded = np.pad(y, N_FFT // 2)  # centred frames, zero padding
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP]  # (1 + n // HOP, N_FFT)
    spec = np.fft.rfft(frames * _window(), axis=1)  # (frames, 257), float32 input -> complex64
    power = spec.real * spec.real + spec.imag * spec.imag
    mel = np.minimum(power @ _mel_basis_t(), FLOAT16_MAX).astype(np.float16).astype(np.float32)
    return np.log10(mel * 10000 + 1)


def patch_starts(n_frames: int, *, hop_frames: int = PATCH_FRAMES) -> np.ndarray:
    """First frame of each patch, as ``musicnn.extractor.batch_data`` (only whole patches)."""
    return np.arange(0, n_frames - PATCH_FRAMES + 1, hop_frames, dtype=np.int64)


def patch_times(n_patches: int, *, hop_frames: int = PATCH_FRAMES) -> np.ndarray:
    """(n_patches, 2) start and end time in seconds of each patch (centred frames, so frame i is at i * hop)."""
    start = np.arange(n_patches) * hop_frames * HOP / MUSICNN_SR
    return np.stack([start, start + PATCH_SECONDS], axis=1)


def musicnn_patches(log_mel: np.ndarray, *, hop_frames: int = PATCH_FRAMES) -> np.ndarray:
    """Cut a (n_frames, 96) log-mel into (n_patches, 187, 96) patches.

    Audio shorter than one patch is repeat-padded to one patch (musicnn's training "repeat-pad").
    """
    if log_mel.ndim != 2 or log_mel.shape[1] != N_MELS or len(log_mel) == 0:
        raise AudioError(f"expected a non-empty (n_frames, {N_MELS}) log-mel, got shape {log_mel.shape}")
    if len(log_mel) < PATCH_FRAMES:
        log_mel = np.resize(log_mel, (PATCH_FRAMES, N_MELS))  # np.resize repeats the rows
    starts = patch_starts(len(log_mel), hop_frames=hop_frames)
    view = np.lib.stride_tricks.sliding_window_view(log_mel, PATCH_FRAMES, axis=0)  # (n, 96, 187)
    return np.ascontiguousarray(view[starts].transpose(0, 2, 1))


def to_musicnn_rate(y: np.ndarray, sr: int) -> np.ndarray:
    """Mix to mono and resample to 16 kHz with soxr (HQ, as librosa.load's default in musicnn's extractor)."""
    from moodscope.audio import resample

    return resample(y, sr, target=MUSICNN_SR, quality="HQ")
