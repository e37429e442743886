"""Synthetic signals that are not music, at 22.05 kHz: silence, white, pink and brown noise, speech-like sound,
a sine tone and clicks (also used by ``benchmarks/ood.py``)."""

from __future__ import annotations

import numpy as np

from moodscope.constants import SAMPLE_RATE

VOWEL_FORMANTS = ((730, 1090, 2440), (270, 2290, 3010), (300, 870, 2240), (530, 1840, 2480), (570, 840, 2410))
"""F1-F3 (Hz) of five English vowels (Peterson and Barney): a, i, u, e, o."""


def silence(seconds: float = 15.0) -> np.ndarray:
    return np.zeros(int(SAMPLE_RATE * seconds), np.float32)


def white_noise(seconds: float = 15.0, *, level: float = 0.3, seed: int = 0) -> np.ndarray:
    return (level * np.random.default_rng(seed).standard_normal(int(SAMPLE_RATE * seconds))).astype(np.float32)


def pink_noise(seconds: float = 15.0, *, peak: float = 0.3, seed: int = 0) -> np.ndarray:
    """1/f noise: white noise whose spectrum is divided by sqrt(f), scaled to ``peak``."""
    n = int(SAMPLE_RATE * seconds)
    spec = np.fft.rfft(np.random.default_rng(seed).standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
    spec[1:] /= np.sqrt(f[1:])
    spec[0] = 0
    y = np.fft.irfft(spec, n)
    return (peak * y / np.abs(y).max()).astype(np.float32)


def brown_noise(seconds: float = 15.0, *, peak: float = 0.3, seed: int = 0) -> np.ndarray:
    """1/f^2 (Brownian) noise: white noise whose spectrum is divided by f, scaled to ``peak``."""
    n = int(SAMPLE_RATE * seconds)
    spec = np.fft.rfft(np.random.default_rng(seed).standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
    spec[1:] /= f[1:]
    spec[0] = 0
    y = np.fft.irfft(spec, n)
    return (peak * y / np.abs(y).max()).astype(np.float32)


def sine_tone(seconds: float = 15.0, *, frequency: float = 440.0, level: float = 0.3) -> np.ndarray:
    """A steady sine tone of peak ``level``."""
    t = np.arange(int(SAMPLE_RATE * seconds)) / SAMPLE_RATE
    return (level * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def clicks(seconds: float = 15.0, *, rate: float = 4.0, level: float = 0.5, seed: int = 0) -> np.ndarray:
    """Clicks (1-ms decaying noise bursts) at random times, ``rate`` a second on average (a Poisson process)."""
    rng = np.random.default_rng(seed)
    n = int(SAMPLE_RATE * seconds)
    out = np.zeros(n)
    width = int(SAMPLE_RATE * 0.001)
    burst = rng.standard_normal(width) * np.exp(-np.arange(width) / (width / 4))
    for start in rng.integers(0, n - width, rng.poisson(rate * seconds)):
        out[start : start + width] += burst
    return (level * out / max(np.abs(out).max(), 1e-9)).astype(np.float32)


def speech_like(seconds: float = 15.0, *, seed: int = 0) -> np.ndarray:
    """A source-filter imitation of speech: glottal pulse trains with a falling f0 per phrase (1.2-2.5 s),
    a vowel's three formants per syllable (0.22 s, Hann envelope, about 4.5 syllables a second), some
    fricative noise, and pauses of 0.2-0.6 s between phrases."""
    from scipy.signal import lfilter

    rng = np.random.default_rng(seed)
    n = int(SAMPLE_RATE * seconds)
    out = np.zeros(n)
    pos = 0
    syllable = int(SAMPLE_RATE * 0.22)
    while pos < n:
        end = min(n, pos + int(SAMPLE_RATE * rng.uniform(1.2, 2.5)))
        tt = np.arange(end - pos) / SAMPLE_RATE
        f0 = 140 * (1.3 - 0.4 * tt / max(tt[-1], 1e-3)) * (1 + 0.05 * np.sin(2 * np.pi * 3 * tt))
        pulses = np.diff(np.floor(np.cumsum(f0) / SAMPLE_RATE), prepend=0.0)  # one impulse per period
        glottal = lfilter([1.0], [1.0, -0.95], pulses)
        for s0 in range(0, end - pos, syllable):
            s1 = min(end - pos, s0 + syllable)
            x = glottal[s0:s1].copy()
            if rng.random() < 0.3:  # a fricative
                x = 0.2 * x + 0.3 * rng.standard_normal(len(x)) * np.hanning(len(x))
            for fc, bw in zip(VOWEL_FORMANTS[rng.integers(len(VOWEL_FORMANTS))], (80, 100, 150)):
                r = np.exp(-np.pi * bw / SAMPLE_RATE)
                x = lfilter([1 - r], [1, -2 * r * np.cos(2 * np.pi * fc / SAMPLE_RATE), r * r], x)
            out[pos + s0 : pos + s1] = x * np.hanning(s1 - s0)
        pos = end + int(SAMPLE_RATE * rng.uniform(0.2, 0.6))
    return (0.3 * out / np.abs(out).max()).astype(np.float32)
