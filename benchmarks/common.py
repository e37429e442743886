"""What every benchmark records beside its figures: the machine, the load and the command."""

from __future__ import annotations

import json
import os
import platform
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path


def save_report(path: Path, report: dict, argv: list[str] | None) -> None:
    """Write ``report`` as JSON with the machine and the command line that produced it."""
    report = report | {
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1))


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (user + system)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def time_per_file(one: Callable[[Path], tuple[float, int]], files: list[Path]) -> tuple[float, int, float, float]:
    """Run ``one(path) -> (audio seconds, segments)`` over ``files`` after one untimed warm-up call
    (imports, numba compilation, FFT plans). Returns audio seconds, segments, wall and CPU seconds."""
    one(files[0])
    seconds, n_segments = 0.0, 0
    cpu, start = cpu_seconds(), time.perf_counter()
    for path in files:
        s, n = one(path)
        seconds += s
        n_segments += n
    return seconds, n_segments, time.perf_counter() - start, cpu_seconds() - cpu
