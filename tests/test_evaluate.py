"""`moodscope evaluate` on the shipped models and on `train` checkpoints, and `moodscope embed`."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from conftest import shared_data
from moodscope.analysis.accurate import segment_blocks
from moodscope.analysis.evaluation import evaluate_model, select_scope
from moodscope.analysis.pretrained import load_model
from moodscope.audio import load_audio, segment_audio
from moodscope.cli import main
from moodscope.constants import QUADRANTS
from moodscope.datasets import load_dataset
from moodscope.models.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint, save_random_checkpoint
from moodscope.version import __version__
from test_analyze_cli import write_audio
from test_models import one_torch_thread as one_torch_thread  # autouse fixture, applies here too

VA_POINTS = {"Q1": (0.6, 0.5), "Q2": (-0.5, 0.6), "Q3": (-0.6, -0.4), "Q4": (0.5, -0.6)}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Eight 6-11 s clips, two per quadrant, labelled with a quadrant and a valence/arousal point."""
    root = tmp_path_factory.mktemp("labelled")
    rows = []
    for i in range(8):
        q = QUADRANTS[i % 4]
        write_audio(root / f"clip{i}.wav", 6.0 + (i % 2) * 5, seed=i)
        v, a = VA_POINTS[q]
        rows.append({"path": f"clip{i}.wav", "quadrant": q, "valence": v + 0.01 * i, "arousal": a, "artist": f"a{i}"})
    pd.DataFrame(rows).to_csv(root / "labels.csv", index=False)
    return root


@pytest.mark.parametrize("name", ["accurate", "fast"])
def test_evaluate_runs_on_the_shipped_models(folder, name):
    result = evaluate_model(name, load_dataset("folder", folder))
    assert result["model"] == name and result["n_tracks"] == 8 and not result["failed"]
    assert result["model_hash"] == load_model(name).content_hash and result["moodscope_version"] == __version__
    song, segment = result["quadrants"]["song"], result["quadrants"]["segment"]
    assert song["n"] == 8 and np.sum(song["confusion"]) == 8 and segment["n"] == 4 * 1 + 4 * 2
    assert [sum(row) for row in song["confusion"]] == [2, 2, 2, 2]
    assert 0 <= song["macro_f1"] <= 1 and set(song["per_quadrant"]) == set(QUADRANTS)
    assert "va" not in result  # quadrant models: no regression measures
    assert "not trained on folder" in result["scope"]


def test_evaluate_regressor_gives_regression_measures(folder, tmp_path):
    path = save_random_checkpoint(tmp_path / "va.pt", task="va")
    result = evaluate_model(path, load_dataset("folder", folder))
    va = result["va"]
    assert va["song"]["n"] == 8 and va["segment"]["n"] == 12 and va["targets"] == "static"
    for level in ("song", "segment"):
        assert set(va[level]["valence"]) == {"r2", "pearson_r", "ccc", "rmse", "mae"}
    assert result["quadrants"]["song"]["n"] == 8


def test_evaluate_scores_only_a_checkpoints_test_songs(folder, tmp_path):
    path = save_random_checkpoint(tmp_path / "m.pt")
    payload = read_checkpoint(path)
    model, _ = load_checkpoint(path)
    meta = payload["meta"] | {"run": {"dataset": "folder"}, "split": {"test_songs": ["clip1", "clip2"]}}
    save_checkpoint(path, model, meta)
    dataset = load_dataset("folder", folder)
    scope = select_scope(load_model(path), dataset)
    assert sorted(t.track_id for t in scope.tracks) == ["clip1", "clip2"] and "held-out" in scope.description
    assert len(select_scope(load_model(path), dataset, all_tracks=True).tracks) == 8
    limited = select_scope(load_model("fast"), dataset, limit=5)
    assert [t.quadrant for t in limited.tracks] == ["Q1", "Q2", "Q3", "Q4", "Q1"]
    accurate = select_scope(load_model("accurate"), load_dataset("folder", folder))
    assert "training-set" not in accurate.description  # trained on 4q, not on this folder


def test_cli_evaluate_writes_a_report(folder, tmp_path, capsys):
    out = tmp_path / "eval"
    assert (
        main(["evaluate", "fast", "--dataset", "folder", "--root", str(folder), "--out", str(out), "--workers", "1"])
        == 0
    )
    printed = capsys.readouterr().out
    assert "quadrants, song: accuracy" in printed and "macro-F1" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["quadrants"]["song"]["n"] == 8
    assert (out / "confusion-song.png").read_bytes()[:4] == b"\x89PNG" and "Q4 calm/relaxed" in (
        out / "report.md"
    ).read_text()
    with pytest.raises(SystemExit):  # argparse: --limit must be positive
        main(["evaluate", "fast", "--dataset", "folder", "--root", str(folder), "--limit", "0"])


