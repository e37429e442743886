"""``moodscope datasets``: validate and summarise dataset folders.

    moodscope datasets list
    moodscope datasets validate NAME --root PATH [--format text|json]
    moodscope datasets info NAME --root PATH [--format text|json]
    moodscope datasets cross-check --deam PATH --emomusic PATH [--format text|json]

``validate`` and ``cross-check`` exit with status 1 when an issue of severity 'error' is found.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from typing import Any


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "datasets",
        help="validate and summarise dataset folders (DEAM, MTurk/emoMusic, PMEmo, 4Q, your own)",
        description="Check a dataset folder in its official layout and summarise it.",
    )
    parser.set_defaults(func=lambda args: _print_help(parser))
    actions = parser.add_subparsers(dest="datasets_action", metavar="ACTION")

    listing = actions.add_parser(
        "list",
        help="the dataset names NAME can take",
        description="The datasets moodscope can read in their official layout, one line each: the name to give "
        "as NAME and what the dataset is.",
    )
    listing.set_defaults(func=_list)

    validate = actions.add_parser(
        "validate",
        help="report missing audio, defects and corrections",
        description="Read the dataset folder and list every issue found: missing audio or annotations, "
        "malformed rows, known defects of distributed copies and the corrections applied. Exit status 1 "
        "when an issue of severity 'error' is found.",
    )
    _dataset_arguments(validate)
    validate.set_defaults(func=_validate)

    info = actions.add_parser(
        "info",
        help="number of tracks, tracks with audio, quadrant counts",
        description="Summarise the dataset: tracks, tracks with audio, static and dynamic labels, tracks per "
        "quadrant, official splits and artists.",
    )
    _dataset_arguments(info)
    info.set_defaults(func=_info)

    cross = actions.add_parser(
        "cross-check",
        help="compare DEAM and emoMusic on the songs they share",
        description="emoMusic's 744 songs are DEAM songs 2-1000: compare their annotations song by song and "
        "report disagreements. Exit status 1 when an issue of severity 'error' is found.",
    )
    cross.add_argument("--deam", required=True, metavar="PATH", help="DEAM folder (contains annotations/)")
    cross.add_argument("--emomusic", required=True, metavar="PATH", help="emoMusic folder (contains annotations/)")
    _format_argument(cross)
    cross.set_defaults(func=_cross_check)


def _dataset_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME", help="dataset name (see 'moodscope datasets list')")
    parser.add_argument("--root", required=True, metavar="PATH", help="the dataset folder, in its official layout")
    parser.add_argument("--csv", metavar="CSV", help="folder datasets: the labels CSV (default: found in --root)")
    parser.add_argument("--scale", help="folder datasets: valence/arousal scale, -1..1, 1..9 or 0..1 (default: auto)")
    _format_argument(parser)


def _format_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output format (default: text)")


def _print_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _open(args: argparse.Namespace):
    from moodscope.datasets import load_dataset

    options = {k: getattr(args, k) for k in ("csv", "scale") if getattr(args, k) is not None}
    return load_dataset(args.name, args.root, **options)


def _issue_lines(issues: list) -> list[str]:
    return [f"{i.severity:<9} {i.kind:<16} {'[' + i.track_id + '] ' if i.track_id else ''}{i.message}" for i in issues]


def _counts_line(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {key}" for key, n in sorted(counts.items())) or "none"


def _emit(payload: dict[str, Any], lines: list[str], fmt: str) -> None:
    print(json.dumps(payload, indent=2, default=str) if fmt == "json" else "\n".join(lines))


def _list(args: argparse.Namespace) -> int:
    from moodscope.datasets import DATASETS

    for name, cls in DATASETS.items():
        doc = (cls.__doc__ or "").strip().splitlines()[0]
        print(f"{name:<10} {doc}")
    return 0


def _validate(args: argparse.Namespace) -> int:
    report = _open(args).validate()
    counts = report.counts()
    errors = sum(n for key, n in counts.items() if key.startswith("error:"))
    payload = {
        "dataset": report.dataset,
        "root": str(report.root),
        "n_tracks": report.n_tracks,
        "n_with_audio": report.n_with_audio,
        "ok": report.ok,
        "counts": counts,
        "issues": [asdict(i) for i in report.issues],
    }
    lines = [
        f"{report.dataset} at {report.root}: {report.n_tracks} tracks, {report.n_with_audio} with audio",
        f"issues: {_counts_line(counts)}",
        *_issue_lines(report.issues),
        "OK: no errors" if report.ok else f"FAILED: {errors} error(s)",
    ]
    _emit(payload, lines, args.format)
    return 0 if report.ok else 1


def _info(args: argparse.Namespace) -> int:
    from moodscope.datasets.annotated import summary

    info = summary(_open(args))
    quadrants = ", ".join(f"{q} {n}" for q, n in info["quadrants"].items())
    splits = ", ".join(f"{s} {n}" for s, n in info["splits"].items()) or "none"
    lines = [
        f"{info['dataset']} at {info['root']}",
        f"tracks:         {info['n_tracks']}",
        f"with audio:     {info['n_with_audio']}",
        f"static labels:  {info['n_static']}",
        f"dynamic labels: {info['n_dynamic']}",
        f"quadrants:      {quadrants}",
        f"splits:         {splits}",
        f"artists:        {info['n_artists']}",
    ]
    _emit(info, lines, args.format)
    return 0


def _cross_check(args: argparse.Namespace) -> int:
    from moodscope.datasets import cross_check, load_dataset

    issues = cross_check(load_dataset("deam", args.deam), load_dataset("mturk", args.emomusic))
    counts: dict[str, int] = {}
    for i in issues:
        counts[f"{i.severity}:{i.kind}"] = counts.get(f"{i.severity}:{i.kind}", 0) + 1
    ok = not any(i.severity == "error" for i in issues)
    payload = {"ok": ok, "counts": counts, "issues": [asdict(i) for i in issues]}
    lines = [f"DEAM vs emoMusic: {_counts_line(counts)}", *_issue_lines(issues), "OK: no errors" if ok else "FAILED"]
    _emit(payload, lines, args.format)
    return 0 if ok else 1
