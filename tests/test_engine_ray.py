"""The ray engine on a local Ray cluster (``ray.init(num_cpus=2)``, one per module): the same results as
the local engine for analyze, library scan and features; a worker killed mid-run; bad files; a
file that keeps killing its worker; a resumed Parquet dataset."""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from conftest import shared_data
from moodscope.engine.analysis import analyze_files
from moodscope.engine.base import WORKER_DIED, FileResult
from moodscope.engine.features import build_cache
from moodscope.library import MoodLibrary
from moodscope.models.checkpoint import save_random_checkpoint
from test_engine import alive, descendants, reap, title

ray = pytest.importorskip("ray", reason="the ray engine needs Ray: pip install -e '.[ray]'")
pytestmark = pytest.mark.timeout(600)  # a pipeline that waits forever fails its test, not the whole CI run

CLIPS = ("Q1", "Q2", "Q3", "Q4")


@pytest.fixture(scope="module")
def engine():
    from moodscope.engine.ray_engine import RayEngine

    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the test's jobs and models
    try:
        with RayEngine() as engine:
            yield engine
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> str:
    return str(save_random_checkpoint(tmp_path_factory.mktemp("model") / "tiny.pt"))


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    """Real 30-s clips, two per quadrant, as links in a folder of their own."""
    root = shared_data("4q", "MER_audio_taffc_dataset")
    folder = tmp_path_factory.mktemp("clips")
    for q in CLIPS:
        for clip in sorted((root / q).glob("*.mp3"))[:2]:
            (folder / clip.name).symlink_to(clip)
    return folder


@pytest.fixture(scope="module")
def with_bad_files(clips, tmp_path_factory) -> Path:
    """Three of the clips among an empty file, a text file and a 2-s WAV."""
    folder = tmp_path_factory.mktemp("mixed")
    for clip in sorted(clips.iterdir())[:3]:
        (folder / clip.name).symlink_to(clip.resolve())
    (folder / "empty.mp3").write_bytes(b"")
    (folder / "lyrics.mp3").write_text("la la la\n" * 100)
    sf.write(folder / "short.wav", np.zeros(2 * 22_050, np.float32), 22_050)
    return folder


def files(folder: Path) -> list[str]:
    return sorted(str(p) for p in folder.iterdir())


def all_cpus_free(timeout: float = 30.0) -> bool:
    """Whether every CPU of the test's Ray cluster is free within ``timeout`` seconds (Ray Data
    releases the actors of a pipeline that ended a moment after it ended)."""
    deadline = time.monotonic() + timeout
    while ray.available_resources().get("CPU", 0) < ray.cluster_resources()["CPU"]:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def no_workers(name: str, timeout: float = 30.0) -> bool:
    """Whether no Ray worker process titled with ``name`` is alive within ``timeout`` seconds (the
    actors of a pipeline that ended are killed, and their processes exit, a moment after it ended)."""
    deadline = time.monotonic() + timeout
    while ray_workers(name):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def assert_same_analyses(local, remote) -> None:
    assert [a.source for a in remote] == [a.source for a in local]
    for a, b in zip(local, remote):
        assert b.quadrants == a.quadrants and b.duration == pytest.approx(a.duration)
        np.testing.assert_allclose(b.probabilities, a.probabilities, atol=1e-5)
        np.testing.assert_allclose(b.va, a.va, atol=1e-5)
        assert (b.model, b.model_hash) == (a.model, a.model_hash)


