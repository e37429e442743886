"""benchmarks/engine.py's CPU accounting (``TreeCPU``): the CPU time that this process and those below
it use inside the ``with`` block, never what they used before it."""

from __future__ import annotations

import subprocess
import sys

from conftest import load_script

BURN = """
import sys, time
start = time.process_time()
while time.process_time() - start < 1.0:
    pass
print("burnt", flush=True)
time.sleep(60)
"""


def burner() -> subprocess.Popen:
    """A child process that uses 1 CPU-second, says so, then sleeps."""
    return subprocess.Popen([sys.executable, "-c", BURN], stdout=subprocess.PIPE, text=True)


def test_tree_cpu_counts_only_what_is_used_inside_the_block():
    engine = load_script("benchmarks/engine.py")
    before, during = burner(), None
    try:
        assert before.stdout.readline() == "burnt\n"
        with engine.TreeCPU(ray=False) as idle:  # the child is alive, its second already used
            pass
        assert idle.seconds < 0.5, idle.seconds  # it counted the child's whole past (1 s) before
        with engine.TreeCPU(ray=False) as busy:
            during = burner()
            assert during.stdout.readline() == "burnt\n"
        assert 0.9 < busy.seconds < 3.0, busy.seconds  # a process started inside counts from its start
    finally:
        for child in (before, during):
            if child is not None:
                child.kill()
                child.wait()


MEASURE_A_BURNER = """
import subprocess, sys
sys.path.insert(0, "benchmarks")
from engine import TreeCPU
with TreeCPU(ray=False) as busy:
    child = subprocess.Popen([sys.executable, "-c", sys.argv[1]], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline() == "burnt\\n"
child.kill()
print(busy.seconds)
"""


def test_tree_cpu_without_ray_counts_a_process_whose_command_line_says_ray():
    """``TreeCPU(ray=False)`` leaves Ray's processes out, not every process whose command line holds
    "ray": it counted nothing when pytest ran tests/test_engine_ray_address.py before this file."""
    engine = load_script("benchmarks/engine.py")
    assert engine.is_ray_process(b"ray::ModelActor") and engine.is_ray_process(
        b"/venv/lib/ray/core/src/ray/raylet/raylet"
    )
    assert not engine.is_ray_process(b"python\x00-m\x00pytest\x00tests/test_engine_ray.py")
    out = subprocess.run(
        [sys.executable, "-c", MEASURE_A_BURNER, BURN, "tests/test_engine_ray.py"], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert 0.9 < float(out.stdout) < 3.0
