"""``MoodLibrary``: the Python API of the mood library.

    >>> from moodscope.library import MoodLibrary
    >>> with MoodLibrary("music.db") as lib:                       # doctest: +SKIP
    ...     lib.scan("~/Music", model="fast")
    ...     calm = lib.playlist("calm", minutes=60)
    ...     path = lib.journey("sad", "happy", n=12)
    ...     write_m3u(path, "sad-to-happy.m3u")

Queries load every track's profile into one matrix (one SQL query, cached until the database
changes) and answer with vectorised numpy; only the tracks returned are read back from SQL.

A library that cannot be written (a read-only file, folder or disk) is opened read-only: queries
work, scans are refused. Every SQLite error comes out as a :class:`~moodscope.errors.LibraryError`
(a damaged library says how to rebuild it, see :mod:`moodscope.library.integrity`).
"""

from __future__ import annotations

import copy
import functools
import os
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from moodscope.constants import QUADRANTS
from moodscope.engine.base import Engine
from moodscope.errors import LibraryError
from moodscope.library import queries
from moodscope.library.db import (
    TEXT_INDEX,
    Profiles,
    Track,
    connect,
    default_library_path,
    fetch_tracks,
    has_text_index,
    load_profiles,
    scan_lock,
    select_page,
    select_tracks,
    writable,
)
from moodscope.library.db import full_check as db_full_check
from moodscope.library.integrity import bad_points, bad_segment_rows, damaged, remember_checked, sql_error
from moodscope.library.queries import Cluster, Mood, parse_mood
from moodscope.library.scan import Analyzer, Progress, ScanResult, model_analyzer, scan_library

if TYPE_CHECKING:
    import pandas as pd

    from moodscope.analysis.analyzer import Analysis
    from moodscope.library.tagging import TagResult


def _guarded(method):
    """SQLite errors raised by ``method`` become :class:`LibraryError` naming the library."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as exc:
            raise sql_error(self.path, exc) from exc

    return wrapper


def _count(value, name: str, *, minimum: int = 1) -> int:
    """A number of tracks asked for: a whole number of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise LibraryError(f"{name} must be a whole number of at least {minimum} (got {value!r})")
    return int(value)


def _confidence(value) -> float:
    if not 0.0 <= float(value) <= 1.0:
        raise LibraryError(f"min_confidence must lie in [0, 1] (got {value!r})")
    return float(value)


def _as_mood(mood: str | Mood | tuple[float, float]) -> Mood:
    if isinstance(mood, Mood):
        return mood
    if isinstance(mood, tuple):
        return parse_mood(f"{mood[0]},{mood[1]}")
    return parse_mood(mood)


TEXT_INDEX_MIN_LENGTH = 3
"""The shortest text the full-text index can find (it indexes 3-character substrings); shorter texts scan."""


def _filter_sql(mood: Mood | None, min_confidence: float, text: str | None, indexed: bool) -> tuple[str, tuple]:
    """The SQL condition (and its parameters) of the track filters of :meth:`MoodLibrary.tracks`: a mood
    leaves out the uncertain tracks (they have none).

    ``text``: SQLite's ``LIKE`` of the text as a literal substring of title, artist or path (case-insensitive
    for ASCII letters only, as ``LIKE`` is). ``indexed``: the library's full-text index
    (:data:`~moodscope.library.db.TEXT_INDEX`) first narrows the tracks to those holding the text as a
    substring under Unicode case folding (a superset of ``LIKE``'s matches), so the same ``LIKE`` then only
    checks those: the same tracks as a scan of the table, found without one. Texts the index cannot look up
    (shorter than :data:`TEXT_INDEX_MIN_LENGTH` characters, or holding a NUL character) scan the table.
    """
    where: list[str] = ["confidence >= ?"]
    params: list[object] = [float(min_confidence)]
    if mood is not None:
        where.append("uncertain = 0")
    if mood is not None and not mood.is_point:
        where.append("quadrant = ?")
        params.append(mood.quadrant)
    if text:
        if indexed and len(text) >= TEXT_INDEX_MIN_LENGTH and "\0" not in text:  # an FTS5 phrase: the quoted text
            where.append(f"id IN (SELECT rowid FROM {TEXT_INDEX} WHERE {TEXT_INDEX} MATCH ?)")
            params.append('"' + text.replace('"', '""') + '"')
        like = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        where.append("(title LIKE ? ESCAPE '\\' OR artist LIKE ? ESCAPE '\\' OR path LIKE ? ESCAPE '\\')")
        params.extend([like] * 3)
    return " AND ".join(where), tuple(params)


