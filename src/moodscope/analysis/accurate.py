"""The ``accurate`` model: pretrained musicnn embeddings plus the paper's features, ensembled heads.

Each 5-s segment is described by blocks of features (:data:`BLOCKS`):

- ``msd_*`` / ``mtt_*``: musicnn (MSD- and MagnaTagATune-trained taggers, run as int8 ONNX graphs
  without torch, see :mod:`moodscope.analysis.musicnn_onnx`) averaged over two 2.992-s patches aligned to the start and
  the end of the segment (16 kHz; the input length musicnn was trained on): its 50 tag
  probabilities (``taggram``), the 200-unit ``penultimate`` layer and the mid-end pooled over time
  (``mean_pool``, ``max_pool``, 753 each);
- ``paper``: the paper's 10 static features and the mean and standard deviation of its 13 MFCC.

A *head* is a standardised logistic regression over some blocks, of one of two kinds
(:data:`HEAD_KINDS`): ``softmax`` (multinomial over the four quadrants) or ``va-product`` (two binary
heads, P(valence positive) and P(arousal high), whose product gives the quadrants:
P(Q1) = P(v+)·P(a+), P(Q2) = P(v-)·P(a+), ...). The model averages the probabilities of its heads,
after dividing their logits by a calibration temperature. Heads are trained on song-mean
descriptors and applied to each segment; a song's mood is the mean of its segments' probabilities.
The checkpoint is a moodscope checkpoint (:mod:`moodscope.models.checkpoint`; the shipped one a
``.safetensors`` file, read without torch) of architecture
:data:`ARCH`: each head's arrays as tensors ``heads.<i>.{mean,scale,weight,bias}``, its blocks in
``meta["config"]["heads"]``, the kind in ``meta["config"]["head"]`` (``softmax`` when absent) and the
temperature in ``meta["config"]["temperature"]`` (1 when absent).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from moodscope.analysis.musicnn_onnx import ONNX_OUTPUTS
from moodscope.analysis.ood import OodStats, SegmentOod
from moodscope.constants import (
    QUADRANT_SIGNS,
    QUADRANTS,
    SAMPLE_RATE,
    SEGMENT_SAMPLES,
    SEGMENT_SECONDS,
)
from moodscope.errors import ModelError

log = logging.getLogger(__name__)

MUSICNN_OUTPUTS = ONNX_OUTPUTS
BLOCKS = (*(f"{net}_{out}" for net in ("msd", "mtt") for out in MUSICNN_OUTPUTS), "paper")
ARCH = "musicnn-ensemble"
"""The architecture name of the ``accurate`` model in its checkpoints (``meta["arch"]``)."""
HEAD_ARRAYS = ("mean", "scale", "weight", "bias")
HEAD_KINDS = ("softmax", "va-product")
"""``softmax``: 4 quadrant logits; ``va-product``: 2 logits, valence positive and arousal high."""
POSITIVE_VALENCE = np.array([QUADRANT_SIGNS[q][0] > 0 for q in QUADRANTS])
HIGH_AROUSAL = np.array([QUADRANT_SIGNS[q][1] > 0 for q in QUADRANTS])


def quadrant_proba(logits: np.ndarray, kind: str = "softmax", temperature: float = 1.0) -> np.ndarray:
    """Quadrant probabilities [shape=(n, 4)] from a head's logits [shape=(n, 4) or (n, 2)] divided by
    ``temperature``: a softmax, or for ``va-product`` the products of P(valence +/-) and P(arousal +/-)."""
    z = np.asarray(logits, np.float64) / temperature
    if kind == "va-product":
        pv, pa = (0.5 * (1.0 + np.tanh(0.5 * z[:, i])) for i in range(2))  # the sigmoid, without overflow
        v = np.where(POSITIVE_VALENCE, pv[:, None], 1 - pv[:, None])
        a = np.where(HIGH_AROUSAL, pa[:, None], 1 - pa[:, None])
        return v * a
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


MUSICNN_BATCH = 3
"""Patches per forward pass (the batch the int8 graphs were measured with, docs/speed.md): small enough
for the front-end's activations (~9 MB per patch) to stay in the caches and allocators' reuse."""


def paper_block(segments: np.ndarray) -> np.ndarray:
    """The paper's static features plus MFCC mean and std per segment: [shape=(n, N_STATIC + 2 * N_MFCC)]."""
    from moodscope.features.extract import extract_features

    return paper_block_of(extract_features(segments).as_dict())


