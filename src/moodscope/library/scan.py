"""Index a music collection: walk, stat, hash, analyse only what is new or changed, prune the rest.

How a file is classified (``roots`` are walked recursively; dot-files and dot-folders are skipped;
roots are canonical paths, symlinks resolved, so a folder scanned through a link is not indexed twice):

1. **unchanged** — the path is indexed with the same size and modification time (ns): nothing is
   read, not even hashed (so re-scanning an unchanged collection only costs one ``stat`` per file);
2. otherwise its content is hashed — SHA-256 of the whole file, and of its audio payload without
   the tags (:func:`~moodscope.library.audiohash.audio_hash`) — and
   - an indexed path whose content hash did not change (``touch``, copy-back) only gets its new
     size/mtime (**touched**);
   - an indexed path whose audio hash did not change, only its tags (``moodscope library tag``,
     beets, a tag editor), gets its new size/mtime/hashes and tags (**retagged**), not a new analysis;
   - a new path whose audio belongs to an indexed track whose file is gone is that track **moved**:
     the row keeps its analysis and gets the new path (and hashes and tags, if they were retagged);
   - a new path whose audio belongs to a track still present (under the roots or elsewhere) is a copy:
     the analysis is **reused**;
   - anything else is **analysed** (new files, and files whose audio changed);
3. indexed tracks under the roots whose files were not found are **pruned**;
4. a file that fails is recorded in ``failures`` with its reason and skipped on later scans until it
   changes (``retry_failed=True`` tries again). So is an entry the walk cannot read (a symlink loop,
   a dangling link, a folder that cannot be listed): reported by the scan that finds it, then
   skipped while it stays as it is.

Crash safety: metadata updates (touched, moved) are one transaction, pruning another, and every
analysed track is committed in its own transaction as soon as its analysis arrives, so a scan
killed at any moment (``kill -9`` included) keeps every committed track, never leaves a
half-written one (the ``path`` column is unique and a track and its segments are written together)
and the next scan resumes with the files still missing.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from moodscope.constants import AUDIO_EXTENSIONS
from moodscope.engine.analysis import as_items
from moodscope.engine.base import Engine
from moodscope.engine.registry import engine_scope
from moodscope.errors import LibraryError
from moodscope.library.audiohash import audio_hash
from moodscope.library.db import FileStamp, copy_track, record_failure, transaction, write_analysis
from moodscope.library.tags import read_tags

if TYPE_CHECKING:
    from moodscope.analysis.analyzer import Analysis

log = logging.getLogger(__name__)

HASH_CHUNK = 1 << 20

AnalysisResult = tuple[str, "Analysis | None", str | None]
"""(path, :class:`~moodscope.analysis.analyzer.Analysis` or None, failure reason or None)."""

Analyzer = Callable[[list[Path]], Iterable[AnalysisResult]]
"""Analyses a list of files and yields one :data:`AnalysisResult` per file, as each finishes
(a callable returning a :class:`~moodscope.engine.analysis.BatchResult`, such as
``functools.partial(analyze_files, model=...)``, is accepted too)."""

Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)`` with stage ``'hash'`` or ``'analyse'``."""


@dataclass
class ScanResult:
    """What a scan did, path by path."""

    roots: list[str]
    analysed: list[str] = field(default_factory=list)  # new or changed files, analysed now
    reused: list[str] = field(default_factory=list)  # copies of indexed content: analysis reused
    moved: list[tuple[str, str]] = field(default_factory=list)  # (old path, new path)
    touched: list[str] = field(default_factory=list)  # new mtime, same content
    retagged: list[str] = field(default_factory=list)  # new tags, same audio: not analysed again
    pruned: list[str] = field(default_factory=list)  # files gone from disk
    unchanged: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # path -> reason (this scan)
    skipped_failed: dict[str, str] = field(default_factory=dict)  # failed before and unchanged since
    seconds: float = 0.0

    @property
    def indexed(self) -> int:
        """Files of the roots that are in the library after the scan."""
        return (
            self.unchanged
            + len(self.analysed)
            + len(self.reused)
            + len(self.moved)
            + len(self.touched)
            + len(self.retagged)
        )