class MoodLibrary:
    """A music collection indexed by mood, in one SQLite file (see :mod:`moodscope.library.db`).

    ``path`` defaults to :func:`~moodscope.library.db.default_library_path`; ``create=False``
    refuses to create a new empty library (queries on a library that was never scanned).
    ``write=True`` refuses a library that cannot be written (before a scan); ``write=False`` opens
    it read-only; the default opens it read-only only when it cannot be written. ``verify=False``
    skips the check on open (:meth:`check` runs the full one).
    """

    def __init__(
        self,
        path: str | os.PathLike | None = None,
        *,
        create: bool = True,
        write: bool | None = None,
        verify: bool = True,
    ):
        self.path = Path(path).expanduser() if path is not None else default_library_path()
        self.read_only = write is False or (not write and not writable(self.path))
        self.conn: sqlite3.Connection = connect(
            self.path, create=create, write=False if self.read_only else write, verify=verify
        )
        self.text_index = has_text_index(self.conn)
        """Whether text filters use the full-text index (no index where SQLite lacks FTS5's trigram
        tokenizer); False makes them scan the table, as before schema 8 (same results, slower)."""
        self._profiles: Profiles | None = None
        self._profiles_key: tuple[int, int] | None = None
        self._verified = verify
        self._closed = False

    def close(self) -> None:
        """Close the connection. A library checked on open and then written only by this process
        (a scan, a new profile snapshot) is remembered as checked: its own writes need no check.
        Closing a closed library does nothing."""
        if self._closed:
            return
        self._closed = True
        wrote = self.conn.total_changes > 0
        self.conn.close()
        if wrote and self._verified:
            remember_checked(self.path)

    def __enter__(self) -> MoodLibrary:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @_guarded
    def __len__(self) -> int:
        return self.conn.execute("SELECT count(*) FROM tracks").fetchone()[0]

    def __repr__(self) -> str:
        return f"MoodLibrary({str(self.path)!r}, {len(self)} tracks)"

    # ---- indexing -------------------------------------------------------------------------------

    @_guarded
    def scan(
        self,
        *roots: str | os.PathLike,
        model: str | os.PathLike | None = None,
        engine: Engine | str = "local",
        workers: int | None = None,
        address: str | None = None,
        analyzer: Analyzer | None = None,
        prune: bool = True,
        force: bool = False,
        retry_failed: bool = False,
        progress: Progress | None = None,
    ) -> ScanResult:
        """Index the audio files under ``roots`` (see :mod:`moodscope.library.scan`).

        ``model`` ('accurate', 'fast', a checkpoint path or a loaded model) and the engine it runs on
        (``engine`` 'local' with ``workers`` processes, 'ray' at ``address``, or an open
        :class:`~moodscope.engine.base.Engine`) configure the real analysis; ``analyzer`` replaces it
        altogether (tests, custom pipelines). Results are stored by this process alone, whatever the engine.
        """
        if not roots:
            raise LibraryError("give at least one folder to scan")
        if self.read_only:
            raise LibraryError(f"{self.path}: the library is read-only here; a scan writes to it: give a writable --db")
        analyzer = analyzer or model_analyzer(model, engine=engine, workers=workers, address=address)
        with scan_lock(self.path):  # a second scan of this library fails here, before analysing anything
            result = scan_library(
                self.conn,
                roots,
                analyzer=analyzer,
                prune=prune,
                force=force,
                retry_failed=retry_failed,
                progress=progress,
            )
            if result.analysed or result.reused or result.moved or result.touched or result.retagged or result.pruned:
                self.profiles()  # refresh the profile snapshot now, so that the next query is fast
        return result

    @_guarded
    def tag(
        self,
        *paths: str | os.PathLike,
        remove: bool = False,
        dry_run: bool = False,
        touch: bool = False,
        progress: Progress | None = None,
    ) -> TagResult:
        """Write the analysed mood into the files' own tags (``remove``: take moodscope's tags off).

        ``paths`` are files or folders (none: every track of the library); see
        :mod:`moodscope.library.tagging` for the checks and the crash-safe write.
        """
        from moodscope.library.tagging import tag_files

        return tag_files(self.conn, paths or None, remove=remove, dry_run=dry_run, touch=touch, progress=progress)

    @_guarded
    def index_files(
        self,
        paths: Iterable[str | os.PathLike],
        *,
        model: str | os.PathLike | None = None,
        workers: int | None = None,
        analyzer: Analyzer | None = None,
        force: bool = False,
        progress: Progress | None = None,
    ) -> tuple[ScanResult, dict[str, Track]]:
        """Make sure these files are in the library and return their tracks by absolute path.

        Only files the library does not know yet (or whose audio changed) are analysed; a file with
        the audio of a track already indexed (moved, copied, retagged) reuses its analysis. Nothing
        is pruned. Files that are missing or fail are in the result's ``failed`` (or
        ``skipped_failed``: failed before and unchanged since) and absent from the tracks.
        """
        files = list(dict.fromkeys(os.path.abspath(os.path.expanduser(os.fspath(p))) for p in paths))
        present = [p for p in files if os.path.isfile(p)]
        if present:
            result = scan_library(
                self.conn,
                present,
                analyzer=analyzer or model_analyzer(model, workers=workers),
                prune=False,
                force=force,
                progress=progress,
            )
            self.profiles()
        else:
            result = ScanResult(roots=[])
        for path in files:
            if path not in present:
                result.failed[path] = f"{path}: no such file"
        return result, self.tracks_at(files)

    @_guarded
    def tracks_at(self, paths: Iterable[str | os.PathLike]) -> dict[str, Track]:
        """The tracks of these files (absolute paths), by path; files not in the library are left out."""
        given = {os.path.realpath(os.fspath(p)): os.path.abspath(os.fspath(p)) for p in paths}
        files = list(given)  # the library holds canonical paths (symlinks resolved)
        found: dict[str, Track] = {}
        for start in range(0, len(files), 900):  # stay under SQLite's bound-parameter limit
            chunk = files[start : start + 900]
            for track in select_tracks(self.conn, f"path IN ({','.join('?' * len(chunk))})", tuple(chunk)):
                found[given[track.path]] = track
        return found

    @_guarded
    def check(self) -> list[str]:
        """The full check (:func:`moodscope.library.db.full_check`): every problem found, [] when sound."""
        problems = db_full_check(self.conn)
        if not problems and not self.read_only:
            remember_checked(self.path)
        return problems

    @_guarded
    def failures(self) -> dict[str, str]:
        """Files that could not be analysed: path -> reason."""
        return dict(self.conn.execute("SELECT path, reason FROM failures ORDER BY path"))

    @_guarded
    def stats(self) -> dict:
        """Counts and totals: tracks, segments, hours, tracks per quadrant, models, failures.

        Computed once per state of the library (kept beside the profiles, see :meth:`profiles`).
        """
        cache = self.profiles().cache
        if "stats" not in cache:
            cache["stats"] = self._stats()
        return copy.deepcopy(cache["stats"])

    def _stats(self) -> dict:
        c = self.conn
        per_q = dict(c.execute("SELECT quadrant, count(*) FROM tracks GROUP BY quadrant"))
        seconds = c.execute("SELECT coalesce(sum(coalesce(tag_duration, analysed_seconds)), 0) FROM tracks").fetchone()
        return {
            "path": str(self.path),
            "tracks": len(self),
            "segments": c.execute("SELECT coalesce(sum(n_segments), 0) FROM tracks").fetchone()[0],
            "hours": round(seconds[0] / 3600, 3),
            "quadrants": {q: per_q.get(q, 0) for q in QUADRANTS},
            "models": dict(c.execute("SELECT model, count(*) FROM tracks GROUP BY model ORDER BY model")),
            "failures": c.execute("SELECT count(*) FROM failures").fetchone()[0],
        }

    # ---- reading --------------------------------------------------------------------------------

    @_guarded
    def profiles(self) -> Profiles:
        """Every track's profile as arrays; cached until this or another connection changes the database."""
        key = self._changes()
        if self._profiles is None or key != self._profiles_key:
            self._profiles = load_profiles(self.conn)
            self._profiles_key = key
        return self._profiles

    @_guarded
    def track(self, ref: int | str | os.PathLike) -> Track:
        """One track by id, by file path, or by a unique piece of its title/artist/path."""
        if isinstance(ref, (int, np.integer)) or (isinstance(ref, str) and ref.strip().isdigit()):
            found = fetch_tracks(self.conn, [int(ref)])
            if not found:
                raise LibraryError(f"no track with id {ref} in the library; see `moodscope library list`")
            return found[0]
        text = str(ref)
        if os.path.exists(text):
            found = select_tracks(self.conn, "path = ?", (os.path.realpath(text),))
            if not found:
                raise LibraryError(f"{text} is not in the library; scan its folder first (`moodscope library scan`)")
            return found[0]
        exact = select_tracks(self.conn, "title = ? COLLATE NOCASE", (text,))
        if len(exact) == 1:
            return exact[0]
        like = f"%{text}%"
        found = exact or select_tracks(
            self.conn, "title LIKE ? OR artist LIKE ? OR path LIKE ? OR (artist || ' - ' || title) LIKE ?", (like,) * 4
        )
        if len(found) == 1:
            return found[0]
        if not found:
            raise LibraryError(
                f"no track matches {text!r}; give an id, a file path or a title (see `moodscope library list`)"
            )
        names = "; ".join(f"{t.id}: {t.display_name}" for t in found[:5])
        more = f" and {len(found) - 5} more" if len(found) > 5 else ""
        raise LibraryError(f"{len(found)} tracks match {text!r} ({names}{more}); give its id or a longer title")

    @_guarded
    def timeline(self, ref: int | str | os.PathLike) -> pd.DataFrame:
        """The per-segment timeline of a track as a DataFrame (start, end, quadrant, p_Q1..p_Q4, valence, arousal,
        ood: 0 or the index in :data:`moodscope.analysis.ood.REASONS` of why the segment is out of distribution,
        ood_score: NaN when the model gave none)."""
        import pandas as pd

        from moodscope.constants import SEGMENT_SECONDS

        track = self.track(ref)
        cols = ", ".join(f"p_{q.lower()}" for q in QUADRANTS)
        rows = self.conn.execute(
            f"SELECT start, {cols}, valence, arousal, ood, ood_score FROM segments WHERE track_id = ? ORDER BY idx",
            (track.id,),
        ).fetchall()
        names = ["start", *(f"p_{q}" for q in QUADRANTS), "valence", "arousal", "ood", "ood_score"]
        frame = pd.DataFrame(rows, columns=names).astype({"ood": int, "ood_score": float})
        values = frame.iloc[:, 1:7].to_numpy(dtype=np.float64)
        bad = bad_segment_rows(values[:, :4], values[:, 4:])
        if bad.any():
            raise damaged(
                self.path, f"segment {int(np.flatnonzero(bad)[0])} of track {track.id} holds impossible values"
            )
        frame.insert(1, "end", frame["start"] + SEGMENT_SECONDS)
        probs = frame[[f"p_{q}" for q in QUADRANTS]].to_numpy()
        frame.insert(2, "quadrant", [QUADRANTS[i] for i in probs.argmax(axis=1)] if len(frame) else [])
        return frame

    @_guarded
    def analysis(self, ref: int | str | os.PathLike | Track) -> Analysis:
        """A track's stored analysis as :func:`moodscope.analysis.analyze` returns it (timeline and summary)."""
        from moodscope.analysis.analyzer import Analysis
        from moodscope.analysis.ood import SegmentOod

        track = ref if isinstance(ref, Track) else self.track(ref)
        frame = self.timeline(track.id)
        ood = SegmentOod(frame["ood_score"].to_numpy(), frame["ood"].to_numpy().astype(np.int8))
        return Analysis(
            source=track.path,
            duration=track.duration,
            model=track.model,
            starts=frame["start"].to_numpy(),
            probabilities=frame[[f"p_{q}" for q in QUADRANTS]].to_numpy(),
            va=frame[["valence", "arousal"]].to_numpy(),
            model_hash=track.model_hash,
            moodscope_version=track.moodscope_version,
            ood=ood,
        )

    def _tracks_at(self, rows: Iterable[int], scores: Iterable[float] | None = None) -> list[Track]:
        prof = self.profiles()
        ids = [int(prof.ids[r]) for r in rows]
        tracks = fetch_tracks(self.conn, ids)
        if len(tracks) != len(ids) and self._profiles_key == self._changes():
            missing = sorted(set(ids) - {t.id for t in tracks})
            raise damaged(self.path, f"track {missing[0]} has a profile but no row ({len(missing)} such tracks)")
        if scores is not None:
            score_of = dict(zip(ids, scores))
            for track in tracks:
                track.score = float(score_of[track.id])
        return tracks

    def _changes(self) -> tuple[int, int]:
        return self.conn.execute("PRAGMA data_version").fetchone()[0], self.conn.total_changes

    # ---- queries --------------------------------------------------------------------------------

    @_guarded
    def tracks(
        self,
        mood: str | Mood | None = None,
        *,
        min_confidence: float = 0.0,
        limit: int | None = None,
        offset: int = 0,
        text: str | None = None,
    ) -> list[Track]:
        """Tracks of a mood (a quadrant's tracks by confidence, or nearest to a v/a point), or all by id.

        ``text`` keeps the tracks whose title, artist or path contains it (case-insensitive for ASCII letters,
        as SQLite's ``LIKE``; found through the library's full-text index when it has one, else by a scan);
        ``offset`` skips that many of the ranked tracks (pages of ``limit``).
        """
        return self._select(mood, min_confidence, limit, offset, text, total=False)[0]

    @_guarded
    def track_page(
        self,
        mood: str | Mood | None = None,
        *,
        min_confidence: float = 0.0,
        limit: int | None = None,
        offset: int = 0,
        text: str | None = None,
    ) -> tuple[list[Track], int]:
        """One page of :meth:`tracks` and how many tracks match in all (:meth:`count`), answered together:
        a text filter answers both in one query (through the full-text index); without one the total comes from
        the profiles."""
        tracks, total = self._select(mood, min_confidence, limit, offset, text, total=True)
        assert total is not None  # asked for
        return tracks, total

    def _select(
        self, mood, min_confidence: float, limit: int | None, offset: int, text: str | None, *, total: bool
    ) -> tuple[list[Track], int | None]:
        limit = None if limit is None else _count(limit, "limit")
        offset = _count(offset, "offset", minimum=0)
        min_confidence = _confidence(min_confidence)
        target = None if mood is None else _as_mood(mood)
        offset, limit = int(offset), None if limit is None else int(limit)
        stop = None if limit is None else offset + limit
        if target is not None and target.is_point:  # ranked in numpy; a text filter keeps the ids SQL matches
            prof = self.profiles()
            rows, scores = queries.rank_for_mood(
                prof, target, min_confidence=min_confidence, limit=None if stop is None or text else stop
            )
            n = None
            if text:
                where, params = _filter_sql(target, min_confidence, text, self.text_index)
                ids = np.fromiter((r[0] for r in self.conn.execute(f"SELECT id FROM tracks WHERE {where}", params)),
                                  np.int64)  # fmt: skip
                keep = np.isin(prof.ids[rows], ids)
                rows, scores = rows[keep], scores[keep]
                n = len(rows)
            elif total:
                n = self.count(target, min_confidence=min_confidence)
            return self._tracks_at(rows[offset:stop], scores[offset:stop]), n
        if target is None and not text and limit is not None:  # a page by id: the rows from the profiles
            prof = self.profiles()
            rows = np.flatnonzero(prof.confidence >= min_confidence)
            return self._tracks_at(rows[offset:stop]), len(rows)
        where, params = _filter_sql(target, min_confidence, text, self.text_index)
        order = "id" if target is None else "confidence DESC, id DESC"
        if total and text:  # one query for the page and the total
            found, n = select_page(self.conn, where, params, order, limit, offset)
        else:
            page = "" if limit is None and not offset else f" LIMIT {-1 if limit is None else limit} OFFSET {offset}"
            found = select_tracks(self.conn, where, params, order=order + page)
            n = self.count(target, min_confidence=min_confidence) if total else None
        if target is not None:
            for t in found:
                t.score = t.confidence
        return found, n

    @_guarded
    def count(self, mood: str | Mood | None = None, *, min_confidence: float = 0.0, text: str | None = None) -> int:
        """How many tracks :meth:`tracks` would list without ``limit`` and ``offset``.

        Without ``text`` it is counted from what the library keeps (the profiles, or the mood index of a
        quadrant); a text filter asks SQL (through the full-text index, see :meth:`tracks`)."""
        target = None if mood is None else _as_mood(mood)
        if not text and (target is None or target.is_point):  # what rank_for_mood keeps: no SQL scan
            prof = self.profiles()
            keep = prof.confidence >= min_confidence
            return int(np.count_nonzero(keep if target is None else keep & ~prof.uncertain))
        where, params = _filter_sql(target, min_confidence, text, self.text_index)
        return self.conn.execute(f"SELECT count(*) FROM tracks WHERE {where}", params).fetchone()[0]

    @_guarded
    def points(self) -> dict[str, list]:
        """Every track as columns for a map, by id (compact: one list per field, no object per track).

        ``id``, ``title``, ``valence``, ``arousal``, ``confidence`` (rounded to 4 decimals) are lists of
        equal length; ``quadrant`` holds indices into ``quadrants`` (``["Q1", .., "Q4"]``) and ``artist``
        indices into ``artists`` (each name once; -1: unknown artist).
        """
        rows = self.conn.execute(
            "SELECT id, title, CASE WHEN title IS NULL THEN path END, artist, quadrant, confidence, valence, arousal "
            "FROM tracks ORDER BY id"
        ).fetchall()
        bad = bad_points([r[4] for r in rows], [r[5:8] for r in rows])
        if bad.any():
            raise damaged(self.path, f"track {rows[int(np.flatnonzero(bad)[0])][0]} holds impossible values")
        quadrant_index = {q: i for i, q in enumerate(QUADRANTS)}
        artists: dict[str, int] = {}
        ids, titles, paths, artist, quadrant, confidence, valence, arousal = zip(*rows) if rows else ((),) * 8
        return {
            "quadrants": list(QUADRANTS),
            "id": list(ids),
            "title": [t if t is not None else Path(p).stem for t, p in zip(titles, paths)],
            "artist": [-1 if a is None else artists.setdefault(a, len(artists)) for a in artist],
            "artists": list(artists),  # filled by the line above, in order of first appearance
            "quadrant": [quadrant_index[q] for q in quadrant],
            "confidence": [round(c, 4) for c in confidence],
            "valence": [round(v, 4) for v in valence],
            "arousal": [round(a, 4) for a in arousal],
        }

    @_guarded
    def similar(
        self, ref: int | str | os.PathLike | Track, n: int = 10, *, include_uncertain: bool = False
    ) -> list[Track]:
        """The ``n`` tracks with the most similar emotion profile (score = distance, smallest first).

        Uncertain tracks (mostly silence, noise or speech: no mood) are neither offered nor accepted as the
        track to match (a :class:`LibraryError` says so) unless ``include_uncertain``."""
        n = _count(n, "n")
        track = ref if isinstance(ref, Track) else self.track(ref)
        prof = self.profiles()
        row = int(np.searchsorted(prof.ids, track.id))
        if row >= len(prof) or prof.ids[row] != track.id:
            raise LibraryError(f"track {track.id} is no longer in the library")
        if prof.uncertain[row] and not include_uncertain:
            raise LibraryError(
                f"track {track.id} ({track.display_name}) is uncertain: {track.ood_fraction:.0%} of it is silence, "
                "noise or speech rather than music like the model's, so it has no mood to match; include uncertain "
                "tracks (--include-uncertain, include_uncertain=true) to compare its profile all the same"
            )
        rows, dist = queries.similar(prof, row, n, include_uncertain=include_uncertain)
        return self._tracks_at(rows, dist)

    @_guarded
    def playlist(
        self,
        mood: str | Mood | tuple[float, float],
        *,
        minutes: float | None = None,
        n: int | None = None,
        min_confidence: float = 0.0,
    ) -> list[Track]:
        """Tracks of a mood, best first, up to ``n`` tracks and/or ``minutes`` (default 20 tracks)."""
        n = None if n is None else _count(n, "n")
        if minutes is not None and not float(minutes) > 0:
            raise LibraryError(f"minutes must be a positive number (got {minutes!r})")
        min_confidence = _confidence(min_confidence)
        prof = self.profiles()
        target = _as_mood(mood)
        # rank only the best candidates first (fast on large libraries); rank them all if they do not suffice
        limit = (n or 20) if minutes is None else 4096
        rows, scores = queries.rank_for_mood(prof, target, min_confidence=min_confidence, limit=limit)
        chosen = queries.fill_playlist(rows, prof.duration, minutes=minutes, n=n)
        full = (n is not None and len(chosen) >= n) or (
            minutes is not None and minutes * 60 - prof.duration[chosen].sum() < 1.0
        )
        if len(rows) == limit and not full:
            rows, scores = queries.rank_for_mood(prof, target, min_confidence=min_confidence)
            chosen = queries.fill_playlist(rows, prof.duration, minutes=minutes, n=n)
        index = np.flatnonzero(np.isin(rows, chosen))
        score_of = dict(zip(rows[index].tolist(), scores[index].tolist()))
        return self._tracks_at(chosen, [score_of[int(r)] for r in chosen])

    @_guarded
    def journey(
        self,
        start: str | Mood | tuple[float, float],
        target: str | Mood | tuple[float, float],
        *,
        n: int = 12,
    ) -> list[Track]:
        """A playlist moving step by step from one mood to another (see :func:`queries.journey`).

        Each track's ``score`` is its distance to the target; ``extra`` holds the step and waypoint.
        """
        n = _count(n, "n")
        prof = self.profiles()
        a, b = _as_mood(start), _as_mood(target)
        music = np.flatnonzero(~prof.uncertain)  # uncertain tracks have no mood to travel through
        va = prof.matrix[music, :2]
        rows, waypoints = queries.journey(va, a.point, b.point, n, cache=prof.cache.setdefault("music", {}))
        dist = np.hypot(*(va[rows] - np.asarray(b.point)).T)
        rows = music[rows]
        tracks = self._tracks_at(rows, dist)
        for i, (track, w) in enumerate(zip(tracks, waypoints), start=1):
            track.extra = {"step": i, "waypoint": [round(float(w[0]), 4), round(float(w[1]), 4)]}
        return tracks

    @_guarded
    def clusters(self, k: int = 6, *, examples: int = 3, include_uncertain: bool = False) -> list[Cluster]:
        """Groups of tracks by emotion profile, largest first, each with a few example tracks. Uncertain
        tracks (mostly silence, noise or speech: no mood) are left out unless ``include_uncertain``."""
        k, examples = _count(k, "k"), _count(examples, "examples", minimum=0)
        prof = self.profiles()
        found = queries.clusters(prof, k, include_uncertain=include_uncertain)
        for cluster in found:
            cluster.examples = self._tracks_at(cluster.rows[:examples])
        return found

    @_guarded
    def cluster_tracks(self, cluster: Cluster) -> list[Track]:
        """Every track of a cluster, nearest to its centre first."""
        return self._tracks_at(cluster.rows)

    @_guarded
    def map(self, out: str | os.PathLike, *, title: str | None = None) -> Path:
        """Write the valence/arousal map of every track to ``out`` (.png or .html)."""
        from moodscope.library.mapplot import write_map

        tracks = select_tracks(self.conn)
        return write_map(tracks, out, title=title or f"Music library by mood ({self.path.name})")
