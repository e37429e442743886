"""Fine-tuning musicnn for the ``accurate`` model, measured by nested artist-grouped cross-validation.

The one lever of docs/models.md ("Levers tried") that needs the networks' weights to move. The
front-end of both musicnn networks (MSD, MTT; the convolutions over the log-mel, 90 % of the cost) is
frozen and its output cached once per patch, float16 [shape=(n_patches, 561, 187)], for the same
patches as the shipped descriptors (start + end patch of each 5-s segment); the mid-end (three 1-D
convolutions), the back-end's penultimate dense layer of each network and a new head (two logits,
valence positive and arousal high; quadrant probabilities = their product, as the shipped head) are
fine-tuned. The batch norms stay frozen (affine maps, the pretrained statistics).

Linear probe, then fine-tuning (LP-FT): the head starts as the shipped recipe's logistic regressions
(:func:`moodscope.analysis.accurate.fit_head` on the song-mean penultimate layers of the training
songs, standardised), so epoch 0 *is* the shipped recipe on these float32 descriptors and the inner
selection can fall back to it. Training examples are songs: a song's logit is the mean of its
segments' logits (the head is linear: equal to the head on the mean penultimate), binary
cross-entropy on both logits. Augmentation on the cached front-end output (:func:`augment`): one of
the two patches of each segment at random, a random crop of :data:`CROP` of the 187 frames, and
:data:`MASKS` time masks of up to :data:`MASK_FRAMES` frames set to the patch's mean. Gain and pitch
shifts are not possible after the front-end (they act on the audio, whose front-end output is
cached). Regularisation: dropout on the 400 standardised penultimate units, AdamW weight decay, few
epochs, small learning rates. Test songs: all patches, uncropped; a song is the mean of its
segments' probabilities (the project's rule).

Protocol (:func:`nested_finetune`): the outer folds of :func:`moodscope.training.nested.group_folds`
(5 artist-grouped folds per seed, the splits of ``moodscope.training.nested`` and scripts/levers.py).
In each outer training part, the probe's C is chosen as the shipped recipe chooses it (5 inner
artist-grouped folds, :func:`moodscope.training.nested.select_candidate`); then, compute being short,
**one** inner split (the first of the same 5 inner folds) chooses the learning rate, the number of
epochs (0 = the probe alone) and whether to average the fine-tuned model with the probe; the
calibration temperature is fitted on that inner split's held-out songs. The choice is refitted on the
whole outer training part and predicts the outer test songs. The reference, ``shipped``, is the
shipped recipe (:func:`moodscope.analysis.accurate.candidates`, 5 inner folds) on the same float32
penultimate layers, same outer folds, same run.

Usage (from the repository root; ROOT = ../shared/data/4q/MER_audio_taffc_dataset)::

    python scripts/finetune.py cache --root ROOT --cache DIR   # both front-ends, 2.5 GB: 34 min at load 2-12
    python scripts/finetune.py run --root ROOT --cache DIR --out DIR/results --seeds 0   # 25-40 min a seed
    python scripts/finetune.py collect DIR/results --to docs/models/finetune.json

``run`` writes ``<out>/finetune-seed<S>.json`` and ``<out>/shipped-seed<S>.json`` per seed (the nested
summaries and every fold's inner scores, choices and timings); ``collect`` merges the seeds run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

NETS = ("msd", "mtt")
PATCHES_PER_SEGMENT = 2  # start + end (moodscope.analysis.accurate.PATCH_POSITIONS)
CACHE_VERSION = 1


# --- cache: the frozen front-ends' output --------------------------------------------------------


def front_path(cache: Path, net: str) -> Path:
    return cache / f"finetune-4q-front-{net}.npy"


def index_path(cache: Path) -> Path:
    return cache / "finetune-4q-index.npz"


def compute_cache(items: list[tuple[str, Path]], cache: Path, progress=None) -> None:
    """Write the front-end output of both networks for every patch of ``items``, float16
    [shape=(n_segments * 2, 561, 187)] per network (segment-major, start patch then end patch), and
    ``finetune-4q-index.npz``: the track id of every segment and the networks' weight hashes."""
    import torch

    from moodscope.analysis.accurate import musicnn_patch_mels
    from moodscope.audio import load_audio, segment_audio
    from moodscope.fileio import sha256_files
    from moodscope.models.musicnn import load_musicnn, weights_path

    torch.set_num_threads(1)
    models = {net: load_musicnn(net) for net in NETS}
    mels, ids = [], []
    for i, (track_id, path) in enumerate(items):  # decode first: the number of patches sizes the files
        segments = segment_audio(load_audio(path), source=str(path))
        mels.append(musicnn_patch_mels(segments).astype(np.float16))
        ids += [track_id] * len(segments)
        if progress:
            progress("mel", i + 1, len(items))
    n = sum(len(m) for m in mels)
    cache.mkdir(parents=True, exist_ok=True)
    for net, model in models.items():
        tmp = front_path(cache, net).with_suffix(".tmp.npy")
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float16, shape=(n, 561, mels[0].shape[1]))
        row = 0
        with torch.inference_mode():
            for i, m in enumerate(mels):
                out[row : row + len(m)] = model.front_end(torch.from_numpy(m.astype(np.float32))).numpy()
                row += len(m)
                if progress:
                    progress(net, i + 1, len(mels))
        out.flush()
        del out
        tmp.replace(front_path(cache, net))
    hashes = [sha256_files(weights_path(net)) for net in NETS]
    tmp = index_path(cache).with_suffix(".tmp.npz")
    np.savez(tmp, track_ids=np.array(ids), weights_sha256=np.array(hashes), version=CACHE_VERSION)
    tmp.replace(index_path(cache))


