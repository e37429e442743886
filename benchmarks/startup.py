"""Start-up cost of one or more checkouts, in the same run: ``import moodscope``, ``moodscope --help``
and ``moodscope features --help`` (what running one command costs before it does anything).

Each command runs in a fresh interpreter with the checkout's ``src`` first on ``PYTHONPATH``; the
checkouts alternate (A B A B …) so that a machine whose load changes treats them alike. Each
checkout's byte code is compiled first (``compileall``), as pip does on install, so that compiling
sources is not measured. Reported
per command: the fastest wall-clock time over the rounds (the least disturbed by other jobs), the
median, and the CPU time (user + system) of the fastest run; plus the ratio to the first checkout::

    git worktree add --detach /tmp/before <commit-before>
    python benchmarks/startup.py --src /tmp/before/src --src src --rounds 15 --json startup.json
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import save_report

COMMANDS = {
    "import moodscope": ["-c", "import moodscope"],
    "moodscope --help": ["-m", "moodscope", "--help"],
    "moodscope features --help": ["-m", "moodscope", "features", "--help"],  # one command's parser
}


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child) of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", type=Path, action="append", required=True, help="a checkout's src (first: the base)")
    parser.add_argument("--label", action="append", help="names of the checkouts (default: their paths)")
    parser.add_argument("--rounds", type=int, default=10, help="runs of each command per checkout (default: 10)")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    labels = args.label or [str(s) for s in args.src]
    runs: dict[str, dict[str, list[tuple[float, float]]]] = {c: {label: [] for label in labels} for c in COMMANDS}
    for src in args.src:
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(src)], check=True, stdout=subprocess.DEVNULL)
    for _ in range(args.rounds):
        for command, extra in COMMANDS.items():
            for label, src in zip(labels, args.src):
                env = dict(os.environ, PYTHONPATH=str(src.resolve()))
                runs[command][label].append(timed([sys.executable, *extra], env))
    figures: dict[str, dict[str, dict[str, float]]] = {}
    print(f"{'command':26s} {'checkout':24s} {'fastest s':>9s} {'median s':>9s} {'CPU s':>7s} {'ratio':>6s}")
    for command in COMMANDS:
        figures[command] = {}
        for label in labels:
            walls = [w for w, _ in runs[command][label]]
            fastest = min(runs[command][label])
            figures[command][label] = {
                "fastest_seconds": fastest[0],
                "median_seconds": statistics.median(walls),
                "cpu_seconds_of_fastest": fastest[1],
            }
        base = figures[command][labels[0]]["fastest_seconds"]
        for label in labels:
            f = figures[command][label]
            print(
                f"{command:26s} {label[-24:]:24s} {f['fastest_seconds']:9.3f} {f['median_seconds']:9.3f} "
                f"{f['cpu_seconds_of_fastest']:7.3f} {f['fastest_seconds'] / base:6.2f}"
            )
    load = os.getloadavg()[0]
    print(f"load average (1 min) at the end: {load:.1f} on {os.cpu_count()} CPUs")
    if args.json:
        save_report(args.json, {"labels": labels, "figures": figures, "load_average": load}, argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
