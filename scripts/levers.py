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

Usage (from the repository root; ROOT = ../shared/data/4q/MER_audio_taffc_dataset)::

    python scripts/levers.py descriptors --root ROOT --cache DIR none gain+6 ...   # heavy: musicnn
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
from moodscope.training.nested import nested_cv

PEN = ("msd_penultimate", "mtt_penultimate")
TAGS = ("msd_taggram", "mtt_taggram")
DESCRIPTOR_BLOCKS = PEN + TAGS
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

    def __post_init__(self):
        position = {s: i for i, s in enumerate(self.songs)}
        self.song_of_row = np.array([position[t] for t in self.sb.track_ids])
        self.means = song_means(self.sb, self.songs)
        self.aug_means = {a: song_means(s, self.songs) for a, s in self.augmented.items()}

    def rows(self, songs: np.ndarray) -> np.ndarray:
        return np.isin(self.song_of_row, songs)


def load_songs(root: Path, cache: Path, augs: tuple[str, ...] = ()) -> Songs:
    from moodscope.analysis.shipped import _songs_labels_groups
    from moodscope.datasets import load_dataset

    dataset = load_dataset("4q", root)

    def read(aug: str) -> SegmentBlocks:
        with np.load(cache / f"levers-4q-{aug}.npz") as z:
            return SegmentBlocks({b: z[b].astype(np.float64) for b in DESCRIPTOR_BLOCKS}, z["track_ids"])

    sb = read("none")
    songs, y, groups = _songs_labels_groups(dataset, sb.track_ids)
    tracks = dataset.tracks()
    pquad = np.array([tracks[s].metadata.get("pquad") or 1.0 for s in songs], float)
    augmented = {a: read(a) for a in augs}
    for a, s in augmented.items():
        if not np.array_equal(s.track_ids, sb.track_ids):
            raise SystemExit(f"levers-4q-{a}.npz: segments differ from levers-4q-none.npz; recompute it")
    return Songs(songs, y, groups, pquad, sb, augmented)


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


def product_candidates(d: Songs, blocks=PEN, *, weights: np.ndarray | None = None, augs=(), tta=False, cs=CS):
    """va-product logistic heads fitted on song-mean descriptors, one candidate per C, applied to the test
    songs' segments (a song: the mean of its segments' probabilities); training songs plus their augmented
    versions ``augs``; optional sample ``weights`` per song; ``tta``: test songs averaged over their
    original and augmented versions."""
    from sklearn.linear_model import LogisticRegression

    x = np.concatenate([d.means[b] for b in blocks], axis=1)
    xa = {a: np.concatenate([d.aug_means[a][b] for b in blocks], axis=1) for a in augs}
    targets = (POSITIVE_VALENCE[d.y].astype(int), HIGH_AROUSAL[d.y].astype(int))

    def segments(sb: SegmentBlocks, rows: np.ndarray) -> np.ndarray:
        return np.concatenate([sb.blocks[b][rows] for b in blocks], axis=1)

    def candidate(C: float):
        def fit_predict(train, test):
            xtr = np.concatenate([x[train]] + [xa[a][train] for a in augs])
            reps = 1 + len(augs)
            w = None if weights is None else np.tile(weights[train], reps)
            rows = d.rows(test)  # a test song is the mean of its segments' probabilities, as analyze computes it
            versions = [segments(d.sb, rows)] + ([segments(d.augmented[a], rows) for a in augs] if tta else [])
            xtr, *xte = _standardise(xtr, *versions)
            logits = []
            for t in targets:
                clf = LogisticRegression(C=C, max_iter=2000, class_weight="balanced")
                clf.fit(xtr, np.tile(t[train], reps), sample_weight=w)
                logits.append([clf.decision_function(v) for v in xte])

            def proba(temperature: float) -> np.ndarray:
                ps = []
                for lv, la in zip(*logits):
                    pv, pa = 1 / (1 + np.exp(-lv / temperature)), 1 / (1 + np.exp(-la / temperature))
                    p = np.stack([pv * pa, (1 - pv) * pa, (1 - pv) * (1 - pa), pv * (1 - pa)], axis=1)
                    ps.append(_song_mean_proba(p, d.song_of_row[rows], test))
                return np.mean(ps, axis=0)

            return proba

        return fit_predict

    return {f"C={C:g}": candidate(C) for C in cs}


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
    "pquad2": (
        "va-product heads, songs weighted by PQuad squared",
        lambda d: product_candidates(d, weights=d.pquad**2),
    ),
    "vgg-ensemble": ("mean of penultimate and vgg pool5 va-product heads (research cache)", None),
}
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


def row(name: str, s: dict) -> str:
    f1 = " ".join(f"{v:.3f}" for v in s["f1_per_quadrant"].values())
    seeds = ", ".join(f"{v:.3f}" for v in s["macro_f1"]["values"])
    return (
        f"{name:16s} {s['macro_f1']['mean']:.3f} ± {s['macro_f1']['std']:.3f} (seeds {seeds}) "
        f"uncal {s['macro_f1_uncalibrated']['mean']:.3f} F1 Q1-Q4 {f1} chosen {s['chosen']}"
    )


def main(argv: list[str] | None = None) -> int:
    warnings.filterwarnings("ignore")
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_desc = sub.add_parser("descriptors", help="compute the descriptors of augmented audio (musicnn)")
    p_run = sub.add_parser("run", help="nested CV of levers")
    sub.add_parser("list", help="list the levers")
    p_collect = sub.add_parser("collect", help="gather the levers' results into one JSON (docs/models/levers.json)")
    p_collect.add_argument("results", type=Path, help="the --out folder of run")
    p_collect.add_argument("--to", type=Path, default=Path("docs/models/levers.json"))
    for p in (p_desc, p_run):
        p.add_argument("--root", type=Path, default=Path("../shared/data/4q/MER_audio_taffc_dataset"))
        p.add_argument("--cache", type=Path, required=True)
    p_desc.add_argument("augs", nargs="+", choices=AUGMENTATIONS)
    p_run.add_argument("levers", nargs="+", choices=list(LEVERS))
    p_run.add_argument("--out", type=Path, required=True)
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
    augs = sorted({a for name in args.levers if name.startswith("aug-") for a in AUG_SETS[name.split("-")[1]]})
    d = load_songs(args.root, args.cache, tuple(augs))
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.levers:
        t = time.time()
        summary = run_lever(name, d, args.research)
        summary["lever"], summary["what"], summary["seconds"] = name, LEVERS[name][0], time.time() - t
        (args.out / f"{name}.json").write_text(json.dumps(summary, indent=1))
        print(f"{row(name, summary)}  [{time.time() - t:.0f} s]", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