# --- data --------------------------------------------------------------------------------------


@dataclass
class Patches:
    """The cached front-end outputs and what each row is: songs (sorted ids), labels 0..3, artists."""

    fronts: dict[str, np.ndarray]  # net -> [shape=(n_segments * 2, 561, frames)] float16
    track_ids: np.ndarray  # [shape=(n_segments,)]
    songs: np.ndarray
    y: np.ndarray
    groups: np.ndarray

    def __post_init__(self) -> None:
        position = {s: i for i, s in enumerate(self.songs)}
        self.song_of_segment = np.array([position[t] for t in self.track_ids])
        order = np.argsort(self.song_of_segment, kind="stable")
        starts = np.searchsorted(self.song_of_segment[order], np.arange(len(self.songs) + 1))
        self.segments_of_song = [order[starts[i] : starts[i + 1]] for i in range(len(self.songs))]

    def segments(self, songs: np.ndarray) -> np.ndarray:
        """The segment rows of ``songs``, in song order."""
        return np.concatenate([self.segments_of_song[s] for s in songs])


def load_patches(root: Path, cache: Path) -> Patches:
    """The cache of :func:`compute_cache`, read into memory, with the 4Q labels and artists."""
    from moodscope.analysis.shipped import _songs_labels_groups
    from moodscope.datasets import load_dataset
    from moodscope.fileio import sha256_files
    from moodscope.models.musicnn import weights_path

    with np.load(index_path(cache)) as z:
        track_ids, hashes = z["track_ids"], z["weights_sha256"].tolist()
    if hashes != [sha256_files(weights_path(net)) for net in NETS]:
        raise SystemExit(f"{cache}: computed with other musicnn weights; run `finetune.py cache` again")
    fronts = {net: np.load(front_path(cache, net)) for net in NETS}
    songs, y, groups = _songs_labels_groups(load_dataset("4q", root), track_ids)
    return Patches(fronts, track_ids, songs, y, groups)


# --- the model -----------------------------------------------------------------------------------


