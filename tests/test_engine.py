"""The engine interface and the local engine: one result per file, dying workers, largest files first,
and no worker process outliving a killed or terminated ``moodscope`` command."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from moodscope.engine.base import WORKER_DIED, FileResult, largest_first
from moodscope.engine.jobs import AnalyzeJob
from moodscope.engine.local import LocalEngine
from moodscope.engine.registry import open_engine
from moodscope.errors import MoodscopeError
from moodscope.models.checkpoint import save_random_checkpoint

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads processes from /proc (Linux)")


@dataclass
class PidJob:
    """Reports the process that worked on each item; kills its process on items named 'crash*', and on
    items named 'flaky*' the first time only (a marker file remembers the first attempt)."""

    folder: str

    @contextlib.contextmanager
    def running(self, *, in_worker: bool):
        yield

    def run(self, key: str, path: str) -> FileResult:
        if key.startswith("crash"):
            os._exit(3)
        if key.startswith("flaky"):
            marker = Path(self.folder) / f"{key}.tried"
            if not marker.exists():
                marker.write_text("")
                os.kill(os.getpid(), signal.SIGKILL)
        if key.startswith("bad"):
            raise ValueError("not audio")
        return FileResult(key, os.getpid())


def items(*keys: str) -> list[tuple[str, str]]:
    return [(k, f"/nowhere/{k}.wav") for k in keys]


def test_every_item_once_and_a_dying_worker_fails_only_its_file(tmp_path):
    keys = ["a", "b", "crash1", "c", "flaky1", "d", "bad1", "e"]
    results = list(LocalEngine(workers=2).map(PidJob(str(tmp_path)), items(*keys)))
    assert sorted(r.key for r in results) == sorted(keys)
    by_key = {r.key: r for r in results}
    assert by_key["crash1"].value is None and by_key["crash1"].error == f"/nowhere/crash1.wav: {WORKER_DIED}"
    # killed once, then done by a fresh process
    assert by_key["flaky1"].error is None and by_key["flaky1"].value != os.getpid()
    assert by_key["bad1"].error == "/nowhere/bad1.wav: ValueError: not audio"
    good = [by_key[k] for k in "abcde"]
    assert all(r.error is None and r.value != os.getpid() for r in good)
    assert len({r.value for r in good}) >= 2  # the work was spread over processes


def test_one_worker_runs_in_this_process(tmp_path):
    results = list(LocalEngine(workers=1).map(PidJob(str(tmp_path)), items("a", "b", "bad1")))
    assert [r.value for r in results[:2]] == [os.getpid()] * 2
    assert results[2].error is not None


def test_largest_files_first(tmp_path):
    sizes = {"small": 10, "big": 1000, "middle": 100}
    for name, size in sizes.items():
        (tmp_path / name).write_bytes(b"x" * size)
    ordered = largest_first([(name, str(tmp_path / name)) for name in sizes] + [("gone", str(tmp_path / "gone"))])
    assert [key for key, _ in ordered] == ["big", "middle", "small", "gone"]


def test_engine_names():
    assert open_engine("local", workers=3).workers == 3
    with pytest.raises(MoodscopeError, match="unknown engine 'spark'"):
        open_engine("spark")
    with pytest.raises(MoodscopeError, match="--address is for the ray engine"):
        open_engine("local", address="ray://head:10001")


@dataclass
class SetupJob:
    """Reports the process that set it up (its own worker, or the parent whose setup it inherited)
    and the process that worked on each item."""

    set_up_in: int | None = None

    @contextlib.contextmanager
    def running(self, *, in_worker: bool):
        if self.set_up_in is None:
            self.set_up_in = os.getpid()
        yield

    def run(self, key: str, path: str) -> FileResult:
        return FileResult(key, (self.set_up_in, os.getpid()))


@pytest.mark.skipif(multiprocessing.get_start_method() != "fork", reason="workers inherit a setup only when forked")
def test_forked_workers_inherit_the_setup_done_once_in_this_process():
    results = list(LocalEngine(workers=2).map(SetupJob(), items(*"abcdef")))
    assert {r.value[0] for r in results} == {os.getpid()}  # set up here, not again in each worker
    assert len({r.value[1] for r in results} - {os.getpid()}) >= 1  # the work itself ran in the workers


def test_analyze_job_keeps_an_inherited_model_and_loads_one_otherwise(tiny_model):
    job = AnalyzeJob(tiny_model)
    with job.running(in_worker=False):
        loaded = job._loaded
        assert loaded is not None
        with job.running(in_worker=False):  # as in a forked worker: the parent's model, not a reload
            assert job._loaded is loaded
        assert job._loaded is loaded
    assert job._loaded is None


def test_closing_the_results_stops_the_workers(tmp_path):
    results = LocalEngine(workers=2).map(PidJob(str(tmp_path)), items(*"abcdefgh"))
    first = next(results)
    assert first.error is None
    workers = children(os.getpid())
    assert workers
    results.close()
    assert not alive(workers)


# ---- no orphans: the CLI killed from outside -------------------------------------------------------


def children(pid: int) -> set[int]:
    """Live child processes of ``pid`` (from /proc)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(entry.name))
    return found