def paper_block_of(features: dict[str, np.ndarray]) -> np.ndarray:
    """:func:`paper_block` from already extracted Table 2 features (``SegmentFeatures.as_dict()``)."""
    mfcc = features["mfcc"]
    return np.concatenate([features["static"], mfcc.mean(axis=-1), mfcc.std(axis=-1)], axis=1)


PATCH_POSITIONS = ("start", "end")
"""Where musicnn looks inside each 5-s segment: two 2.992-s patches aligned to its start and its end,
which together cover the whole segment (musicnn was trained on patches of that length)."""


def musicnn_patch_mels(segments: np.ndarray, positions: tuple[str, ...] = PATCH_POSITIONS) -> np.ndarray:
    """musicnn's log-mel of the patches of each segment: [shape=(n * len(positions), 187, 96)], segment-major."""
    from moodscope.features.musicnn_input import HOP, MUSICNN_SR, PATCH_FRAMES, musicnn_log_mel, to_musicnn_rate

    y16 = to_musicnn_rate(np.ascontiguousarray(segments, dtype=np.float32).reshape(-1), SAMPLE_RATE)
    per = round(SEGMENT_SECONDS * MUSICNN_SR)
    width = PATCH_FRAMES * HOP
    offsets = {"start": 0, "centre": (per - width) // 2, "end": per - width}
    starts = [i * per + offsets[pos] for i in range(len(segments)) for pos in positions]
    return np.stack([musicnn_log_mel(y16[s : s + width])[:PATCH_FRAMES] for s in starts])


def musicnn_blocks(mels: np.ndarray, net: str, n_segments: int) -> dict[str, np.ndarray]:
    """musicnn outputs averaged over each segment's patches: {f'{net}_{output}': [shape=(n, d)]}.

    ``mels``: [shape=(n * patches per segment, 187, 96)], segment-major; musicnn runs as its int8 ONNX
    graph (:func:`moodscope.analysis.musicnn_onnx.run_musicnn_onnx`), in analysis and training alike."""
    from moodscope.analysis.musicnn_onnx import run_musicnn_onnx

    out = run_musicnn_onnx(mels, net, batch_size=MUSICNN_BATCH)
    return {f"{net}_{k}": v.reshape(n_segments, -1, v.shape[-1]).mean(axis=1) for k, v in out.items()}


def _nets(blocks: tuple[str, ...]) -> list[str]:
    return [net for net in ("msd", "mtt") if any(b.startswith(f"{net}_") for b in blocks)]


def block_inputs(segments: np.ndarray, blocks: tuple[str, ...] = BLOCKS) -> dict[str, np.ndarray]:
    """What the ``blocks`` are computed from, per segment: musicnn's log-mel patches ``mels``
    [shape=(n, len(PATCH_POSITIONS), 187, 96)] and the ``paper`` block [shape=(n, 36)], as far as needed."""
    if segments.ndim != 2 or segments.shape[1] != SEGMENT_SAMPLES:
        raise ValueError(f"expected segments of shape (n, {SEGMENT_SAMPLES}), got {segments.shape}")
    inputs = {}
    if _nets(blocks):
        mels = musicnn_patch_mels(segments)
        inputs["mels"] = mels.reshape(len(segments), -1, *mels.shape[1:])
    if "paper" in blocks:
        inputs["paper"] = paper_block(segments).astype(np.float32)
    return inputs


def blocks_from_inputs(inputs: dict[str, np.ndarray], blocks: tuple[str, ...] = BLOCKS) -> dict[str, np.ndarray]:
    """The descriptor ``blocks`` [shape=(n, d)] from :func:`block_inputs` (musicnn runs here)."""
    out: dict[str, np.ndarray] = {}
    if nets := _nets(blocks):
        mels = inputs["mels"]
        for net in nets:
            out.update(musicnn_blocks(mels.reshape(-1, *mels.shape[2:]), net, len(mels)))
    if "paper" in blocks:
        out["paper"] = inputs["paper"]
    return {b: out[b] for b in blocks}


def segment_blocks(segments: np.ndarray, blocks: tuple[str, ...] = BLOCKS) -> dict[str, np.ndarray]:
    """Compute the requested descriptor blocks of segments [shape=(n, SEGMENT_SAMPLES)]."""
    return blocks_from_inputs(block_inputs(segments, blocks), blocks)


@dataclass
class Head:
    """A standardised linear classifier over the concatenation of ``blocks`` (``kind``: see :data:`HEAD_KINDS`)."""

    blocks: tuple[str, ...]
    mean: np.ndarray  # (d,)
    scale: np.ndarray  # (d,)
    weight: np.ndarray  # (4, d) softmax, (2, d) va-product
    bias: np.ndarray  # (4,) or (2,)
    kind: str = "softmax"

    def logits(self, blocks: dict[str, np.ndarray]) -> np.ndarray:
        x = np.concatenate([blocks[b] for b in self.blocks], axis=1)
        return ((x - self.mean) / self.scale) @ self.weight.T + self.bias

    def predict_proba(self, blocks: dict[str, np.ndarray], temperature: float = 1.0) -> np.ndarray:
        """Quadrant probabilities [shape=(n, 4)] (:func:`quadrant_proba`)."""
        return quadrant_proba(self.logits(blocks), self.kind, temperature)

    def state_dict(self, prefix: str = "") -> dict:
        """The head's arrays as float32 tensors named ``<prefix><name>`` (its checkpoint form)."""
        import torch

        return {
            f"{prefix}{k}": torch.from_numpy(np.ascontiguousarray(getattr(self, k), dtype=np.float32))
            for k in HEAD_ARRAYS
        }

    @classmethod
    def from_state_dict(cls, blocks: tuple[str, ...], state: dict, prefix: str = "", kind: str = "softmax") -> Head:
        """The head of a checkpoint's ``state`` (numpy arrays or tensors)."""
        arrays = {k: np.asarray(state[f"{prefix}{k}"], dtype=np.float64) for k in HEAD_ARRAYS}
        return cls(blocks=tuple(blocks), kind=kind, **arrays)


def fit_head(
    blocks: dict[str, np.ndarray],
    y: np.ndarray,
    names: tuple[str, ...],
    *,
    C: float,
    seed: int = 0,
    kind: str = "softmax",
) -> Head:
    """Fit a head of ``kind`` on descriptors with labels ``y`` (0..3), balanced class weights: one
    multinomial logistic regression, or (``va-product``) two binary ones on valence positive (Q1, Q4)
    and arousal high (Q1, Q2)."""
    from moodscope.extras import require

    LogisticRegression = require("sklearn.linear_model", "train", "training the accurate model").LogisticRegression

    y = np.asarray(y, int)
    if sorted(set(y.tolist())) != list(range(len(QUADRANTS))):
        raise ModelError(f"training data must contain all four quadrants, got classes {sorted(set(y.tolist()))}")
    x = np.concatenate([blocks[b] for b in names], axis=1).astype(np.float64)
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    x = (x - mean) / scale

    def logistic(target: np.ndarray):
        return LogisticRegression(C=C, max_iter=2000, class_weight="balanced", random_state=seed).fit(x, target)

    if kind == "va-product":
        heads = [logistic(POSITIVE_VALENCE[y].astype(int)), logistic(HIGH_AROUSAL[y].astype(int))]
        weight = np.concatenate([h.coef_ for h in heads])
        bias = np.concatenate([h.intercept_ for h in heads])
    elif kind == "softmax":
        clf = logistic(y)
        weight, bias = clf.coef_, clf.intercept_
    else:
        raise ModelError(f"unknown head kind {kind!r}; choose one of {', '.join(HEAD_KINDS)}")
    return Head(blocks=names, mean=mean, scale=scale, weight=weight, bias=bias, kind=kind)


def ensemble_proba(heads: list[Head], blocks: dict[str, np.ndarray], temperature: float = 1.0) -> np.ndarray:
    """The mean of the heads' quadrant probabilities [shape=(n, 4)] at ``temperature``."""
    return np.mean([h.predict_proba(blocks, temperature) for h in heads], axis=0)


OOD_BLOCKS = ("msd_penultimate", "mtt_penultimate", "msd_mean_pool", "mtt_mean_pool")
"""The descriptors the ``accurate`` model's out-of-distribution score looks at (:mod:`moodscope.analysis.ood`):
musicnn's penultimate layers and mid-end mean pools. The penultimate layers alone put white and pink noise
barely beyond the training music; the mean pools (computed by the same forward pass) separate them clearly."""


FAST_OOD_BLOCKS = ("paper",)
"""The descriptors the ``fast`` model's out-of-distribution score looks at: the paper's static features and
MFCC mean and std, which its Table 2 features already hold (white noise and speech stand out; pink noise not)."""


def fit_model_ood(
    sb: SegmentBlocks, artist_of: dict[str, str] | None = None, blocks: tuple[str, ...] = OOD_BLOCKS
) -> OodStats:
    """The OOD statistics of a model trained on the segments of ``sb``: :func:`moodscope.analysis.ood.fit_ood`
    on ``blocks`` (:data:`OOD_BLOCKS` for ``accurate``, :data:`FAST_OOD_BLOCKS` for ``fast``), calibrated on
    artist-disjoint folds when ``artist_of`` maps each track id to its artist (track-disjoint otherwise)."""
    from moodscope.analysis.ood import fit_ood

    groups = np.array([(artist_of or {}).get(t) or t for t in sb.track_ids])
    return fit_ood({b: sb.blocks[b] for b in blocks}, groups=groups)


class EmbeddingModel:
    """The ``accurate`` model: an ensemble of heads over musicnn and paper descriptors, calibrated by a
    temperature (``meta["config"]["temperature"]``), and the statistics of its out-of-distribution score
    when its checkpoint has them."""

    def __init__(self, heads: list[Head], meta: dict, name: str, ood: OodStats | None = None):
        self.heads = heads
        self.meta = meta
        self.temperature = float(meta.get("config", {}).get("temperature", 1.0))
        self.ood = ood
        used = {b for h in self.heads for b in h.blocks} | set(ood.blocks if ood else ())
        self.blocks = tuple(sorted(used, key=BLOCKS.index))
        self.name = name
        self.content_hash = ""  # set by the loader (moodscope.analysis.pretrained), which knows the files
        self.files: tuple[Path, ...] = ()

    @classmethod
    def from_checkpoint(cls, payload: dict, name: str) -> EmbeddingModel:
        """The model of a checkpoint read by :func:`moodscope.models.checkpoint.read_checkpoint`."""
        meta = payload["meta"]
        if meta.get("arch") != ARCH:
            raise ModelError(f"{name}: a {meta.get('arch')!r} checkpoint, not an {ARCH!r} one")
        state = payload["state_dict"]
        kind = meta["config"].get("head", "softmax")
        heads = [Head.from_state_dict(b, state, f"heads.{i}.", kind) for i, b in enumerate(meta["config"]["heads"])]
        return cls(heads, meta, name, OodStats.from_checkpoint(payload))

    def segment_inputs(self, segments: np.ndarray) -> dict[str, np.ndarray]:
        """musicnn's log-mel patches and the ``paper`` block, as far as the heads use them, and the
        signal check's measurements (see :func:`moodscope.analysis.pretrained.segment_inputs`)."""
        from moodscope.analysis.ood import signal_inputs

        return block_inputs(segments, self.blocks) | signal_inputs(segments)

    def predict_with_ood(self, inputs: dict[str, np.ndarray]) -> tuple[np.ndarray, None, SegmentOod]:
        """Quadrant probabilities [shape=(n, 4)], no valence/arousal of its own, and the OOD verdict."""
        from moodscope.analysis.ood import segment_ood

        blocks = blocks_from_inputs(inputs, self.blocks)
        score = self.ood.scores(blocks) if self.ood is not None else None
        return ensemble_proba(self.heads, blocks, self.temperature), None, segment_ood(inputs, score)

    def predict_inputs(self, inputs: dict[str, np.ndarray]) -> tuple[np.ndarray, None]:
        return self.predict_with_ood(inputs)[:2]

    def predict_segments(self, segments: np.ndarray) -> tuple[np.ndarray, None]:
        return self.predict_inputs(self.segment_inputs(segments))


def save_embedding_model(
    path: Path,
    heads: list[Head],
    *,
    metrics: dict,
    config: dict,
    temperature: float = 1.0,
    ood: OodStats | None = None,
    **extra,
) -> Path:
    """Write an ensemble of heads (all of one kind), its calibration temperature and its OOD statistics
    (see :func:`fit_model_ood`) as a moodscope checkpoint; ``config`` is how it was trained, ``extra``
    more metadata."""
    from moodscope.models.checkpoint import base_meta, write_checkpoint

    kinds = {h.kind for h in heads}
    if len(kinds) != 1:
        raise ModelError(f"the heads of one model must be of one kind, got {sorted(kinds)}")
    state = {k: v for i, h in enumerate(heads) for k, v in h.state_dict(f"heads.{i}.").items()}
    model_config = {"heads": [list(h.blocks) for h in heads], "head": kinds.pop(), "temperature": float(temperature)}
    meta = base_meta(ARCH, model_config, metrics=metrics, train_config=config, **extra)
    if ood is not None:
        meta["ood"] = ood.meta()
        state |= ood.state_dict()
    return write_checkpoint(path, state, meta)


# --- training ---------------------------------------------------------------------------------


@dataclass
class SegmentBlocks:
    """Descriptor blocks of every segment of a dataset, with the track each segment belongs to."""

    blocks: dict[str, np.ndarray]  # name -> (n, d)
    track_ids: np.ndarray  # (n,)

    def select(self, index: np.ndarray) -> SegmentBlocks:
        return SegmentBlocks({k: v[index] for k, v in self.blocks.items()}, self.track_ids[index])


def _track_blocks(path: Path, blocks: tuple[str, ...]) -> dict[str, np.ndarray] | str:
    from moodscope.audio import load_audio, segment_audio
    from moodscope.errors import MoodscopeError

    try:
        return segment_blocks(segment_audio(load_audio(path), source=str(path)), blocks)
    except MoodscopeError as exc:
        return str(exc)


def _init_worker() -> None:
    import threadpoolctl

    threadpoolctl.threadpool_limits(1)  # one BLAS thread per worker (the ONNX sessions have one thread)


def dataset_blocks(
    items: list[tuple[str, Path]],
    cache: Path,
    *,
    blocks: tuple[str, ...] = BLOCKS,
    workers: int = 1,
    progress=None,
) -> SegmentBlocks:
    """Descriptor blocks of every whole segment of ``(track_id, audio_path)`` items.

    Computed once (in ``workers`` processes) and kept in ``cache``, an NPZ recomputed when the
    list of tracks or blocks changes, or the musicnn graphs that compute them (their SHA-256).
    Files that cannot be decoded are skipped with a warning.
    """
    from concurrent.futures import ProcessPoolExecutor

    from moodscope.analysis.musicnn_onnx import onnx_path
    from moodscope.features.cache import atomic_write_npz
    from moodscope.fileio import sha256_files

    graphs = [sha256_files(onnx_path(net)) for net in _nets(blocks)]
    wanted = np.array([tid for tid, _ in items] + ["|", *blocks, "|", *graphs])
    if cache.exists():
        with np.load(cache, allow_pickle=False) as data:
            if np.array_equal(data["requested"], wanted):
                return SegmentBlocks({b: data[b] for b in blocks}, data["track_ids"])
    parts: dict[str, list[np.ndarray]] = {b: [] for b in blocks}
    ids: list[str] = []
    paths = [path for _, path in items]
    with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker) as pool:
        for i, ((track_id, _), result) in enumerate(zip(items, pool.map(_track_blocks, paths, [blocks] * len(paths)))):
            if isinstance(result, str):
                log.warning("skipped: %s", result)
            else:
                for name, value in result.items():
                    parts[name].append(value)
                ids += [track_id] * len(next(iter(result.values())))
            if progress:
                progress(i + 1, len(items))
    arrays = {b: np.concatenate(v) for b, v in parts.items()}
    atomic_write_npz(cache, {**arrays, "track_ids": np.array(ids), "requested": wanted})
    return SegmentBlocks(arrays, np.array(ids))


