"""The paper's hybrid spectral-temporal feature vector (Table 2), computed per 5-second segment.

All segments of a file are processed as one batch: one STFT serves the centroid, spread and MFCC;
RMS, zero-crossing rate and envelope are sums and maxima over hop-sized blocks. The computation is
librosa's (same window, mel filter bank, dB floor, DCT, Savitzky-Golay deltas, padding rules), written
out in numpy so that a worker process imports neither librosa nor scipy; the tests hold it to
:func:`reference_segment_features`, the per-segment librosa calls.

Per segment (``N_FRAMES`` = 216 centred frames, ``N_FFT`` = 2048, ``HOP_LENGTH`` = 512):

- ``mfcc``, ``delta``, ``delta2`` [shape=(n, N_MFCC, N_FRAMES)]
- ``series`` [shape=(n, 5, N_FRAMES)]: amplitude envelope (frame max of ``|x|``), RMS energy,
  zero-crossing rate, spectral centroid (Hz), spectral spread (bandwidth, Hz), in ``SERIES_NAMES`` order
- ``static`` [shape=(n, 10)]: mean and standard deviation over frames of each series (``STATIC_NAMES``)
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from moodscope.constants import (
    DELTA_WIDTH,
    HOP_LENGTH,
    N_FFT,
    N_FRAMES,
    N_MELS,
    N_MFCC,
    SAMPLE_RATE,
    SEGMENT_SAMPLES,
    SERIES_NAMES,
)

TOP_DB = 80.0

FEATURE_PARAMS = {
    "sample_rate": SAMPLE_RATE,
    "segment_samples": SEGMENT_SAMPLES,
    "n_fft": N_FFT,
    "hop_length": HOP_LENGTH,
    "n_mfcc": N_MFCC,
    "n_mels": N_MELS,
    "delta_width": DELTA_WIDTH,
    "top_db": TOP_DB,
    "series": list(SERIES_NAMES),
    "version": 1,
}
"""Everything that changes the feature values; hashed into cache keys and stored in checkpoints."""


def feature_params_hash(params: dict | None = None) -> str:
    """A short stable hash of the feature parameters (the cache key)."""
    blob = json.dumps(params or FEATURE_PARAMS, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


@dataclass
class SegmentFeatures:
    """Features of ``n`` segments; every array's first axis is the segment."""

    mfcc: np.ndarray  # (n, N_MFCC, N_FRAMES)
    delta: np.ndarray  # (n, N_MFCC, N_FRAMES)
    delta2: np.ndarray  # (n, N_MFCC, N_FRAMES)
    series: np.ndarray  # (n, 5, N_FRAMES)
    static: np.ndarray  # (n, 10)

    def __len__(self) -> int:
        return self.mfcc.shape[0]

    def as_dict(self) -> dict[str, np.ndarray]:
        return {k: getattr(self, k) for k in ("mfcc", "delta", "delta2", "series", "static")}

    @classmethod
    def concatenate(cls, parts: list[SegmentFeatures]) -> SegmentFeatures:
        return cls(**{k: np.concatenate([p.as_dict()[k] for p in parts]) for k in parts[0].as_dict()})

    def select(self, index: np.ndarray | slice) -> SegmentFeatures:
        return SegmentFeatures(**{k: v[index] for k, v in self.as_dict().items()})


def static_features(series: np.ndarray) -> np.ndarray:
    """Mean and std over frames of each series: [shape=(..., 5, t)] -> [shape=(..., 10)]."""
    stats = np.stack([series.mean(axis=-1), series.std(axis=-1)], axis=-1)  # (..., 5, 2)
    return stats.reshape(*series.shape[:-2], -1)


