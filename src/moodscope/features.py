"""The paper's hybrid spectral-temporal feature vector (Table 2), computed per 5-second segment.

All segments of a file are processed as one batch: one STFT serves the centroid, spread and MFCC,
and librosa's functions run over the leading batch axis (no per-segment Python loop).

Per segment (``N_FRAMES`` = 216 centred frames, ``N_FFT`` = 2048, ``HOP_LENGTH`` = 512):

- ``mfcc``, ``delta``, ``delta2`` [shape=(n, N_MFCC, N_FRAMES)]
- ``series`` [shape=(n, 5, N_FRAMES)]: amplitude envelope (frame max of ``|x|``), RMS energy,
  zero-crossing rate, spectral centroid (Hz), spectral spread (bandwidth, Hz), in ``SERIES_NAMES`` order
- ``static`` [shape=(n, 10)]: mean and standard deviation over frames of each series (``STATIC_NAMES``)
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

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
    import librosa

    pad = [(0, 0)] * (y.ndim - 1) + [(frame_length // 2, frame_length // 2)]
    frames = librosa.util.frame(np.pad(np.abs(y), pad), frame_length=frame_length, hop_length=hop_length)
    return frames.max(axis=-2)


def extract_features(segments: np.ndarray) -> SegmentFeatures:
    """Compute the Table 2 features of every segment at once.

    Parameters
    ----------
    segments : np.ndarray [shape=(n, SEGMENT_SAMPLES)]
        Mono audio at ``SAMPLE_RATE``, as produced by :func:`moodscope.audio.segment_audio`.
    """
    import librosa

    y = np.asarray(segments, dtype=np.float32)
    if y.ndim != 2 or y.shape[1] != SEGMENT_SAMPLES:
        raise ValueError(f"expected segments of shape (n, {SEGMENT_SAMPLES}), got {y.shape}")
    magnitude = np.abs(librosa.stft(y, n_fft=N_FFT, hop_length=HOP_LENGTH, center=True))  # (n, 1025, t)
    mel = librosa.feature.melspectrogram(S=magnitude**2, sr=SAMPLE_RATE, n_mels=N_MELS)
    mel_db = librosa.power_to_db(mel, top_db=None)
    # librosa's top_db clips relative to the maximum of the whole input: keep that per segment
    mel_db = np.maximum(mel_db, mel_db.max(axis=(-2, -1), keepdims=True) - TOP_DB)
    mfcc = librosa.feature.mfcc(S=mel_db, n_mfcc=N_MFCC)
    delta = librosa.feature.delta(mfcc, width=DELTA_WIDTH, order=1)
    delta2 = librosa.feature.delta(mfcc, width=DELTA_WIDTH, order=2)

    centroid = librosa.feature.spectral_centroid(S=magnitude, sr=SAMPLE_RATE, n_fft=N_FFT)
    spread = librosa.feature.spectral_bandwidth(S=magnitude, sr=SAMPLE_RATE, n_fft=N_FFT, centroid=centroid)
    rms = librosa.feature.rms(y=y, frame_length=N_FFT, hop_length=HOP_LENGTH)
    zcr = librosa.feature.zero_crossing_rate(y, frame_length=N_FFT, hop_length=HOP_LENGTH)
    envelope = amplitude_envelope(y)
    series = np.stack([envelope, rms[:, 0], zcr[:, 0], centroid[:, 0], spread[:, 0]], axis=1)
    series = np.nan_to_num(series.astype(np.float32))
    assert series.shape[-1] == N_FRAMES
    return SegmentFeatures(
        mfcc=mfcc.astype(np.float32),
        delta=delta.astype(np.float32),
        delta2=delta2.astype(np.float32),
        series=series,
        static=static_features(series).astype(np.float32),
    )


def reference_segment_features(segment: np.ndarray) -> dict[str, np.ndarray]:
    """The straightforward computation of one segment with librosa's functions, each on ``y``.

    Used to verify :func:`extract_features` and as the baseline in ``benchmarks/features.py``.
    """
    import librosa

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