@dataclass
class FineTuneConfig:
    """How the networks are fine-tuned (the inner split chooses ``lrs``, the epochs up to
    ``max_epochs`` and ``ensemble``)."""

    lrs: tuple[float, ...] = (3e-5, 1e-4)
    max_epochs: int = 5
    ensemble: bool = True  # also candidates averaging the fine-tuned model and the probe
    batch_songs: int = 8
    crop: int = 128  # frames of the 187 kept per training patch
    masks: int = 2
    mask_frames: int = 20
    dropout: float = 0.2
    weight_decay: float = 0.01
    eval_batch: int = 48  # patches per forward pass at evaluation


def penultimate_blocks(d: Patches, batch: int = 48):
    """The frozen networks' penultimate layers of every segment (mean of its two patches), float32 from the
    cached front-ends: a :class:`moodscope.analysis.accurate.SegmentBlocks` of ``msd_penultimate``,
    ``mtt_penultimate`` [shape=(n_segments, 200)] (the probe's and the reference's descriptors)."""
    import torch

    from moodscope.analysis.accurate import SegmentBlocks
    from moodscope.models.musicnn import load_musicnn

    blocks = {}
    models = {net: load_musicnn(net) for net in NETS}  # outside inference mode: the cached model is shared
    with torch.inference_mode():
        for net in NETS:
            model, front = models[net], d.fronts[net]
            parts = [
                model.from_front(torch.from_numpy(front[i : i + batch].astype(np.float32)))["penultimate"].numpy()
                for i in range(0, len(front), batch)
            ]
            pen = np.concatenate(parts).astype(np.float64)
            blocks[f"{net}_penultimate"] = pen.reshape(len(d.track_ids), PATCHES_PER_SEGMENT, -1).mean(axis=1)
    return SegmentBlocks(blocks, d.track_ids)


def _trainable_copy(model):
    """A fresh copy of a musicnn network with its weights (not the shared model's cached front-end filters)."""
    from moodscope.models.musicnn import MusiCNN

    copy = MusiCNN(n_tags=model.output.out_features)
    copy.load_state_dict(model.state_dict())
    return copy


