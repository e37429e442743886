"""Command-line options shared by several commands: the model to analyse with, the engine to run on
(analyze, library scan, features) and argument types that refuse impossible numbers with argparse's usage error."""

from __future__ import annotations

import argparse
import math


def _number(text: str, kind: type, test, what: str):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {what} (got {text!r})") from None
    if not (math.isfinite(value) and test(value)):
        raise argparse.ArgumentTypeError(f"must be {what} (got {text})")
    return value


def positive_int(text: str) -> int:
    """An argument type: a whole number >= 1 (counts of tracks, clusters, processes)."""
    return _number(text, int, lambda v: v >= 1, "a whole number of at least 1")


def non_negative_int(text: str) -> int:
    """An argument type: a whole number >= 0."""
    return _number(text, int, lambda v: v >= 0, "a whole number of at least 0")


def positive_float(text: str) -> float:
    """An argument type: a number > 0 (minutes)."""
    return _number(text, float, lambda v: v > 0, "a positive number")


def fraction(text: str) -> float:
    """An argument type: a number in [0, 1] (confidences)."""
    return _number(text, float, lambda v: 0 <= v <= 1, "a number between 0 and 1")


MODEL_HELP = (
    "'accurate' (default: the shipped musicnn model, pretrained music-tagging embeddings of each 5-s segment "
    "with calibrated valence and arousal heads; `moodscope models` shows what it is made of), 'fast' (the "
    "paper's hybrid CNN-LSTM model on the Table 2 features) or the path of a checkpoint written by `moodscope train`"
)


def add_model_option(p: argparse.ArgumentParser) -> None:
    """``--model``: a shipped model name or a checkpoint path (default: the shipped ``accurate``)."""
    p.add_argument("--model", default=None, help=MODEL_HELP)


def add_engine_options(p: argparse.ArgumentParser, *, what: str = "analysis") -> None:
    """``--workers``, ``--engine`` and ``--address``."""
    from moodscope.engine.base import ENGINES

    p.add_argument(
        "--workers",
        type=positive_int,
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
        help="with --engine ray, the cluster to join: 'auto' on a cluster node, or the head's HOST:PORT as "
        "`ray start --head` printed it (Ray Client's ray:// is not supported: submit the command with "
        "`ray job submit`); default: a Ray instance started on this machine for the command",
    )


def engine_kwargs(args: argparse.Namespace) -> dict:
    """The engine arguments of a library call, from the options above."""
    return {"engine": args.engine, "workers": args.workers, "address": args.address}