@dataclass
class AccurateConfig:
    """How the ``accurate`` model is trained (chosen by nested cross-validation on 4Q, docs/models.md).

    ``Cs`` are the candidate inverse L2 strengths of the logistic regressions, chosen by inner
    artist-grouped cross-validation (``folds`` folds); ``C`` is the one used when none is chosen."""

    heads: tuple[tuple[str, ...], ...] = (("msd_penultimate", "mtt_penultimate"),)
    head: str = "va-product"  # one of HEAD_KINDS
    C: float = 0.03
    Cs: tuple[float, ...] = (0.003, 0.01, 0.03, 0.1, 0.3)
    folds: int = 5
    seed: int = 0


def song_means(sb: SegmentBlocks, songs: np.ndarray) -> dict[str, np.ndarray]:
    """Mean descriptor of each song's segments: {block: [shape=(len(songs), d)]}."""
    index = {s: i for i, s in enumerate(songs)}
    rows = np.array([index[t] for t in sb.track_ids])
    counts = np.bincount(rows, minlength=len(songs))[:, None]
    out = {}
    for name, x in sb.blocks.items():
        total = np.zeros((len(songs), x.shape[1]))
        np.add.at(total, rows, x)
        out[name] = total / np.maximum(counts, 1)
    return out


def fit_heads(song_blocks: dict[str, np.ndarray], y: np.ndarray, config: AccurateConfig) -> list[Head]:
    """One head per block group, each trained on song-mean descriptors.

    Heads are linear, so applying them to a segment's descriptor gives the timeline, and the mean
    of the segments' logits equals the head applied to the song's mean descriptor.
    """
    return [fit_head(song_blocks, y, names, C=config.C, seed=config.seed, kind=config.head) for names in config.heads]


