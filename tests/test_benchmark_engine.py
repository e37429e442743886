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
