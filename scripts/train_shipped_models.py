"""Train the models shipped in ``src/moodscope/weights/`` on the 540 4Q clips.

One command per model (from the repository root, with ../shared/data beside it)::

    python scripts/train_shipped_models.py fast --root ../shared/data/4q/MER_audio_taffc_dataset
    python scripts/train_shipped_models.py accurate --root ../shared/data/4q/MER_audio_taffc_dataset

``fast`` is the paper's ``hybrid`` model, trained by ``moodscope train`` under the song protocol
with artist-grouped 5-fold cross-validation (seed 1234); the shipped weights are fold 0's best
checkpoint (trained on 80 % of the artists, early-stopped on 10 %), with the statistics of its
out-of-distribution score (paper block of all 540 clips).

``accurate`` averages musicnn embeddings (MSD + MTT penultimate layers) over each segment and
fits a logistic regression on song means (``moodscope.analysis.accurate``). Its figures come from an
artist-grouped, stratified 5-fold cross-validation (seed 0); the shipped heads are then fitted on
all 540 songs, with the statistics of its out-of-distribution score (``fit_model_ood``). Both write
their cross-validation metrics to ``docs/models/*.json``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np

from moodscope.analysis.ood import with_ood

REPO = Path(__file__).resolve().parents[1]
WEIGHTS = REPO / "src" / "moodscope" / "weights"
METRICS = REPO / "docs" / "models"


def train_fast(root: Path, cache: Path, runs: Path) -> dict:
    from moodscope.cli import main

    out = runs / "fast-hybrid-song-cv"
    status = main(
        ["train", "--model", "hybrid", "--dataset", "4q", "--root", str(root), "--protocol", "song",
         "--folds", "5", "--cache", str(cache), "--threads", "1", "--out", str(out)]
    )  # fmt: skip
    if status:
        raise SystemExit(status)
    shutil.copyfile(out / "fold0" / "best.pt", WEIGHTS / "fast.pt")
    with_ood(WEIGHTS / "fast.pt", fast_ood(root, cache))
    return json.loads((out / "metrics.json").read_text())["summary"]


def fast_ood(root: Path, cache: Path):
    """The statistics of the ``fast`` model's out-of-distribution score, from the paper block of every
    segment of the 4Q clips, calibrated on artist-disjoint folds."""
    from moodscope.analysis.accurate import FAST_OOD_BLOCKS, dataset_blocks, fit_model_ood
    from moodscope.datasets import load_dataset

    dataset = load_dataset("4q", root)
    sb = dataset_blocks(dataset.audio_items(), cache / "fast-4q-paper.npz", blocks=FAST_OOD_BLOCKS, workers=2)
    artist_of = {tid: (t.artist or tid).strip().lower() for tid, t in dataset.tracks().items()}
    return fit_model_ood(sb, artist_of, FAST_OOD_BLOCKS)


def train_accurate(root: Path, cache: Path) -> dict:
    from tqdm import tqdm

    from moodscope.analysis.accurate import (
        OOD_BLOCKS,
        AccurateConfig,
        cross_validate,
        dataset_blocks,
        fit_heads,
        fit_model_ood,
        save_embedding_model,
        song_means,
    )
    from moodscope.constants import QUADRANTS
    from moodscope.datasets import load_dataset

    dataset = load_dataset("4q", root)
    tracks = dataset.with_audio()
    config = AccurateConfig()
    blocks = tuple(sorted({b for head in config.heads for b in head} | set(OOD_BLOCKS)))
    with tqdm(total=len(tracks), desc="musicnn descriptors", unit="clip") as bar:
        sb = dataset_blocks(
            dataset.audio_items(),
            cache / "accurate-4q-blocks.npz",
            blocks=blocks,
            workers=2,
            progress=lambda done, total: bar.update(done - bar.n),
        )
    songs = np.array(sorted(set(sb.track_ids)))
    by_id = dataset.tracks()
    y = np.array([QUADRANTS.index(by_id[s].quadrant) for s in songs])
    groups = np.array([(by_id[s].artist or s).strip().lower() for s in songs])
    cv = cross_validate(sb, songs, y, groups, config)
    heads = fit_heads(song_means(sb, songs), y, config)
    metrics = {"cross_validation": cv, "n_songs": len(songs), "n_segments": len(sb.track_ids), "dataset": "4q"}
    save_embedding_model(
        WEIGHTS / "accurate.pt",
        heads,
        metrics=metrics,
        config=config.__dict__ | {"heads": [list(h) for h in config.heads]},
        ood=fit_model_ood(sb, dict(zip(songs, groups))),
    )
    return metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", choices=("fast", "accurate"))
    parser.add_argument("--root", type=Path, default=REPO.parent / "shared/data/4q/MER_audio_taffc_dataset")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "moodscope" / "features")
    parser.add_argument("--runs", type=Path, default=REPO / "runs")
    args = parser.parse_args()
    start = time.time()
    metrics = (
        train_fast(args.root, args.cache, args.runs) if args.model == "fast" else train_accurate(args.root, args.cache)
    )
    METRICS.mkdir(parents=True, exist_ok=True)
    (METRICS / f"{args.model}.json").write_text(json.dumps(metrics, indent=1))
    print(json.dumps(metrics.get("cross_validation", metrics), indent=1)[:3000])
    print(f"{args.model}: done in {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
