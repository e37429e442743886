"""One benchmark, several checkouts, in the same run: the figures side by side with their ratios.

Runs ``benchmarks/SCRIPT`` once per checkout per round, alternating (A B A B …) so that a machine
whose load changes during the run treats every checkout alike; each run imports moodscope from
the checkout's ``src`` (``PYTHONPATH``, inherited by worker processes and the CLI subprocesses)
and writes its figures with ``--json``. Reported: the median of each figure over the rounds, and
its ratio to the first checkout's::

    git archive <commit-before> | tar -x -C /tmp/before
    python benchmarks/compare.py --src /tmp/before/src --src src --rounds 3 -- \\
        analyze.py --models fast accurate --skip-hour --skip-reference
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from common import save_report

HERE = Path(__file__).resolve().parent
DEFAULT_KEYS = r"(^|\.)(throughput|cpu_throughput|warm_wall_seconds)$"


def flatten(obj, prefix: str = "") -> dict[str, float]:
    """Numeric leaves of a JSON object as dotted paths."""
    if isinstance(obj, dict):
        out = {}
        for key, value in obj.items():
            out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(obj, (int, float)) and not isinstance(obj, bool):
        return {prefix: float(obj)}
    return {}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ours, theirs = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", type=Path, action="append", required=True, help="a checkout's src (first: the base)")
    parser.add_argument("--label", action="append", help="names of the checkouts (default: their paths)")
    parser.add_argument("--rounds", type=int, default=2, help="runs per checkout, alternating (default: 2)")
    parser.add_argument("--keys", default=DEFAULT_KEYS, help="regular expression of the figures to show")
    parser.add_argument("--json", type=Path, help="also write every run's figures and the medians here")
    args = parser.parse_args(ours)
    if not theirs:
        parser.error("give the benchmark after --, e.g. -- analyze.py --models fast")
    labels = args.label or [str(s) for s in args.src]
    runs: dict[str, list[dict[str, float]]] = {label: [] for label in labels}
    with tempfile.TemporaryDirectory(prefix="moodscope-compare-") as scratch:
        for round_ in range(args.rounds):
            for label, src in zip(labels, args.src):
                safe = re.sub(r"\W", "_", label)
                out = Path(scratch) / f"{len(runs[label])}-{safe}.json"
                env = dict(os.environ, PYTHONPATH=str(src.resolve()))
                print(f"round {round_ + 1}/{args.rounds}: {label}", file=sys.stderr, flush=True)
                cmd = [sys.executable, str(HERE / theirs[0]), *theirs[1:], "--json", str(out)]
                subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
                runs[label].append(flatten(json.loads(out.read_text())))
    wanted = re.compile(args.keys)
    base = labels[0]
    keys = sorted(k for k in runs[base][0] if wanted.search(k))
    medians = {label: {k: statistics.median(r[k] for r in rs if k in r) for k in keys} for label, rs in runs.items()}
    print(f"{'figure':52s} " + " ".join(f"{label[-14:]:>14s}" for label in labels) + "   ratios to " + base[-20:])
    for key in keys:
        values = [medians[label][key] for label in labels]
        ratios = " ".join(f"{v / values[0]:6.3f}" for v in values[1:]) if values[0] else ""
        print(f"{key:52s} " + " ".join(f"{v:14.3f}" for v in values) + f"   {ratios}")
    if args.json:
        save_report(args.json, {"labels": labels, "runs": runs, "medians": medians}, argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
