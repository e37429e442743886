"""The command line as a whole: every command describes itself."""

from __future__ import annotations

import argparse

from moodscope.cli import build_parser


def subcommands(parser: argparse.ArgumentParser, prefix: str = "") -> dict[str, argparse.ArgumentParser]:
    """Every (nested) subcommand parser, keyed by its command line (``library scan``)."""
    found = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found[f"{prefix}{name}"] = sub
                found.update(subcommands(sub, f"{prefix}{name} "))
    return found


def test_every_command_has_a_description_longer_than_its_help_line():
    commands = subcommands(build_parser())
    assert {"library stats", "library show", "library map"} <= set(commands)
    short = [name for name, p in commands.items() if not p.description or len(p.description) < 40]
    assert not short, f"commands without a real description: {short}"
