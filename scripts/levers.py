"""Nested artist-grouped cross-validation of levers for the ``accurate`` model (docs/models.md, "Levers tried").

Every lever is a set of candidates (a head and its settings) scored by
:func:`moodscope.training.nested.nested_cv`: 3 outer seeds x 5 artist-grouped folds of the 540 4Q songs,
the candidate and the calibration temperature chosen in 5 inner artist-grouped folds of each outer
training part only. The reference, ``shipped``, is the shipped recipe itself
(:func:`moodscope.analysis.accurate.candidates`), measured in the same run on the same descriptors.

Descriptors (musicnn MSD + MTT penultimate layers and taggrams of every 5-s segment, start + end
patches, computed by moodscope's own code in the precision ``analyze`` uses) are cached per
*augmentation* of the audio in ``CACHE/levers-4q-<aug>.npz``:

- ``none``: the clips as they are (what the shipped model is trained on);
- ``pitch+1``, ``pitch-1``, ``pitch+2``, ``pitch-2``: pitch shifted by that many semitones
  (``librosa.effects.pitch_shift``, same length);
- ``gain+6``, ``gain-6``: the waveform scaled by +-6 dB (no clipping: float samples);
- ``mask``: SpecAugment-style time masking of musicnn's log-mel patches (2 masks of 0-20 of the 187
  frames per patch, set to the patch's mean, seeded per song).

Augmented descriptors are used for the *training* songs of each fold only (each augmented song is one
more training example with its song's label); test songs are never augmented, except by the ``*-tta``
levers (test-time averaging: a test song's probabilities averaged over its original and augmented
versions, reported separately: it multiplies the analysis cost).

The tonal and rhythm features (:func:`tonal_features`: key-profile mode and clarity, key-aligned chroma,
tonnetz, harmonic change, tempo, onset rate, pulse clarity, spectral-peak roughness; librosa) of the
original audio are cached apart, in ``TONAL/levers-4q-tonal.npz`` (``--tonal``, default ``--cache``),
and used by the levers of :data:`TONAL_LEVERS`.

The levers of :func:`variant_candidates` (arousal-conditional valence heads, soft targets and PLS
projections from the songs' AllMusic mood tags, power normalisation) read the mood tags of the *training*
songs of each fold only (``Songs.moods``, from the 4Q metadata).

Usage (from the repository root; ROOT = ../shared/data/4q/MER_audio_taffc_dataset)::

    python scripts/levers.py descriptors --root ROOT --cache DIR none gain+6 ...   # heavy: musicnn
    python scripts/levers.py tonal --root ROOT --cache TONAL --workers 2            # librosa, ~1.3 s/clip
    python scripts/levers.py run --root ROOT --cache DIR --tonal TONAL --out DIR/results shipped tonal ...
    python scripts/levers.py run --root ROOT --cache DIR --out DIR/results shipped svm-rbf ...
    python scripts/levers.py collect DIR/results --to docs/models/levers.json
    python scripts/levers.py list

``run`` writes ``<out>/<lever>.json`` (the nested summary) and prints one table row per lever.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from moodscope.analysis.accurate import (
    HIGH_AROUSAL,
    POSITIVE_VALENCE,
    AccurateConfig,
    SegmentBlocks,
    candidates,
    fit_head,
    song_means,
    song_probabilities,
)
from moodscope.training.nested import nested_cv, summary_line

PEN = ("msd_penultimate", "mtt_penultimate")
TAGS = ("msd_taggram", "mtt_taggram")
DESCRIPTOR_BLOCKS = PEN + TAGS
TONAL = "tonal"  # the tonal and rhythm features (:func:`tonal_features`), cached apart (``levers-4q-tonal.npz``)
TONALITY = "tonality"  # its key, chroma and harmony columns only (no tempo, onsets, roughness)
TONAL_SCALES = (0.5, 1.0, 2.0, 4.0)  # factors on the standardised tonal block: its own C = C·s²
TONAL_CS = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0)  # 42 features need less regularisation than 400
AUGMENTATIONS = ("none", "pitch+1", "pitch-1", "pitch+2", "pitch-2", "gain+6", "gain-6", "mask")
CS = AccurateConfig().Cs  # the shipped grid: 0.003 ... 0.3
MASKS, MASK_FRAMES = 2, 20


# --- descriptors -------------------------------------------------------------------------------


def augmented_blocks(path: Path, aug: str, seed: int) -> dict[str, np.ndarray]:
    """The :data:`DESCRIPTOR_BLOCKS` [shape=(n_segments, d)] of the audio file ``path`` under ``aug``."""
    from moodscope.analysis.accurate import musicnn_blocks, musicnn_patch_mels
    from moodscope.audio import load_audio, segment_audio
    from moodscope.constants import SAMPLE_RATE

    y = load_audio(path)
    if aug.startswith("pitch"):
        import librosa

        y = librosa.effects.pitch_shift(y, sr=SAMPLE_RATE, n_steps=float(aug[5:])).astype(np.float32)
    elif aug.startswith("gain"):
        y = y * np.float32(10 ** (float(aug[4:]) / 20))
    segments = segment_audio(y, source=str(path))
    mels = musicnn_patch_mels(segments)  # (n * 2, 187, 96)
    if aug == "mask":
        rng = np.random.default_rng(seed)
        for mel in mels:
            fill = mel.mean()
            for _ in range(MASKS):
                width = rng.integers(0, MASK_FRAMES + 1)
                start = rng.integers(0, len(mel) - width + 1)
                mel[start : start + width] = fill
    out = {}
    for net in ("msd", "mtt"):
        out.update(musicnn_blocks(mels, net, len(segments)))
    return {b: out[b] for b in DESCRIPTOR_BLOCKS}


def compute_descriptors(items: list[tuple[str, Path]], cache: Path, aug: str, progress=None) -> Path:
    """Write ``cache/levers-4q-<aug>.npz``: the blocks of every segment of ``items`` and their track ids."""
    import torch

    from moodscope.features.cache import atomic_write_npz

    torch.set_num_threads(1)
    out = cache / f"levers-4q-{aug}.npz"
    parts: dict[str, list[np.ndarray]] = {b: [] for b in DESCRIPTOR_BLOCKS}
    ids: list[str] = []
    for i, (track_id, path) in enumerate(items):
        blocks = augmented_blocks(path, aug, seed=i)
        for b, v in blocks.items():
            parts[b].append(v)
        ids += [track_id] * len(blocks[PEN[0]])
        if progress:
            progress(i + 1, len(items))
    atomic_write_npz(out, {**{b: np.concatenate(v) for b, v in parts.items()}, "track_ids": np.array(ids)})
    return out


# --- tonal and rhythm features (valence cues of the classic MER literature) ----------------------

KEY_PROFILES = np.array(
    [
        [6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88],  # major (Krumhansl-Kessler)
        [6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17],  # minor
    ]
)
TONAL_NAMES = (
    *("best_major", "best_minor", "mode", "key_clarity", "key_margin", "frame_mode_mean", "frame_major_share"),
    *(f"key_chroma_{i}" for i in range(12)),
    *("chroma_entropy", "chroma_flux"),
    *(f"tonnetz_{i}_{stat}" for stat in ("mean", "std") for i in range(6)),
    *("harmonic_change_mean", "harmonic_change_std"),
    *("log2_tempo", "onset_rate", "onset_strength_mean", "onset_strength_std", "pulse_clarity"),
    *("roughness_mean", "roughness_std"),
)
"""The :func:`tonal_features` of a segment, in order."""
N_PEAKS = 12  # spectral peaks per frame for the roughness proxy
PEAK_RANGE_HZ = (50.0, 5000.0)
FRAME_KEY_WINDOW = 43  # chroma frames (about 1 s) smoothed for the per-frame key correlations


def _key_correlations(chroma: np.ndarray) -> np.ndarray:
    """Pearson correlations of chroma vectors [shape=(12, t)] with the 24 rotated key profiles
    [shape=(2, 12, t)]: [0, k] major with tonic k, [1, k] minor with tonic k."""
    profiles = np.stack([[np.roll(p, k) for k in range(12)] for p in KEY_PROFILES])  # (2, 12 keys, 12 pcs)
    profiles = profiles - profiles.mean(axis=2, keepdims=True)
    profiles /= np.linalg.norm(profiles, axis=2, keepdims=True)
    c = chroma - chroma.mean(axis=0, keepdims=True)
    c = c / (np.linalg.norm(c, axis=0, keepdims=True) + 1e-9)
    return np.einsum("mkp,pt->mkt", profiles, c)


def _roughness(magnitude: np.ndarray, freqs: np.ndarray) -> np.ndarray:
    """Sethares' (Plomp-Levelt) roughness of the :data:`N_PEAKS` strongest spectral peaks of every frame of
    ``magnitude`` [shape=(n_freqs, t)], normalised by the frame's peak energy [shape=(t,)]."""
    band = (freqs >= PEAK_RANGE_HZ[0]) & (freqs <= PEAK_RANGE_HZ[1])
    m, f = magnitude[band], freqs[band]
    is_peak = np.zeros_like(m, dtype=bool)
    is_peak[1:-1] = (m[1:-1] > m[:-2]) & (m[1:-1] >= m[2:])
    amp = np.where(is_peak, m, 0.0)
    top = np.argsort(amp, axis=0)[-N_PEAKS:]  # (N_PEAKS, t)
    a = np.take_along_axis(amp, top, axis=0)
    fr = f[top]
    lo, hi = np.minimum(fr[:, None], fr[None]), np.maximum(fr[:, None], fr[None])
    s = 0.24 / (0.021 * lo + 19.0)
    d = np.exp(-3.5 * s * (hi - lo)) - np.exp(-5.75 * s * (hi - lo))
    pair = a[:, None] * a[None] * d
    return np.triu(pair.transpose(2, 0, 1), k=1).sum(axis=(1, 2)) / ((a**2).sum(axis=0) + 1e-12)