# ---- analyze ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("actors", [True, False], ids=["model-actors", "model-in-decode-tasks"])
def test_dataset_of_good_and_bad_files_matches_the_local_engine_and_resumes(
    engine, with_bad_files, tiny_model, tmp_path, monkeypatch, actors
):
    """The same dataset from the local engine in one go and from the ray engine interrupted and resumed,
    with the model in actors of its own and in the decode tasks."""
    import moodscope.engine.dataset as dataset
    from moodscope.engine.dataset import analyze_to_dataset

    paths = files(with_bad_files)
    whole = analyze_to_dataset(paths, tmp_path / "whole", model=tiny_model, workers=2)
    assert len(whole.analysed) == 3 and len(whole.failed) == 3
    tracks = pd.read_parquet(tmp_path / "whole" / "tracks").sort_values("track", ignore_index=True)
    assert list(tracks["track"]) == paths  # every file once, the bad ones as rows with their error
    errors = tracks.set_index("track")["error"].dropna()
    assert errors.to_dict() == whole.failed
    assert tracks.set_index("track").loc[list(errors.index), "quadrant"].isna().all()
    segments = pd.read_parquet(tmp_path / "whole" / "segments")
    assert len(segments) == tracks["n_segments"].sum() > 0

    # on ray: interrupted after two tracks (one part per track), with a half-written part left behind
    monkeypatch.setattr(dataset, "TRACKS_PER_PART", 1)
    out = tmp_path / "resumed"
    ray_model = batched(tiny_model) if actors else tiny_model

    def stop_after_two(done: int, total: int) -> None:
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        analyze_to_dataset(paths, out, model=ray_model, engine=engine, progress=stop_after_two)
    assert all_cpus_free(), "the interrupted pipeline's model actors still hold the CPUs the next one needs"
    assert len(pd.read_parquet(out / "tracks")) == 2
    (out / "segments" / "part-killed-00000.parquet").write_bytes(b"PAR1 half written")
    (out / "tracks" / ".part-killed-00000.parquet.x.tmp").write_bytes(b"")

    again = analyze_to_dataset(paths, out, model=ray_model, engine=engine)
    assert len(again.skipped) == 2 and len(again.analysed) + len(again.failed) == len(paths) - 2
    assert {**again.failed} == {k: v for k, v in whole.failed.items() if k not in again.skipped}
    for table, keys in (("tracks", ["track"]), ("segments", ["track", "start"])):
        resumed = pd.read_parquet(out / table).sort_values(keys, ignore_index=True)
        uninterrupted = pd.read_parquet(tmp_path / "whole" / table).sort_values(keys, ignore_index=True)
        pd.testing.assert_frame_equal(resumed, uninterrupted, rtol=0, atol=1e-5)
    assert not list(out.rglob("*.tmp")) and not (out / "segments" / "part-killed-00000.parquet").exists()


def test_cli_dataset_from_file_urls_on_ray(engine, clips, tiny_model, tmp_path, capsys):
    """``moodscope analyze file:///folder/ --engine ray --out DIR/``: fsspec URLs read by the Ray
    workers, the dataset readable by pyarrow and pandas with the local engine's results under the URLs,
    a missing URL a row with its error."""
    import pyarrow.dataset as pads

    from moodscope.cli import main

    paths = files(clips)
    local = analyze_files(paths, model=tiny_model, workers=2)
    missing = f"file://{tmp_path}/gone.mp3"
    out = tmp_path / "moods"
    argv = ["analyze", f"file://{clips}/", missing, "--engine", "ray", "--model", tiny_model, "--out", f"{out}/"]
    assert main(argv) == 1  # one input failed
    assert f"{out}: {len(paths)} analysed, 1 failed, 0 already in the dataset" in capsys.readouterr().err
    tracks = pads.dataset(out / "tracks", format="parquet").to_table().to_pandas().set_index("track").sort_index()
    assert list(tracks.index) == sorted([*(f"file://{p}" for p in paths), missing])
    assert tracks.loc[missing, "error"] == f"{missing}: no such file"
    by_url = {f"file://{a.source}": a for a in local.analyses}
    for url, a in by_url.items():
        row = tracks.loc[url]
        assert pd.isna(row["error"]) and row["quadrant"] == a.summary.quadrant
        assert row["n_segments"] == len(a.starts)
        assert [row[f"p_{q}"] for q in CLIPS] == pytest.approx([a.summary.probabilities[q] for q in CLIPS], abs=1e-5)
    segments = pd.read_parquet(out / "segments")
    assert sorted(set(segments["track"])) == sorted(by_url) and len(segments) == tracks["n_segments"].sum()
    assert main(argv) == 0  # resumed: nothing left to do (the missing URL stays a row with its error)
    assert f"{out}: 0 analysed, 0 failed, {len(paths) + 1} already in the dataset" in capsys.readouterr().err
    assert len(pd.read_parquet(out / "tracks")) == len(paths) + 1