def song_probabilities(heads: list[Head], sb: SegmentBlocks, songs: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Song-level probabilities [shape=(len(songs), 4)] by the project's one song-aggregation rule
    (:func:`moodscope.training.evaluate.aggregate_songs`)."""
    from moodscope.training.evaluate import aggregate_songs

    ids, probs = aggregate_songs(ensemble_proba(heads, sb.blocks, temperature), sb.track_ids)
    index = {s: i for i, s in enumerate(ids)}
    return probs[[index[s] for s in songs]]


def candidates(sb: SegmentBlocks, songs: np.ndarray, y: np.ndarray, config: AccurateConfig) -> dict:
    """The choices of :func:`moodscope.training.nested.nested_cv` for ``config``: one per C in ``config.Cs``.

    Each fits the heads on the song means of the training songs and gives the test songs'
    probabilities (the mean of their segments', as ``analyze`` computes them) at any temperature."""
    from dataclasses import replace

    means = song_means(sb, songs)
    position = {s: i for i, s in enumerate(songs)}
    song_of_row = np.array([position[t] for t in sb.track_ids])

    def candidate(C: float):
        def fit_predict(train: np.ndarray, test: np.ndarray):
            heads = fit_heads({k: v[train] for k, v in means.items()}, y[train], replace(config, C=C))
            rows = np.isin(song_of_row, test)
            part = sb.select(rows)
            return lambda temperature: song_probabilities(heads, part, songs[test], temperature)

        return fit_predict

    return {f"C={C:g}": candidate(C) for C in config.Cs}


def nested_cross_validate(
    sb: SegmentBlocks,
    songs: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    config: AccurateConfig,
    *,
    seeds: tuple[int, ...] = (0, 1, 2),
    progress=None,
) -> dict:
    """Nested artist-grouped CV of training the ``accurate`` model with ``config`` (C and temperature
    chosen in inner folds): :meth:`moodscope.training.nested.NestedResult.summary`."""
    from moodscope.training.nested import nested_cv

    cands = candidates(sb, songs, y, config)
    result = nested_cv(cands, y, groups, seeds=seeds, outer_k=config.folds, inner_k=config.folds, progress=progress)
    return result.summary()


def fit_shipped(
    sb: SegmentBlocks, songs: np.ndarray, y: np.ndarray, groups: np.ndarray, config: AccurateConfig
) -> tuple[list[Head], dict]:
    """The final heads on all ``songs``: C and temperature chosen by (non-nested) artist-grouped
    ``config.folds``-fold CV on all of them, then the heads refitted on every song. Returns the heads
    and the selection (chosen C, inner scores, temperature)."""
    from dataclasses import replace

    from moodscope.training.nested import select_candidate

    cands = candidates(sb, songs, y, config)
    selection = select_candidate(cands, y, groups, np.arange(len(songs)), k=config.folds, seed=config.seed)
    C = config.Cs[list(cands).index(selection.chosen)]
    heads = fit_heads(song_means(sb, songs), y, replace(config, C=C))
    return heads, {"C": C, "inner_macro_f1": selection.scores, "temperature": selection.temperature}