def tonal_features(segments: np.ndarray, *, sr: int | None = None) -> np.ndarray:
    """Tonality, harmony and rhythm descriptors of each segment [shape=(n, samples)] -> [shape=(n, len(TONAL_NAMES))].

    Per segment: the Krumhansl-Schmuckler correlations of the mean CQT chroma with the 24 key profiles
    (best major, best minor, ``mode`` = their difference: > 0 major, key clarity = the best, margin over
    the second best), the same per frame (mean mode, share of major frames), the mean chroma rotated to the
    best key's tonic (12, summing to 1), chroma entropy and flux, the tonal centroid (tonnetz: mean and
    std of its 6 dimensions), harmonic change (distance between tonnetz frames 2 apart: mean, std), tempo
    (log2 BPM), onset rate (per second), onset strength (mean, std), pulse clarity (the highest normalised
    autocorrelation of the onset envelope at 40-240 BPM lags) and a dissonance proxy (spectral-peak
    roughness: mean, std over frames)."""
    import librosa
    from scipy.ndimage import uniform_filter1d

    from moodscope.constants import HOP_LENGTH, SAMPLE_RATE

    sr = sr or SAMPLE_RATE
    out = []
    for y in np.asarray(segments, dtype=np.float32):
        chroma = librosa.feature.chroma_cqt(y=y, sr=sr, hop_length=HOP_LENGTH)  # (12, t), max 1 per frame
        mean_chroma = chroma.mean(axis=1)
        r = _key_correlations(mean_chroma[:, None])[:, :, 0]  # (2, 12)
        ranked = np.sort(r.ravel())
        _, tonic = np.unravel_index(r.argmax(), r.shape)
        key_chroma = np.roll(mean_chroma, -tonic) / (mean_chroma.sum() + 1e-9)
        rf = _key_correlations(uniform_filter1d(chroma, size=FRAME_KEY_WINDOW, axis=1))  # (2, 12, t), ~1-s windows
        frame_mode = rf[0].max(axis=0) - rf[1].max(axis=0)
        p = chroma / (chroma.sum(axis=0, keepdims=True) + 1e-9)
        entropy = -(p * np.log(p + 1e-12)).sum(axis=0).mean() / np.log(12)
        flux = np.linalg.norm(np.diff(p, axis=1), axis=0).mean()
        tonnetz = librosa.feature.tonnetz(chroma=chroma, sr=sr)  # (6, t)
        change = np.linalg.norm(tonnetz[:, 2:] - tonnetz[:, :-2], axis=0)
        onset = librosa.onset.onset_strength(y=y, sr=sr, hop_length=HOP_LENGTH)
        tempo = float(librosa.feature.tempo(onset_envelope=onset, sr=sr, hop_length=HOP_LENGTH)[0])
        n_onsets = len(librosa.onset.onset_detect(onset_envelope=onset, sr=sr, hop_length=HOP_LENGTH))
        centred = onset - onset.mean()
        ac = np.correlate(centred, centred, mode="full")[len(centred) - 1 :]
        frames_per_min = 60 * sr / HOP_LENGTH
        lags = np.arange(int(frames_per_min / 240), min(int(frames_per_min / 40) + 1, len(ac)))
        pulse = float(ac[lags].max() / ac[0]) if ac[0] > 0 and len(lags) else 0.0
        magnitude = np.abs(librosa.stft(y, n_fft=4096, hop_length=4 * HOP_LENGTH))
        rough = _roughness(magnitude, librosa.fft_frequencies(sr=sr, n_fft=4096))
        out.append(
            np.concatenate(
                [
                    [r[0].max(), r[1].max(), r[0].max() - r[1].max(), ranked[-1], ranked[-1] - ranked[-2]],
                    [frame_mode.mean(), (frame_mode > 0).mean()],
                    key_chroma,
                    [entropy, flux],
                    tonnetz.mean(axis=1),
                    tonnetz.std(axis=1),
                    [change.mean(), change.std()],
                    [np.log2(max(tempo, 1.0)), n_onsets * sr / len(y), onset.mean(), onset.std(), pulse],
                    [rough.mean(), rough.std()],
                ]
            )
        )
    return np.nan_to_num(np.array(out, dtype=np.float64).reshape(len(out), len(TONAL_NAMES)))