def build_model(probe, dropout: float):
    """Both networks (front-ends unused), their mid-ends and penultimate dense layers trainable, and a
    linear head initialised from the probe (a va-product :class:`moodscope.analysis.accurate.Head` on the
    standardised ``msd_penultimate`` + ``mtt_penultimate``)."""
    import torch
    from torch import nn

    from moodscope.models.musicnn import load_musicnn

    class FineTuned(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.nets = nn.ModuleList(_trainable_copy(load_musicnn(net)) for net in NETS)
            for m in self.nets:
                m.requires_grad_(False)
                for layer in m.midend:
                    layer.conv.requires_grad_(True)
                m.penultimate.requires_grad_(True)
            self.register_buffer("mean", torch.tensor(probe.mean, dtype=torch.float32))
            self.register_buffer("scale", torch.tensor(probe.scale, dtype=torch.float32))
            self.head = nn.Linear(len(probe.mean), 2)
            with torch.no_grad():
                self.head.weight.copy_(torch.tensor(probe.weight))
                self.head.bias.copy_(torch.tensor(probe.bias))
            self.dropout = nn.Dropout(dropout)

        def forward(self, fronts: list[torch.Tensor]) -> torch.Tensor:
            """Per-net front-end outputs [shape=(B, 561, T)] -> valence and arousal logits [shape=(B, 2)]."""
            pen = torch.cat([m.from_front(f)["penultimate"] for m, f in zip(self.nets, fronts)], dim=1)
            return self.head(self.dropout((pen - self.mean) / self.scale))

    return FineTuned()


def augment(front: np.ndarray, rng: np.random.Generator, config: FineTuneConfig) -> np.ndarray:
    """A random crop of ``config.crop`` frames of one patch's front-end output [shape=(561, T)] with
    ``config.masks`` time masks (up to ``config.mask_frames`` frames each, set to the crop's mean per channel)."""
    start = rng.integers(0, front.shape[1] - config.crop + 1)
    x = front[:, start : start + config.crop].astype(np.float32)
    fill = x.mean(axis=1, keepdims=True)
    for _ in range(config.masks):
        width = rng.integers(0, config.mask_frames + 1)
        at = rng.integers(0, config.crop - width + 1)
        x[:, at : at + width] = fill
    return x


def train_epoch(model, opt, d: Patches, songs: np.ndarray, rng: np.random.Generator, config: FineTuneConfig) -> float:
    """One pass over ``songs`` in random batches: per segment one of its patches, augmented; a song's
    logits the mean of its segments'; balanced binary cross-entropy on valence and arousal. Returns the
    mean loss."""
    import torch

    from moodscope.analysis.accurate import HIGH_AROUSAL, POSITIVE_VALENCE

    targets = np.stack([POSITIVE_VALENCE[d.y], HIGH_AROUSAL[d.y]], axis=1).astype(np.float32)
    positives = targets[songs].mean(axis=0)
    pos_weight = torch.tensor((1 - positives) / np.maximum(positives, 1e-6))
    model.train()
    losses = []
    for batch in np.array_split(rng.permutation(songs), max(1, int(np.ceil(len(songs) / config.batch_songs)))):
        segs = [d.segments_of_song[s] for s in batch]
        rows = [PATCHES_PER_SEGMENT * g + rng.integers(0, PATCHES_PER_SEGMENT) for g in segs]
        owner = torch.from_numpy(np.repeat(np.arange(len(batch)), [len(g) for g in segs]))
        rows_all = np.concatenate(rows)
        fronts = [
            torch.from_numpy(np.stack([augment(d.fronts[net][r], rng, config) for r in rows_all])) for net in NETS
        ]
        seg_logits = model(fronts)
        song_logits = torch.zeros(len(batch), 2).index_add(0, owner, seg_logits) / torch.bincount(owner)[:, None]
        loss = torch.nn.functional.binary_cross_entropy_with_logits(
            song_logits, torch.from_numpy(targets[batch]), pos_weight=pos_weight
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return float(np.mean(losses))


def segment_logits(model, d: Patches, songs: np.ndarray, batch: int) -> np.ndarray:
    """The model's valence and arousal logits of every segment of ``songs`` (in :meth:`Patches.segments`
    order), all patches uncropped, a segment the mean of its two patches [shape=(n, 2)]."""
    import torch

    model.eval()
    segs = d.segments(songs)
    rows = (PATCHES_PER_SEGMENT * segs[:, None] + np.arange(PATCHES_PER_SEGMENT)).ravel()
    out = []
    with torch.inference_mode():
        for i in range(0, len(rows), batch):
            part = rows[i : i + batch]
            out.append(model([torch.from_numpy(d.fronts[net][part].astype(np.float32)) for net in NETS]).numpy())
    return np.concatenate(out).astype(np.float64).reshape(len(segs), PATCHES_PER_SEGMENT, 2).mean(axis=1)


def song_proba(d: Patches, songs: np.ndarray, logits: np.ndarray):
    """``proba(T)`` [shape=(len(songs), 4)]: the mean over each song's segments of the va-product
    probabilities of ``logits`` [shape=(n_segments of songs, 2)] divided by T."""
    from moodscope.analysis.accurate import quadrant_proba

    owner = np.repeat(np.arange(len(songs)), [len(d.segments_of_song[s]) for s in songs])
    counts = np.bincount(owner, minlength=len(songs))[:, None]

    def proba(temperature: float) -> np.ndarray:
        out = np.zeros((len(songs), 4))
        np.add.at(out, owner, quadrant_proba(logits, "va-product", temperature))
        return out / counts

    return proba


def fit_probe(d: Patches, pen, train: np.ndarray, C: float):
    """The shipped recipe's head (va-product logistic regressions on standardised song means) on ``train``."""
    from moodscope.analysis.accurate import fit_head, song_means

    means = song_means(pen, d.songs)
    return fit_head({k: v[train] for k, v in means.items()}, d.y[train], tuple(pen.blocks), C=C, kind="va-product")


def finetune_curve(
    d: Patches,
    pen,
    train: np.ndarray,
    test: np.ndarray,
    *,
    C: float,
    lr: float,
    epochs: int,
    seed: int,
    config: FineTuneConfig,
    trained_on: list | None = None,
) -> dict:
    """Fit the probe on ``train``, fine-tune for ``epochs`` epochs and return the test songs' segment
    logits after each epoch: {0: probe, 1: ..., epochs: ...} [shape=(n_segments of test, 2)], and the
    training losses under the key ``"loss"``. ``trained_on`` (if given) records the songs trained on."""
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    probe = fit_probe(d, pen, train, C)
    if trained_on is not None:
        trained_on.append(np.asarray(train))
    rows = d.segments(test)
    curve: dict = {0: probe.logits(pen.select(rows).blocks), "loss": []}
    if epochs == 0:
        return curve
    model = build_model(probe, config.dropout)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=config.weight_decay)
    for epoch in range(1, epochs + 1):
        curve["loss"].append(train_epoch(model, opt, d, train, rng, config))
        curve[epoch] = segment_logits(model, d, test, config.eval_batch)
    return curve


def candidate_names(config: FineTuneConfig) -> list[str]:
    """``probe`` (no fine-tuning) first, then by epochs, learning rate, alone before averaged with the probe."""
    names = ["probe"]
    for e in range(1, config.max_epochs + 1):
        for lr in config.lrs:
            names.append(f"lr={lr:g},e={e}")
            if config.ensemble:
                names.append(f"lr={lr:g},e={e},ens")
    return names


def parse_candidate(name: str) -> tuple[float, int, bool]:
    """``(lr, epochs, ensemble)`` of a candidate name (``probe``: epochs 0)."""
    if name == "probe":
        return 0.0, 0, False
    parts = name.split(",")
    return float(parts[0][3:]), int(parts[1][2:]), parts[-1] == "ens"


def candidate_proba(d: Patches, songs: np.ndarray, curves: dict, name: str):
    """``proba(T)`` of candidate ``name`` from the learning curves {lr: curve} of :func:`finetune_curve`."""
    lr, epochs, ens = parse_candidate(name)
    if epochs == 0:
        return song_proba(d, songs, next(iter(curves.values()))[0])
    ft = song_proba(d, songs, curves[lr][epochs])
    if not ens:
        return ft
    probe = song_proba(d, songs, curves[lr][0])
    return lambda temperature: (ft(temperature) + probe(temperature)) / 2


@dataclass
class FoldRecord:
    seed: int
    fold: int
    C: float
    chosen: str
    temperature: float
    inner_scores: dict[str, float]
    inner_losses: dict[str, list[float]]
    refit_losses: list[float]
    seconds: dict[str, float] = field(default_factory=dict)
    load: list[float] = field(default_factory=list)


def nested_finetune(
    d: Patches,
    pen,
    config: FineTuneConfig,
    seeds=(0,),
    *,
    accurate=None,
    trained_on: list | None = None,
    progress=None,
):
    """Nested CV of fine-tuning (module docstring): the reference ``shipped`` recipe (``accurate``, an
    :class:`moodscope.analysis.accurate.AccurateConfig`, default the shipped one) and the fine-tuning
    choice on the same outer folds. Returns ``(shipped, finetuned, records)``: two
    :class:`moodscope.training.nested.NestedResult` and the :class:`FoldRecord` of every outer fold.
    ``trained_on`` (a list) receives the songs of every fine-tuning run, in order."""
    import os

    from moodscope.analysis.accurate import AccurateConfig, candidates
    from moodscope.training.calibration import fit_temperature
    from moodscope.training.evaluate import classification_metrics
    from moodscope.training.nested import (
        INNER_FOLDS,
        NestedResult,
        OuterFold,
        Selection,
        group_folds,
        nested_cv,
    )

    y, groups = d.y, d.groups
    shipped = nested_cv(candidates(pen, d.songs, y, accurate or AccurateConfig()), y, groups, seeds=seeds)
    result, records = NestedResult(y=y), []
    names = candidate_names(config)
    for ref in shipped.folds:
        seed, fold, train, test = ref.seed, ref.fold, ref.train, ref.test
        t0, load = time.time(), [os.getloadavg()[0]]
        C = float(ref.selection.chosen.split("=")[1])  # the probe's C: chosen as the shipped recipe chooses it
        inner_seed = 1000 * (seed + 1) + fold  # nested_cv's inner folds; the first of them is the inner split
        itr, iva = group_folds(y[train], groups[train], INNER_FOLDS, inner_seed)[0]
        itr, iva = train[itr], train[iva]
        curves = {
            lr: finetune_curve(
                d,
                pen,
                itr,
                iva,
                C=C,
                lr=lr,
                epochs=config.max_epochs,
                seed=10_000 * seed + 100 * fold + i,
                config=config,
                trained_on=trained_on,
            )
            for i, lr in enumerate(config.lrs)
        }
        t_inner = time.time() - t0
        probas = {name: candidate_proba(d, iva, curves, name) for name in names}
        scores = {n: classification_metrics(y[iva], p(1.0).argmax(axis=1))["macro_f1"] for n, p in probas.items()}
        chosen = max(names, key=lambda n: scores[n])  # ties: the first (the least fine-tuning)
        temperature = fit_temperature([(probas[chosen], y[iva])])
        lr, epochs, _ = parse_candidate(chosen)
        refit = finetune_curve(
            d,
            pen,
            train,
            test,
            C=C,
            lr=lr,
            epochs=epochs,
            seed=10_000 * seed + 100 * fold + 99,
            config=config,
            trained_on=trained_on,
        )
        proba = candidate_proba(d, test, {lr: refit}, chosen)
        result.folds.append(
            OuterFold(seed, fold, train, test, Selection(chosen, scores, temperature), proba(1.0), proba(temperature))
        )
        load.append(os.getloadavg()[0])
        records.append(
            FoldRecord(
                seed=seed,
                fold=fold,
                C=C,
                chosen=chosen,
                temperature=temperature,
                inner_scores=scores,
                inner_losses={f"{lr:g}": curves[lr]["loss"] for lr in config.lrs},
                refit_losses=refit["loss"],
                seconds={"inner": t_inner, "refit": time.time() - t0 - t_inner},
                load=load,
            )
        )
        if progress:
            progress(records[-1])
    return shipped, result, records


def main(argv: list[str] | None = None) -> int:
    warnings.filterwarnings("ignore")
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_cache = sub.add_parser("cache", help="cache the frozen front-ends' output of every patch (musicnn, heavy)")
    p_run = sub.add_parser("run", help="nested CV of fine-tuning beside the shipped recipe")
    p_collect = sub.add_parser("collect", help="merge the seeds' results into one JSON (docs/models/finetune.json)")
    p_collect.add_argument("results", type=Path, help="the --out folder of run")
    p_collect.add_argument("--to", type=Path, default=Path("docs/models/finetune.json"))
    for p in (p_cache, p_run):
        p.add_argument("--root", type=Path, default=Path("../shared/data/4q/MER_audio_taffc_dataset"))
        p.add_argument("--cache", type=Path, required=True)
    p_run.add_argument("--out", type=Path, required=True)
    p_run.add_argument("--seeds", type=int, nargs="+", default=[0], help="outer seeds (0 1 2 = the shipped protocol)")
    p_run.add_argument("--lrs", type=float, nargs="+", default=list(FineTuneConfig.lrs))
    p_run.add_argument("--max-epochs", type=int, default=FineTuneConfig.max_epochs)
    args = parser.parse_args(argv)
    if args.cmd == "cache":
        from moodscope.datasets import load_dataset

        items = load_dataset("4q", args.root).audio_items()
        t = time.time()

        def progress(stage: str, done: int, total: int) -> None:
            if done % 60 == 0 or done == total:
                print(f"{stage}: {done}/{total} clips, {time.time() - t:.0f} s", flush=True)

        compute_cache(items, args.cache, progress)
        print(f"{len(items)} clips in {time.time() - t:.0f} s -> {args.cache}", flush=True)
        return 0
    if args.cmd == "collect":
        return collect(args.results, args.to)
    import torch

    from moodscope.training.nested import summary_line

    torch.set_num_threads(1)
    config = FineTuneConfig(lrs=tuple(args.lrs), max_epochs=args.max_epochs)
    t = time.time()
    d = load_patches(args.root, args.cache)
    pen = penultimate_blocks(d)
    print(f"{len(d.songs)} songs, {len(d.track_ids)} segments loaded in {time.time() - t:.0f} s", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)

    def progress(r: FoldRecord) -> None:
        print(
            f"seed {r.seed} fold {r.fold}: C={r.C:g} chosen {r.chosen} (inner {r.inner_scores[r.chosen]:.3f}, "
            f"probe {r.inner_scores['probe']:.3f}) T={r.temperature:.2f} "
            f"[{r.seconds['inner']:.0f}+{r.seconds['refit']:.0f} s, load {r.load[0]:.1f}-{r.load[1]:.1f}]",
            flush=True,
        )

    for seed in args.seeds:
        t = time.time()
        shipped, finetuned, records = nested_finetune(d, pen, config, (seed,), progress=progress)
        for name, res in (("shipped", shipped), ("finetune", finetuned)):
            summary = res.summary() | {"lever": name, "seconds": time.time() - t}
            if name == "finetune":
                summary |= {"config": asdict(config), "folds": [asdict(r) for r in records]}
            (args.out / f"{name}-seed{seed}.json").write_text(json.dumps(summary, indent=1))
            print(summary_line(name, summary, 10), flush=True)
    return 0


def collect(results: Path, to: Path) -> int:
    """Merge ``run``'s per-seed results: both nested summaries over all the seeds found (the folds'
    predictions are not stored, so the figures over seeds are recomputed from the per-seed ones)."""
    payload: dict = {"script": "scripts/finetune.py", "reference": "shipped", "levers": {}}
    for name in ("shipped", "finetune"):
        per_seed = [json.loads(f.read_text()) for f in sorted(results.glob(f"{name}-seed*.json"))]
        if not per_seed:
            continue
        merged = dict(per_seed[0])
        merged["seeds"] = [s for p in per_seed for s in p["seeds"]]
        for key, value in per_seed[0].items():
            if isinstance(value, dict) and "values" in value:
                values = [v for p in per_seed for v in p[key]["values"]]
                merged[key] = {"mean": float(np.mean(values)), "std": float(np.std(values)), "values": values}
        quads = per_seed[0]["f1_per_quadrant"]
        merged["f1_per_quadrant"] = {q: float(np.mean([p["f1_per_quadrant"][q] for p in per_seed])) for q in quads}
        merged["confusion_summed_over_seeds"] = np.sum([p["confusion_summed_over_seeds"] for p in per_seed], 0).tolist()
        chosen: dict[str, int] = {}
        for p in per_seed:
            for k, v in p["chosen"].items():
                chosen[k] = chosen.get(k, 0) + v
        merged["chosen"] = chosen
        merged["temperatures"] = [t for p in per_seed for t in p["temperatures"]]
        merged["seconds"] = sum(p["seconds"] for p in per_seed)
        if name == "finetune":
            merged["folds"] = [f for p in per_seed for f in p["folds"]]
        payload["levers"][name] = merged
    to.write_text(json.dumps(payload, indent=1) + "\n")
    print(f"{', '.join(payload['levers'])} over seeds {payload['levers'].get('finetune', {}).get('seeds')} -> {to}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
