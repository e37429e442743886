"""Knowing when not to answer: is a segment music like the music the model was trained on?

Two checks flag a 5-s segment as *out of distribution* (OOD), and a track whose segments are mostly
flagged is *uncertain* (its summary's mood says so instead of a confident mood):

- a **signal check**, for every model, on the segment's frame levels (non-overlapping frames of
  ``HOP_LENGTH`` samples): its RMS level below :data:`SILENCE_DBFS` (digital silence, a fade, a
  near-silent recording), or *speech-like* intermittent sound, i.e. words and phrases separated by
  pauses: more than :data:`SPEECH_PAUSE_FRACTION` of the frames :data:`SPEECH_PAUSE_DB` dB below the
  segment's loud frames (95th percentile) and frame levels varying by more than
  :data:`SPEECH_LEVEL_CV` (coefficient of variation of the frame RMS). Music rarely pauses like
  this within 5 s (0.13 % of the 4Q training segments, no song); speech over music or noise is
  not caught by it;
- an **embedding score**, for models whose checkpoint carries OOD statistics: the Mahalanobis
  distance of the segment's descriptors (``accurate``: musicnn's penultimate layers and mid-end mean
  pools; ``fast``: the paper's static features and MFCC mean and std, the ``paper`` block of
  :mod:`moodscope.analysis.accurate`) from the training segments', with a shrunk covariance,
  divided by the threshold calibrated on the training set (a high percentile of the training
  segments' out-of-fold distances). A score above 1
  is farther from the training music than all but :data:`OOD_PERCENTILE` % of unseen training-like
  segments.

The statistics (:class:`OodStats`) are fitted by :func:`fit_ood` and stored in the model's checkpoint
(tensors ``ood.mean``, ``ood.scale``, ``ood.components``, ``ood.variances``; the rest in ``meta["ood"]``), so the
checkpoint still carries everything the model needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from moodscope.constants import (
    CLICK_BURST_SECONDS,
    HOP_LENGTH,
    NOISE_BAND_HZ,
    NOISE_FFT,
    NOISE_FLUCTUATION_DB,
    NOISE_RIPPLE_BINS,
    NOISE_RIPPLE_DB,
    OOD_COMPONENTS,
    OOD_FOLDS,
    OOD_PERCENTILE,
    OOD_SHRINKAGE,
    OOD_TRACK_FRACTION,
    SAMPLE_RATE,
    SILENCE_DBFS,
    SPEECH_FLOOR_DB,
    SPEECH_LEVEL_CV,
    SPEECH_PAUSE_DB,
    SPEECH_PAUSE_FRACTION,
    SPEECH_SPREAD_DB,
    SPEECH_VALLEY_DB,
    SPEECH_VALLEY_FRACTION,
    SPEECH_VALLEY_SECONDS,
)
from moodscope.errors import ModelError

OOD_ARRAYS = ("mean", "scale", "components", "variances")
STATE_PREFIX = "ood."
"""The prefix of the OOD statistics' tensors in a checkpoint's state dict (not weights of the network)."""
"""The arrays of :class:`OodStats` stored as tensors ``ood.<name>`` in a checkpoint."""

REASONS = ("", "silence", "speech-like", "unlike training music", "noise", "clicks")
"""Why a segment is flagged (:attr:`SegmentOod.reason`): not flagged, the signal checks (silence, speech-like),
the embedding score, and two later signal checks (steady noise; clicks, i.e. intermittent sound in bursts
too short for speech). Libraries store the index, so new reasons are appended, never inserted."""

SIGNAL_INPUTS = (
    "ood_level",
    "ood_pauses",
    "ood_level_cv",
    "ood_spread",
    "ood_valleys",
    "ood_burst",
    "ood_fluctuation",
    "ood_ripple",
)
"""The per-segment signal measurements :func:`signal_inputs` adds to a model's inputs."""