def _clip_tonal(item: tuple[str, Path]) -> np.ndarray:
    from moodscope.audio import load_audio, segment_audio

    return tonal_features(segment_audio(load_audio(item[1]), source=str(item[1])))


def compute_tonal(items: list[tuple[str, Path]], cache: Path, workers: int = 1) -> Path:
    """Write ``cache/levers-4q-tonal.npz``: the :func:`tonal_features` (``tonal``) of every segment of
    ``items`` and their track ids, in the order of the musicnn descriptor caches."""
    from concurrent.futures import ProcessPoolExecutor

    from moodscope.features.cache import atomic_write_npz

    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            feats = list(pool.map(_clip_tonal, items, chunksize=4))
    else:
        feats = [_clip_tonal(item) for item in items]
    ids = np.concatenate([[t] * len(f) for (t, _), f in zip(items, feats)])
    out = cache / "levers-4q-tonal.npz"
    atomic_write_npz(out, {"tonal": np.concatenate(feats), "track_ids": ids})
    return out


# --- data --------------------------------------------------------------------------------------


@dataclass
class Songs:
    """The 4Q songs (sorted ids), labels 0..3, artists, PQuad, and the descriptors of their segments."""

    songs: np.ndarray
    y: np.ndarray
    groups: np.ndarray
    pquad: np.ndarray
    sb: SegmentBlocks  # original audio
    augmented: dict[str, SegmentBlocks]  # aug -> segments, rows aligned with sb
    moods: tuple[tuple[str, ...], ...] = ()  # each song's AllMusic mood tags (4Q metadata), for the tag levers

    def __post_init__(self):
        position = {s: i for i, s in enumerate(self.songs)}
        self.song_of_row = np.array([position[t] for t in self.sb.track_ids])
        self.means = song_means(self.sb, self.songs)
        self.aug_means = {a: song_means(s, self.songs) for a, s in self.augmented.items()}

    def rows(self, songs: np.ndarray) -> np.ndarray:
        return np.isin(self.song_of_row, songs)


def load_songs(root: Path, cache: Path, augs: tuple[str, ...] = (), tonal: Path | None = None) -> Songs:
    """The 4Q songs and their cached descriptors; with ``tonal`` (a folder), the :data:`TONAL` block of
    ``tonal/levers-4q-tonal.npz`` too (original audio only)."""
    from moodscope.analysis.shipped import _songs_labels_groups
    from moodscope.datasets import load_dataset

    dataset = load_dataset("4q", root)

    def read(aug: str) -> SegmentBlocks:
        with np.load(cache / f"levers-4q-{aug}.npz") as z:
            return SegmentBlocks({b: z[b].astype(np.float64) for b in DESCRIPTOR_BLOCKS}, z["track_ids"])

    sb = read("none")
    if tonal is not None:
        with np.load(tonal / "levers-4q-tonal.npz") as z:
            if not np.array_equal(z["track_ids"], sb.track_ids):
                raise SystemExit(f"{tonal}/levers-4q-tonal.npz: segments differ from levers-4q-none.npz; recompute it")
            sb.blocks[TONAL] = z[TONAL].astype(np.float64)
            sb.blocks[TONALITY] = sb.blocks[TONAL][:, : TONAL_NAMES.index("log2_tempo")]
    songs, y, groups = _songs_labels_groups(dataset, sb.track_ids)
    tracks = dataset.tracks()
    pquad = np.array([tracks[s].metadata.get("pquad") or 1.0 for s in songs], float)
    moods = tuple(tuple(m.lower() for m in tracks[s].metadata.get("moods") or ()) for s in songs)
    augmented = {a: read(a) for a in augs}
    for a, s in augmented.items():
        if not np.array_equal(s.track_ids, sb.track_ids):
            raise SystemExit(f"levers-4q-{a}.npz: segments differ from levers-4q-none.npz; recompute it")
    return Songs(songs, y, groups, pquad, sb, augmented, moods)