def descendants(pid: int) -> set[int]:
    """Live processes below ``pid``: its children, theirs..."""
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = set().union(*(children(p) for p in frontier)) - found
        found |= frontier
    return found


def title(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def alive(pids: set[int], wait: float = 0.0) -> set[int]:
    """Those of ``pids`` still running (zombies count as gone) after waiting up to ``wait`` seconds."""
    deadline = time.monotonic() + wait
    while True:
        left = set()
        for pid in pids:
            try:
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if state != "Z":
                left.add(pid)
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.1)


def reap(pids: set[int]) -> set[int]:
    """Kill ``pids`` (survivors of a failed test, so they do not linger) and return them."""
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    return pids


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> str:
    return str(save_random_checkpoint(tmp_path_factory.mktemp("model") / "tiny.pt"))


@pytest.fixture(scope="module")
def music(tmp_path_factory) -> Path:
    """Enough audio that two workers are still busy seconds after they start."""
    folder = tmp_path_factory.mktemp("music")
    rng = np.random.default_rng(0)
    for i in range(16):  # 48 min of audio: a run takes far longer than the second the tests wait
        sf.write(folder / f"t{i:02d}.wav", 0.1 * rng.standard_normal(22_050 * 180), 22_050, subtype="PCM_16")
    return folder