def amplitude_envelope(y: np.ndarray, *, frame_length: int = N_FFT, hop_length: int = HOP_LENGTH) -> np.ndarray:
    """Frame maximum of ``|y|`` over centred frames: [shape=(..., n)] -> [shape=(..., t)].

    Frames are centred and zero-padded exactly like ``librosa.feature.rms``.
    """
    pad = [(0, 0)] * (y.ndim - 1) + [(frame_length // 2, frame_length // 2)]
    frames = np.lib.stride_tricks.sliding_window_view(np.pad(np.abs(y), pad), frame_length, axis=-1)
    return frames[..., ::hop_length, :].max(axis=-1)


MEL_GROUP = 16
"""Mel filters multiplied together: each group only touches the FFT bins its triangles cover."""


@dataclass(frozen=True)
class _Constants:
    window: np.ndarray  # (N_FFT,) float64 periodic Hann, as librosa.stft uses
    mel_groups: tuple[tuple[int, int, int, int, np.ndarray], ...]  # (bin lo, bin hi, mel lo, mel hi, weights)
    dct: np.ndarray  # (N_MELS, N_MFCC) orthonormal DCT-II, as librosa.feature.mfcc uses
    moments: np.ndarray  # (1 + N_FFT // 2, 3): 1, f, f**2 of each FFT bin (Hz)
    delta: tuple[np.ndarray, np.ndarray]  # Savitzky-Golay derivative taps of orders 1 and 2


def _savgol_taps(order: int, width: int = DELTA_WIDTH) -> np.ndarray:
    """Taps ``h`` with ``out[i] = sum_k h[k] x[i - width//2 + k]``: the ``order``-th derivative at the
    window centre of the degree-``order`` least-squares polynomial (``scipy.signal.savgol_coeffs``)."""
    k = np.arange(width) - width // 2
    design = np.vander(k, order + 1, increasing=True).astype(float)
    return np.linalg.pinv(design)[order] * math.factorial(order)


def _hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    """Slaney's mel scale (``librosa.hz_to_mel(htk=False)``): linear below 1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=float)
    f_sp, min_log_hz, logstep = 200.0 / 3, 1000.0, math.log(6.4) / 27.0
    min_log_mel = min_log_hz / f_sp
    return np.where(hz >= min_log_hz, min_log_mel + np.log(np.maximum(hz, 1e-10) / min_log_hz) / logstep, hz / f_sp)


def _mel_to_hz(mel: np.ndarray | float) -> np.ndarray:
    """Inverse of :func:`_hz_to_mel` (``librosa.mel_to_hz(htk=False)``)."""
    mel = np.asarray(mel, dtype=float)
    f_sp, min_log_hz, logstep = 200.0 / 3, 1000.0, math.log(6.4) / 27.0
    min_log_mel = min_log_hz / f_sp
    return np.where(mel >= min_log_mel, min_log_hz * np.exp(logstep * (mel - min_log_mel)), f_sp * mel)


def mel_filters(*, sr: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS) -> np.ndarray:
    """The Slaney-normalised mel filter bank [shape=(n_mels, 1 + n_fft // 2)] float32 from 0 Hz to
    Nyquist, as ``librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels)`` builds it (computed
    here so that a worker process need not import librosa and scipy.signal)."""
    fft_freqs = np.fft.rfftfreq(n_fft, d=1.0 / sr)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sr / 2), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fft_freqs)
    weights = np.zeros((n_mels, len(fft_freqs)))
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels]))[:, np.newaxis]
    return weights.astype(np.float32)


@functools.cache
def _constants() -> _Constants:
    """The window, filter banks and taps that librosa's functions use, built once per process."""
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(N_FFT) / N_FFT)  # periodic Hann
    mel = mel_filters()
    groups = []
    for m0 in range(0, N_MELS, MEL_GROUP):
        m1 = min(N_MELS, m0 + MEL_GROUP)
        (bins,) = np.nonzero(mel[m0:m1].any(axis=0))
        lo, hi = (int(bins[0]), int(bins[-1]) + 1) if len(bins) else (0, 1)
        groups.append((lo, hi, m0, m1, np.ascontiguousarray(mel[m0:m1, lo:hi].T)))
    # orthonormal DCT-II, first N_MFCC rows, transposed: (N_MELS, N_MFCC)
    k, i = np.arange(N_MFCC)[:, None], np.arange(N_MELS)[None, :]
    dct = np.sqrt(2.0 / N_MELS) * np.cos(np.pi * k * (2 * i + 1) / (2 * N_MELS))
    dct[0] /= np.sqrt(2.0)
    freq = np.fft.rfftfreq(N_FFT, d=1.0 / SAMPLE_RATE)
    moments = np.stack([np.ones_like(freq), freq, freq**2], axis=1)
    return _Constants(window, tuple(groups), dct.T.astype(np.float32), moments, (_savgol_taps(1), _savgol_taps(2)))


def _delta(x: np.ndarray, order: int) -> np.ndarray:
    """``librosa.feature.delta(x, width=DELTA_WIDTH, order=order)`` along the last axis.

    librosa uses ``scipy.signal.savgol_filter(mode="interp")`` with ``polyorder == order``: inside,
    a correlation with the derivative taps; in the first and last ``DELTA_WIDTH // 2`` frames, the
    derivative of the polynomial fitted to the first (last) window, which is constant for this
    polynomial degree, hence equal to the value at that window's centre.
    """
    taps = _constants().delta[order - 1]
    half = DELTA_WIDTH // 2
    t = x.shape[-1]
    if t < DELTA_WIDTH:
        raise ValueError(f"delta needs at least {DELTA_WIDTH} frames, got {t}")
    x64 = x.astype(np.float64)
    out = np.empty_like(x64)
    inner = out[..., half : t - half]
    inner[...] = taps[0] * x64[..., : t - 2 * half]
    for k in range(1, DELTA_WIDTH):
        if taps[k] != 0.0:
            inner += taps[k] * x64[..., k : t - 2 * half + k]
    out[..., :half] = out[..., half : half + 1]
    out[..., t - half :] = out[..., t - half - 1 : t - half]
    return out.astype(x.dtype, copy=False)


_FRAME_BLOCKS = N_FFT // HOP_LENGTH
"""A centred frame of ``N_FFT`` samples is this many consecutive hop-sized blocks of the padded signal."""
_N_BLOCKS = N_FRAMES - 1 + _FRAME_BLOCKS


def _hop_blocks(x: np.ndarray, *, mode: Literal["constant", "edge"] = "constant") -> np.ndarray:
    """Pad [shape=(n, samples)] like a centred STFT (``N_FFT // 2`` each side) and cut the part the
    frames cover into hop-sized blocks: [shape=(n, _N_BLOCKS, HOP_LENGTH)]."""
    half = N_FFT // 2
    width = _N_BLOCKS * HOP_LENGTH
    padded = np.pad(x, ((0, 0), (half, max(0, width - half - x.shape[1]))), mode=mode)[:, :width]
    return padded.reshape(x.shape[0], _N_BLOCKS, HOP_LENGTH)


def _frame_sums(per_block: np.ndarray) -> np.ndarray:
    """Sum of ``_FRAME_BLOCKS`` consecutive block values: [shape=(n, _N_BLOCKS)] -> [shape=(n, N_FRAMES)]."""
    out = per_block[:, :N_FRAMES].copy()
    for k in range(1, _FRAME_BLOCKS):
        out += per_block[:, k : k + N_FRAMES]
    return out


def _zero_crossing_rate(y: np.ndarray) -> np.ndarray:
    """``librosa.feature.zero_crossing_rate`` of [shape=(n, samples)] -> [shape=(n, t)], exactly.

    As librosa does: edge padding, samples with ``|x| <= 1e-10`` count as positive zeros, and a
    frame counts the sign changes between its own consecutive samples (never one into its first).
    Every sign change is computed once and counted per hop-sized block.
    """
    negative = np.signbit(y) & (np.abs(y) > np.float32(1e-10))
    negative = _hop_blocks(negative, mode="edge").reshape(y.shape[0], -1)
    change = np.zeros_like(negative)
    np.not_equal(negative[:, 1:], negative[:, :-1], out=change[:, 1:])  # change[i]: between i-1 and i
    blocks = change.reshape(y.shape[0], _N_BLOCKS, HOP_LENGTH)
    counts = _frame_sums(np.count_nonzero(blocks, axis=-1).astype(np.int64))
    counts -= blocks[:, :N_FRAMES, 0]  # the change into a frame's first sample is not in the frame
    return counts.astype(np.float32) / N_FFT


def _rms(blocks: np.ndarray) -> np.ndarray:
    """``librosa.feature.rms`` (centred, zero-padded frames) from the :func:`_hop_blocks` of
    [shape=(n, samples)] -> [shape=(n, t)]."""
    energy = np.square(blocks, dtype=np.float64).sum(axis=-1)
    return np.sqrt(_frame_sums(energy) / N_FFT).astype(np.float32)


def _envelope(blocks: np.ndarray) -> np.ndarray:
    """:func:`amplitude_envelope` from the :func:`_hop_blocks` of [shape=(n, samples)] -> [shape=(n, t)],
    from per-block maxima."""
    blocks = np.abs(blocks).max(axis=-1)
    out = blocks[:, :N_FRAMES].copy()
    for k in range(1, _FRAME_BLOCKS):
        np.maximum(out, blocks[:, k : k + N_FRAMES], out=out)
    return out


def extract_features(segments: np.ndarray) -> SegmentFeatures:
    """Compute the Table 2 features of every segment at once.

    One STFT serves the mel spectrogram (hence the MFCC), the centroid and the spread; RMS,
    zero-crossing rate and envelope come from sums and maxima over hop-sized blocks of the samples,
    each sample visited once. The values equal librosa's per-segment functions (:func:`reference_segment_features`)
    to float32 rounding.

    Parameters
    ----------
    segments : np.ndarray [shape=(n, SEGMENT_SAMPLES)]
        Mono audio at ``SAMPLE_RATE``, as produced by :func:`moodscope.audio.segment_audio`.
    """
    y = np.ascontiguousarray(segments, dtype=np.float32)
    if y.ndim != 2 or y.shape[1] != SEGMENT_SAMPLES:
        raise ValueError(f"expected segments of shape (n, {SEGMENT_SAMPLES}), got {y.shape}")
    n = y.shape[0]
    const = _constants()
    half = N_FFT // 2

    # STFT magnitude [shape=(n * t, 1 + N_FFT // 2)]. As in librosa.stft, the windowed frames are
    # transformed in float64 (a pure tone's spread depends on the leakage floor) and stored as float32;
    # the centroid and spread moments are taken from the float64 magnitude. One segment at a time
    # keeps the working set in cache.
    padded = np.pad(y, ((0, 0), (half, half)))
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT, axis=-1)[:, ::HOP_LENGTH]
    assert frames.shape[1] == N_FRAMES
    magnitude = np.empty((n, N_FRAMES, 1 + N_FFT // 2), dtype=np.float32)
    m = np.empty((n, N_FRAMES, 3))
    windowed = np.empty((N_FRAMES, N_FFT))  # buffers reused across segments
    spectrum = np.empty((N_FRAMES, 1 + N_FFT // 2), dtype=np.complex128)
    mag64 = np.empty((N_FRAMES, 1 + N_FFT // 2))
    for i in range(n):
        np.multiply(frames[i], const.window, out=windowed)
        np.fft.rfft(windowed, axis=-1, out=spectrum)
        np.abs(spectrum, out=mag64)
        magnitude[i] = mag64
        np.matmul(mag64, const.moments, out=m[i])
    del frames, padded, windowed, spectrum, mag64

    # MFCC: power mel spectrogram (banded filter bank), dB with the top_db floor, DCT-II
    power = np.square(magnitude, out=magnitude).reshape(n * N_FRAMES, -1)
    mel = np.empty((n * N_FRAMES, N_MELS), dtype=np.float32)
    for lo, hi, m0, m1, weights in const.mel_groups:
        np.matmul(power[:, lo:hi], weights, out=mel[:, m0:m1])
    mel_db = 10.0 * np.log10(np.maximum(mel, np.float32(1e-10))).reshape(n, N_FRAMES, N_MELS)
    # librosa's top_db clips relative to the maximum of the whole input: keep that per segment
    mel_db = np.maximum(mel_db, mel_db.max(axis=(-2, -1), keepdims=True) - np.float32(TOP_DB))
    mfcc = np.ascontiguousarray((mel_db @ const.dct).transpose(0, 2, 1))  # (n, n_mfcc, t)
    delta = _delta(mfcc, 1)
    delta2 = _delta(mfcc, 2)

    # centroid and spread (p = 2) from the moments, with librosa.util.normalize's silent-frame rule
    moments = m.reshape(-1, 3)
    total = np.where(moments[:, 0] < np.finfo(np.float32).tiny, 1.0, moments[:, 0])
    centroid = moments[:, 1] / total
    spread = np.sqrt(
        np.maximum(moments[:, 2] - 2.0 * centroid * moments[:, 1] + centroid**2 * moments[:, 0], 0.0) / total
    )

    series = np.empty((n, len(SERIES_NAMES), N_FRAMES), dtype=np.float32)
    blocks = _hop_blocks(y)
    series[:, 0] = _envelope(blocks)
    series[:, 1] = _rms(blocks)
    del blocks
    series[:, 2] = _zero_crossing_rate(y)
    series[:, 3] = centroid.reshape(n, N_FRAMES)
    series[:, 4] = spread.reshape(n, N_FRAMES)
    series = np.nan_to_num(series)
    return SegmentFeatures(
        mfcc=mfcc.astype(np.float32, copy=False),
        delta=delta.astype(np.float32, copy=False),
        delta2=delta2.astype(np.float32, copy=False),
        series=series,
        static=static_features(series).astype(np.float32),
    )


def reference_segment_features(segment: np.ndarray) -> dict[str, np.ndarray]:
    """The straightforward computation of one segment with librosa's functions, each on ``y``.

    Used to verify :func:`extract_features` and as the baseline in ``benchmarks/features.py``; needs
    the ``reference`` extra (librosa).
    """
    from moodscope.extras import require

    librosa = require("librosa", "reference", "the librosa reference features")

    y = np.asarray(segment, dtype=np.float32)
    kw = {"n_fft": N_FFT, "hop_length": HOP_LENGTH}
    mfcc = librosa.feature.mfcc(y=y, sr=SAMPLE_RATE, n_mfcc=N_MFCC, n_mels=N_MELS, **kw)
    delta = librosa.feature.delta(mfcc, width=DELTA_WIDTH, order=1)
    delta2 = librosa.feature.delta(mfcc, width=DELTA_WIDTH, order=2)
    centroid = librosa.feature.spectral_centroid(y=y, sr=SAMPLE_RATE, **kw)[0]
    spread = librosa.feature.spectral_bandwidth(y=y, sr=SAMPLE_RATE, **kw)[0]
    rms = librosa.feature.rms(y=y, frame_length=N_FFT, hop_length=HOP_LENGTH)[0]
    zcr = librosa.feature.zero_crossing_rate(y, frame_length=N_FFT, hop_length=HOP_LENGTH)[0]
    padded = np.pad(np.abs(y), N_FFT // 2)
    envelope = np.array([padded[i * HOP_LENGTH : i * HOP_LENGTH + N_FFT].max() for i in range(len(rms))])
    series = np.stack([envelope, rms, zcr, centroid, spread])
    return {"mfcc": mfcc, "delta": delta, "delta2": delta2, "series": series, "static": static_features(series)}