def signal_inputs(segments: np.ndarray) -> dict[str, np.ndarray]:
    """The signal checks' measurements of each segment, each [shape=(n,)]: ``ood_level`` (RMS level,
    dBFS, -inf for digital silence), ``ood_pauses`` (fraction of frames SPEECH_PAUSE_DB below the
    95th percentile frame level), ``ood_level_cv`` (coefficient of variation of the frame RMS),
    ``ood_spread`` (std of the frame levels in dB, floored SPEECH_FLOOR_DB below that percentile),
    ``ood_valleys`` (fraction of frames SPEECH_VALLEY_DB below the loudest frame within SPEECH_VALLEY_SECONDS
    on each side), ``ood_burst`` (mean length in seconds of the runs of frames that are not pauses), and the
    steady-noise measurements of :func:`noise_inputs` (``ood_fluctuation``, ``ood_ripple``).

    ``segments``: [shape=(n, samples)] audio in [-1, 1]; frames are non-overlapping, HOP_LENGTH long.
    """
    x = np.asarray(segments, dtype=np.float64)
    n_frames = max(1, x.shape[-1] // HOP_LENGTH)
    frames = x[..., : n_frames * HOP_LENGTH].reshape(len(x), n_frames, -1)
    rms = np.sqrt(np.mean(frames * frames, axis=-1))  # (n, frames)
    mean = rms.mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        level = 20.0 * np.log10(np.sqrt(np.mean(x * x, axis=-1)))
        db = 20.0 * np.log10(np.maximum(rms, 1e-10))
        cv = np.where(mean > 0, rms.std(axis=1) / mean, 0.0)
    loud = np.percentile(db, 95, axis=1, keepdims=True)
    sounding = db >= loud - SPEECH_PAUSE_DB
    runs = (sounding & ~np.pad(sounding, ((0, 0), (1, 0)))[:, :-1]).sum(axis=1)  # rising edges
    burst = sounding.sum(axis=1) / np.maximum(runs, 1) * HOP_LENGTH / SAMPLE_RATE
    floored = np.maximum(db, loud - SPEECH_FLOOR_DB)
    reach = round(SPEECH_VALLEY_SECONDS * SAMPLE_RATE / HOP_LENGTH)
    window = np.lib.stride_tricks.sliding_window_view(
        np.pad(floored, ((0, 0), (reach, reach)), mode="edge"), reach + 1, axis=1
    )
    around = np.minimum(window[:, :n_frames].max(axis=2), window[:, reach:].max(axis=2))  # loudest before, after
    signal = {
        "ood_level": level,
        "ood_pauses": 1.0 - sounding.mean(axis=1),
        "ood_level_cv": cv,
        "ood_spread": floored.std(axis=1),
        "ood_valleys": (around - floored >= SPEECH_VALLEY_DB).mean(axis=1),
        "ood_burst": burst,
    }
    return signal | noise_inputs(x)


def noise_inputs(segments: np.ndarray) -> dict[str, np.ndarray]:
    """The steady-noise check's measurements of each segment, each [shape=(n,)], on the power spectrum of
    non-overlapping Hann-windowed frames of NOISE_FFT samples, bins within NOISE_BAND_HZ:

    - ``ood_fluctuation``: each bin divided by its mean over the segment (whitened: a noise's colour does
      not matter), the std over frames of the band's mean whitened power, in dB. Stationary noise
      fluctuates only by chance (about 0.4 dB at 22.05 kHz); music changes from frame to frame.
    - ``ood_ripple``: the std over bins of the mean spectrum's deviation from its running median over
      NOISE_RIPPLE_BINS bins, in dB. Noise has a smooth spectrum; pitched sound has peaks.

    ``segments``: [shape=(n, samples)] audio in [-1, 1] at SAMPLE_RATE.
    """
    x = np.asarray(segments, dtype=np.float64)
    n_frames = max(1, x.shape[-1] // NOISE_FFT)
    frames = x[:, : n_frames * NOISE_FFT].reshape(len(x), n_frames, NOISE_FFT) * np.hanning(NOISE_FFT)
    low, high = np.searchsorted(np.fft.rfftfreq(NOISE_FFT, 1 / SAMPLE_RATE), NOISE_BAND_HZ)
    # the band and the running median's reach above it (below it, from bin 0)
    spectrum = np.fft.rfft(frames, axis=-1)[..., : high + NOISE_RIPPLE_BINS // 2]  # (n, frames, bins)
    power = spectrum.real**2 + spectrum.imag**2
    power += 1e-12 * power.mean(axis=(1, 2), keepdims=True) + 1e-30  # a floor for empty bins (band-limited audio)
    average = power.mean(axis=1)  # (n, bins)
    band = average[:, low:high]
    fluctuation = (10.0 * np.log10((power[..., low:high] / band[:, None, :]).mean(axis=2))).std(axis=1)
    # the running median sees the bins beyond the band too, so that a tone at its edge stands out
    padded = np.pad(average, ((0, 0), (NOISE_RIPPLE_BINS // 2, NOISE_RIPPLE_BINS // 2)), mode="edge")
    smooth = np.median(np.lib.stride_tricks.sliding_window_view(padded, NOISE_RIPPLE_BINS, axis=1), axis=2)
    ripple = (10.0 * np.log10(band / smooth[:, low:high])).std(axis=1)
    return {"ood_fluctuation": fluctuation, "ood_ripple": ripple}


@dataclass
class OodStats:
    """What the embedding score needs: the training descriptors' standardisation, the principal axes of
    their shrunk covariance, and the calibrated threshold (a distance; scores are distances over it).

    The shrunk covariance is kept as its :data:`~moodscope.constants.OOD_COMPONENTS` largest
    eigenpairs plus one variance for the remaining directions (their mean eigenvalue), so a checkpoint
    stores k x d numbers instead of d x d."""

    blocks: tuple[str, ...]  # descriptor blocks concatenated, in order
    mean: np.ndarray  # (d,)
    scale: np.ndarray  # (d,)
    components: np.ndarray  # (k, d): orthonormal principal axes of the standardised descriptors
    variances: np.ndarray  # (k,): shrunk variance along each axis
    residual: float  # shrunk variance of every other direction
    threshold: float = 1.0  # the OOD_PERCENTILE-th percentile of the calibration distances
    percentile: float = OOD_PERCENTILE
    shrinkage: float = OOD_SHRINKAGE
    calibration: str = ""  # how the threshold was obtained (in-sample or out-of-fold, how many segments)

    def distances(self, x: np.ndarray) -> np.ndarray:
        """Mahalanobis distance per dimension (RMS over the d standardised dimensions) [shape=(n,)] of
        descriptors ``x`` [shape=(n, d)]."""
        z = (np.asarray(x, dtype=np.float64) - self.mean) / self.scale
        p = z @ self.components.T
        inside = (p * p).sum(axis=1)
        d2 = (p * p / self.variances).sum(axis=1) + np.maximum((z * z).sum(axis=1) - inside, 0.0) / self.residual
        return np.sqrt(d2 / z.shape[1])

    def scores(self, blocks: dict[str, np.ndarray]) -> np.ndarray:
        """OOD score of each segment [shape=(n,)]: its distance over the threshold (> 1 is flagged)."""
        x = np.concatenate([blocks[b] for b in self.blocks], axis=1)
        if x.shape[1] != len(self.mean):
            raise ModelError(f"OOD statistics expect {len(self.mean)} descriptor dimensions, got {x.shape[1]}")
        return self.distances(x) / self.threshold

    def state_dict(self, prefix: str = STATE_PREFIX) -> dict:
        """The arrays as float32 tensors ``<prefix><name>`` (their checkpoint form)."""
        import torch

        return {
            f"{prefix}{k}": torch.from_numpy(np.ascontiguousarray(getattr(self, k), dtype=np.float32))
            for k in OOD_ARRAYS
        }

    def meta(self) -> dict:
        """The rest, for ``meta["ood"]`` of a checkpoint (plain JSON types)."""
        return {
            "blocks": list(self.blocks),
            "residual": float(self.residual),
            "threshold": float(self.threshold),
            "percentile": float(self.percentile),
            "shrinkage": float(self.shrinkage),
            "calibration": self.calibration,
            "score": "Mahalanobis distance per dimension (shrunk covariance) / threshold; > 1 is out of distribution",
            "silence_dbfs": SILENCE_DBFS,
            "track_fraction": OOD_TRACK_FRACTION,
        }

    @classmethod
    def from_checkpoint(cls, payload: dict, prefix: str = STATE_PREFIX) -> OodStats | None:
        """The statistics of a checkpoint read by :func:`moodscope.models.checkpoint.read_checkpoint`,
        or None when it has none (a checkpoint written before they existed, or a model without them)."""
        meta, state = payload["meta"].get("ood"), payload["state_dict"]
        if not meta or any(f"{prefix}{k}" not in state for k in OOD_ARRAYS):
            return None
        arrays = {k: np.asarray(state[f"{prefix}{k}"], dtype=np.float64) for k in OOD_ARRAYS}  # numpy or tensors
        return cls(
            blocks=tuple(meta["blocks"]),
            residual=float(meta["residual"]),
            threshold=float(meta["threshold"]),
            percentile=float(meta.get("percentile", OOD_PERCENTILE)),
            shrinkage=float(meta.get("shrinkage", OOD_SHRINKAGE)),
            calibration=str(meta.get("calibration", "")),
            **arrays,
        )


def _fit_distance(names: tuple[str, ...], x: np.ndarray, shrinkage: float, components: int) -> OodStats:
    """Standardisation and shrunk covariance of descriptors [shape=(n, d)]: the covariance of the
    standardised descriptors is pulled towards a multiple of the identity (fixed ``shrinkage``, as
    Ledoit and Wolf), so that a few thousand segments give a well-conditioned inverse; it is kept
    as its ``components`` largest eigenpairs and the mean of the other eigenvalues."""
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    z = (x - mean) / scale
    cov = np.cov(z, rowvar=False)
    cov = (1.0 - shrinkage) * cov + shrinkage * np.eye(len(cov)) * np.trace(cov) / len(cov)
    values, vectors = np.linalg.eigh(cov)  # ascending
    k = min(components, len(values))
    rest = values[: len(values) - k]
    residual = float(rest.mean()) if len(rest) else float(values[0])
    return OodStats(names, mean, scale, vectors[:, ::-1][:, :k].T.copy(), values[::-1][:k].copy(), residual)


def fit_ood(
    embeddings: np.ndarray | dict[str, np.ndarray],
    *,
    groups: np.ndarray | None = None,
    blocks: tuple[str, ...] | None = None,
    percentile: float = OOD_PERCENTILE,
    shrinkage: float = OOD_SHRINKAGE,
    folds: int = OOD_FOLDS,
    components: int = OOD_COMPONENTS,
    seed: int = 0,
) -> OodStats:
    """Fit the OOD statistics on training segments' descriptors.

    ``embeddings``: [shape=(n, d)] or a dict of blocks {name: [shape=(n, d_i)]} concatenated in the order
    of ``blocks`` (default: the dict's order; an array is the single block ``"embedding"``).
    ``groups`` [shape=(n,)] (the artist, or song, of each segment): the threshold is the ``percentile``
    of *out-of-fold* distances (``folds`` group-disjoint folds), which is how far new music by other
    artists lies; in-sample distances are smaller, so without groups the threshold is optimistic.
    The statistics themselves are always fitted on all the segments.
    """
    from moodscope.training.protocols import stratified_group_folds

    if isinstance(embeddings, dict):
        names = tuple(blocks or embeddings)
        x = np.concatenate([np.asarray(embeddings[b], dtype=np.float64) for b in names], axis=1)
    else:
        names = tuple(blocks or ("embedding",))
        x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2 or len(x) < 3:
        raise ModelError(f"fit_ood needs descriptors of shape (n, d) with n > 2, got {x.shape}")
    stats = _fit_distance(names, x, shrinkage, components)
    stats.percentile = percentile
    if groups is not None and len(np.unique(groups)) >= folds:
        fold_of = stratified_group_folds(np.zeros(len(x), int), np.asarray(groups), folds, np.random.default_rng(seed))
        distances = np.zeros(len(x))
        for fold in range(folds):
            test = fold_of == fold
            distances[test] = _fit_distance(names, x[~test], shrinkage, components).distances(x[test])
        stats.calibration = f"out-of-fold ({folds} group-disjoint folds) over {len(x)} segments"
    else:
        distances = stats.distances(x)
        stats.calibration = f"in-sample over {len(x)} segments"
    stats.threshold = float(np.percentile(distances, percentile))
    return stats


@dataclass
class SegmentOod:
    """The OOD verdict on each segment of a track (or batch)."""

    score: np.ndarray  # (n,) embedding score (> 1 flagged); NaN when the model has no embedding score
    reason_code: np.ndarray  # (n,) int index into REASONS; 0 = not flagged

    @property
    def flag(self) -> np.ndarray:
        """Whether each segment is out of distribution [shape=(n,), bool]."""
        return self.reason_code > 0

    @property
    def reason(self) -> list[str]:
        """Why each segment is flagged (one of :data:`REASONS`, ``""`` when it is not)."""
        return [REASONS[int(c)] for c in self.reason_code]

    def __len__(self) -> int:
        return len(self.reason_code)

    def select(self, rows: slice | np.ndarray) -> SegmentOod:
        return SegmentOod(self.score[rows], self.reason_code[rows])


def segment_ood(inputs: dict[str, np.ndarray], score: np.ndarray | None = None) -> SegmentOod:
    """The verdict on each segment from its :func:`signal_inputs` and embedding score [shape=(n,)]
    (:meth:`OodStats.scores`; None for a model without one). The first check that fires names the
    reason: silence, steady noise, intermittent sound (clicks when its bursts are shorter than
    CLICK_BURST_SECONDS, else speech-like), then the embedding score."""
    level = np.asarray(inputs["ood_level"], dtype=np.float64)
    score = np.full(len(level), np.nan) if score is None else np.asarray(score, dtype=np.float64)
    silence = level < SILENCE_DBFS
    noise = (np.asarray(inputs["ood_fluctuation"]) < NOISE_FLUCTUATION_DB) & (
        np.asarray(inputs["ood_ripple"]) < NOISE_RIPPLE_DB
    )
    intermittent = (np.asarray(inputs["ood_pauses"]) > SPEECH_PAUSE_FRACTION) & (
        np.asarray(inputs["ood_level_cv"]) > SPEECH_LEVEL_CV
    )
    intermittent |= (np.asarray(inputs["ood_spread"]) > SPEECH_SPREAD_DB) & (
        np.asarray(inputs["ood_valleys"]) > SPEECH_VALLEY_FRACTION
    )
    clicks = intermittent & (np.asarray(inputs["ood_burst"]) < CLICK_BURST_SECONDS)
    unlike = np.nan_to_num(score, nan=0.0) > 1.0
    conditions = [silence, noise, clicks, intermittent, unlike]
    codes = [REASONS.index(r) for r in ("silence", "noise", "clicks", "speech-like", "unlike training music")]
    return SegmentOod(score=score, reason_code=np.select(conditions, codes, default=0).astype(np.int8))


def concat_ood(parts: list[SegmentOod]) -> SegmentOod:
    """The verdicts of consecutive batches as one."""
    return SegmentOod(np.concatenate([p.score for p in parts]), np.concatenate([p.reason_code for p in parts]))


def track_uncertain(flags: np.ndarray, fraction: float = OOD_TRACK_FRACTION) -> bool:
    """Whether a track is uncertain: more than ``fraction`` of its segments [shape=(n,)] are flagged."""
    flags = np.asarray(flags, dtype=bool)
    return bool(len(flags) and flags.mean() > fraction)


def with_ood(path: str | Path, ood: OodStats, out: str | Path | None = None) -> Path:
    """Rewrite the checkpoint at ``path`` (to ``out``, by default in place) with the ``ood`` statistics
    replacing any it had; weights and metadata otherwise unchanged (through the one writer,
    :func:`moodscope.models.checkpoint.write_checkpoint`, so ``weights_sha256`` is recomputed)."""
    from moodscope.models.checkpoint import read_checkpoint, write_checkpoint

    payload = read_checkpoint(path)
    state = {k: v for k, v in payload["state_dict"].items() if not k.startswith(STATE_PREFIX)} | ood.state_dict()
    meta = {k: v for k, v in payload["meta"].items() if k != "weights_sha256"} | {"ood": ood.meta()}
    return write_checkpoint(out or path, state, meta)
