"""``moodscope analyze`` and ``moodscope demo`` smoke tests with a tiny random model, in-process.

Odd and broken inputs, the three file formats read back against each other, plots, a bad
``--model``, the demo and ``--help``. Audio is generated here (6-15 s), so the file runs in seconds.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from moodscope.cli import main
from moodscope.constants import QUADRANTS, SEGMENT_SECONDS
from moodscope.models.checkpoint import save_random_checkpoint

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> str:
    return str(save_random_checkpoint(tmp_path_factory.mktemp("model") / "tiny.pt"))


def music_like(seconds: float, sr: int, channels: int = 1, seed: int = 0) -> np.ndarray:
    """A few notes with a tremolo and some noise [shape=(n, channels)], so segments differ."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    pitch = 220.0 * 2 ** (np.floor(t / 1.5) % 5 / 4)  # a note every 1.5 s
    y = 0.3 * np.sin(2 * np.pi * np.cumsum(pitch) / sr) * (1 + 0.5 * np.sin(2 * np.pi * 0.7 * t))
    y = y + 0.02 * rng.standard_normal(len(t))
    columns = [np.roll(y, 97 * c) * (1 - 0.1 * c) for c in range(channels)]
    return np.stack(columns, axis=1).astype(np.float32)


def write_audio(path, seconds: float, *, sr: int = 44_100, channels: int = 1, seed: int = 0, **kw):
    sf.write(path, music_like(seconds, sr, channels, seed), sr, **kw)
    return path


def write_m4a(path, seconds: float, *, sr: int = 44_100):
    """AAC in an MP4 container, encoded with FFmpeg through PyAV."""
    import av

    y = np.ascontiguousarray(music_like(seconds, sr, channels=2).T)  # (2, n) planar
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=sr, layout="stereo")
        for start in range(0, y.shape[1], 1024):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(y[:, start : start + 1024]), format="fltp")
            frame.sample_rate = sr
            frame.pts = start
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def read_json(path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))


# --- odd but usable inputs ------------------------------------------------------------------------


