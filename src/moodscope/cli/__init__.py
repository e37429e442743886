"""The ``moodscope`` command line: a thin layer over the library.

Each command group lives in its own module exposing ``register(subparsers)``; heavy imports
happen inside the command handlers so that ``--help`` stays fast. Library errors
(:class:`~moodscope.errors.MoodscopeError`) become a one-line message and exit status 1.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from moodscope.errors import MoodscopeError

COMMAND_MODULES = ("features", "datasets", "train", "analyze", "library")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="moodscope",
        description="Music emotion recognition: mood of tracks, segment by segment, on Russell's four quadrants "
        "(Q1 happy/excited, Q2 tense/angry, Q3 sad/depressed, Q4 calm/relaxed).",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"moodscope.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"moodscope.cli.{name}":
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=[logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)],
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except MoodscopeError as exc:
        print(f"moodscope: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("moodscope: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