def ray_workers(name: str, parent: int | None = None) -> list[int]:
    """Live Ray worker processes started by this process (or ``parent``) whose title contains ``name``."""
    return [p for p in descendants(parent or os.getpid()) if title(p).startswith("ray::") and name in title(p)]


def batched(model_path: str):
    """The checkpoint's model, run by the pipeline in model actors that batch segments across files
    (the paper's networks, being cheap, otherwise run in the decode tasks)."""
    from moodscope.analysis.pretrained import load_model

    model = copy.copy(load_model(model_path))  # not the loader's cached instance
    model.batch_across_files = True
    return model


def test_only_models_worth_batching_get_model_actors(tiny_model):
    from moodscope.analysis.pretrained import load_model
    from moodscope.engine.ray_engine import batches_across_files

    assert not batches_across_files(load_model(tiny_model))  # the paper's networks: in the decode tasks
    assert not batches_across_files(load_model("fast"))
    assert batches_across_files(load_model("accurate"))  # musicnn: actors batch it across files
    assert batches_across_files(KeptAliveModel()) and batches_across_files(batched(tiny_model))


SHAPES = {  # the pipeline's shapes: (model actors?, files per decode task when there are none)
    "model-actors": (True, 1),
    "model-in-decode-tasks": (False, 1),
    "model-in-decode-tasks-4-files-each": (False, 4),
}


def pipeline_shape(name: str, monkeypatch) -> bool:
    """Set up the pipeline shape ``name`` (:data:`SHAPES`: with 4 files per decode task, 4 files in a
    task however few tasks that makes); whether its model should be run in actors."""
    import moodscope.engine.ray_engine as ray_engine

    actors, files_per_task = SHAPES[name]
    monkeypatch.setattr(ray_engine, "FILES_PER_DECODE_TASK", files_per_task)
    monkeypatch.setattr(ray_engine, "DECODE_TASKS_PER_CPU", 0)  # no minimum count of tasks
    return actors


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds Ray's worker processes in /proc")
@pytest.mark.parametrize("shape", ["model-actors", "model-in-decode-tasks"])  # with 4 files a task, too quick to kill
def test_a_worker_killed_mid_run_still_gives_every_file_once(engine, clips, tiny_model, shape, monkeypatch):
    paths = files(clips)
    actors = pipeline_shape(shape, monkeypatch)
    model = batched(tiny_model) if actors else tiny_model
    local = analyze_files(paths, model=tiny_model, workers=2)
    assert no_workers("ModelActor"), "a model actor of an earlier pipeline is still alive"
    results = engine.analyze([(p, p) for p in paths], model)
    try:
        got = [next(results)]
        # while results stream, the pipeline's model actors (if it has any) are alive
        assert bool(ray_workers("ModelActor")) == actors
        killed = ray_workers("ModelActor")[:1] + ray_workers("decode_file")[:1]
        assert killed, "no Ray worker to kill: the pipeline finished too early"
        for pid in killed:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        got += list(results)
    finally:
        results.close()  # a failed assertion ends the pipeline here, while Ray is up
    assert sorted(r.key for r in got) == paths  # complete, and each file exactly once
    assert all(r.error is None for r in got), [r.error for r in got]
    assert_same_analyses(local.analyses, sorted((r.value for r in got), key=lambda a: a.source))