def file_hash(path: str | os.PathLike) -> str:
    """SHA-256 (hex) of the whole content of ``path``, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def walk_audio(root: Path, errors: dict[str, str] | None = None) -> Iterator[FileStamp]:
    """Every audio file under ``root`` (recursively, skipping dot-names, not following folder links)."""
    stack = [str(root)]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError as exc:
            if errors is not None:
                errors[folder] = f"cannot list folder: {exc.strerror or exc}"
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                elif os.path.splitext(entry.name)[1].lower() in AUDIO_EXTENSIONS and entry.is_file():
                    st = entry.stat()
                    yield FileStamp(entry.path, st.st_size, st.st_mtime_ns)
            except OSError as exc:
                if errors is not None:
                    errors[entry.path] = f"cannot read file: {exc.strerror or exc}"


# ---- analysers ---------------------------------------------------------------------------------


def model_analyzer(
    model=None, *, engine: Engine | str = "local", workers: int | None = None, address: str | None = None
) -> Analyzer:
    """The real analysis (:func:`moodscope.analysis.analyzer.analyze`) on an engine, yielding results
    as they finish.

    ``model`` is a shipped model name, a checkpoint path, a loaded model or None for the default;
    ``engine`` is 'local' (``workers`` processes, default all cores), 'ray' (the cluster at
    ``address``, default a Ray instance on this machine) or an open
    :class:`~moodscope.engine.base.Engine`. The model is loaded once before any file is read, so a
    missing model is one clear :class:`~moodscope.errors.ModelError`, not a failure per file.
    """

    def run(paths: list[Path]) -> Iterator[AnalysisResult]:
        if not paths:
            return
        from moodscope.analysis.pretrained import load_model

        load_model(model)  # validates the model (worker processes forked from here inherit it)
        with engine_scope(engine, workers=workers, address=address) as runner:
            yield from runner.analyze(as_items(paths), model)

    return run


def _results(analyzer: Analyzer, paths: list[Path]) -> Iterator[AnalysisResult]:
    out = analyzer(paths)
    if hasattr(out, "analyses") and hasattr(out, "failed"):  # a BatchResult
        for analysis in out.analyses:
            yield str(analysis.source), analysis, None
        for path, reason in out.failed.items():
            yield str(path), None, reason
        return
    for path, analysis, error in out:
        yield str(path), analysis, error


# ---- the scan ----------------------------------------------------------------------------------


def _under(path: str, roots: list[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


@dataclass
class _Index:
    """What the library holds before the scan."""

    tracks: dict[str, tuple]  # path -> (id, path, size, mtime_ns, hash, audio_hash)
    failures: dict[str, tuple]  # path -> (path, size, mtime_ns, reason)

    @classmethod
    def read(cls, conn: sqlite3.Connection) -> _Index:
        return cls(
            tracks={
                row[1]: row for row in conn.execute("SELECT id, path, size, mtime_ns, hash, audio_hash FROM tracks")
            },
            failures={row[0]: row for row in conn.execute("SELECT path, size, mtime_ns, reason FROM failures")},
        )


@dataclass
class _Plan:
    """What to do with each file that is new or whose stamp changed."""

    vanished: set[str]  # indexed paths under the roots whose files are gone (and aliases of found files)
    updates: list[tuple] = field(default_factory=list)  # (path, size, mtime, hash, audio hash, tags…, id)
    copies: list[tuple[FileStamp, int]] = field(default_factory=list)  # (new file, id of a track with its audio)
    analyse: dict[str, list[FileStamp]] = field(default_factory=dict)  # audio hash -> files (first analysed)


def scan_library(
    conn: sqlite3.Connection,
    roots: Iterable[str | os.PathLike],
    *,
    analyzer: Analyzer,
    prune: bool = True,
    force: bool = False,
    retry_failed: bool = False,
    progress: Progress | None = None,
) -> ScanResult:
    """Bring the library up to date with the audio files under ``roots``; see the module docstring.

    ``roots`` are folders (walked, and pruned) or files (taken as they are, never pruned). ``force``
    re-analyses every file (for instance after changing the model). Raises :class:`LibraryError`
    when a root is neither; per-file problems are collected in the result.
    """
    started = time.perf_counter()
    folders, files = _roots(roots)
    result = ScanResult(roots=folders)
    found, unreadable = _find_files(result, files)
    index = _Index.read(conn)
    _record_unreadable(conn, unreadable, index, result)
    to_check = _changed_files(found, index, result, force=force, retry_failed=retry_failed)
    digests = _hash_files(to_check, result, progress)
    plan = _match_content(to_check, digests, found, index, result, force=force)
    present = found | {path: stamp for path, (stamp, _) in unreadable.items()}
    _update_metadata(conn, plan, index, present, result, prune=prune)
    for stamp, source_id in plan.copies:
        copy_track(conn, source_id, stamp, read_tags(stamp.path), *digests[stamp.path])
        result.reused.append(stamp.path)
    _analyse_and_store(conn, analyzer, plan.analyse, digests, result, progress)
    result.seconds = time.perf_counter() - started
    return result


def _roots(roots: Iterable[str | os.PathLike]) -> tuple[list[str], list[str]]:
    """(folders, files) among ``roots``, as canonical paths (symlinks resolved: a folder scanned
    through a link is the same folder, never indexed twice)."""
    folders, files = [], []
    for r in roots:
        path = Path(r).expanduser()
        if path.is_dir():
            folders.append(os.path.realpath(path))
        elif path.is_file():
            files.append(os.path.realpath(path))
        else:
            raise LibraryError(f"{r}: not a folder or a file; give the folder that holds your music")
    return folders, files


def _find_files(result: ScanResult, files: list[str]) -> tuple[dict[str, FileStamp], dict[str, tuple[FileStamp, str]]]:
    """Every audio file under the root folders and the files given by name (whatever their
    extension), and what could not be read there (path -> (stamp, reason)): folders that cannot be
    listed, files that cannot be opened (a symlink loop, a dangling link)."""
    found: dict[str, FileStamp] = {}
    errors: dict[str, str] = {}
    for root in result.roots:
        for stamp in walk_audio(Path(root), errors):
            found[stamp.path] = stamp
    for path in files:
        try:
            st = os.stat(path)
        except OSError as exc:
            errors[path] = f"cannot read file: {exc.strerror or exc}"
            continue
        found[path] = FileStamp(path, st.st_size, st.st_mtime_ns)
    unreadable = {}
    for path, reason in errors.items():
        try:
            st = os.lstat(path)  # the entry itself (the link, for a link that cannot be followed)
            stamp = FileStamp(path, st.st_size, st.st_mtime_ns)
        except OSError:
            stamp = FileStamp(path, 0, 0)
        unreadable[path] = (stamp, reason)
    return found, unreadable


def _record_unreadable(
    conn: sqlite3.Connection, unreadable: dict[str, tuple[FileStamp, str]], index: _Index, result: ScanResult
) -> None:
    """Unreadable entries are failures like files that cannot be analysed: reported by the scan that
    finds them, then skipped (not reported as new failures) while they stay as they are."""
    for path, (stamp, reason) in sorted(unreadable.items()):
        failure = index.failures.get(path)
        if failure and failure[1] == stamp.size and failure[2] == stamp.mtime_ns and failure[3] == reason:
            result.skipped_failed[path] = reason
            continue
        result.failed[path] = reason
        record_failure(conn, stamp, reason)


def _aliases(index: _Index, found: dict[str, FileStamp], roots: list[str]) -> set[str]:
    """Indexed paths outside the roots that name a file found under them through a symlinked folder
    (indexed before roots were made canonical): duplicates, pruned like files that are gone."""
    real_folders: dict[str, str] = {}
    aliases = set()
    for path in index.tracks:
        if path in found or _under(path, roots):
            continue
        folder, name = os.path.split(path)
        real = real_folders.get(folder)
        if real is None:
            real = real_folders[folder] = os.path.realpath(folder)
        if real != folder and os.path.join(real, name) in found:
            aliases.add(path)
    return aliases


def _changed_files(
    found: dict[str, FileStamp], index: _Index, result: ScanResult, *, force: bool, retry_failed: bool
) -> list[FileStamp]:
    """Files to hash: all but the unchanged indexed ones and the unchanged failed ones (counted in ``result``)."""
    to_check = []
    for path, stamp in sorted(found.items()):
        known = index.tracks.get(path)
        if known and not force and known[2] == stamp.size and known[3] == stamp.mtime_ns:
            result.unchanged += 1
            continue
        failure = index.failures.get(path)
        if failure and not (retry_failed or force) and failure[1] == stamp.size and failure[2] == stamp.mtime_ns:
            result.skipped_failed[path] = failure[3]
            continue
        to_check.append(stamp)
    return to_check


def _hash_files(to_check: list[FileStamp], result: ScanResult, progress: Progress | None) -> dict[str, tuple[str, str]]:
    """path -> (content hash, audio hash); files that cannot be read go to ``result.failed``."""
    digests: dict[str, tuple[str, str]] = {}
    for i, stamp in enumerate(to_check):
        try:
            digests[stamp.path] = (file_hash(stamp.path), audio_hash(stamp.path))
        except OSError as exc:
            result.failed[stamp.path] = f"cannot read file: {exc.strerror or exc}"
        if progress:
            progress("hash", i + 1, len(to_check))
    return digests


def _match_content(
    to_check: list[FileStamp],
    digests: dict[str, tuple[str, str]],
    found: dict[str, FileStamp],
    index: _Index,
    result: ScanResult,
    *,
    force: bool,
) -> _Plan:
    """Sort the hashed files into touched, retagged, moved, copies and files to analyse (see the module docstring)."""
    roots = result.roots
    plan = _Plan(vanished={path for path in index.tracks if path not in found and _under(path, roots)})
    plan.vanished |= _aliases(index, found, roots)
    by_audio: dict[str, list[str]] = {}  # audio hash (content hash for rows indexed without one) -> paths
    for path, row in index.tracks.items():
        by_audio.setdefault(row[5] or row[4], []).append(path)

    def update(stamp: FileStamp, track_id: int) -> None:
        tags = read_tags(stamp.path)
        plan.updates.append((stamp.path, stamp.size, stamp.mtime_ns, *digests[stamp.path], tags.title, tags.artist,
                             tags.album, tags.duration, track_id))  # fmt: skip

    for stamp in to_check:
        if stamp.path not in digests:
            continue
        digest, audio = digests[stamp.path]
        known = index.tracks.get(stamp.path)
        if known is not None:
            if force:
                plan.analyse.setdefault(audio, []).append(stamp)
            elif digest == known[4]:
                update(stamp, known[0])
                result.touched.append(stamp.path)
            elif audio == known[5]:
                update(stamp, known[0])
                result.retagged.append(stamp.path)
            else:
                plan.analyse.setdefault(audio, []).append(stamp)
            continue
        same = [p for key in dict.fromkeys((audio, digest)) for p in by_audio.get(key, ())]
        candidates = [p for p in same if p not in found or p == stamp.path]
        gone = [p for p in candidates if p in plan.vanished or (not _under(p, roots) and not os.path.exists(p))]
        if gone and not force:
            old = gone[0]
            plan.vanished.discard(old)
            paths = by_audio[index.tracks[old][5] or index.tracks[old][4]]
            paths[paths.index(old)] = stamp.path
            update(stamp, index.tracks[old][0])
            result.moved.append((old, stamp.path))
        elif not force and (present := [p for p in same if p in found or (not _under(p, roots) and os.path.exists(p))]):
            plan.copies.append((stamp, index.tracks[present[0]][0]))  # the source may be outside the roots
        else:
            plan.analyse.setdefault(audio, []).append(stamp)
    return plan


def _update_metadata(
    conn: sqlite3.Connection,
    plan: _Plan,
    index: _Index,
    found: dict[str, FileStamp],
    result: ScanResult,
    *,
    prune: bool,
) -> None:
    """Touched, retagged and moved tracks in one transaction; pruning in another."""
    if plan.updates:
        with transaction(conn):
            conn.executemany(
                "UPDATE tracks SET path = ?, size = ?, mtime_ns = ?, hash = ?, audio_hash = ?, title = ?, "
                "artist = ?, album = ?, tag_duration = ? WHERE id = ?",
                plan.updates,
            )
    if not prune:
        return
    if plan.vanished:
        with transaction(conn):
            conn.executemany("DELETE FROM tracks WHERE id = ?", [(index.tracks[p][0],) for p in sorted(plan.vanished)])
        result.pruned.extend(sorted(plan.vanished))
    stale = [(p,) for p in index.failures if p not in found and _under(p, result.roots)]
    if stale:
        with transaction(conn):
            conn.executemany("DELETE FROM failures WHERE path = ?", stale)


def _analyse_and_store(
    conn: sqlite3.Connection,
    analyzer: Analyzer,
    analyse: dict[str, list[FileStamp]],
    digests: dict[str, tuple[str, str]],
    result: ScanResult,
    progress: Progress | None,
) -> None:
    """Analyse the first file of each audio content and store each result as it arrives (one
    transaction per track, written by this process alone); copies of it reuse the analysis."""
    groups = {group[0].path: group for group in analyse.values()}
    paths = [Path(p) for p in groups]
    if progress and paths:
        progress("analyse", 0, len(paths))
    done = 0
    for path, analysis, error in _results(analyzer, paths):
        if path not in groups:
            log.warning("the analyser returned a result for %s, which it was not asked for", path)
            continue
        group = groups[path]
        digest, audio = digests[group[0].path]
        first_id = None
        if analysis is not None:
            try:
                first_id = write_analysis(conn, group[0], digest, read_tags(group[0].path), analysis, audio)
            except LibraryError as exc:  # an analysis that cannot be stored fails its file, not the scan
                error = str(exc)
        if first_id is None:
            for stamp in group:
                result.failed[stamp.path] = error or "unknown error"
                record_failure(conn, stamp, error or "unknown error")
        else:
            result.analysed.append(group[0].path)
            for stamp in group[1:]:
                copy_track(conn, first_id, stamp, read_tags(stamp.path), *digests[stamp.path])
                result.reused.append(stamp.path)
        done += 1
        if progress:
            progress("analyse", done, len(paths))
    missing = set(groups) - set(result.analysed) - set(result.failed)
    for path in sorted(missing):  # an analyser that skipped a file must not make it look indexed
        result.failed[path] = "the analyser returned no result for this file"
