"""Write the analysed mood into the files' own tags, safely (``moodscope library tag``).

For each file the library analysed, :func:`tag_files` writes :data:`~moodscope.library.tags.MOOD_TAGS`
(or, with ``remove``, takes exactly those off again):

1. **checks** — the file must be the one that was analysed: same size and modification time as
   indexed, else the same content hash, else (its tags were changed by another tool) the same audio
   hash (:mod:`moodscope.library.audiohash`). Otherwise it is skipped with a reason (run
   ``moodscope library scan`` first), as are files the library never analysed, read-only files and
   files with several hard links (replacing one would split them);
2. **nothing to do** — a file whose tags already hold these values is not rewritten (*current*);
3. **writing** — the file is copied to a temporary file beside it, mutagen changes the tags of the
   copy, the copy's audio payload is checked to be byte-for-byte the original's, permissions (and
   owner, when allowed) and modification time are copied (the time is left new with ``touch``),
   the copy is fsynced and renamed over the file (symbolic links are followed: the link stays, its
   target is replaced), through :func:`moodscope.fileio.atomic_write`. A process killed at any
   moment leaves every file either fully old or fully new; the next write of that file reuses the
   temporary copy a killed one left (``.<name>.tmp``);
4. **the library follows** — the track's size, modification time and hashes are updated, so the
   next scan finds it unchanged. Had the update been lost (killed between the rename and the
   commit), the scan would still recognise that only the tags changed (*retagged*), and so would
   the next ``library tag``, which records the new stamp of a file it verified by its hashes.

Files are processed by :data:`TAG_THREADS` threads (the work is fsync, hashing and I/O); the
library is updated by the calling thread alone, one short transaction per file.

``dry_run`` does steps 1-2 and reports what would change. Other tags keep their values and order;
ID3 tags keep their version (v2.3 or v2.4) and an ID3v1 tag is kept byte for byte.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, cast

from moodscope.errors import MoodscopeError, UnsupportedFormatError
from moodscope.fileio import atomic_write
from moodscope.library.audiohash import audio_hash
from moodscope.library.db import Track, fetch_tracks, transaction
from moodscope.library.scan import file_hash, walk_audio
from moodscope.library.tags import MOOD_TAGS, mood_tag_values, open_tagged, read_mood_tags, save_tags, set_mood_tags

log = logging.getLogger(__name__)

WRITTEN, CURRENT, SKIPPED, FAILED = "written", "current", "skipped", "failed"

TAG_THREADS = 8
"""Files tagged at once (threads: the work is fsync, hashing and file I/O)."""


@dataclass
class TagChange:
    """What happened (or, in a dry run, would happen) to one file."""

    path: str
    status: str  # WRITTEN, CURRENT, SKIPPED or FAILED
    before: dict[str, str] = field(default_factory=dict)  # moodscope's tags found in the file
    after: dict[str, str] = field(default_factory=dict)  # moodscope's tags it has (would have) afterwards
    reason: str | None = None  # why it was skipped or failed

    @property
    def changes(self) -> list[tuple[str, str | None, str | None]]:
        """(tag, old value or None, new value or None) for each tag that changes, in MOOD_TAGS order."""
        return [
            (name, self.before.get(name), self.after.get(name))
            for name in MOOD_TAGS
            if self.before.get(name) != self.after.get(name)
        ]


@dataclass
class TagResult:
    """What ``tag_files`` did, file by file."""

    files: list[TagChange]
    dry_run: bool
    remove: bool
    seconds: float = 0.0

    def with_status(self, status: str) -> list[TagChange]:
        return [f for f in self.files if f.status == status]


Progress = Callable[[str, int, int], None]


def tag_files(
    conn: sqlite3.Connection,
    paths: Iterable[str | os.PathLike] | None = None,
    *,
    remove: bool = False,
    dry_run: bool = False,
    touch: bool = False,
    progress: Progress | None = None,
) -> TagResult:
    """Write (``remove``: take off) moodscope's tags in the files of ``paths`` (files or folders,
    recursively; None: every track of the library). See the module docstring."""
    from concurrent.futures import ThreadPoolExecutor, as_completed

    started = time.perf_counter()
    targets, files = _targets(conn, paths, remove=remove)
    tracks = {t.id: t for t in fetch_tracks(conn, [row[0] for row in targets.values() if row is not None])}

    def one(path: str, row: tuple | None) -> tuple[TagChange, tuple | None]:
        track = tracks.get(row[0]) if row else None
        try:
            return _tag_one(path, row, track, remove=remove, dry_run=dry_run, touch=touch)
        except UnsupportedFormatError as exc:
            return TagChange(path, SKIPPED, reason=str(exc)), None
        except MoodscopeError as exc:
            return TagChange(path, FAILED, reason=str(exc)), None
        except OSError as exc:
            return TagChange(path, FAILED, reason=f"{path}: {exc.strerror or exc}"), None

    # Threads: the time goes into fsync, hashing and file I/O, which release the GIL (and concurrent
    # fsyncs share the file system's journal commits). The library is written by this thread alone.
    with ThreadPoolExecutor(max_workers=TAG_THREADS) as pool:
        futures = [pool.submit(one, path, row) for path, row in sorted(targets.items())]
        for done, future in enumerate(as_completed(futures), start=1):
            change, stamp = future.result()
            if stamp is not None:
                with transaction(conn):
                    conn.execute(
                        "UPDATE tracks SET size = ?, mtime_ns = ?, hash = ?, audio_hash = ? WHERE id = ?", stamp
                    )
            files.append(change)
            if progress:
                progress("tag", done, len(targets))
    files.sort(key=lambda c: c.path)
    return TagResult(files, dry_run=dry_run, remove=remove, seconds=time.perf_counter() - started)


_ROW = "SELECT id, path, size, mtime_ns, hash, audio_hash FROM tracks"


def _targets(conn: sqlite3.Connection, paths, *, remove: bool) -> tuple[dict[str, tuple | None], list[TagChange]]:
    """Files to tag (path -> library row, or None for a file outside the library when removing) and
    the files skipped already (not in the library, not found)."""
    if paths is None:
        return {row[1]: row for row in conn.execute(_ROW)}, []
    targets: dict[str, tuple | None] = {}
    skipped: list[TagChange] = []
    not_analysed = "not in the library; analyse it first with `moodscope library scan` on its folder"
    for given in paths:
        path = os.path.abspath(os.path.expanduser(os.fspath(given)))
        if os.path.isdir(path):
            prefix = path.rstrip(os.sep) + os.sep
            rows = {row[1]: row for row in conn.execute(f"{_ROW} WHERE substr(path, 1, ?) = ?", (len(prefix), prefix))}
            targets.update(rows)
            for stamp in walk_audio(Path(path)):
                if stamp.path not in rows:
                    if remove:
                        targets[stamp.path] = None
                    else:
                        skipped.append(TagChange(stamp.path, SKIPPED, reason=not_analysed))
        elif os.path.isfile(path):
            row = conn.execute(f"{_ROW} WHERE path = ?", (path,)).fetchone()
            if row is not None or remove:
                targets[path] = row
            else:
                skipped.append(TagChange(path, SKIPPED, reason=not_analysed))
        else:
            skipped.append(TagChange(path, SKIPPED, reason="no such file or folder"))
    return targets, [s for s in skipped if s.path not in targets]


def _tag_one(
    path: str, row: tuple | None, track: Track | None, *, remove: bool, dry_run: bool, touch: bool
) -> tuple[TagChange, tuple | None]:
    """Check and tag one file; returns what happened and the library row's new (size, mtime, hash,
    audio hash, id) to record, or None. Touches the file only, never the library."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return TagChange(
            path, SKIPPED, reason="the file is gone; `moodscope library scan` its folder to prune it"
        ), None
    record = None
    known_audio = row[5] if row is not None else None  # the audio hash of the file as it is now, if known
    if row is not None and (st.st_size, st.st_mtime_ns) != tuple(row[2:4]):
        digest = file_hash(path)
        audio = known_audio = row[5] if digest == row[4] and row[5] else audio_hash(path)
        if digest != row[4] and audio != row[5]:
            if not remove:
                reason = "its audio changed since it was analysed; run `moodscope library scan` on its folder first"
                return TagChange(path, SKIPPED, reason=reason), None
        else:  # the same audio (another tool may have changed its tags): the library learns the new stamp
            record = (st.st_size, st.st_mtime_ns, digest, audio, row[0])
    real = os.path.realpath(path)
    tagged = open_tagged(real)
    before = read_mood_tags(tagged)
    if remove:
        ours = any(k.startswith("MOODSCOPE_") for k in before)
        after = {} if ours else dict(before)  # a MOOD tag that another tool wrote stays
    else:
        assert track is not None
        after = mood_tag_values(track)
    change = TagChange(path, CURRENT, before=before, after=after)
    if before == after:
        return change, None if dry_run else record
    if not os.access(real, os.W_OK) or not st.st_mode & 0o222:  # (root may write anything: ask the mode)
        return TagChange(path, SKIPPED, before, after, reason="the file is read-only; make it writable to tag it"), None
    if st.st_nlink > 1:
        reason = f"the file has {st.st_nlink} hard links; replacing it would split them"
        return TagChange(path, SKIPPED, before, after, reason=reason), None
    change.status = WRITTEN
    if dry_run:
        return change, None
    set_mood_tags(tagged, after or None)
    digest, audio = _write(real, tagged, st, known_audio, touch=touch)
    if row is None:
        return change, None
    new = os.stat(path)
    return change, (new.st_size, new.st_mtime_ns, digest, audio, row[0])


