"""``moodscope library``: index a music collection by mood; playlists, journeys, similar tracks, clusters, maps."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from moodscope.cli.console import note, progress_bar
from moodscope.cli.options import (
    add_engine_options,
    add_model_option,
    engine_kwargs,
    fraction,
    non_negative_int,
    positive_float,
    positive_int,
)

MOOD_HELP = (
    "a mood word (happy, excited, tense, angry, sad, depressed, calm, relaxed), a quadrant (Q1..Q4) "
    "or a valence,arousal point in [0, 1] such as 0.8,0.3 (0.5 = neutral; valence = probability of a positive, "
    "arousal of a high rating)"
)
INCLUDE_UNCERTAIN_HELP = (
    "also use the uncertain tracks (mostly silence, noise or speech: no mood), which are left out by default"
)
DB_HELP = (
    "library database (default: $MOODSCOPE_LIBRARY, else $XDG_DATA_HOME/moodscope/library.db, "
    "i.e. ~/.local/share/moodscope/library.db)"
)


@dataclass(frozen=True)
class SharedOptions:
    """Option groups several library commands take (argparse parent parsers)."""

    db: argparse.ArgumentParser  # --db
    output: argparse.ArgumentParser  # --format, --m3u, --xspf, --relative: the playlist commands' output


def shared_options() -> SharedOptions:
    db = argparse.ArgumentParser(add_help=False)
    db.add_argument("--db", type=Path, default=None, metavar="PATH", help=DB_HELP)
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument(
        "--format", choices=("table", "json", "csv"), default="table", help="output on the terminal (default: table)"
    )
    output.add_argument("--m3u", type=Path, metavar="FILE", help="also write the tracks as an extended M3U playlist")
    output.add_argument("--xspf", type=Path, metavar="FILE", help="also write the tracks as an XSPF playlist")
    output.add_argument("--relative", action="store_true", help="playlist paths relative to the playlist's folder")
    return SharedOptions(db, output)


def register(sub: argparse._SubParsersAction) -> None:
    """``moodscope library`` and its commands, each defined by an ``add_<command>`` function below."""
    lib = sub.add_parser(
        "library",
        help="index a music collection by mood; playlists, journeys, similar tracks, clusters, maps",
        description="A music collection indexed by mood in one SQLite file: `scan` analyses new and changed files "
        "(incremental, crash-safe, moved files recognised by content hash); the other commands query it. "
        "Every playlist command can write M3U and XSPF playlists (--m3u, --xspf) and JSON or CSV (--format); "
        "`tag` writes the moods into the files' own tags; `export` writes the whole library as CSV or JSON.",
    )
    cmds = lib.add_subparsers(dest="library_command", metavar="COMMAND")
    lib.set_defaults(func=lambda args: (lib.print_help(), 2)[1])
    shared = shared_options()
    for add in (add_scan, add_check, add_tag, add_export, add_stats, add_list, add_show, add_similar, add_playlist,
                add_journey, add_clusters, add_map):  # fmt: skip
        add(cmds, shared)


# ---- helpers -------------------------------------------------------------------------------------


def _open(args: argparse.Namespace, *, create: bool = False, write: bool | None = None, verify: bool = True):
    """The library of ``--db``, once the files the command will write (``--m3u``, ``--out``) are known writable."""
    from moodscope.fileio import check_writable
    from moodscope.library import MoodLibrary

    for name in ("m3u", "out"):
        if getattr(args, name, None) is not None:
            check_writable(getattr(args, name))
    return MoodLibrary(args.db, create=create, write=write, verify=verify)


def format_tracks(tracks, *, score: str | None = None) -> str:
    if not tracks:
        return "(no tracks)"
    lines = []
    header = f"{'#':>3} {'id':>6}  {'mood':<17} {'conf':>4}  {'val':>5} {'aro':>5} {'time':>6}"
    if score:
        header += f" {score:>7}"
    lines.append(header + "  track")
    for i, t in enumerate(tracks, start=1):
        minutes, seconds = divmod(round(t.duration), 60)
        line = (
            f"{i:>3} {t.id:>6}  {t.quadrant + ' ' + t.mood:<17} {t.confidence:>4.2f}  "
            f"{t.valence:>5.2f} {t.arousal:>5.2f} {minutes:>3}:{seconds:02d}"
        )
        if score:
            line += f" {t.score:>7.3f}" if t.score is not None else " " * 8
        lines.append(f"{line}  {t.display_name}")
    total = sum(t.duration for t in tracks)
    lines.append(f"{len(tracks)} tracks, {total / 60:.1f} min")
    return "\n".join(lines)


def emit(args: argparse.Namespace, playlist) -> int:
    """Print a :class:`~moodscope.library.playlists.Playlist` in the chosen format; write its M3U and XSPF if asked."""
    import json

    from moodscope.library.export import write_m3u, write_xspf

    if args.format == "json":
        print(json.dumps(playlist.to_dict(), indent=2, ensure_ascii=False))
    elif args.format == "csv":
        sys.stdout.write(playlist.csv())
    else:
        print(playlist.name)
        print(format_tracks(playlist.tracks, score=playlist.score))
    for option, write in (("m3u", write_m3u), ("xspf", write_xspf)):
        if getattr(args, option, None):
            path = write(playlist.tracks, getattr(args, option), name=playlist.name, relative=args.relative)
            note(f"wrote {path} ({len(playlist.tracks)} tracks)")
    return 0


# ---- commands: each one's options (add_<name>) and handler (run_<name>) ---------------------------


def add_scan(cmds: argparse._SubParsersAction, shared: SharedOptions) -> None:
    p = cmds.add_parser(
        "scan",
        parents=[shared.db],
        help="analyse a music folder into the library (only new or changed files)",
        description="Walk the folders, analyse new and changed audio files and store per-track summaries, "
        "per-segment timelines and the files' tags. Unchanged files (same size and modification time) are not "
        "read; files that disappeared are pruned; moved or copied files are recognised by their SHA-256 and not "
        "analysed again. Each track is committed on its own: an interrupted scan keeps what it did and the next "
        "one resumes. Files that fail are listed with their reasons (exit status 1) and skipped by later scans "
        "until they change.",
    )
    p.add_argument("folders", nargs="+", type=Path, metavar="DIR", help="folders of music (recursively)")
    add_model_option(p)
    add_engine_options(p)
    p.add_argument("--force", action="store_true", help="analyse every file again (e.g. after changing --model)")
    p.add_argument("--retry-failed", action="store_true", help="try again files that failed before")
    p.add_argument("--no-prune", action="store_true", help="keep tracks whose files are gone")
    p.add_argument(
        "--rebuild",
        action="store_true",
        help="move the library aside (to <name>.before-rebuild-<time>, kept) and index the folders into a new "
        "one: the way out of a damaged library",
    )
    p.set_defaults(func=run_scan)


def run_scan(args: argparse.Namespace) -> int:
    from moodscope.errors import LibraryError
    from moodscope.library.db import default_library_path, discard_if_empty
    from moodscope.library.integrity import move_aside

    for root in args.folders:  # checked before the library is opened (or created)
        if not (root.expanduser().is_dir() or root.expanduser().is_file()):
            raise LibraryError(f"{root}: not a folder or a file; give the folder that holds your music")
    if isinstance(args.model, str):
        from moodscope.analysis.pretrained import resolve_model_path

        resolve_model_path(args.model)
    db = args.db.expanduser() if args.db else default_library_path()
    if args.rebuild:
        aside = move_aside(db)
        if aside is not None:
            note(f"moved the old library aside to {aside}")
    created = not db.exists()
    try:
        with _open(args, create=True, write=True) as lib:
            return _scan(args, lib)
    except BaseException:
        if created and db.exists():
            discard_if_empty(db)  # a scan that could not start leaves no empty library behind
        raise


def _scan(args: argparse.Namespace, lib) -> int:
    bars: dict = {}

    def progress(stage: str, done: int, total: int) -> None:
        bar = bars.get(stage)
        if bar is None:
            bar = bars[stage] = progress_bar(total=total, unit="file", desc=stage)
        bar.total = total
        bar.update(done - bar.n)

    try:
        result = lib.scan(
            *args.folders,
            model=args.model,
            force=args.force,
            retry_failed=args.retry_failed,
            prune=not args.no_prune,
            progress=progress,
            **engine_kwargs(args),
        )
    finally:
        for bar in bars.values():
            bar.close()
    print(
        f"{lib.path}: {len(result.analysed)} analysed, {len(result.reused)} reused (identical content), "
        f"{len(result.moved)} moved, {len(result.touched)} touched, {len(result.retagged)} retagged "
        f"(tags changed, audio the same: not analysed again), {result.unchanged} unchanged, "
        f"{len(result.pruned)} pruned, {len(result.failed)} failed in {result.seconds:.1f} s; "
        f"{len(lib)} tracks in the library"
    )
    for old, new in result.moved:
        print(f"  moved {old} -> {new}")
    if result.skipped_failed:
        print(
            f"  {len(result.skipped_failed)} files failed before and are unchanged: skipped "
            "(--retry-failed to try again; `moodscope library stats --failures` lists them)"
        )
    for path, reason in sorted(result.failed.items()):
        print(f"  FAILED {reason if reason.startswith(path) else f'{path}: {reason}'}", file=sys.stderr)
    return 1 if result.failed else 0


def add_tag(cmds: argparse._SubParsersAction, shared: SharedOptions) -> None:
    p = cmds.add_parser(
        "tag",
        parents=[shared.db],
        help="write the analysed mood into the files' own tags (MOOD, MOODSCOPE_*)",
        description="Write each analysed file's mood into its own tags, for players and music managers: MOOD (happy, "
        "tense, sad or calm) and MOODSCOPE_QUADRANT, MOODSCOPE_VALENCE, MOODSCOPE_AROUSAL, MOODSCOPE_CONFIDENCE, "
        "MOODSCOPE_MODEL (model name and content hash), as ID3 TXXX frames (MP3, WAV, AIFF), Vorbis comments (FLAC, "
        "Ogg, Opus) or iTunes freeform atoms (M4A). Other tags and the audio data are not changed. Each file is "
        "written as a copy beside it and renamed into place, keeping its permissions and modification time. Files "
        "the library did not analyse, or whose audio changed since, are skipped with the reason. A later scan does "
        "not analyse tagged files again.",
    )
    p.add_argument(
        "paths", nargs="*", type=Path, metavar="PATH", help="files or folders (default: every track of the library)"
    )
    p.add_argument("--dry-run", action="store_true", help="list what would change and change nothing")
    p.add_argument("--remove", action="store_true", help="take moodscope's tags off again (and nothing else)")
    p.add_argument("--touch", action="store_true", help="give changed files a new modification time (default: keep)")
    p.set_defaults(func=run_tag)


def run_tag(args: argparse.Namespace) -> int:
    from moodscope.library.tagging import CURRENT, FAILED, SKIPPED, WRITTEN

    with _open(args) as lib:
        result = lib.tag(*args.paths, remove=args.remove, dry_run=args.dry_run, touch=args.touch)
    verb = ("would remove tags from" if result.remove else "would tag") if result.dry_run else None
    for change in result.files:
        if change.status == WRITTEN:
            if verb:
                print(f"{verb} {change.path}")
                for name, old, new in change.changes:
                    print(f"    {name}: {'(none)' if old is None else old} -> {'(none)' if new is None else new}")
            else:
                print(f"{'untagged' if result.remove else 'tagged'} {change.path}")
        elif change.status == SKIPPED:
            print(f"skipped {change.path}: {change.reason}")
        elif change.status == FAILED:
            print(f"FAILED {change.path}: {change.reason}", file=sys.stderr)
    counts = {s: len(result.with_status(s)) for s in (WRITTEN, CURRENT, SKIPPED, FAILED)}
    done = ("would change" if result.dry_run else "changed") + f" {counts[WRITTEN]}"
    print(
        f"{done}, {counts[CURRENT]} already {'without moodscope tags' if result.remove else 'current'}, "
        f"{counts[SKIPPED]} skipped, {counts[FAILED]} failed in {result.seconds:.1f} s"
        + (" (dry run: nothing was written)" if result.dry_run else "")
    )
    return 1 if counts[FAILED] else 0


def add_export(cmds: argparse._SubParsersAction, shared: SharedOptions) -> None:
    p = cmds.add_parser(
        "export",
        parents=[shared.db],
        help="the whole library as CSV or JSON, one row per track",
        description="Write every track of the library, one row each: id, path, tags (title, artist, album, "
        "duration), mood (quadrant, mood, confidence, valence, arousal, song-level probabilities, share of segments "
        "per quadrant), the model (name and content hash), the file's SHA-256 and when it was analysed. "
        "See docs/library.md for the columns.",
    )
    p.add_argument("--out", required=True, metavar="FILE", help="FILE.csv, FILE.json, or - for standard output")
    p.add_argument("--format", choices=("csv", "json"), default=None, help="default: from the suffix of --out (csv)")
    p.set_defaults(func=run_export)


def run_export(args: argparse.Namespace) -> int:
    from moodscope.errors import LibraryError
    from moodscope.library.export import library_csv, library_json, library_rows, write_text
    from moodscope.version import __version__

    fmt = args.format or ("json" if str(args.out).lower().endswith(".json") else "csv")
    if args.format is None and str(args.out) != "-" and not str(args.out).lower().endswith((".csv", ".json")):
        raise LibraryError(f"{args.out}: give a .csv or .json file (or --format csv|json)")
    with _open(args) as lib:
        rows = library_rows(lib.conn)
        meta = {"moodscope_version": __version__, "library": str(lib.path)}
    text = library_json(rows, **meta) + "\n" if fmt == "json" else library_csv(rows)
    write_text(text, args.out)  # "-": standard output
    if str(args.out) != "-":
        note(f"wrote {args.out} ({len(rows)} tracks)")
    return 0


def add_stats(cmds: argparse._SubParsersAction, shared: SharedOptions) -> None:
    p = cmds.add_parser(
        "stats",
        parents=[shared.db],
        help="what the library holds",
        description="How many tracks, hours of music and 5-s segments the library holds, how its tracks divide "
        "among the four quadrants, which models analysed them and how many files could not be analysed "
        "(--failures lists them with their reasons).",
    )
    p.add_argument("--failures", action="store_true", help="also list the files that could not be analysed")
    p.set_defaults(func=run_stats)


def add_check(cmds: argparse._SubParsersAction, shared: SharedOptions) -> None:
    p = cmds.add_parser(
        "check",
        parents=[shared.db],
        help="check the library database thoroughly (every page, every stored value)",
        description="SQLite's full integrity check, foreign keys, and every stored profile, summary and segment "
        "read back and validated. Exit status 1 when the library is damaged (rebuild it with "
        "`moodscope library scan --rebuild DIR...`).",
    )
    p.set_defaults(func=run_check)


def run_check(args: argparse.Namespace) -> int:
    with _open(args, verify=False) as lib:
        problems = lib.check()
        if problems:
            print(f"{lib.path}: the library database is damaged:", file=sys.stderr)
            for problem in problems:
                print(f"  {problem}", file=sys.stderr)
            print(
                "rebuild it from your music with `moodscope library scan --rebuild DIR...` (the damaged file is kept)",
                file=sys.stderr,
            )
            return 1
        s = lib.stats()
        print(f"{lib.path}: ok ({s['tracks']} tracks, {s['segments']} segments, {s['failures']} failures)")
    return 0


def run_stats(args: argparse.Namespace) -> int:
    from moodscope.constants import QUADRANT_MOODS

    with _open(args) as lib:
        s = lib.stats()
        print(f"{s['path']}: {s['tracks']} tracks, {s['hours']:.1f} h of music, {s['segments']} segments")
        for q, count in s["quadrants"].items():
            share = count / s["tracks"] if s["tracks"] else 0.0
            print(f"  {q} {QUADRANT_MOODS[q]:<14} {count:>7} ({share:.0%})")
        print("  models: " + (", ".join(f"{m} ({c})" for m, c in s["models"].items()) or "none"))
        print(f"  failures: {s['failures']}")
        if args.failures:
            for path, reason in lib.failures().items():
                print(f"    {path}: {reason}")
    return 0


def add_list(cmds: argparse._SubParsersAction, shared: SharedOptions) -> None:
    p = cmds.add_parser(
        "list",
        parents=[shared.db, shared.output],
        help="tracks of a mood, most confident first",
        description="List the library's tracks: all of them (by id), those whose dominant quadrant is a mood "
        "(most confident first), or those nearest to a valence,arousal point.",
    )
    p.add_argument("--mood", help=MOOD_HELP)
    p.add_argument("--min-confidence", type=fraction, default=0.0, help="only tracks at least this confident (0-1)")
    p.add_argument("--limit", type=positive_int, default=None, help="at most this many tracks")
    p.set_defaults(func=run_list)


def run_list(args: argparse.Namespace) -> int:
    from moodscope.library.playlists import list_tracks

    with _open(args) as lib:
        return emit(args, list_tracks(lib, args.mood, min_confidence=args.min_confidence, limit=args.limit))


def add_show(cmds: argparse._SubParsersAction, shared: SharedOptions) -> None:
    p = cmds.add_parser(
        "show",
        parents=[shared.db],
        help="one track: summary and segment timeline",
        description="One track: its mood, confidence, valence/arousal, duration and model, the share of its "
        "5-s segments in each quadrant, and its timeline segment by segment.",
    )
    p.add_argument("track", help="track id, file path or (a unique piece of) its title")
    p.set_defaults(func=run_show)


def run_show(args: argparse.Namespace) -> int:
    with _open(args) as lib:
        t = lib.track(args.track)
        timeline = lib.timeline(t.id)
    print(f"{t.display_name}" + (f"  [{t.album}]" if t.album else ""))
    print(f"  {t.path}")
    print(
        f"  mood {t.quadrant} {t.mood}, confidence {t.confidence:.2f}, valence {t.valence:.2f}, "
        f"arousal {t.arousal:.2f}, {t.duration:.0f} s, model {t.model}"
    )
    print("  segments in each quadrant: " + ", ".join(f"{q} {s:.0%}" for q, s in t.quadrant_share.items()))
    if t.uncertain:
        print(f"  uncertain: {t.ood_fraction:.0%} of its segments are unlike music (left out of mood playlists)")
    from moodscope.analysis.ood import REASONS

    for row in timeline.itertuples(index=False):
        flag = f"  out of distribution: {REASONS[row.ood]}" if row.ood else ""
        print(
            f"  {row.start:7.1f}-{row.end:<7.1f} {row.quadrant}  valence {row.valence:.2f}  arousal {row.arousal:.2f}"
            + flag
        )
    return 0


def add_similar(cmds: argparse._SubParsersAction, shared: SharedOptions) -> None:
    p = cmds.add_parser(
        "similar",
        parents=[shared.db, shared.output],
        help="tracks with the most similar emotion profile",
        description="Tracks nearest to TRACK by emotion profile: mean valence/arousal, quadrant distribution of "
        "the segments and shape of the valence/arousal timeline (score = distance, smaller is closer).",
    )
    p.add_argument("track", help="track id, file path or (a unique piece of) its title")
    p.add_argument("--n", type=positive_int, default=10, help="number of tracks (default: %(default)s)")
    p.add_argument("--include-uncertain", action="store_true", help=INCLUDE_UNCERTAIN_HELP)
    p.set_defaults(func=run_similar)


def run_similar(args: argparse.Namespace) -> int:
    from moodscope.library.playlists import similar_playlist

    with _open(args) as lib:
        return emit(args, similar_playlist(lib, args.track, n=args.n, include_uncertain=args.include_uncertain))


def add_playlist(cmds: argparse._SubParsersAction, shared: SharedOptions) -> None:
    p = cmds.add_parser(
        "playlist",
        parents=[shared.db, shared.output],
        help="a playlist of one mood",
        description="The tracks of a mood, most confident first (for a valence,arousal point: nearest first), "
        "up to --n tracks or --minutes of music (default: 20 tracks).",
    )
    p.add_argument("--mood", required=True, help=MOOD_HELP)
    size = p.add_mutually_exclusive_group()
    size.add_argument("--minutes", type=positive_float, help="fill this many minutes (never more)")
    size.add_argument("--n", type=positive_int, help="number of tracks")
    p.add_argument("--min-confidence", type=fraction, default=0.0, help="only tracks at least this confident (0-1)")
    p.set_defaults(func=run_playlist)


def run_playlist(args: argparse.Namespace) -> int:
    from moodscope.library.playlists import mood_playlist
    from moodscope.library.queries import parse_mood

    mood = parse_mood(args.mood)  # a bad mood word fails before the library is opened
    with _open(args) as lib:
        return emit(args, mood_playlist(lib, mood, minutes=args.minutes, n=args.n, min_confidence=args.min_confidence))


def add_journey(cmds: argparse._SubParsersAction, shared: SharedOptions) -> None:
    p = cmds.add_parser(
        "journey",
        parents=[shared.db, shared.output],
        help="a playlist moving step by step from one mood to another",
        description="The iso principle of music therapy: start where the listener is, end where they want to be. "
        "N waypoints are spaced evenly on the line from the start mood to the target mood on the valence/arousal "
        "plane; each step takes the track nearest its waypoint, never one farther from the target than the "
        "previous track. The last track is the library's nearest to the target.",
    )
    p.add_argument("--from", dest="start", required=True, help=MOOD_HELP)
    p.add_argument("--to", dest="target", required=True, help=MOOD_HELP)
    p.add_argument("--n", type=positive_int, default=12, help="number of tracks (default: %(default)s)")
    p.set_defaults(func=run_journey)


def run_journey(args: argparse.Namespace) -> int:
    from moodscope.library.playlists import journey_playlist
    from moodscope.library.queries import parse_mood

    start, target = parse_mood(args.start), parse_mood(args.target)
    with _open(args) as lib:
        return emit(args, journey_playlist(lib, start, target, n=args.n))


def add_clusters(cmds: argparse._SubParsersAction, shared: SharedOptions) -> None:
    p = cmds.add_parser(
        "clusters",
        parents=[shared.db],
        help="groups of tracks by emotion profile, described in words and figures",
        description="k-means on the standardised emotion profiles (mean valence/arousal, quadrant shares, "
        "within-track variability). With --cluster I, the tracks of one cluster as a playlist.",
    )
    p.add_argument("--k", type=positive_int, default=6, help="number of clusters (default: %(default)s)")
    p.add_argument("--examples", type=non_negative_int, default=3, help="example tracks shown per cluster")
    p.add_argument("--cluster", type=positive_int, metavar="I", help="list the tracks of cluster I (1 = largest)")
    p.add_argument("--format", choices=("table", "json", "csv"), default="table", help="output format")
    p.add_argument("--m3u", type=Path, metavar="FILE", help="with --cluster: write its tracks as an M3U playlist")
    p.add_argument("--xspf", type=Path, metavar="FILE", help="with --cluster: write its tracks as an XSPF playlist")
    p.add_argument("--relative", action="store_true", help="playlist paths relative to the playlist's folder")
    p.add_argument("--include-uncertain", action="store_true", help=INCLUDE_UNCERTAIN_HELP)
    p.set_defaults(func=run_clusters)


def run_clusters(args: argparse.Namespace) -> int:
    from moodscope.errors import LibraryError
    from moodscope.library.playlists import cluster_playlist

    with _open(args) as lib:
        found = lib.clusters(args.k, examples=args.examples, include_uncertain=args.include_uncertain)
        if args.cluster is not None:
            return emit(args, cluster_playlist(lib, args.k, args.cluster, found=found))
        if args.m3u or args.xspf:
            raise LibraryError("--m3u and --xspf need --cluster I: which cluster's tracks to write")
        if args.format == "json":
            from moodscope.library.export import clusters_json

            print(clusters_json(found))
            return 0
        if args.format == "csv":
            from moodscope.library.export import clusters_csv

            sys.stdout.write(clusters_csv(found))
            return 0
        total = sum(c.size for c in found)
        print(f"{len(found)} clusters of {total} tracks by emotion profile")
        if left_out := (0 if args.include_uncertain else int(lib.profiles().uncertain.sum())):
            print(f"({left_out} uncertain tracks, mostly silence, noise or speech, left out: --include-uncertain)")
        for c in found:
            shares = ", ".join(f"{q} {s:.0%}" for q, s in c.quadrant_share.items())
            print(
                f"\n{c.index}. {c.size} tracks ({c.fraction:.0%}): {c.description}\n"
                f"   mean valence {c.valence:.2f}, arousal {c.arousal:.2f}, within-track variability "
                f"{c.variability:.2f}; segments {shares}"
            )
            for t in c.examples:
                print(f"     e.g. {t.display_name}")
    return 0


def add_map(cmds: argparse._SubParsersAction, shared: SharedOptions) -> None:
    p = cmds.add_parser(
        "map",
        parents=[shared.db],
        help="every track on the valence/arousal plane (PNG, or interactive offline HTML)",
        description="Every track of the library as a dot on the valence/arousal plane (0..1 on both axes: the "
        "probabilities of a positive and of a high rating), coloured by the quadrant its position lies in: a PNG "
        "image (or any format matplotlib writes), or, for an .html file, one self-contained "
        "page that opens offline and names the track under the pointer.",
    )
    p.add_argument("--out", type=Path, required=True, metavar="map.png|map.html", help="output file")
    p.set_defaults(func=run_map)


def run_map(args: argparse.Namespace) -> int:
    from moodscope.library.mapplot import check_map_path

    check_map_path(args.out)
    with _open(args) as lib:
        path = lib.map(args.out)
        print(f"wrote {path} ({len(lib)} tracks)")
    return 0