# --- heads -------------------------------------------------------------------------------------


def _standardise(xtr: np.ndarray, *xs: np.ndarray) -> list[np.ndarray]:
    mean, scale = xtr.mean(axis=0), xtr.std(axis=0) + 1e-6
    return [(x - mean) / scale for x in (xtr, *xs)]


def _tempered(logp: np.ndarray) -> Callable[[float], np.ndarray]:
    """proba(T): softmax of log-probabilities (or scores) divided by T."""

    def proba(temperature: float) -> np.ndarray:
        z = logp / temperature
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    return proba


def _song_mean_proba(p_rows: np.ndarray, song_of_row: np.ndarray, test: np.ndarray) -> np.ndarray:
    """The mean of the segments' probabilities per test song [shape=(len(test), 4)] (the project's rule)."""
    index = np.searchsorted(test, song_of_row)
    out = np.zeros((len(test), p_rows.shape[1]))
    np.add.at(out, index, p_rows)
    return out / np.bincount(index, minlength=len(test))[:, None]


def product_candidates(
    d: Songs,
    blocks=PEN,
    *,
    weights: np.ndarray | None = None,
    augs=(),
    tta=False,
    cs=CS,
    valence_blocks=(),
    scales=(1.0,),
    scaled=(TONAL,),
):
    """va-product logistic heads fitted on song-mean descriptors, one candidate per C, applied to the test
    songs' segments (a song: the mean of its segments' probabilities); training songs plus their augmented
    versions ``augs``; optional sample ``weights`` per song; ``tta``: test songs averaged over their
    original and augmented versions. ``valence_blocks`` are added to the valence head only. After
    standardisation the columns of the ``scaled`` blocks are multiplied by a factor s, one candidate per
    (C, s) in ``cs`` x ``scales``: their L2 penalty is that of the other blocks at C·s²."""
    from sklearn.linear_model import LogisticRegression

    everything = tuple(blocks) + tuple(b for b in valence_blocks if b not in blocks)
    widths = [d.means[b].shape[1] for b in everything]
    column_block = np.repeat(np.arange(len(everything)), widths)
    in_scaled = np.isin(column_block, [i for i, b in enumerate(everything) if b in scaled])
    head_columns = (np.arange(len(column_block)), np.flatnonzero(np.isin(column_block, range(len(blocks)))))
    x = np.concatenate([d.means[b] for b in everything], axis=1)
    xa = {a: np.concatenate([d.aug_means[a][b] for b in everything], axis=1) for a in augs}
    targets = (POSITIVE_VALENCE[d.y].astype(int), HIGH_AROUSAL[d.y].astype(int))

    def segments(sb: SegmentBlocks, rows: np.ndarray) -> np.ndarray:
        return np.concatenate([sb.blocks[b][rows] for b in everything], axis=1)

    def candidate(C: float, scale: float):
        def fit_predict(train, test):
            xtr = np.concatenate([x[train]] + [xa[a][train] for a in augs])
            reps = 1 + len(augs)
            w = None if weights is None else np.tile(weights[train], reps)
            rows = d.rows(test)  # a test song is the mean of its segments' probabilities, as analyze computes it
            versions = [segments(d.sb, rows)] + ([segments(d.augmented[a], rows) for a in augs] if tta else [])
            factor = np.where(in_scaled, scale, 1.0)
            xtr, *xte = (v * factor for v in _standardise(xtr, *versions))
            logits = []
            for t, cols in zip(targets, head_columns):
                clf = LogisticRegression(C=C, max_iter=2000, class_weight="balanced")
                clf.fit(xtr[:, cols], np.tile(t[train], reps), sample_weight=w)
                logits.append([clf.decision_function(v[:, cols]) for v in xte])

            def proba(temperature: float) -> np.ndarray:
                ps = []
                for lv, la in zip(*logits):
                    pv, pa = 1 / (1 + np.exp(-lv / temperature)), 1 / (1 + np.exp(-la / temperature))
                    ps.append(_song_mean_proba(_product(pv, pa), d.song_of_row[rows], test))
                return np.mean(ps, axis=0)

            return proba

        return fit_predict

    if len(scales) == 1:
        return {f"C={C:g}": candidate(C, scales[0]) for C in cs}
    return {f"C={C:g},s={s:g}": candidate(C, s) for C in cs for s in scales}


def _product(pv: np.ndarray, pa: np.ndarray) -> np.ndarray:
    """Quadrant probabilities [shape=(n, 4)] from P(valence positive) and P(arousal high) [shape=(n,)]."""
    return np.stack([pv * pa, (1 - pv) * pa, (1 - pv) * (1 - pa), pv * (1 - pa)], axis=1)


def stacked_candidates(d: Songs, cs=CS, second_cs=(0.03, 0.3), k: int = 5):
    """Two-stage valence: stage 1 is the shipped va-product heads on song-mean penultimate (C); stage 2 a
    logistic regression (C2) on the stage-1 valence logit plus the standardised tonal block, trained on
    the training songs' *out-of-fold* stage-1 logits (``k`` artist-grouped folds of the training songs
    only). Arousal is stage 1's. Applied to the test songs' segments; a song is the mean of its
    segments' probabilities."""
    from sklearn.linear_model import LogisticRegression

    from moodscope.training.nested import group_folds

    pen = np.concatenate([d.means[b] for b in PEN], axis=1)
    tonal = d.means[TONAL]
    valence, arousal = POSITIVE_VALENCE[d.y].astype(int), HIGH_AROUSAL[d.y].astype(int)

    def head(C, xtr, t):
        return LogisticRegression(C=C, max_iter=2000, class_weight="balanced").fit(xtr, t)

    def candidate(C: float, C2: float):
        def fit_predict(train, test):
            oof = np.zeros(len(train))
            for tr, te in group_folds(d.y[train], d.groups[train], k, seed=0):
                a, b = _standardise(pen[train[tr]], pen[train[te]])
                oof[te] = head(C, a, valence[train[tr]]).decision_function(b)
            rows = d.rows(test)
            seg_pen = np.concatenate([d.sb.blocks[b][rows] for b in PEN], axis=1)
            ptr, pte = _standardise(pen[train], seg_pen)
            v1, a1 = head(C, ptr, valence[train]), head(C, ptr, arousal[train])
            s2tr, s2te = _standardise(
                np.column_stack([oof, tonal[train]]),
                np.column_stack([v1.decision_function(pte), d.sb.blocks[TONAL][rows]]),
            )
            v2 = head(C2, s2tr, valence[train])
            lv, la = v2.decision_function(s2te), a1.decision_function(pte)

            def proba(temperature: float) -> np.ndarray:
                pv, pa = 1 / (1 + np.exp(-lv / temperature)), 1 / (1 + np.exp(-la / temperature))
                return _song_mean_proba(_product(pv, pa), d.song_of_row[rows], test)

            return proba

        return fit_predict

    return {f"C={C:g},C2={C2:g}": candidate(C, C2) for C in cs for C2 in second_cs}


