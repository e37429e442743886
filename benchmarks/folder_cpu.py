"""CPU and wall-clock of one ``analyze_files`` call over a folder, in a fresh process: a direct check of
analyze throughput across checkouts (run it once per checkout, alternating, with ``PYTHONPATH``)::

    for i in 1 2; do for s in /tmp/before/src src; do
        PYTHONPATH=$s python benchmarks/folder_cpu.py '../shared/data/music/*.[om][gp][g3]' --model fast --workers 2
    done; done
"""

from __future__ import annotations

import argparse
import glob
import resource
import sys
import time


def cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pattern", help="glob of the audio files")
    parser.add_argument("--model", default="fast")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    try:
        from moodscope.engine.analysis import analyze_files
    except ImportError:  # a checkout from before the engine
        from moodscope.analysis import analyze_files  # type: ignore[attr-defined,no-redef]
    import moodscope

    files = sorted(glob.glob(args.pattern))
    start = time.perf_counter()
    result = analyze_files(files, model=args.model, workers=args.workers)
    wall = time.perf_counter() - start
    audio = sum(a.duration for a in result.analyses)
    total = cpu(resource.RUSAGE_SELF) + cpu(resource.RUSAGE_CHILDREN)
    print(
        f"{moodscope.__file__}: {len(result.analyses)} files, {audio:.0f} s of audio, wall {wall:.2f} s "
        f"({audio / wall:.1f}x real time), CPU {total:.2f} s ({audio / total:.1f} s of audio per CPU-s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
