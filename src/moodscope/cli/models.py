"""``moodscope models``: the shipped models (or given checkpoints) with their figures, hash and licence."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "models",
        help="the shipped models: what they are, their figures, content hash and licence",
        description="List the models shipped with moodscope (or describe the checkpoints given): architecture, "
        "what the evaluation figures measure and their values, the content hash every analysis output carries "
        "as model_hash, the size of the files and the licence of the weights.",
    )
    p.add_argument(
        "models", nargs="*", metavar="MODEL", help="shipped model names or checkpoint paths (default: all shipped)"
    )
    p.add_argument("--format", choices=("table", "json"), default="table", help="output format (default: table)")
    p.set_defaults(func=run)


def figure_name(key: str) -> str:
    """``song_macro_f1`` -> ``song macro-F1``."""
    return key.replace("macro_f1", "macro-F1").replace("_", " ")


def format_card(card) -> str:
    figures = ", ".join(f"{figure_name(name)} {value:.3f}" for name, value in card.figures.items())
    lines = [
        f"{card.name}{' (default)' if card.default else ''}: {card.arch}, {card.size_bytes / 2**20:.1f} MB",
        *([f"  {card.description}"] if card.description else []),
        f"  figures: {figures or 'none recorded'}" + (f"\n    ({card.evaluation})" if card.evaluation else ""),
        f"  content hash (model_hash): {card.content_hash}",
        f"  licence: {card.licence}",
    ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    import json

    from moodscope.analysis.cards import model_card, shipped_model_cards

    cards = [model_card(spec) for spec in args.models] if args.models else shipped_model_cards()
    if args.format == "json":
        print(json.dumps([c.to_dict() for c in cards], indent=1))
    else:
        print("\n\n".join(format_card(c) for c in cards))
    return 0
