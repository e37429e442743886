"""``moodscope train --shipped accurate|fast`` end to end on a tiny 4Q-shaped dataset (tiny settings)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import write_audio
from moodscope.analysis.pretrained import load_model
from moodscope.cli import main
from moodscope.constants import QUADRANTS
from moodscope.models.checkpoint import read_checkpoint

TINY_CONFIG = json.dumps({"filters": [4, 8, 8], "hidden": 8, "lstm_units": 8})


def tiny_fourq(root: Path, per_quadrant: int = 4) -> Path:
    """A 4Q folder of ``per_quadrant`` 6-s tones per quadrant, one artist each (pitch and noise vary by quadrant)."""
    songs = [(f"MT{q}{k:08d}", f"Q{q}") for q in range(1, 5) for k in range(per_quadrant)]
    root.mkdir(parents=True)
    rows = ["Song,Quadrant"] + [f"{s},{q}" for s, q in songs]
    (root / "panda_dataset_taffc_annotations.csv").write_text("\n".join(rows) + "\n")
    head = '"Song","Artist","Title","Quadrant","PQuad","MoodsTotal","Moods","MoodsFoundStr","MoodsStr",'
    head += '"MoodsStrSplit","Genres","GenresStr","Sample","SampleURL"'
    rows = [head] + [
        f'"{s}","Artist {k}","Title {k}","{q}",0.5,1,1,"calm","Calm","Calm",1,"Rock",1,"http://x"'
        for k, (s, q) in enumerate(songs)
    ]
    (root / "panda_dataset_taffc_metadata.csv").write_text("\n".join(rows) + "\n")
    for k, (s, q) in enumerate(songs):
        write_audio(root / q / f"{s}.wav", 6.0, freq=110.0 * 2 ** QUADRANTS.index(q) + 7 * k, seed=k)
    return root


@pytest.fixture(scope="module")
def fourq(tmp_path_factory) -> Path:
    return tiny_fourq(tmp_path_factory.mktemp("shipped") / "MER_audio_taffc_dataset")


def test_train_shipped_accurate_runs_nested_cv_and_writes_a_calibrated_checkpoint(fourq, tmp_path, capsys):
    out = tmp_path / "accurate.pt"
    args = ["train", "--shipped", "accurate", "--root", str(fourq), "--out", str(out), "--cache", str(tmp_path)]
    assert main([*args, "--folds", "2", "--nested-seeds", "1"]) == 0
    printed = capsys.readouterr().out
    assert "nested CV (1 seeds x 2 folds, 16 songs)" in printed and "temperature" in printed
    meta = read_checkpoint(out)["meta"]
    assert meta["config"]["head"] == "va-product" and meta["config"]["temperature"] > 0
    assert meta["ood"]["blocks"] == ["msd_penultimate", "mtt_penultimate", "msd_mean_pool", "mtt_mean_pool"]
    assert meta["licence"].startswith("research use only")
    nested = meta["metrics"]["nested"]
    assert nested["n_songs"] == 16 and len(nested["macro_f1"]["values"]) == 1
    assert np.sum(nested["confusion_summed_over_seeds"]) == 16
    assert meta["metrics"]["selection"]["C"] in meta["train_config"]["Cs"]
    assert meta["metrics"]["headline"]["figures"]["song_macro_f1"] == nested["macro_f1"]["mean"]
    model = load_model(out)
    probs, _ = model.predict_segments(np.zeros((1, model_segment_samples()), np.float32))
    assert probs.shape == (1, 4) and np.isclose(probs.sum(), 1.0)


def model_segment_samples() -> int:
    from moodscope.constants import SEGMENT_SAMPLES

    return SEGMENT_SAMPLES


def test_train_shipped_fast_cross_validates_then_refits_on_all_clips(fourq, tmp_path, capsys):
    out = tmp_path / "fast.pt"
    args = ["train", "--shipped", "fast", "--root", str(fourq), "--out", str(out), "--cache", str(tmp_path)]
    assert (
        main([*args, "--folds", "2", "--epochs", "2", "--threads", "1", "--workers", "1", "--config", TINY_CONFIG]) == 0
    )
    assert "refitted on all clips" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "fast-cv").iterdir()) == ["fold0", "fold1"]
    meta = read_checkpoint(out)["meta"]
    assert meta["arch"] == "hybrid" and meta["run"]["folds"] == "all" and "split" not in meta
    assert meta["ood"]["blocks"] == ["paper"]  # the out-of-distribution score's statistics, fitted here
    metrics = meta["metrics"]
    assert 1 <= metrics["epochs"] <= 2 and len(metrics["fold_best_epochs"]) == 2
    assert np.sum(metrics["cross_validation"]["pooled_song"]["confusion"]) == 16
    model = load_model(out)
    assert model.meta["weights_sha256"] == meta["weights_sha256"]


def test_train_needs_a_model_or_shipped(capsys):
    assert main(["train", "--dataset", "4q", "--root", "."]) != 0
    assert "--shipped" in capsys.readouterr().err