def start_with_workers(cmd: list[str], n: int = 2) -> tuple[subprocess.Popen, set[int]]:
    """Start ``cmd`` and wait until it has ``n`` worker processes."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        workers = children(proc.pid)
        if len(workers) >= n:
            time.sleep(1.0)  # let them get to work
            return proc, workers
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"{cmd} did not start {n} workers: {proc.communicate()[1][-2000:]}")


def commands(music: Path, model: str, tmp_path: Path) -> dict[str, list[str]]:
    base = [sys.executable, "-m", "moodscope"]
    options = ["--model", model, "--workers", "2"]
    return {
        "analyze": [*base, "analyze", str(music), *options, "--format", "json"],
        "scan": [*base, "library", "scan", str(music), "--db", str(tmp_path / "lib.db"), *options],
    }


@linux_only
@pytest.mark.parametrize("command", ["analyze", "scan"])
def test_workers_exit_when_the_command_is_killed(command, music, tiny_model, tmp_path):
    proc, workers = start_with_workers(commands(music, tiny_model, tmp_path)[command])
    proc.kill()  # SIGKILL: the parent can do nothing about it
    proc.wait(timeout=30)
    assert not reap(alive(workers, wait=5.0)), "worker processes outlived their parent"


@linux_only
@pytest.mark.parametrize("command", ["analyze", "scan"])
def test_sigterm_shuts_down_like_ctrl_c(command, music, tiny_model, tmp_path):
    proc, workers = start_with_workers(commands(music, tiny_model, tmp_path)[command])
    proc.terminate()
    try:
        _, err = proc.communicate(timeout=60)
    finally:
        survivors = reap(alive(workers, wait=5.0))
    assert not survivors, "worker processes outlived their parent"
    assert proc.returncode == 128 + signal.SIGTERM
    assert err.strip().splitlines()[-1] == "moodscope: terminated"
    assert "Traceback" not in err


# ---- the Parquet dataset output, on the local engine -------------------------------------------------


def test_cli_dataset_output_resumes_and_keeps_failures_as_rows(tmp_path, capsys, tiny_model):
    import pandas as pd

    from moodscope.cli import main

    folder = tmp_path / "music"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for i, seconds in enumerate((6, 11, 16)):
        sf.write(folder / f"t{i}.wav", (0.2 * rng.standard_normal(22_050 * seconds)).astype(np.float32), 22_050)
    (folder / "lyrics.mp3").write_text("la la la\n" * 100)
    out = tmp_path / "moods"
    argv = ["analyze", str(folder), "--model", tiny_model, "--workers", "2", "--out", f"{out}/"]

    assert main(argv) == 1  # one file failed
    err = capsys.readouterr().err
    assert f"{out}: 3 analysed, 1 failed, 0 already in the dataset" in err and "lyrics.mp3" in err
    tracks = pd.read_parquet(out / "tracks").sort_values("track", ignore_index=True)
    segments = pd.read_parquet(out / "segments")
    assert [Path(t).name for t in tracks["track"]] == ["lyrics.mp3", "t0.wav", "t1.wav", "t2.wav"]
    assert tracks["error"].notna().tolist() == [True, False, False, False]
    assert tracks["n_segments"].tolist()[1:] == [1, 2, 3]
    assert len(segments) == 6 and set(segments["track"]) == set(tracks["track"][1:])
    assert (segments["model"] == tracks["model"][1]).all()

    sf.write(folder / "t3.wav", (0.2 * rng.standard_normal(22_050 * 7)).astype(np.float32), 22_050)
    assert main(argv) == 0  # only the new file is analysed
    assert f"{out}: 1 analysed, 0 failed, 4 already in the dataset" in capsys.readouterr().err
    again = pd.read_parquet(out / "tracks")
    assert sorted(again["track"]) == sorted([*tracks["track"], str(folder / "t3.wav")])  # each once
    assert len(pd.read_parquet(out / "segments")) == 7


def test_dataset_output_needs_a_folder(tmp_path, capsys, tiny_model):
    from moodscope.cli import main

    sf.write(tmp_path / "a.wav", np.zeros(22_050 * 6, np.float32), 22_050)
    (tmp_path / "file").write_text("")
    assert main(["analyze", str(tmp_path / "a.wav"), "--model", tiny_model, "--out", f"{tmp_path / 'file'}/"]) == 1
    assert f"{tmp_path / 'file'}: exists and is not a folder" in capsys.readouterr().err
    assert main(["analyze", str(tmp_path / "a.wav"), "--format", "dataset"]) == 1
    assert "--out DIR/" in capsys.readouterr().err


# ---- fsspec URLs as inputs ------------------------------------------------------------------------


def test_fsspec_urls_are_listed_and_analysed_like_local_files(tmp_path, tiny_model):
    """A memory:// prefix (fsspec's in-memory file system, what s3:// goes through too) stands for the
    audio files under it; each is analysed as the same file on disk is, under its URL; a missing
    URL is a result with its error."""
    fsspec = pytest.importorskip("fsspec", reason="URL inputs need fsspec: pip install -e '.[ray]'")
    from moodscope.engine.analysis import analyze_files
    from moodscope.engine.sources import list_audio

    rng = np.random.default_rng(2)
    fs = fsspec.filesystem("memory")
    root = f"/moodscope-{os.getpid()}-{tmp_path.name}"
    local = []
    for name, seconds in (("b/t0.wav", 6), ("a/t1.wav", 11)):
        path = tmp_path / name.replace("/", "-")
        sf.write(path, (0.2 * rng.standard_normal(22_050 * seconds)).astype(np.float32), 22_050)
        fs.pipe(f"{root}/{name}", path.read_bytes())
        local.append(str(path))
    fs.pipe(f"{root}/a/notes.txt", b"not audio")
    fs.pipe(f"{root}/a/.hidden.wav", b"")
    try:
        urls = list_audio([f"memory://{root}/"])
        assert urls == [f"memory://{root}/a/t1.wav", f"memory://{root}/b/t0.wav"]
        missing = f"memory://{root}/gone.wav"
        remote = analyze_files([*urls, missing], model=tiny_model, workers=1)
    finally:
        fs.rm(root, recursive=True)
    assert remote.failed == {missing: f"{missing}: no such file"}
    on_disk = analyze_files(local[::-1], model=tiny_model, workers=1).analyses
    assert [a.source for a in remote.analyses] == urls
    for a, b in zip(on_disk, remote.analyses):
        assert b.quadrants == a.quadrants
        np.testing.assert_allclose(b.probabilities, a.probabilities, atol=1e-6)