def truncated_mp3(tmp_path):
    """A 14-s MP3 cut in half, as by an interrupted download: the first ~7 s still decode."""
    full = write_audio(tmp_path / "full.mp3", 14.0, channels=2, format="MP3")
    data = full.read_bytes()
    path = tmp_path / "truncated.mp3"
    path.write_bytes(data[: len(data) // 2])
    full.unlink()
    return path, (5.0, 9.0)


ODD_INPUTS = {
    # name: (writer, accepted decoded-duration range in seconds)
    "truncated.mp3": truncated_mp3,
    "mono-8k.wav": lambda d: (write_audio(d / "mono-8k.wav", 11.0, sr=8_000), (10.9, 11.1)),
    "six-channel-96k.flac": lambda d: (
        write_audio(d / "six-channel-96k.flac", 7.0, sr=96_000, channels=6, subtype="PCM_24"),
        (6.9, 7.1),
    ),
    "aac.m4a": lambda d: (write_m4a(d / "aac.m4a", 12.0), (11.9, 12.2)),
}


@pytest.mark.parametrize("name", list(ODD_INPUTS))
def test_odd_inputs_are_analysed(name, tmp_path, capsys, tiny_model):
    path, (low, high) = ODD_INPUTS[name](tmp_path)
    out = tmp_path / "out.json"
    code, _, err = run(capsys, "analyze", str(path), "--model", tiny_model, "--format", "json", "--out", str(out))
    assert code == 0, err
    [track] = read_json(out)
    assert track["track"] == str(path)
    assert low <= track["duration"] <= high
    assert len(track["segments"]) == math.floor(track["duration"] / SEGMENT_SECONDS)
    for seg in track["segments"]:
        assert sum(seg["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
        assert -1 <= seg["valence"] <= 1 and -1 <= seg["arousal"] <= 1


def test_single_file_prints_summary_and_timeline(tmp_path, capsys, tiny_model):
    path = write_audio(tmp_path / "song.wav", 12.0, sr=22_050)
    code, out, err = run(capsys, "analyze", str(path), "--model", tiny_model)
    assert code == 0, err
    assert str(path) in out and "mood: Q" in out and "2 segments" in out
    assert "start    end  quad" in out  # one file: the timeline is shown
    assert len([line for line in out.splitlines() if line.startswith("      0.0    5.0")]) == 1


# --- broken inputs --------------------------------------------------------------------------------

BROKEN_INPUTS = {
    # name: (make the file, words the reason must contain)
    "empty.mp3": (lambda p: p.write_bytes(b""), "empty"),
    "notes.mp3": (lambda p: p.write_text("this is a text file, not an MP3\n" * 20), "cannot decode"),
    "missing.wav": (lambda p: None, "no such file"),
    "short.wav": (lambda p: write_audio(p, 3.0), "too short"),
}


@pytest.mark.parametrize("name", list(BROKEN_INPUTS))
def test_broken_input_fails_with_its_reason(name, tmp_path, capsys, tiny_model):
    make, reason = BROKEN_INPUTS[name]
    path = tmp_path / name
    make(path)
    out = tmp_path / "out.csv"
    code, stdout, err = run(capsys, "analyze", str(path), "--model", tiny_model, "--format", "csv", "--out", str(out))
    assert code == 1
    assert "1 of 1 files failed" in err
    [line] = [line for line in err.splitlines() if str(path) in line]
    assert reason in line
    assert "Traceback" not in err and stdout == ""


def test_folder_with_a_bad_file_analyses_the_others(tmp_path, capsys, tiny_model):
    folder = tmp_path / "music"
    (folder / "sub").mkdir(parents=True)
    good = [
        write_audio(folder / "a.wav", 11.0, seed=1),
        write_audio(folder / "sub" / "b.flac", 15.0, sr=48_000, channels=2, seed=2),
        write_audio(folder / "c.ogg", 6.0, seed=3),
    ]
    bad = folder / "broken.mp3"
    bad.write_bytes(b"ID3\x03\x00\x00\x00\x00\x00\x00" + bytes(range(256)) * 8)  # a tag, then garbage
    (folder / "cover.jpg").write_bytes(b"\xff\xd8\xff")  # not an audio extension: ignored
    out = tmp_path / "out.json"
    code, _, err = run(
        capsys,
        *("analyze", str(folder), "--model", tiny_model, "--format", "json", "--out", str(out), "--workers", "2"),
    )
    assert code == 1
    tracks = read_json(out)
    assert [t["track"] for t in tracks] == [str(p) for p in sorted(good)]
    assert [len(t["segments"]) for t in tracks] == [2, 1, 3]  # a.wav 11 s, c.ogg 6 s, sub/b.flac 15 s
    assert "1 of 4 files failed" in err
    [line] = [line for line in err.splitlines() if str(bad) in line]
    assert "cannot decode" in line
    assert "cover.jpg" not in err


# --- output formats -------------------------------------------------------------------------------


def test_json_csv_parquet_agree(tmp_path, capsys, tiny_model):
    files = [write_audio(tmp_path / "one.wav", 11.0, seed=4), write_audio(tmp_path / "two.flac", 15.0, seed=5)]
    outputs = {fmt: tmp_path / f"out.{fmt}" for fmt in ("json", "csv", "parquet")}
    for fmt, out in outputs.items():
        code, stdout, err = run(
            capsys,
            *("analyze", *map(str, files), "--model", tiny_model, "--format", fmt, "--out", str(out)),
            "--workers",
            "1",
        )
        assert code == 0, err
        assert stdout == ""

    tracks = read_json(outputs["json"])
    from_json = pd.DataFrame(
        [
            {"track": t["track"], "start": s["start"], "quadrant": s["quadrant"]}
            | {f"p_{q}": s["probabilities"][q] for q in QUADRANTS}
            for t in tracks
            for s in t["segments"]
        ]
    )
    frames = {"json": from_json, "csv": pd.read_csv(outputs["csv"]), "parquet": pd.read_parquet(outputs["parquet"])}
    assert [len(f) for f in frames.values()] == [2 + 3] * 3
    for name, frame in frames.items():
        assert list(frame["track"]) == [str(files[0])] * 2 + [str(files[1])] * 3, name
        assert np.allclose(frame["start"], [0, 5, 0, 5, 10]), name
        assert list(frame["quadrant"]) == list(frames["parquet"]["quadrant"]), name
        probs = frame[[f"p_{q}" for q in QUADRANTS]].to_numpy()
        assert np.allclose(probs, frames["parquet"][[f"p_{q}" for q in QUADRANTS]].to_numpy(), atol=1e-4), name
        assert list(frame["quadrant"]) == [QUADRANTS[i] for i in probs.argmax(axis=1)], name
    summary = tracks[1]["summary"]
    two = frames["parquet"][frames["parquet"]["track"] == str(files[1])]
    assert summary["probabilities"]["Q1"] == pytest.approx(two["p_Q1"].mean(), abs=1e-4)


def test_csv_to_stdout(tmp_path, capsys, tiny_model):
    path = write_audio(tmp_path / "song.wav", 11.0)
    code, out, err = run(capsys, "analyze", str(path), "--model", tiny_model, "--format", "csv")
    assert code == 0, err
    frame = pd.read_csv(__import__("io").StringIO(out))
    assert list(frame.columns[:5]) == ["track", "start", "end", "quadrant", "mood"]
    assert len(frame) == 2


def test_out_suffix_chooses_the_format(tmp_path, capsys, tiny_model):
    path = write_audio(tmp_path / "song.wav", 11.0)
    for suffix in ("json", "csv", "parquet", "txt"):
        out = tmp_path / f"result.{suffix}"
        code, stdout, err = run(capsys, "analyze", str(path), "--model", tiny_model, "--out", str(out))
        assert code == 0, err
        assert stdout == ""
    assert read_json(tmp_path / "result.json")[0]["track"] == str(path)
    assert len(pd.read_csv(tmp_path / "result.csv")) == 2
    assert len(pd.read_parquet(tmp_path / "result.parquet")) == 2
    assert "mood: Q" in (tmp_path / "result.txt").read_text()  # anything else: the table


def test_parquet_needs_out(tmp_path, capsys, tiny_model):
    path = write_audio(tmp_path / "song.wav", 6.0)
    code, _, err = run(capsys, "analyze", str(path), "--model", tiny_model, "--format", "parquet")
    assert code == 1
    assert err.strip() == "moodscope: error: --format parquet needs --out FILE.parquet (or --out - for standard output)"


# --- output paths: checked before analysing, kept when there is nothing to write -----------------


def strict_json(text: str):
    """json.loads that refuses NaN and Infinity (which are not JSON)."""

    def refuse(name):
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize("fill", [np.nan, np.inf, 1e20])
def test_damaged_audio_is_a_failure_naming_the_file_and_never_a_result(fill, tmp_path, capsys, tiny_model):
    good = write_audio(tmp_path / "good.wav", 6.0)
    y = music_like(8.0, 44_100, channels=2)
    y[3 * 44_100 : 3 * 44_100 + 4410] = fill
    bad = tmp_path / "bad.wav"
    sf.write(bad, y, 44_100, subtype="FLOAT")
    out = tmp_path / "out.json"
    code, _, err = run(
        capsys, "analyze", str(good), str(bad), "--model", tiny_model, "--out", str(out), "--workers", "1"
    )
    assert code == 1
    assert [t["track"] for t in strict_json(out.read_text())] == [str(good)]
    [line] = [line for line in err.splitlines() if "bad.wav" in line]
    assert "the audio is damaged" in line and "3.00 s" in line
    code, stdout, _ = run(capsys, "analyze", str(bad), "--model", tiny_model, "--format", "csv")
    assert code == 1 and stdout == ""


@pytest.mark.parametrize("fmt", ["json", "csv", "parquet", "txt"])
def test_a_run_where_every_file_fails_keeps_the_existing_output(fmt, tmp_path, capsys, tiny_model):
    out = tmp_path / f"out.{fmt}"
    code, _, err = run(capsys, "analyze", str(write_audio(tmp_path / "a.wav", 6.0)), "--model", tiny_model,
                       "--out", str(out))  # fmt: skip
    assert code == 0, err
    before = out.read_bytes()
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    code, _, err = run(capsys, "analyze", str(empty), "--model", tiny_model, "--out", str(out))
    assert code == 1
    assert out.read_bytes() == before
    assert f"{out} left as it was" in err


def test_out_dash_is_standard_output(tmp_path, capsys, tiny_model):
    path = write_audio(tmp_path / "song.wav", 6.0)
    code, stdout, err = run(capsys, "analyze", str(path), "--model", tiny_model, "--format", "json", "--out", "-")
    assert code == 0, err
    assert strict_json(stdout)[0]["track"] == str(path)
    assert not (tmp_path / "-").exists() and not __import__("pathlib").Path("-").exists()


def test_unknown_out_suffix_is_an_error_listing_the_formats(tmp_path, capsys, tiny_model):
    out = tmp_path / "out.xlsx"
    code, stdout, err = run(capsys, "analyze", str(write_audio(tmp_path / "a.wav", 6.0)), "--model", tiny_model,
                            "--out", str(out))  # fmt: skip
    assert code == 1 and stdout == "" and not out.exists()
    assert err.startswith(f"moodscope: error: {out}: moodscope does not write .xlsx files")
    assert all(s in err for s in (".json", ".csv", ".parquet", "--format"))
    code, _, err = run(capsys, "analyze", str(tmp_path / "a.wav"), "--model", tiny_model, "--plot",
                       str(tmp_path / "plot.xyz"))  # fmt: skip
    assert code == 1 and "cannot plot to .xyz files" in err and "png" in err


@pytest.mark.parametrize("where", ["folder", "proc", "plot-folder"])
def test_unwritable_outputs_fail_in_one_line_before_anything_is_analysed(where, tmp_path, capsys, monkeypatch):
    import moodscope.engine.analysis

    def must_not_run(*args, **kwargs):
        raise AssertionError("analysed before checking the output")

    monkeypatch.setattr(moodscope.engine.analysis, "analyze_files", must_not_run)
    (tmp_path / "existing").mkdir()
    option, path = {
        "folder": ("--out", tmp_path / "existing"),
        "proc": ("--out", "/proc/moodscope-x.json"),
        "plot-folder": ("--plot", tmp_path / "existing"),
    }[where]
    song = write_audio(tmp_path / "song.wav", 6.0)
    code, stdout, err = run(capsys, "analyze", str(song), "--model", "fast", option, str(path))
    assert code == 1 and stdout == ""
    assert err.startswith(f"moodscope: error: {path}: ") and err.count("\n") == 1


def test_a_read_only_folder_fails_before_analysing(tmp_path):
    """As another user would see it (root's permission override dropped): one line, nothing analysed."""
    import subprocess
    import sys

    from conftest import without_root_override

    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    empty = tmp_path / "empty.wav"  # analysing it would fail and list it: it must not get that far
    empty.write_bytes(b"")
    prefix = without_root_override()
    try:
        for option in ("--out", "--plot"):
            target = ro / ("out.json" if option == "--out" else "plot.png")
            proc = subprocess.run(
                [*prefix, sys.executable, "-m", "moodscope", "analyze", str(empty), "--model", "fast", option,
                 str(target)],
                capture_output=True, text=True,
            )  # fmt: skip
            assert proc.returncode == 1
            assert proc.stderr.startswith(f"moodscope: error: {target}: cannot be written in {ro}"), proc.stderr
            assert proc.stderr.count("\n") == 1 and "empty.wav" not in proc.stderr
    finally:
        ro.chmod(0o755)


# --- plots, models, demo, help --------------------------------------------------------------------


def assert_png(path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert len(data) > 10_000  # axes, two curves, shaded segments and a legend


def test_plot_writes_a_png(tmp_path, capsys, tiny_model):
    files = [write_audio(tmp_path / "one.wav", 11.0, seed=6), write_audio(tmp_path / "two.wav", 7.0, seed=7)]
    plot = tmp_path / "plots" / "out.png"
    code, out, err = run(
        capsys, "analyze", *map(str, files), "--model", tiny_model, "--plot", str(plot), "--workers", "1"
    )
    assert code == 0, err
    assert out.count("mood: Q") == 2
    assert_png(plot)
    assert f"plot written to {plot}" in err


@pytest.mark.parametrize("kind", ["missing", "garbage", "audio"])
def test_bad_model_is_a_one_line_error(kind, tmp_path, capsys):
    song = write_audio(tmp_path / "song.wav", 6.0)
    model = tmp_path / "model.pt"
    if kind == "garbage":
        model.write_text("not a checkpoint")
    elif kind == "audio":
        model = song
    code, out, err = run(capsys, "analyze", str(song), "--model", str(model))
    assert code == 1
    assert out == ""
    [line] = err.strip().splitlines()
    assert line.startswith("moodscope: error: ") and str(model) in line
    assert "weights_only" not in line  # torch's advice to unpickle untrusted files is not passed on


def test_demo_prints_a_table_and_writes_the_plot(tmp_path, capsys, tiny_model):
    plot = tmp_path / "p.png"
    code, out, err = run(capsys, "demo", "--model", tiny_model, "--plot", str(plot))
    assert code == 0, err
    assert "demo.ogg" in out and "mood: Q" in out and "start    end  quad" in out
    assert len([line for line in out.splitlines() if line.strip().endswith(tuple("0123456789"))]) >= 8
    assert "CC BY-SA 3.0" in out
    assert_png(plot)


def test_demo_with_a_bad_model(tmp_path, capsys):
    code, _, err = run(capsys, "demo", "--model", str(tmp_path / "nope.pt"), "--plot", str(tmp_path / "p.png"))
    assert code == 1
    assert "nope.pt" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "p.png").exists()


def test_in_process_run_restores_thread_settings(tmp_path, capsys, tiny_model):
    import threadpoolctl
    import torch

    path = write_audio(tmp_path / "song.wav", 6.0)
    torch_before = torch.get_num_threads()
    blas_before = [pool["num_threads"] for pool in threadpoolctl.threadpool_info()]
    assert run(capsys, "analyze", str(path), "--model", tiny_model)[0] == 0
    assert torch.get_num_threads() == torch_before
    assert [pool["num_threads"] for pool in threadpoolctl.threadpool_info()] == blas_before


def test_analyze_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["analyze", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for option in ("--model", "--format", "--out", "--plot", "--workers", "--timeline"):
        assert option in out


def test_quiet_verbose_after_the_command_and_elapsed_time(tmp_path, capsys, tiny_model):
    song = write_audio(tmp_path / "song.wav", 11.0)
    code, out, err = run(capsys, "analyze", str(song), "--model", tiny_model, "-v")  # -v after the command
    assert code == 0 and "mood: Q" in out
    assert "analyzed 1 of 1 files (0.2 min of audio) in " in err and "x real time" in err
    plot = tmp_path / "p.png"
    code, out, err = run(capsys, "analyze", str(song), "--model", tiny_model, "-q", "--plot", str(plot))
    assert code == 0 and "mood: Q" in out and err == ""  # -q: the result, no notes
    assert_png(plot)
    code, _, err = run(capsys, "-q", "analyze", str(tmp_path / "missing.wav"), "--model", tiny_model)
    assert code == 1 and "missing.wav" in err  # errors are still shown


def test_rows_tracks_gives_one_summary_row_per_track(tmp_path, capsys, tiny_model):
    from moodscope.analysis.analyzer import TRACK_COLUMNS

    a, b = write_audio(tmp_path / "a.wav", 16.0), write_audio(tmp_path / "b.wav", 11.0, seed=1)
    args = (str(a), str(b), "--model", tiny_model, "--workers", "1")
    assert run(capsys, "analyze", *args, "--rows", "tracks", "--out", str(tmp_path / "t.csv"))[0] == 0
    assert run(capsys, "analyze", *args, "--rows", "tracks", "--out", str(tmp_path / "t.parquet"))[0] == 0
    assert run(capsys, "analyze", *args, "--out", str(tmp_path / "s.csv"))[0] == 0
    assert run(capsys, "analyze", *args, "--format", "json", "--out", str(tmp_path / "t.json"))[0] == 0
    tracks, segments = pd.read_csv(tmp_path / "t.csv"), pd.read_csv(tmp_path / "s.csv")
    assert list(tracks.columns) == list(TRACK_COLUMNS) and len(tracks) == 2
    pd.testing.assert_frame_equal(tracks, pd.read_parquet(tmp_path / "t.parquet"), check_dtype=False)
    assert tracks.n_segments.tolist() == [3, 2] and segments.groupby("track").size().loc[str(a)] == 3
    for row, summary in zip(tracks.itertuples(), (t["summary"] for t in read_json(tmp_path / "t.json"))):
        assert row.quadrant == summary["quadrant"] and row.confidence == pytest.approx(summary["confidence"])
        assert [getattr(row, f"p_{q}") for q in QUADRANTS] == pytest.approx(list(summary["probabilities"].values()))


def test_help_says_what_accurate_is_and_how_many_tracks_a_plot_shows(capsys):
    from moodscope.constants import MAX_TRACKS_PER_PLOT

    with pytest.raises(SystemExit):
        main(["analyze", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "musicnn" in out and "moodscope models" in out
    assert f"the first {MAX_TRACKS_PER_PLOT} tracks only" in out


def test_plot_of_many_tracks_says_what_it_leaves_out():
    from moodscope.cli.analyze import plot_limit_note
    from moodscope.constants import MAX_TRACKS_PER_PLOT

    assert plot_limit_note(MAX_TRACKS_PER_PLOT) == ""
    assert f"first {MAX_TRACKS_PER_PLOT} of {MAX_TRACKS_PER_PLOT + 3} tracks" in plot_limit_note(
        MAX_TRACKS_PER_PLOT + 3
    )