@pytest.mark.slow
def test_evaluate_shipped_models_on_real_4q_clips(capsys):
    root = shared_data("4q", "MER_audio_taffc_dataset")
    assert main(["evaluate", "fast", "--dataset", "4q", "--root", str(root), "--limit", "4", "--workers", "1"]) == 0
    printed = capsys.readouterr().out
    assert "quadrants, song" in printed and "(n = 4)" in printed
    assert "training-set figures" in printed  # trained on all 540 clips
    for name in ("accurate", "fast"):  # both refitted on all 540 clips
        scope = select_scope(load_model(name), load_dataset("4q", root))
        assert len(scope.tracks) == 540 and "training-set figures" in scope.description


# --- embed ---------------------------------------------------------------------------------------


def test_embed_writes_one_row_per_segment_with_the_accurate_descriptors(tmp_path, capsys):
    a = write_audio(tmp_path / "a.wav", 6.0)
    b = write_audio(tmp_path / "b.wav", 11.0, seed=3)
    bad = tmp_path / "bad.mp3"
    bad.write_bytes(b"not audio")
    out = tmp_path / "emb.parquet"
    code = main(["embed", str(a), str(b), str(bad), "--out", str(out), "--blocks", "msd_penultimate", "paper"])
    assert code == 1 and "bad.mp3" in capsys.readouterr().err  # reported; the others written
    frame = pd.read_parquet(out)  # files in the order the engine's workers finished them
    for _, rows in frame.groupby("track", sort=False):  # a file's rows together, in time order
        assert list(rows.index) == list(range(rows.index[0], rows.index[0] + len(rows)))
    frame = frame.sort_values(["track", "segment"]).reset_index(drop=True)
    assert list(frame["track"]) == [str(a), str(b), str(b)] and list(frame["segment"]) == [0, 0, 1]
    assert np.allclose(frame["start"], [0, 0, 5]) and np.allclose(frame["end"], [5, 5, 10])
    assert set(frame["moodscope_version"]) == {__version__}
    assert set(frame["model"]) == {"musicnn_msd_int8+paper_features"}
    expected = segment_blocks(segment_audio(load_audio(b)), ("msd_penultimate", "paper"))
    got = np.stack(frame["msd_penultimate"][1:])
    assert got.shape == (2, 200) and np.allclose(got, expected["msd_penultimate"], atol=1e-4)
    assert np.allclose(np.stack(frame["paper"][1:]), expected["paper"], rtol=1e-4, atol=1e-4)
    meta = json.loads(pq.read_schema(out).metadata[b"moodscope"])
    assert meta["blocks"]["paper"]["dim"] == 36 and meta["blocks"]["paper"]["names"][0] == "amplitude_envelope_mean"
    assert meta["blocks"]["msd_penultimate"]["names"] is None and meta["model_hash"] == frame["model_hash"][0]


def test_embed_default_blocks_are_the_accurate_models_and_failures_write_nothing(tmp_path, capsys):
    a = write_audio(tmp_path / "a.wav", 6.0)
    out = tmp_path / "emb.parquet"
    assert main(["embed", str(a), "--out", str(out)]) == 0
    columns = pq.read_schema(out).names
    assert [c for c in columns if c in load_model("accurate").blocks] == list(load_model("accurate").blocks)
    out.write_bytes(b"previous")
    short = write_audio(tmp_path / "short.wav", 2.0)
    assert main(["embed", str(short), "--out", str(out)]) == 1
    assert "too short" in capsys.readouterr().err and out.read_bytes() == b"previous"
    assert main(["embed", str(a), "--out", str(out), "--blocks", "nonsense"]) == 1


def test_evaluate_reproduces_the_test_metrics_of_training(folder, tmp_path):
    """A checkpoint evaluated through the analyze path scores its test songs exactly as training did."""
    from test_models import TINY

    out = tmp_path / "run"
    argv = ["train", "--model", "cnn", "--dataset", "folder", "--root", str(folder), "--cache", str(tmp_path / "c")]
    assert (
        main(
            [
                *argv,
                "--epochs",
                "1",
                "--threads",
                "1",
                "--workers",
                "1",
                "--out",
                str(out),
                "--config",
                json.dumps(TINY),
            ]
        )
        == 0
    )
    checkpoint = out / "fold0" / "best.pt"
    trained = read_checkpoint(checkpoint)["meta"]
    result = evaluate_model(checkpoint, load_dataset("folder", folder))
    assert result["n_tracks"] == len(trained["split"]["test_songs"])
    segment = result["quadrants"]["segment"]
    assert segment["confusion"] == trained["metrics"]["segment"]["confusion"]
    assert segment["macro_f1"] == pytest.approx(trained["metrics"]["segment"]["macro_f1"])
    assert result["quadrants"]["song"]["confusion"] == trained["metrics"]["song"]["confusion"]  # one song rule