@ray.remote(num_cpus=0)
class Holder:
    """Keeps what it is given: a reference to a model actor that outlives its pipeline."""

    def __init__(self):
        self.kept = []

    def keep(self, handle) -> None:
        self.kept.append(handle)


class KeptAliveModel:
    """A model whose actors hand their own handle to the :class:`Holder` named 'holder'."""

    name = "kept-alive"

    def __init__(self):
        self.kept = False

    def segment_inputs(self, segments: np.ndarray) -> dict[str, np.ndarray]:
        return {"rms": np.sqrt((segments**2).mean(axis=1))}

    def predict_inputs(self, inputs):
        context = ray.get_runtime_context()
        if not self.kept and context.get_actor_id():
            ray.get(ray.get_actor("holder").keep.remote(context.current_actor))
            self.kept = True
        rms = np.clip(inputs["rms"], 0, 1)
        return np.stack([rms, 0 * rms, 1 - rms, 0 * rms], axis=1), None

    def predict_segments(self, segments):
        return self.predict_inputs(self.segment_inputs(segments))


def test_a_pipelines_model_actors_end_with_it_whoever_refers_to_them(engine, clips):
    """The model actors die when their pipeline ends, even while something still refers to them,
    so that they cannot hold the CPUs the next pipeline's actors need (it waited for them forever)."""
    holder = Holder.options(name="holder").remote()
    try:
        result = analyze_files(files(clips)[:4], model=KeptAliveModel(), engine=engine)
        assert len(result.analyses) == 4 and not result.failed
        assert all_cpus_free(), "a model actor outlived its pipeline and holds its CPU"
        assert len(analyze_files(files(clips)[:2], model=KeptAliveModel(), engine=engine).analyses) == 2
    finally:
        ray.kill(holder)


class CrashOnLoudModel:
    """Kills the process computing its inputs whenever a segment is loud: a decoder that crashes
    its worker on one file, every time."""

    name = "crash-on-loud"

    def segment_inputs(self, segments: np.ndarray) -> dict[str, np.ndarray]:
        if np.abs(segments).max() > 0.5:
            os._exit(7)
        return {"rms": np.sqrt((segments**2).mean(axis=1))}

    def predict_inputs(self, inputs):
        loud = np.clip(inputs["rms"] * 10, 0, 1)
        return np.stack([loud, 0 * loud, 1 - loud, 0 * loud], axis=1), None

    def predict_segments(self, segments):
        return self.predict_inputs(self.segment_inputs(segments))


class CrashOnLoudCheapModel(CrashOnLoudModel):
    """The same, run by the pipeline in its decode tasks (no model actors)."""

    batch_across_files = False


