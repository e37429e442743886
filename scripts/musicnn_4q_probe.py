"""Linear probe of musicnn embeddings on the 4Q (Panda et al. 2018) quadrant task.

For each of the 540 clips of ``MER_audio_taffc_dataset`` the PyTorch musicnn (MSD and MTT weights)
embeds every 2.992-s patch; song embeddings are patch means. A standardized logistic regression is
scored by artist-grouped, stratified 5-fold cross-validation (``StratifiedGroupKFold``, shuffled,
seed 0), with its C chosen inside each training fold by an inner grouped 3-fold CV on macro-F1
(nested, so the reported score is not tuned on the test folds). Reported: song-level macro-F1 and
accuracy over the 5 test folds (pooled predictions) and the per-fold mean +- std of macro-F1.

Run (from the repository root)::

    .venv/bin/python scripts/musicnn_4q_probe.py                      # uses ../shared/data/4q
    .venv/bin/python scripts/musicnn_4q_probe.py --data DIR --cache /tmp/musicnn_4q_embeddings.npz

The embeddings are cached (recomputed only if the cache is missing or ``--recompute``) in an npz:

* ``song`` (540,) song ids, ``quadrant`` (540,) "Q1".."Q4", ``artist`` (540,) artist names;
* ``patch_offsets`` (541,) int64: song i owns patch rows ``patch_offsets[i]:patch_offsets[i + 1]``;
* ``patch_start`` (n_patches,) float32 start time of each patch in seconds;
* ``{msd,mtt}_{taggram,penultimate,max_pool,mean_pool}``: per-patch float32 outputs, shapes
  (n_patches, 50 | 200 | 753 | 753);
* ``tags_msd``, ``tags_mtt`` (50,) taggram column names.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "4q" / "MER_audio_taffc_dataset"
DEFAULT_CACHE = Path("/tmp/musicnn_4q_embeddings.npz")
OUTPUTS = ("taggram", "penultimate", "max_pool", "mean_pool")
MODELS = ("msd", "mtt")
SEED = 0


def read_dataset(root: Path) -> tuple[list[str], list[str], list[str], list[Path]]:
    with open(root / "panda_dataset_taffc_annotations.csv", newline="", encoding="utf-8") as f:
        quadrant = {row["Song"]: row["Quadrant"] for row in csv.DictReader(f)}
    with open(root / "panda_dataset_taffc_metadata.csv", newline="", encoding="latin-1") as f:
        artist = {row["Song"]: row["Artist"] for row in csv.DictReader(f)}
    songs = sorted(quadrant)
    paths = [root / quadrant[s] / f"{s}.mp3" for s in songs]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise SystemExit(f"{len(missing)} clips missing, e.g. {missing[0]}")
    return songs, [quadrant[s] for s in songs], [artist[s].strip().lower() for s in songs], paths


def compute_embeddings(root: Path, cache: Path) -> dict[str, np.ndarray]:
    from moodscope.audio import load_audio
    from moodscope.constants import SAMPLE_RATE
    from moodscope.models.musicnn import (
        load_musicnn,
        musicnn_log_mel,
        musicnn_patches,
        patch_times,
        run_musicnn,
        to_musicnn_rate,
    )

    songs, quadrants, artists, paths = read_dataset(root)
    models = {name: load_musicnn(name) for name in MODELS}
    parts: dict[str, list[np.ndarray]] = {f"{m}_{o}": [] for m in MODELS for o in OUTPUTS}
    offsets, starts = [0], []
    t0 = time.perf_counter()
    for i, path in enumerate(paths):
        patches = musicnn_patches(musicnn_log_mel(to_musicnn_rate(load_audio(path), SAMPLE_RATE)))
        for name, model in models.items():
            for key, value in run_musicnn(patches, model=model).items():
                parts[f"{name}_{key}"].append(value)
        offsets.append(offsets[-1] + len(patches))
        starts.append(patch_times(len(patches))[:, 0])
        if (i + 1) % 50 == 0 or i + 1 == len(paths):
            print(f"  embedded {i + 1}/{len(paths)} clips, {time.perf_counter() - t0:.0f} s", flush=True)
    data: dict[str, np.ndarray] = {
        "song": np.array(songs),
        "quadrant": np.array(quadrants),
        "artist": np.array(artists),
        "patch_offsets": np.array(offsets, dtype=np.int64),
        "patch_start": np.concatenate(starts).astype(np.float32),
        **{k: np.concatenate(v).astype(np.float32) for k, v in parts.items()},
        **{f"tags_{name}": np.array(model.tags) for name, model in models.items()},
    }
    tmp = cache.with_suffix(".tmp.npz")
    np.savez(tmp, **data)
    tmp.replace(cache)
    print(f"cached -> {cache} ({cache.stat().st_size / 1e6:.0f} MB)")
    return data


def song_means(data: dict[str, np.ndarray], key: str) -> np.ndarray:
    offsets = data["patch_offsets"]
    sums = np.add.reduceat(data[key].astype(np.float64), offsets[:-1], axis=0)
    return (sums / np.diff(offsets)[:, None]).astype(np.float32)


def embedding_choices(data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    m = {f"{model}_{key}": song_means(data, f"{model}_{key}") for model in MODELS for key in OUTPUTS}
    choices: dict[str, np.ndarray] = {}
    for model in MODELS:
        choices[f"{model} taggram (50)"] = m[f"{model}_taggram"]
        choices[f"{model} penultimate (200)"] = m[f"{model}_penultimate"]
        choices[f"{model} mid-end max+mean pool (1506)"] = np.hstack([m[f"{model}_max_pool"], m[f"{model}_mean_pool"]])
        choices[f"{model} mid-end mean pool (753)"] = m[f"{model}_mean_pool"]
    choices["msd+mtt penultimate (400)"] = np.hstack([m["msd_penultimate"], m["mtt_penultimate"]])
    choices["msd+mtt taggram (100)"] = np.hstack([m["msd_taggram"], m["mtt_taggram"]])
    choices["msd+mtt penultimate+taggram (500)"] = np.hstack(
        [m["msd_penultimate"], m["mtt_penultimate"], m["msd_taggram"], m["mtt_taggram"]]
    )
    return choices


def probe(x: np.ndarray, y: np.ndarray, groups: np.ndarray, c_grid: tuple[float, ...]) -> dict[str, float | str]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.model_selection import StratifiedGroupKFold
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import StandardScaler

    def fit(c: float, idx: np.ndarray) -> Pipeline:
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000))
        return clf.fit(x[idx], y[idx])

    outer = StratifiedGroupKFold(n_splits=5, shuffle=True, random_state=SEED)
    pred = np.empty_like(y)
    fold_f1, chosen = [], []
    for train, test in outer.split(x, y, groups):
        inner = StratifiedGroupKFold(n_splits=3, shuffle=True, random_state=SEED)
        scores = []
        for c in c_grid:
            f1s = []
            for itr, ite in inner.split(x[train], y[train], groups[train]):
                clf = fit(c, train[itr])
                f1s.append(f1_score(y[train][ite], clf.predict(x[train][ite]), average="macro"))
            scores.append(np.mean(f1s))
        c_best = c_grid[int(np.argmax(scores))]
        chosen.append(c_best)
        pred[test] = fit(c_best, train).predict(x[test])
        fold_f1.append(f1_score(y[test], pred[test], average="macro"))
    return {
        "macro_f1": float(f1_score(y, pred, average="macro")),
        "accuracy": float(accuracy_score(y, pred)),
        "fold_mean": float(np.mean(fold_f1)),
        "fold_std": float(np.std(fold_f1)),
        "C": ",".join(f"{c:g}" for c in chosen),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the MER_audio_taffc_dataset folder")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--recompute", action="store_true", help="ignore an existing cache")
    parser.add_argument("--c-grid", type=float, nargs="+", default=[0.001, 0.01, 0.1, 1.0])
    args = parser.parse_args(argv)

    if args.cache.is_file() and not args.recompute:
        with np.load(args.cache) as f:
            data = {k: f[k] for k in f.files}
        print(f"embeddings from {args.cache}")
    else:
        print(f"embedding the 4Q clips of {args.data}")
        data = compute_embeddings(args.data, args.cache)
    y, groups = data["quadrant"], data["artist"]
    n_patches = np.diff(data["patch_offsets"])
    n_artists = len(np.unique(groups))
    print(
        f"{len(y)} songs, {n_artists} artists, {n_patches.sum()} patches ({n_patches.min()}-{n_patches.max()} a song)"
    )
    print(f"classes: {dict(zip(*np.unique(y, return_counts=True)))}")
    print(f"\n{'embedding (song = mean of patches)':<40} {'macro-F1':>8} {'acc':>6} {'fold mean+-std':>15}  C per fold")
    for name, x in embedding_choices(data).items():
        r = probe(x, y, groups, tuple(args.c_grid))
        folds = f"{r['fold_mean']:8.3f}+-{r['fold_std']:.3f}"
        print(f"{name:<40} {r['macro_f1']:8.3f} {r['accuracy']:6.3f} {folds}  {r['C']}")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