def shipped_candidates(d: Songs, head: str = "va-product"):
    """The shipped recipe (:func:`moodscope.analysis.accurate.candidates`), heads on song means."""
    sb = SegmentBlocks({b: d.sb.blocks[b] for b in PEN}, d.sb.track_ids)
    return candidates(sb, d.songs, d.y, AccurateConfig(head=head))


def segment_candidates(d: Songs, cs=(0.0003, 0.001, 0.003, 0.01, 0.03)):
    """va-product heads trained on segments (every segment labelled with its song's quadrant); a song is the
    mean of its segments' probabilities."""

    def candidate(C: float):
        def fit_predict(train, test):
            tr, te = d.rows(train), d.rows(test)
            heads = [
                fit_head({b: d.sb.blocks[b][tr] for b in PEN}, d.y[d.song_of_row[tr]], PEN, C=C, kind="va-product")
            ]
            part = d.sb.select(te)
            return lambda temperature: song_probabilities(heads, part, d.songs[test], temperature)

        return fit_predict

    return {f"C={C:g}": candidate(C) for C in cs}


def sklearn_candidates(d: Songs, make: dict[str, Callable[[], object]], *, segments: bool = False):
    """Any sklearn classifier on standardised song means (or segments, then the mean of their
    probabilities); its log-probabilities (or decision scores) tempered."""

    def candidate(factory):
        def fit_predict(train, test):
            clf = factory()
            if segments:
                tr, te = d.rows(train), d.rows(test)
                xtr, xte = _standardise(
                    np.concatenate([d.sb.blocks[b][tr] for b in PEN], 1),
                    np.concatenate([d.sb.blocks[b][te] for b in PEN], 1),
                )
                clf.fit(xtr, d.y[d.song_of_row[tr]])
                p = _song_mean_proba(clf.predict_proba(xte), d.song_of_row[te], test)
                return _tempered(np.log(np.clip(p, 1e-9, 1)))
            x = np.concatenate([d.means[b] for b in PEN], axis=1)
            xtr, xte = _standardise(x[train], x[test])
            clf.fit(xtr, d.y[train])
            if hasattr(clf, "predict_proba"):
                return _tempered(np.log(np.clip(clf.predict_proba(xte), 1e-9, 1)))
            return _tempered(clf.decision_function(xte))

        return fit_predict

    return {name: candidate(factory) for name, factory in make.items()}


def svm_linear(d: Songs):
    from sklearn.svm import LinearSVC

    return sklearn_candidates(
        d,
        {
            f"C={C:g}": (lambda C=C: LinearSVC(C=C, class_weight="balanced", max_iter=20000))
            for C in (0.0003, 0.001, 0.003, 0.01, 0.03)
        },
    )


def svm_rbf(d: Songs):
    from sklearn.svm import SVC

    return sklearn_candidates(
        d,
        {
            f"C={C:g}": (
                lambda C=C: SVC(
                    C=C, kernel="rbf", gamma="scale", class_weight="balanced", decision_function_shape="ovr"
                )
            )
            for C in (0.3, 1.0, 3.0, 10.0)
        },
    )


class _MLPEnsemble:
    """``n`` sklearn MLPs (one hidden layer, L2 weight decay ``alpha``, early stopping on 15 % of the
    training songs) averaged."""

    def __init__(self, alpha: float, hidden: int = 32, n: int = 3):
        self.alpha, self.hidden, self.n = alpha, hidden, n

    def fit(self, x, y):
        from sklearn.neural_network import MLPClassifier

        self.models = [
            MLPClassifier(
                (self.hidden,),
                alpha=self.alpha,
                early_stopping=True,
                validation_fraction=0.15,
                n_iter_no_change=20,
                max_iter=1000,
                random_state=s,
            ).fit(x, y)
            for s in range(self.n)
        ]
        return self

    def predict_proba(self, x):
        return np.mean([m.predict_proba(x) for m in self.models], axis=0)


def mlp(d: Songs):
    return sklearn_candidates(d, {f"alpha={a:g}": (lambda a=a: _MLPEnsemble(a)) for a in (1.0, 3.0, 10.0, 30.0)})


def vgg_ensemble(d: Songs, research_cache: Path):
    """Mean of two va-product heads' probabilities: penultimate (this run's descriptors) and MSD+MTT vgg
    pool5 (research cache, float32, start+end patches); one C for both."""
    from cv import index, segments  # /work/research/model/cv.py

    songs, _, _, seg_song = index()
    vgg = segments(("msdvgg_pool5", "mttvgg_pool5"))
    if not np.array_equal(songs[seg_song], d.sb.track_ids):
        raise SystemExit("research cache segments are not in this run's order")
    both = Songs(d.songs, d.y, d.groups, d.pquad, SegmentBlocks({**d.sb.blocks, "vgg": vgg}, d.sb.track_ids), {})
    pen = product_candidates(both, PEN)
    vg = product_candidates(both, ("vgg",))

    def candidate(name):
        def fit_predict(train, test):
            a, b = pen[name](train, test), vg[name](train, test)
            return lambda temperature: (a(temperature) + b(temperature)) / 2

        return fit_predict

    return {name: candidate(name) for name in pen}