def _write(real: str, tagged, st: os.stat_result, known_audio: str | None, *, touch: bool) -> tuple[str, str]:
    """Replace ``real`` by a copy of it with the tags of ``tagged`` (the mutagen object read from
    ``real``); returns the new (content hash, audio hash). Raises, leaving the file as it was, if the
    copy's audio hash is not that of ``real`` (``known_audio``, else computed).

    :func:`~moodscope.fileio.atomic_write` keeps the permission bits (and, as root, the owner),
    fsyncs and renames; the modification time is copied here, last.
    """
    with atomic_write(real, "w+b") as fh:
        with open(real, "rb") as source:
            shutil.copyfileobj(source, fh, 1 << 20)
        fh.seek(0)
        save_tags(tagged, fh)  # the copy has the bytes ``tagged`` was read from
        fh.flush()
        new_audio = audio_hash(cast(BinaryIO, fh))
        if new_audio != known_audio and new_audio != audio_hash(real):
            raise MoodscopeError(f"{real}: writing the tags would change the audio data; the file was left as it was")
        fh.seek(0)
        digest = hashlib.file_digest(cast(io.BufferedRandom, fh), "sha256").hexdigest()
        if not touch:
            os.utime(fh.fileno(), ns=(st.st_atime_ns, st.st_mtime_ns))
    return digest, new_audio