@pytest.mark.parametrize("shape", list(SHAPES))
def test_a_file_that_keeps_killing_its_worker_fails_alone(engine, tmp_path, shape, monkeypatch):
    """Also when its decode task holds other files: they are analysed again, each alone."""
    model = CrashOnLoudModel if pipeline_shape(shape, monkeypatch) else CrashOnLoudCheapModel
    t = np.arange(11 * 22_050) / 22_050
    for name, level in (("quiet1", 0.1), ("loud", 0.9), ("quiet2", 0.2)):
        sf.write(tmp_path / f"{name}.wav", (level * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 22_050)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = analyze_files(files(tmp_path), model=model(), engine=engine)
    assert result.failed == {str(tmp_path / "loud.wav"): f"{tmp_path / 'loud.wav'}: {WORKER_DIED}"}
    assert not [w for w in caught if "ModelActor" in str(w.message)]  # Ray Data's warning about idle actors
    assert [Path(a.source).name for a in result.analyses] == ["quiet1.wav", "quiet2.wav"]
    assert all(len(a.starts) == 2 for a in result.analyses)


# ---- library scan and features -------------------------------------------------------------------


def library_rows(db: Path) -> tuple[list, list]:
    conn = sqlite3.connect(db)
    try:
        tracks = conn.execute(
            "SELECT path, n_segments, quadrant, p_q1, p_q2, p_q3, p_q4, valence, arousal, model "
            "FROM tracks ORDER BY path"
        ).fetchall()
        segments = conn.execute(
            "SELECT t.path, s.idx, s.p_q1, s.p_q2, s.p_q3, s.p_q4 FROM segments s JOIN tracks t ON t.id = s.track_id "
            "ORDER BY t.path, s.idx"
        ).fetchall()
    finally:
        conn.close()
    return tracks, segments


def test_library_scan_on_ray_stores_what_the_local_engine_stores(engine, with_bad_files, tiny_model, tmp_path):
    results = {}
    for name, options in (("local", {"workers": 2}), ("ray", {"engine": engine})):
        with MoodLibrary(tmp_path / f"{name}.db") as lib:
            results[name] = lib.scan(with_bad_files, model=tiny_model, **options)
    assert sorted(results["ray"].analysed) == sorted(results["local"].analysed) and len(results["ray"].analysed) == 3
    assert results["ray"].failed == results["local"].failed and len(results["ray"].failed) == 3
    (local_tracks, local_segments), (ray_tracks, ray_segments) = (
        library_rows(tmp_path / "local.db"),
        library_rows(tmp_path / "ray.db"),
    )
    assert [r[:3] + r[-1:] for r in ray_tracks] == [r[:3] + r[-1:] for r in local_tracks]
    np.testing.assert_allclose([r[3:9] for r in ray_tracks], [r[3:9] for r in local_tracks], atol=1e-5)
    assert [r[:2] for r in ray_segments] == [r[:2] for r in local_segments]
    np.testing.assert_allclose([r[2:] for r in ray_segments], [r[2:] for r in local_segments], atol=1e-5)


def test_features_on_ray_are_the_local_engine_features(engine, with_bad_files, tmp_path):
    from moodscope.features.cache import load_track_features

    items = [(Path(p).name, Path(p)) for p in files(with_bad_files)]
    local = build_cache(items, tmp_path / "local", workers=2)
    remote = build_cache(items, tmp_path / "ray", engine=engine)
    assert sorted(remote.extracted) == sorted(local.extracted) and len(local.extracted) == 3
    assert remote.failed == local.failed and len(local.failed) == 3
    for track_id in local.extracted:
        a, b = load_track_features(tmp_path / "local", track_id), load_track_features(tmp_path / "ray", track_id)
        for name, value in a.as_dict().items():
            np.testing.assert_allclose(getattr(b, name), value, rtol=1e-6, atol=1e-6)


def test_cli_scan_and_features_on_ray_give_the_local_engine_results(engine, with_bad_files, tiny_model, tmp_path):
    """``library scan --engine ray`` and ``features --engine ray``: the same library rows and feature
    files as the same commands on the local engine (the options reach the engine)."""
    from moodscope.cli import main
    from moodscope.features.cache import load_track_features, store_dir

    for name, options in (("local", ["--workers", "2"]), ("ray", ["--engine", "ray"])):
        scan = ["library", "scan", str(with_bad_files), "--db", str(tmp_path / f"{name}.db"), "--model", tiny_model]
        assert main([*scan, *options]) == 1  # three bad files
        assert main(["features", str(with_bad_files), "--out", str(tmp_path / name), *options]) == 1
    (local_tracks, local_segments), (ray_tracks, ray_segments) = (
        library_rows(tmp_path / "local.db"),
        library_rows(tmp_path / "ray.db"),
    )
    assert len(ray_tracks) == 3 and [r[:3] for r in ray_tracks] == [r[:3] for r in local_tracks]
    np.testing.assert_allclose([r[3:9] for r in ray_tracks], [r[3:9] for r in local_tracks], atol=1e-5)
    assert len(ray_segments) == len(local_segments) > 0
    stores = [store_dir(tmp_path / name, with_bad_files.resolve().name) for name in ("local", "ray")]
    ids = sorted(p.stem for p in stores[0].glob("*.npz"))
    assert len(ids) == 3 and sorted(p.stem for p in stores[1].glob("*.npz")) == ids
    for track_id in ids:
        a, b = (load_track_features(store, track_id) for store in stores)
        for field, value in a.as_dict().items():
            np.testing.assert_allclose(getattr(b, field), value, rtol=1e-6, atol=1e-6)


class CrashJob:
    """Kills its process on items named 'crash*'."""

    @contextlib.contextmanager
    def running(self, *, in_worker: bool):
        yield

    def run(self, key: str, path: str) -> FileResult:
        if key.startswith("crash"):
            os._exit(3)
        return FileResult(key, os.getpid())


def test_map_a_job_that_kills_its_worker_on_one_file(engine):
    results = {r.key: r for r in engine.map(CrashJob(), [(k, f"/nowhere/{k}") for k in ("a", "crash", "b", "c")])}
    assert sorted(results) == ["a", "b", "c", "crash"]
    assert results["crash"].error == f"/nowhere/crash: {WORKER_DIED}"
    assert all(results[k].error is None and results[k].value != os.getpid() for k in "abc")


def test_a_one_file_command_prints_only_its_own_lines(tiny_model, tmp_path):
    """Ray's notices that are not the user's business stay off stderr: the token authentication it
    enables by default on a new local instance, and Ray Data's warnings about decoders or model
    actors that have no file to work on (one file, two CPUs)."""
    clip = tmp_path / "tone.wav"
    t = np.arange(12 * 22_050) / 22_050
    sf.write(clip, (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 22_050)
    env = {k: v for k, v in os.environ.items() if k != "RAY_AUTH_MODE"}  # as a user's shell has it
    cmd = [sys.executable, "-m", "moodscope", "analyze", str(clip), "--model", tiny_model, "--engine", "ray",
           "--workers", "2", "--out", str(tmp_path / "out.json")]  # fmt: skip
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Token authentication" not in done.stderr
    assert "Warning" not in done.stderr and "concurrency" not in done.stderr, done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("analyzed 1 of 1 files")


# ---- no orphans: the CLI killed from outside -------------------------------------------------------


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads processes from /proc (Linux)")
@pytest.mark.parametrize("how", ["terminate", "kill"])
def test_no_ray_process_outlives_a_killed_command(how, clips, tiny_model, tmp_path):
    """The Ray instance a command starts goes with it: its workers, raylet and GCS at once (Ray's own
    agents, which are no workers, exit by themselves within a minute, once their report to the dead
    GCS times out); on SIGTERM the command stops as on Ctrl-C."""
    cmd = [sys.executable, "-m", "moodscope", "analyze", str(clips), "--model", tiny_model, "--engine", "ray"]
    cmd += ["--workers", "2", "--out", f"{tmp_path / 'dataset'}/"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    started = time.monotonic()
    while not ray_workers("decode_file", proc.pid) and proc.poll() is None and time.monotonic() - started < 120:
        time.sleep(0.1)
    processes = descendants(proc.pid)
    assert proc.poll() is None and processes, "the command ended before its Ray workers could be seen"
    agents = {p for p in processes if title(p).startswith(("ray::DashboardAgent", "ray::RuntimeEnvAgent"))}
    getattr(proc, how)()
    try:
        _, err = proc.communicate(timeout=60)
    finally:
        survivors = reap(alive(processes - agents, wait=15))
        if how == "terminate":
            survivors |= reap(alive(agents, wait=15))
        reap(alive(agents))  # after a SIGKILL they would go within a minute; not left to the next tests
    assert not survivors, f"outlived the command: {[title(p) for p in survivors]}"
    if how == "terminate":
        assert proc.returncode == 128 + signal.SIGTERM
        assert err.strip().splitlines()[-1] == "moodscope: terminated"
