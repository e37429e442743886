"""The on-disk feature store and `moodscope features` (moodscope.features.cache, moodscope.cli.features)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import moodscope.features.cache as cache
from conftest import fresh_python
from moodscope.cli import main
from moodscope.constants import N_FRAMES, N_MFCC, SAMPLE_RATE
from moodscope.engine.features import build_cache
from moodscope.features.cache import clip_segments, is_fresh, load_track_features, store_dir, track_file
from moodscope.features.extract import FEATURE_PARAMS, feature_params_hash


def write_tone(path: Path, seconds: float, freq: float, *, sr: int = SAMPLE_RATE) -> Path:
    t = np.arange(int(seconds * sr)) / sr
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), sr)
    return path


@pytest.fixture
def music(tmp_path) -> Path:
    """A folder of four good files (6 to 16 s, two sample rates, one in a subfolder)."""
    folder = tmp_path / "music"
    write_tone(folder / "a.wav", 6.0, 220.0)
    write_tone(folder / "b.wav", 11.0, 440.0, sr=44_100)
    write_tone(folder / "c.flac", 16.0, 880.0)
    write_tone(folder / "sub" / "d.wav", 7.0, 330.0)
    return folder


def items_of(folder: Path) -> list[tuple[str, Path]]:
    from moodscope.cli.features import dataset_items

    return dataset_items(str(folder), None)[1]


def npz_files(store: Path) -> list[Path]:
    return sorted(store.glob("*.npz"))


def assert_clean(store: Path) -> None:
    assert not list(store.rglob("*.tmp")), "temporary files left behind"
    for f in npz_files(store):
        with np.load(f) as data:
            assert {"mfcc", "delta", "delta2", "series", "static", "stamp", "params", "duration"} <= set(data.files)


def test_build_then_rerun_skips_everything(music, tmp_path):
    store = store_dir(tmp_path / "out", "music")
    assert store.name == f"music-{feature_params_hash()}"
    first = build_cache(items_of(music), store, workers=2)
    assert sorted(first.extracted) == ["a.wav", "b.wav", "c.flac", "sub/d.wav"]
    assert first.failed == {} and first.skipped == []
    assert first.audio_seconds == pytest.approx(6 + 11 + 16 + 7, abs=0.01)
    assert json.loads((store / "params.json").read_text()) == FEATURE_PARAMS
    assert_clean(store)

    n_segments = {"a.wav": 1, "b.wav": 2, "c.flac": 3, "sub/d.wav": 1}
    for track_id, n in n_segments.items():
        feats = load_track_features(store, track_id)
        assert len(feats) == n
        assert feats.mfcc.shape == (n, N_MFCC, N_FRAMES) and feats.static.shape == (n, 10)
    # track ids with a folder separator get a safe file name
    assert track_file(store, "sub/d.wav").name == "sub_d.wav.npz"

    again = build_cache(items_of(music), store, workers=2)
    assert again.extracted == [] and again.failed == {}
    assert sorted(again.skipped) == sorted(n_segments)


def test_changed_or_touched_file_is_extracted_again(music, tmp_path):
    store = tmp_path / "store"
    build_cache(items_of(music), store, workers=2)
    before = {f.name: f.stat().st_mtime_ns for f in npz_files(store)}

    write_tone(music / "b.wav", 12.0, 660.0, sr=44_100)  # new content
    st = (music / "a.wav").stat()
    os.utime(music / "a.wav", ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))  # touched only
    assert not is_fresh(store, "b.wav", music / "b.wav")

    result = build_cache(items_of(music), store, workers=2)
    assert sorted(result.extracted) == ["a.wav", "b.wav"]
    assert sorted(result.skipped) == ["c.flac", "sub/d.wav"]
    after = {f.name: f.stat().st_mtime_ns for f in npz_files(store)}
    assert after["c.flac.npz"] == before["c.flac.npz"]
    assert len(load_track_features(store, "b.wav")) == 2
    centroid = load_track_features(store, "b.wav").series[0, 3, 10:-10]
    assert np.median(centroid) == pytest.approx(660.0, rel=0.03)


def test_bad_files_are_reported_and_the_others_stored(music, tmp_path):
    (music / "empty.mp3").write_bytes(b"")
    (music / "lyrics.mp3").write_text("la la la\n" * 100)
    write_tone(music / "short.wav", 0.5, 440.0)
    sf.write(music / "silence.wav", np.zeros(6 * SAMPLE_RATE, np.float32), SAMPLE_RATE)
    t = np.arange(6 * 96_000) / 96_000
    sf.write(music / "surround.wav", np.repeat(0.2 * np.sin(2 * np.pi * 440 * t)[:, None], 6, axis=1), 96_000)
    items = [*items_of(music), ("ghost.wav", music / "ghost.wav")]

    store = tmp_path / "store"
    result = build_cache(items, store, workers=2)
    assert sorted(result.failed) == ["empty.mp3", "ghost.wav", "lyrics.mp3", "short.wav"]
    assert "empty.mp3: the file is empty" in result.failed["empty.mp3"]
    assert "lyrics.mp3: cannot decode as audio" in result.failed["lyrics.mp3"]
    assert "short.wav: too short" in result.failed["short.wav"]
    assert "ghost.wav: no such file" in result.failed["ghost.wav"]
    assert sorted(result.extracted) == ["a.wav", "b.wav", "c.flac", "silence.wav", "sub/d.wav", "surround.wav"]
    assert json.loads((store / "failures.json").read_text()) == result.failed
    assert np.isfinite(load_track_features(store, "silence.wav").static).all()
    assert_clean(store)

    # the failures are retried (and still fail) on the next run; the good files are skipped
    again = build_cache(items, store, workers=1)
    assert sorted(again.failed) == sorted(result.failed) and again.extracted == []


_REAL_EXTRACT = cache.extract_to_store


def _crash_on_c(store, track_id, path):
    """Stands in for a decoder that kills its process (a segfault, the OOM killer) on one file."""
    if track_id == "c.flac":
        os._exit(1)
    return _REAL_EXTRACT(store, track_id, path)


@pytest.mark.skipif(sys.platform != "linux", reason="the worker must inherit the patch by fork")
def test_a_dying_worker_fails_only_its_file(music, tmp_path, monkeypatch):
    monkeypatch.setattr(cache, "extract_to_store", _crash_on_c)
    store = tmp_path / "store"
    result = build_cache(items_of(music), store, workers=2)
    assert list(result.failed) == ["c.flac"]
    assert "died" in result.failed["c.flac"] and "c.flac" in result.failed["c.flac"]
    assert sorted(result.extracted) == ["a.wav", "b.wav", "sub/d.wav"]
    assert_clean(store)


def test_interrupted_run_resumes_with_the_missing_files(music, tmp_path, monkeypatch):
    store = tmp_path / "store"
    real = cache.extract_to_store
    calls = []

    def interrupt_after_two(*args):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(args[1])
        return real(*args)

    monkeypatch.setattr(cache, "extract_to_store", interrupt_after_two)
    with pytest.raises(KeyboardInterrupt):
        build_cache(items_of(music), store, workers=1)
    assert len(npz_files(store)) == 2
    monkeypatch.setattr(cache, "extract_to_store", real)

    result = build_cache(items_of(music), store, workers=2)
    assert sorted(result.skipped) == sorted(calls)
    assert sorted(result.extracted) == sorted({"a.wav", "b.wav", "c.flac", "sub/d.wav"} - set(calls))
    assert_clean(store)


def test_killed_cli_leaves_only_whole_files_and_resumes(tmp_path):
    """SIGKILL a real `python -m moodscope features` mid-run; the next run does only what is missing."""
    folder = tmp_path / "many"
    for i in range(24):
        write_tone(folder / f"t{i:02d}.wav", 20.0, 200.0 + 40 * i)
    out = tmp_path / "out"
    store = store_dir(out, "many")
    cmd = [sys.executable, "-m", "moodscope", "features", str(folder), "--out", str(out), "--workers", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(npz_files(store)) < 3:
            time.sleep(0.01)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    done = {f.name for f in npz_files(store)}
    assert 3 <= len(done) < 24, "the run was not interrupted midway; make the files longer"
    for f in npz_files(store):  # whatever is there is whole
        with np.load(f) as data:
            assert data["mfcc"].shape == (4, N_MFCC, N_FRAMES)

    result = build_cache(items_of(folder), store, workers=2)
    assert {track_file(store, t).name for t in result.skipped} == done
    assert len(result.extracted) == 24 - len(done) and result.failed == {}
    assert_clean(store)  # including a temporary file the kill may have left


def test_cli_exit_status(music, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["features", str(music), "--out", str(out), "--workers", "2"]) == 0
    text = capsys.readouterr().out
    assert "4 extracted" in text and "0 failed" in text
    assert main(["features", str(music), "--out", str(out), "--workers", "1"]) == 0
    assert "4 already cached" in capsys.readouterr().out

    (music / "broken.mp3").write_text("not audio")
    assert main(["features", str(music), "--out", str(out), "--workers", "2"]) == 1
    captured = capsys.readouterr()
    assert "1 failed" in captured.out
    assert "FAILED broken.mp3" in captured.err and "broken.mp3: cannot decode as audio" in captured.err
    store = store_dir(out, "music")
    for f in npz_files(store):
        assert len(load_track_features(store, f.name.removesuffix(".npz").replace("sub_", "sub/"))) >= 1


def test_cli_errors_on_a_missing_folder(tmp_path, capsys):
    assert main(["features", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")]) == 1
    assert "nowhere" in capsys.readouterr().err


def test_load_track_features_says_what_to_do(tmp_path):
    from moodscope.errors import MoodscopeError

    with pytest.raises(MoodscopeError, match="run `moodscope features` first"):
        load_track_features(tmp_path, "nothing")


def test_clip_segments():
    assert clip_segments(12) == 12
    assert clip_segments(12, clip_seconds=45.0) == 9
    assert clip_segments(12, clip_seconds=45.0, drop_last=True) == 8
    assert clip_segments(6, clip_seconds=45.0, drop_last=True) == 5
    assert clip_segments(1, drop_last=True) == 1


FREED_MEMORY_PROBE = """
import sys
import numpy as np
from moodscope.engine.jobs import ExtractJob

