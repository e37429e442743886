"""``--engine ray --address ADDR``: analysis on a Ray cluster that was started outside moodscope (``ray
start --head``, as on a real cluster's head node), through the CLI; and an address where no cluster
answers, which must fail at once with one line rather than wait for ever."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from moodscope.cli import main
from moodscope.models.checkpoint import save_random_checkpoint
from test_engine import alive, descendants, reap

pytest.importorskip("ray", reason="the ray engine needs Ray: pip install -e '.[ray]'")

RAY = Path(sys.executable).with_name("ray")  # the `ray` command of this environment
STARTUP_S = 180  # `ray start` on a loaded 2-core machine
RUN_S = 300  # one CLI run on the cluster, bounded so that a hang fails the test instead of the suite
# Ray's authentication mode, always given: a ray.init() that starts a local instance (other tests, in this
# process) sets RAY_AUTH_MODE=token in os.environ when it finds a token, and child processes inherit it
NO_TOKEN = {"RAY_AUTH_MODE": "disabled"}


def token_mode(token: Path) -> dict[str, str]:
    return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def ray_cluster(log: Path, token: Path | None = None) -> Iterator[tuple[str, Path]]:
    """A one-CPU Ray cluster started by ``ray start --head`` on a free port, in a process group of its
    own; yields its address and its session folder. Stopped even when the test fails, by killing that
    process group: never ``ray stop``, which stops every Ray instance of the machine (other tests', other
    users'). ``token``: the file of its authentication token (Ray then requires it, as ``ray start`` does
    whenever it finds a token); without one, token authentication is disabled."""
    port = free_port()
    temp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # short: Ray's socket paths must fit in 107 bytes
    cmd = [str(RAY), "start", "--head", "--num-cpus", "1", "--port", str(port), "--disable-usage-stats", "--block",
           "--include-dashboard", "false", "--dashboard-agent-listen-port", str(free_port()),
           "--temp-dir", str(temp)]  # fmt: skip
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            env=os.environ | (token_mode(token) if token else NO_TOKEN),
        )  # fmt: skip
    try:
        deadline = time.monotonic() + STARTUP_S
        while b"Ray runtime started" not in log.read_bytes():
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"`ray start --head` started no cluster:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.2)
        yield f"127.0.0.1:{port}", temp / "session_latest"
    finally:
        processes = descendants(proc.pid) | {proc.pid}
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=30)
        reap(alive(processes, wait=10))  # any that left the group
        with contextlib.suppress(OSError):  # the cluster's own logs, kept for a failure's post-mortem
            skip = shutil.ignore_patterns("events", "export_events")
            shutil.copytree(temp / "session_latest" / "logs", log.parent / "ray-logs", ignore=skip, dirs_exist_ok=True)
        shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="module")
def two_clips(tmp_path_factory) -> tuple[Path, Path, str]:
    """Two short generated clips (a tone, noise) and a tiny random model."""
    folder = tmp_path_factory.mktemp("clips")
    rng = np.random.default_rng(0)
    t = np.arange(12 * 22_050) / 22_050
    sf.write(folder / "tone.wav", (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 22_050)
    sf.write(folder / "noise.wav", (0.2 * rng.standard_normal(len(t))).astype(np.float32), 22_050)
    model = str(save_random_checkpoint(folder / "tiny.pt"))
    return folder / "tone.wav", folder / "noise.wav", model


def moodscope(*args: str, timeout: float, env: dict[str, str]) -> subprocess.CompletedProcess:
    """``moodscope ARGS`` in a new process (which connects to the cluster as a user's command would),
    with ``env`` (Ray's authentication mode) added to this process's environment."""
    return subprocess.run([sys.executable, "-m", "moodscope", *args], capture_output=True, text=True,
                          timeout=timeout, check=False, env=os.environ | env)  # fmt: skip


def frames(root: Path) -> dict[str, pd.DataFrame]:
    out = {}
    for table, key in (("tracks", ["track"]), ("segments", ["track", "start"])):
        out[table] = pd.read_parquet(root / table).sort_values(key, ignore_index=True)
    return out


def test_analyze_on_a_cluster_started_outside_gives_the_local_engine_results(two_clips, tmp_path):
    tone, noise, model = two_clips
    assert main(["analyze", str(tone), str(noise), "--model", model, "--out", f"{tmp_path / 'local'}/"]) == 0
    with ray_cluster(tmp_path / "ray-start.log") as (address, session):
        started = time.monotonic()
        run = moodscope("analyze", str(tone), str(noise), "--model", model, "--engine", "ray", "--address", address,
                        "--out", f"{tmp_path / 'ray'}/", timeout=RUN_S, env=NO_TOKEN)  # fmt: skip
        assert run.returncode == 0, f"{run.stderr}\n(the cluster's logs: {tmp_path / 'ray-logs'})"
        # the command was a driver of that cluster (its core log, named with the job and the driver's
        # process, is in the cluster's session), not of a Ray instance of its own
        drivers = list((session / "logs").glob("python-core-driver-*.log"))
        assert len(drivers) == 1, sorted(p.name for p in (session / "logs").iterdir())
    assert f"{tmp_path / 'ray'}: 2 analysed, 0 failed, 0 already in the dataset" in run.stderr
    local, remote = frames(tmp_path / "local"), frames(tmp_path / "ray")
    for table in ("tracks", "segments"):
        pd.testing.assert_frame_equal(remote[table], local[table], rtol=0, atol=1e-6)
    assert len(remote["tracks"]) == 2 and remote["tracks"]["error"].isna().all()
    assert len(remote["segments"]) > 2 and time.monotonic() - started < RUN_S


@pytest.mark.parametrize("where", ["closed port", "unknown host", "silent port"])
def test_an_address_where_no_cluster_answers_is_one_line_and_fails_fast(two_clips, tmp_path, where):
    """Nothing listening, a host that does not exist: one line at once. A port that accepts connections
    but never answers (not a Ray head): Ray's own wait, once (it would try 20 times, ~40 s each)."""
    tone, _, model = two_clips
    with socket.create_server(("", 0)) as silent:  # on every interface: Ray dials this machine's address
        address = {
            "closed port": f"127.0.0.1:{free_port()}",
            "unknown host": "no-such-host.invalid:6379",
            "silent port": f"127.0.0.1:{silent.getsockname()[1]}",
        }[where]
        started = time.monotonic()
        run = moodscope("analyze", str(tone), "--model", model, "--engine", "ray", "--address", address,
                        "--out", f"{tmp_path / 'out'}/", timeout=180, env=NO_TOKEN)  # fmt: skip
        elapsed = time.monotonic() - started
    assert run.returncode == 1
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith(f"moodscope: error: --address {address}: ") and "ray start --head" in last, run.stderr
    if where == "silent port":
        assert elapsed < 90, elapsed  # one try of Ray's, not twenty
    else:
        assert len(run.stderr.strip().splitlines()) == 1, run.stderr  # Ray is not even asked
        assert elapsed < 30, elapsed


def test_a_ray_client_address_says_what_to_do_instead(two_clips, tmp_path):
    """``ray://HEAD:10001`` (Ray Client), even with a server listening there: one line at once saying
    to run the command on the cluster (``ray job submit``), since Ray Data cannot run through Ray
    Client (it ended in a traceback), and no file is written."""
    tone, _, model = two_clips
    with socket.create_server(("", 0)) as listening:
        address = f"ray://127.0.0.1:{listening.getsockname()[1]}"
        run = moodscope("analyze", str(tone), "--model", model, "--engine", "ray", "--address", address,
                        "--out", f"{tmp_path / 'out'}/", timeout=120, env=NO_TOKEN)  # fmt: skip
    assert run.returncode == 1
    assert run.stderr.strip().splitlines() == [
        f"moodscope: error: --address {address}: Ray Client (ray://) cannot run moodscope's Ray Data pipeline; "
        "run the command on the cluster instead: ray job submit --address http://HEAD:8265 -- moodscope ... "
        "--engine ray --address auto (docs/scaling.md)"
    ], run.stderr
    assert not [p for p in (tmp_path / "out").rglob("*") if p.is_file()]


def test_a_cluster_that_requires_a_token_says_so_and_is_joined_with_it(two_clips, tmp_path):
    """``ray start`` turns token authentication on when it finds a token: without it the command fails
    with a line saying how to give it (after Ray's own retries: bounded, not a hang); with it, it runs."""
    tone, _, model = two_clips
    token = tmp_path / "auth_token"
    token.write_text(secrets.token_hex(32))
    with ray_cluster(tmp_path / "ray-start.log", token=token) as (address, _):
        argv = ["analyze", str(tone), "--model", model, "--engine", "ray", "--address", address]
        started = time.monotonic()
        refused = moodscope(*argv, timeout=120, env=NO_TOKEN)
        assert refused.returncode == 1 and time.monotonic() - started < 90
        last = refused.stderr.strip().splitlines()[-1]  # after Ray's own warnings while it retried
        assert last.startswith(f"moodscope: error: --address {address}: ") and "RAY_AUTH_MODE=token" in last, last
        joined = moodscope(*argv, "--format", "json", timeout=RUN_S, env=token_mode(token))
        assert joined.returncode == 0, joined.stderr
        assert json.loads(joined.stdout)[0]["track"] == str(tone)