# --- arousal-conditional valence, soft targets, power normalisation, mood-tag projections ----------


def mood_tag_matrix(moods: tuple[tuple[str, ...], ...]) -> np.ndarray:
    """Songs x tags, 1 where the song carries the tag [shape=(n_songs, n_tags)]."""
    vocabulary = sorted({t for tags in moods for t in tags})
    column = {t: i for i, t in enumerate(vocabulary)}
    out = np.zeros((len(moods), len(vocabulary)))
    for i, tags in enumerate(moods):
        out[i, [column[t] for t in tags]] = 1.0
    return out


def tag_shares(tags: np.ndarray, y: np.ndarray, min_songs: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Each song's share of mood tags in a positive-valence and in a high-arousal quadrant, a tag's quadrant
    being its most frequent one among these (training) songs; tags on fewer than ``min_songs`` of them are
    ignored, and a song left without tags gets its own label [shapes=(n_songs,)]."""
    counts = np.stack([tags[y == q].sum(axis=0) for q in range(4)], axis=1)
    known = counts.sum(axis=1) >= min_songs
    tag_quadrant = counts.argmax(axis=1)
    used = tags * known
    n = used.sum(axis=1)
    safe = np.maximum(n, 1)
    valence = np.where(n > 0, used @ POSITIVE_VALENCE[tag_quadrant] / safe, POSITIVE_VALENCE[y])
    arousal = np.where(n > 0, used @ HIGH_AROUSAL[tag_quadrant] / safe, HIGH_AROUSAL[y])
    return valence.astype(float), arousal.astype(float)


def _soft_logistic(C: float, x: np.ndarray, hard: np.ndarray, target: np.ndarray, w: np.ndarray):
    """L2 logistic regression on soft targets (each song once as positive with weight w·target, once as
    negative with weight w·(1 - target)), classes balanced by the hard labels; with hard targets this is
    LogisticRegression(class_weight="balanced")."""
    from sklearn.linear_model import LogisticRegression

    balance = np.where(hard == 1, len(hard) / (2 * max(hard.sum(), 1)), len(hard) / (2 * max((hard == 0).sum(), 1)))
    ww = np.concatenate([balance * w * target, balance * w * (1 - target)])
    keep = ww > 0
    xx, yy = np.concatenate([x, x])[keep], np.repeat([1, 0], len(x))[keep]
    return LogisticRegression(C=C, max_iter=3000).fit(xx, yy, sample_weight=ww[keep])


def variant_candidates(
    d: Songs,
    *,
    mixes=(0.0,),
    softness=(0.0,),
    tag_scales=(0.0,),
    power: bool = False,
    weights: np.ndarray | None = None,
    with_softmax: bool = False,
    cs=CS,
    pls_components: int = 8,
):
    """va-product heads on song-mean penultimate descriptors (the shipped recipe at the defaults), one
    candidate per (C, mix, softness, tag scale):

    - ``mix`` > 0: **arousal-conditional valence**. Two more valence heads, fitted on the high- and the
      low-arousal training songs only; the valence logit in Q1/Q2 (Q3/Q4) is (1 - mix) x the global one
      + mix x the high- (low-) arousal one, so P(Q1) = P(a+)·P(v+|a+), P(Q4) = P(a-)·P(v+|a-), ...;
    - ``softness`` λ > 0: **soft targets from the mood tags**: a training song's valence (arousal) target
      is (1 - λ) x its label + λ x its share of mood tags in positive-valence (high-arousal) quadrants
      (:func:`tag_shares`, from the training songs' tags and labels only);
    - ``tag scale`` s > 0: **mood-tag projections**: ``pls_components`` PLS directions from the
      standardised descriptors to the training songs' mood tags (tags on at least 5 of them) are added
      as features, standardised and multiplied by s (a supervised prior: they are penalised less);
    - ``power``: signed square root of every descriptor value before song means and standardisation;
    - ``with_softmax``: the quadrant probabilities averaged with a multinomial head's (same C).
    """
    from sklearn.cross_decomposition import PLSRegression
    from sklearn.linear_model import LogisticRegression

    seg = np.concatenate([d.sb.blocks[b] for b in PEN], axis=1)
    if power:
        seg = np.sign(seg) * np.sqrt(np.abs(seg))
    x = song_means(SegmentBlocks({"pen": seg}, d.sb.track_ids), d.songs)["pen"]
    valence, arousal = POSITIVE_VALENCE[d.y].astype(int), HIGH_AROUSAL[d.y].astype(int)
    tags = mood_tag_matrix(d.moods) if any(softness) or any(tag_scales) else None

    def candidate(C: float, mix: float, soft: float, tag_scale: float):
        def fit_predict(train, test):
            rows = d.rows(test)
            xtr, xte = _standardise(x[train], seg[rows])
            if tag_scale > 0:
                counts = tags[train].sum(axis=0)
                frequent = counts >= min(5, counts.max())  # tags on 5+ training songs (tiny sets: the most used)
                pls = PLSRegression(n_components=pls_components, scale=False).fit(xtr, tags[train][:, frequent])
                ptr, pte = pls.transform(xtr), pls.transform(xte)
                sd = ptr.std(axis=0) + 1e-9
                xtr = np.concatenate([xtr, tag_scale * ptr / sd], axis=1)
                xte = np.concatenate([xte, tag_scale * pte / sd], axis=1)
            w = np.ones(len(train)) if weights is None else weights[train]
            vt, at = valence[train], arousal[train]
            if soft > 0:
                shares = tag_shares(tags[train], d.y[train])
                soft_v, soft_a = (1 - soft) * vt + soft * shares[0], (1 - soft) * at + soft * shares[1]
            else:
                soft_v, soft_a = vt.astype(float), at.astype(float)

            def logit(mask, hard, target):
                return _soft_logistic(C, xtr[mask], hard[mask], target[mask], w[mask]).decision_function(xte)

            everyone = np.ones(len(train), bool)
            la, lv = logit(everyone, at, soft_a), logit(everyone, vt, soft_v)
            lv_high, lv_low = lv, lv
            if mix > 0:
                high = at == 1
                lv_high = (1 - mix) * lv + mix * logit(high, vt, soft_v)
                lv_low = (1 - mix) * lv + mix * logit(~high, vt, soft_v)
            if with_softmax:
                multinomial = LogisticRegression(C=C, max_iter=3000, class_weight="balanced")
                log_softmax = multinomial.fit(xtr, d.y[train], sample_weight=w).predict_log_proba(xte)

            def proba(temperature: float) -> np.ndarray:
                pa, ph, pl = (1 / (1 + np.exp(-z / temperature)) for z in (la, lv_high, lv_low))
                p = np.stack([pa * ph, pa * (1 - ph), (1 - pa) * (1 - pl), (1 - pa) * pl], axis=1)
                if with_softmax:
                    p = 0.5 * p + 0.5 * _tempered(log_softmax)(temperature)
                return _song_mean_proba(p, d.song_of_row[rows], test)

            return proba

        return fit_predict

    def name(C: float, mix: float, soft: float, tag_scale: float) -> str:
        settings = {"mix": (mix, mixes), "soft": (soft, softness), "tags": (tag_scale, tag_scales)}
        return ",".join([f"C={C:g}"] + [f"{k}={v:g}" for k, (v, grid) in settings.items() if len(grid) > 1])

    grid = [(C, m, s, t) for C in cs for m in mixes for s in softness for t in tag_scales]
    return {name(*g): candidate(*g) for g in grid}


AUG_SETS = {
    "pitch1": ("pitch+1", "pitch-1"),
    "pitch2": ("pitch+1", "pitch-1", "pitch+2", "pitch-2"),
    "gain": ("gain+6", "gain-6"),
    "mask": ("mask",),
    "all": ("pitch+1", "pitch-1", "pitch+2", "pitch-2", "gain+6", "gain-6", "mask"),
}

LEVERS: dict[str, tuple[str, Callable]] = {
    "shipped": ("shipped recipe: va-product heads on song-mean penultimate", lambda d: shipped_candidates(d)),
    "softmax": ("multinomial head on song-mean penultimate", lambda d: shipped_candidates(d, "softmax")),
    "product": ("va-product heads (this script's implementation, = shipped)", lambda d: product_candidates(d)),
    "segments": ("va-product heads trained on segments, song = mean of segment probabilities", segment_candidates),
    "svm-linear": ("linear SVM (one-vs-rest) on song means", svm_linear),
    "svm-rbf": ("RBF SVM on song means", svm_rbf),
    "mlp": ("3 one-hidden-layer MLPs (32 units), weight decay, early stopping", mlp),
    "tags-product": ("va-product heads on penultimate + taggrams", lambda d: product_candidates(d, PEN + TAGS)),
    "pquad": ("va-product heads, songs weighted by PQuad", lambda d: product_candidates(d, weights=d.pquad)),
    "pquad-chosen": (
        "va-product heads, PQuad weighting or none chosen in the inner folds (with C)",
        lambda d: {
            **{f"{k},unweighted": c for k, c in product_candidates(d).items()},
            **{f"{k},pquad": c for k, c in product_candidates(d, weights=d.pquad).items()},
        },
    ),
    "pquad2": (
        "va-product heads, songs weighted by PQuad squared",
        lambda d: product_candidates(d, weights=d.pquad**2),
    ),
    "vgg-ensemble": ("mean of penultimate and vgg pool5 va-product heads (research cache)", None),
    "tonal": (
        "va-product heads on the tonal and rhythm features alone",
        lambda d: product_candidates(d, (TONAL,), cs=TONAL_CS),
    ),
    "pen-tonal": (
        "va-product heads on penultimate + tonal features (one C)",
        lambda d: product_candidates(d, (*PEN, TONAL)),
    ),
    "pen-tonal-scaled": (
        "va-product heads on penultimate + tonal features, the tonal block's own C (C·s², s chosen)",
        lambda d: product_candidates(d, (*PEN, TONAL), scales=TONAL_SCALES),
    ),
    "valence-tonal": (
        "va-product heads on penultimate, tonal features in the valence head only (C·s², s chosen)",
        lambda d: product_candidates(d, PEN, valence_blocks=(TONAL,), scales=TONAL_SCALES),
    ),
    "valence-tonality": (
        "as valence-tonal with the key, chroma and harmony features only (no tempo, onsets, roughness), s 0.25-2",
        lambda d: product_candidates(
            d, PEN, valence_blocks=(TONALITY,), scales=(0.25, 0.5, 1.0, 2.0), scaled=(TONALITY,)
        ),
    ),
    "stacked-tonal": (
        "stage 2 valence: logistic regression on the out-of-fold penultimate valence logit + tonal",
        stacked_candidates,
    ),
    "pquad-tonal": (
        "as pen-tonal-scaled, training songs weighted by PQuad",
        lambda d: product_candidates(d, (*PEN, TONAL), scales=TONAL_SCALES, weights=d.pquad),
    ),
    "pquad-valence-tonal": (
        "as valence-tonal, training songs weighted by PQuad",
        lambda d: product_candidates(d, PEN, valence_blocks=(TONAL,), scales=TONAL_SCALES, weights=d.pquad),
    ),
    "conditional": (
        "va-product heads, valence mixed with arousal-conditional valence heads (mix 0, 0.5, 1 chosen)",
        lambda d: variant_candidates(d, mixes=(0.0, 0.5, 1.0)),
    ),
    "conditional-only": (
        "va-product heads, valence from the arousal-conditional valence heads only (mix 1)",
        lambda d: variant_candidates(d, mixes=(1.0,)),
    ),
    "pquad-conditional": (
        "as conditional, training songs weighted by PQuad",
        lambda d: variant_candidates(d, mixes=(0.0, 0.5, 1.0), weights=d.pquad),
    ),
    "soft-tags": (
        "va-product heads on soft targets: label mixed with the song's mood-tag shares (λ 0, 0.25, 0.5 chosen)",
        lambda d: variant_candidates(d, softness=(0.0, 0.25, 0.5)),
    ),
    "soft-tags-half": (
        "va-product heads on soft targets, λ = 0.5",
        lambda d: variant_candidates(d, softness=(0.5,)),
    ),
    "soft-tags-conditional": (
        "soft-tags and conditional together (λ and mix chosen)",
        lambda d: variant_candidates(d, softness=(0.0, 0.25, 0.5), mixes=(0.0, 0.5, 1.0)),
    ),
    "tag-pls": (
        "va-product heads on penultimate + 8 PLS projections onto the mood tags (scale 0, 0.5, 1, 2 chosen)",
        lambda d: variant_candidates(d, tag_scales=(0.0, 0.5, 1.0, 2.0)),
    ),
    "power": (
        "va-product heads on the signed square root of the descriptors",
        lambda d: variant_candidates(d, power=True),
    ),
    "product-softmax": (
        "mean of the va-product and the multinomial heads' probabilities",
        lambda d: variant_candidates(d, with_softmax=True),
    ),
}
TONAL_LEVERS = (
    "tonal",
    "pen-tonal",
    "pen-tonal-scaled",
    "valence-tonal",
    "valence-tonality",
    "stacked-tonal",
    "pquad-tonal",
    "pquad-valence-tonal",
)
for _name, _augs in AUG_SETS.items():
    LEVERS[f"aug-{_name}"] = (
        f"training songs + augmented copies ({', '.join(_augs)})",
        lambda d, a=_augs: product_candidates(d, augs=a),
    )
    LEVERS[f"aug-{_name}-tta"] = (
        f"as aug-{_name}, test songs averaged over the same augmentations",
        lambda d, a=_augs: product_candidates(d, augs=a, tta=True),
    )


def run_lever(name: str, d: Songs, research: Path) -> dict:
    if name == "vgg-ensemble":
        sys.path.insert(0, str(research))
        cands = vgg_ensemble(d, research)
    else:
        cands = LEVERS[name][1](d)
    return nested_cv(cands, d.y, d.groups).summary()


def main(argv: list[str] | None = None) -> int:
    warnings.filterwarnings("ignore")
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_desc = sub.add_parser("descriptors", help="compute the descriptors of augmented audio (musicnn)")
    p_tonal = sub.add_parser("tonal", help="compute the tonal and rhythm features of every segment (librosa)")
    p_tonal.add_argument("--workers", type=int, default=1, help="processes (each one core)")
    p_run = sub.add_parser("run", help="nested CV of levers")
    sub.add_parser("list", help="list the levers")
    p_collect = sub.add_parser("collect", help="gather the levers' results into one JSON (docs/models/levers.json)")
    p_collect.add_argument("results", type=Path, help="the --out folder of run")
    p_collect.add_argument("--to", type=Path, default=Path("docs/models/levers.json"))
    for p in (p_desc, p_tonal, p_run):
        p.add_argument("--root", type=Path, default=Path("../shared/data/4q/MER_audio_taffc_dataset"))
        p.add_argument("--cache", type=Path, required=True)
    p_desc.add_argument("augs", nargs="+", choices=AUGMENTATIONS)
    p_run.add_argument("levers", nargs="+", choices=list(LEVERS))
    p_run.add_argument("--out", type=Path, required=True)
    p_run.add_argument(
        "--tonal", type=Path, default=None, help="folder of levers-4q-tonal.npz (`tonal`; default: --cache)"
    )
    p_run.add_argument(
        "--research",
        type=Path,
        default=Path("/work/research/model"),
        help="folder of the research cv.py and its cache (vgg-ensemble only)",
    )
    args = parser.parse_args(argv)
    if args.cmd == "list":
        for name, (what, _) in LEVERS.items():
            print(f"{name:16s} {what}")
        return 0
    if args.cmd == "collect":
        found = {f.stem: json.loads(f.read_text()) for f in sorted(args.results.glob("*.json"))}
        levers = {name: found[name] for name in LEVERS if name in found}
        payload = {"script": "scripts/levers.py", "reference": "shipped", "levers": levers}
        args.to.write_text(json.dumps(payload, indent=1) + "\n")
        print(f"{len(levers)} levers -> {args.to}")
        return 0
    if args.cmd == "descriptors":
        from moodscope.datasets import load_dataset

        items = load_dataset("4q", args.root).audio_items()
        args.cache.mkdir(parents=True, exist_ok=True)
        for aug in args.augs:
            t = time.time()
            compute_descriptors(items, args.cache, aug)
            print(f"{aug}: {len(items)} clips in {time.time() - t:.0f} s", flush=True)
        return 0
    if args.cmd == "tonal":
        from moodscope.datasets import load_dataset

        items = load_dataset("4q", args.root).audio_items()
        args.cache.mkdir(parents=True, exist_ok=True)
        t = time.time()
        out = compute_tonal(items, args.cache, args.workers)
        print(f"tonal: {len(items)} clips in {time.time() - t:.0f} s ({args.workers} processes) -> {out}", flush=True)
        return 0
    augs = sorted({a for name in args.levers if name.startswith("aug-") for a in AUG_SETS[name.split("-")[1]]})
    needs_tonal = any(name in TONAL_LEVERS for name in args.levers)
    d = load_songs(args.root, args.cache, tuple(augs), (args.tonal or args.cache) if needs_tonal else None)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.levers:
        t = time.time()
        summary = run_lever(name, d, args.research)
        summary["lever"], summary["what"], summary["seconds"] = name, LEVERS[name][0], time.time() - t
        (args.out / f"{name}.json").write_text(json.dumps(summary, indent=1))
        print(f"{summary_line(name, summary)}  [{time.time() - t:.0f} s]", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