def resident() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096

def file_sized_arrays() -> None:
    arrays = [np.ones(1 << 20) for _ in range(6)]  # 6 x 8 MB, about what one long file's features take
    del arrays

file_sized_arrays()  # a first file: glibc raises its dynamic thresholds to this size
before = resident()
with ExtractJob("/nowhere").running(in_worker=sys.argv[1] == "worker"):
    file_sized_arrays()
    print(resident() - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc, read from /proc (Linux)")
def test_feature_workers_keep_freed_memory_for_the_next_file():
    """A feature worker reuses the memory of its last file instead of handing it back to the system
    and faulting it in again zero-filled (4,500 page faults per clip); the caller's process is left alone."""

    def kept(where: str) -> int:
        return int(fresh_python(FREED_MEMORY_PROBE, where))

    assert kept("worker") > 40 << 20
    assert kept("caller") < 16 << 20


def test_the_caller_imports_the_decoders_that_forked_workers_inherit():
    """The local engine sets a job up in its own process before forking the workers
    (``set_up_for_forked_workers``): the decoders' bindings are then imported once, not per worker."""
    code = (
        "import sys\n"
        "from moodscope.engine.jobs import ExtractJob\n"
        "with ExtractJob('/nowhere').running(in_worker=False):\n"
        "    print(*[m in sys.modules for m in ('soundfile', 'soxr', 'numpy.fft')])"
    )
    out = fresh_python(code)
    assert out.split() == ["True", "True", "True"]
