"""Command-line options shared by the commands that run on an engine (analyze, library scan, features)."""

from __future__ import annotations

import argparse


def add_engine_options(p: argparse.ArgumentParser, *, what: str = "analysis") -> None:
    """``--workers``, ``--engine`` and ``--address``."""
    from moodscope.engine.base import ENGINES

    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help=f"parallel {what} processes on this machine (default: all cores); with --engine ray and no "
        "--address, the CPUs of the Ray instance started here",
    )
    p.add_argument(
        "--engine",
        choices=ENGINES,
        default=ENGINES[0],
        help="where the work runs: 'local' processes (default), or 'ray', a Ray cluster "
        "(pip install 'moodscope[ray]'; docs/scaling.md)",
    )
    p.add_argument(
        "--address",
        default=None,
        metavar="ADDR",
        help="with --engine ray, the cluster to join ('auto' on a cluster node, ray://HEAD:10001 from outside); "
        "default: a Ray instance started on this machine for the command",
    )


def engine_kwargs(args: argparse.Namespace) -> dict:
    """The engine arguments of a library call, from the options above."""
    return {"engine": args.engine, "workers": args.workers, "address": args.address}
