"""The ``moodscope`` command line: a thin layer over the library.

Each command group lives in its own module exposing ``register(subparsers)``; heavy imports
happen inside the command handlers so that ``--help`` stays fast. Library errors
(:class:`~moodscope.errors.MoodscopeError`) become a one-line message and exit status 1.
``SIGTERM`` (what ``kill`` and ``timeout`` send) stops a command as Ctrl-C does: workers are
stopped, finished work is kept, and the exit status is 143.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import signal
import sys
import threading
from collections.abc import Iterator

from moodscope.cli.console import quiet
from moodscope.errors import MoodscopeError
from moodscope.version import __version__

COMMAND_MODULES = ("features", "datasets", "train", "analyze", "embed", "models", "library", "serve")
"""The modules of the command groups; each registers the command of its name and maybe others:"""
OTHER_COMMANDS = {"evaluate": "train", "reproduce": "train", "demo": "analyze"}
"""Commands registered by a module of another name (tests/test_cli.py checks this against the modules)."""


def command_module(argv: list[str]) -> str | None:
    """The module registering the command that ``argv`` runs (None for no command or an unknown one)."""
    command = next((arg for arg in argv if not arg.startswith("-")), None)  # the top-level options take no value
    if command in COMMAND_MODULES:
        return command
    return OTHER_COMMANDS.get(command or "")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with ``command`` (a module of :data:`COMMAND_MODULES`), only the commands
    of that module, so that running one command does not import and build the others (40-80 ms)."""
    parser = argparse.ArgumentParser(
        prog="moodscope",
        description="Music emotion recognition: mood of tracks, segment by segment, on Russell's four quadrants "
        "(Q1 happy/excited, Q2 tense/angry, Q3 sad/depressed, Q4 calm/relaxed).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _add_verbosity(parser, default=0)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in (command,) if command else COMMAND_MODULES:
        try:
            module = importlib.import_module(f"moodscope.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"moodscope.cli.{name}":
                continue
            raise
        module.register(sub)
    for subcommand in _subcommands(parser):
        _add_verbosity(subcommand, default=argparse.SUPPRESS)  # -v and -q after the command too
    return parser


def _add_verbosity(parser: argparse.ArgumentParser, *, default: object) -> None:
    """``-v/--verbose`` (more log output) and ``-q/--quiet`` (errors and results only). On a subcommand
    their default is SUPPRESS, so that they do not undo the same options given before the command."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-v", "--verbose", action="count", default=default, help="more log output (-vv for debug)")
    group.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=argparse.SUPPRESS if default is argparse.SUPPRESS else False,
        help="only results and errors: no progress bars, notes or warnings",
    )


def _subcommands(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """Every (nested) subcommand parser below ``parser``."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):  # aliases share a parser
                found += [sub, *_subcommands(sub)]
    return found


class Terminated(KeyboardInterrupt):
    """Raised in the main thread on ``SIGTERM``: it unwinds like Ctrl-C (workers stopped, files closed)."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Turn ``SIGTERM`` into :class:`Terminated` for the duration of a command (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    try:
        with sigterm_as_interrupt():  # from the start: a SIGTERM while arguments are parsed stops as cleanly
            return _run(argv)
    except MoodscopeError as exc:
        print(f"moodscope: error: {exc}", file=sys.stderr)
        return 1
    except Terminated:
        print("moodscope: terminated", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        print("moodscope: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0


def _run(argv: list[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(command_module(argv))
    args = parser.parse_args(argv)
    level = logging.ERROR if args.quiet else [logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger().setLevel(level)  # also when an earlier call (tests, an embedding program) configured it
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    with quiet(args.quiet):
        return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
