"""The library's queries as named playlists: what ``moodscope library`` prints and the HTTP API serves.

Each function takes an open :class:`~moodscope.library.api.MoodLibrary`, parses the user's mood
words or valence/arousal points, runs the query and returns a :class:`Playlist` — the tracks with
the name both front ends show and the extra fields of their JSON. The CLI (``--format``, ``--m3u``)
and the server (``?format=json|csv|m3u``) render the same object, so they cannot drift apart.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from moodscope.errors import LibraryError
from moodscope.library.db import Track
from moodscope.library.export import m3u_text, tracks_csv, tracks_dict, xspf_text
from moodscope.library.queries import Cluster, Mood, parse_mood

PLAYLIST_FORMATS = ("json", "csv", "m3u")


@dataclass
class Playlist:
    """Tracks in order, with a name, what their ``score`` means and extra JSON fields."""

    name: str
    tracks: list[Track]
    score: str | None = None  # the column title of Track.score in a table ("dist", "to-go"), if meaningful
    meta: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """``{"playlist": name, **meta, "tracks": [{"position": 1, **track}, ...]}`` (the CLI's ``--format json``)."""
        return tracks_dict(self.tracks, playlist=self.name, **self.meta)

    def csv(self) -> str:
        return tracks_csv(self.tracks)

    def m3u(self, *, relative_to: str | os.PathLike | None = None) -> str:
        return m3u_text(self.tracks, name=self.name, relative_to=relative_to)

    def xspf(self, *, relative_to: str | os.PathLike | None = None) -> str:
        return xspf_text(self.tracks, name=self.name, relative_to=relative_to)


def _mood(mood: str | Mood) -> Mood:
    return mood if isinstance(mood, Mood) else parse_mood(mood)


def list_tracks(lib, mood: str | Mood | None = None, *, min_confidence: float = 0.0, limit: int | None = None):
    """All tracks by id, or those of a mood (most confident first; nearest first for a point)."""
    target = _mood(mood) if mood is not None else None
    tracks = lib.tracks(target, min_confidence=min_confidence, limit=limit)
    name = f"tracks: {target.label}" if target else "all tracks"
    if min_confidence:
        name += f", confidence >= {min_confidence:g}"
    return Playlist(name, tracks, score="dist" if target and target.is_point else None)


def mood_playlist(
    lib, mood: str | Mood, *, minutes: float | None = None, n: int | None = None, min_confidence: float = 0.0
) -> Playlist:
    """The tracks of a mood, best first, up to ``n`` tracks or ``minutes`` of music (default 20 tracks)."""
    target = _mood(mood)
    tracks = lib.playlist(target, minutes=minutes, n=n, min_confidence=min_confidence)
    return Playlist(f"mood: {target.label}", tracks, score="dist" if target.is_point else None)


def journey_playlist(lib, start: str | Mood, target: str | Mood, *, n: int = 12) -> Playlist:
    """``n`` tracks moving step by step from the ``start`` mood to the ``target`` mood."""
    a, b = _mood(start), _mood(target)
    return Playlist(f"journey: {a.label} -> {b.label}", lib.journey(a, b, n=n), score="to-go")


def similar_playlist(
    lib, ref: int | str | os.PathLike | Track, *, n: int = 10, include_uncertain: bool = False
) -> Playlist:
    """The ``n`` tracks whose emotion profile is nearest to that of ``ref``; ``seed`` is the track itself.
    Uncertain tracks are left out (and refused as ``ref``) unless ``include_uncertain``."""
    track = ref if isinstance(ref, Track) else lib.track(ref)
    tracks = lib.similar(track, n=n, include_uncertain=include_uncertain)
    return Playlist(f"similar to {track.display_name}", tracks, score="dist", meta={"seed": track.to_dict()})


def cluster_playlist(
    lib, k: int, index: int, *, found: list[Cluster] | None = None, include_uncertain: bool = False
) -> Playlist:
    """Every track of cluster ``index`` (1 = largest) of the ``k``-means clustering, nearest its centre first
    (uncertain tracks are not clustered unless ``include_uncertain``)."""
    found = lib.clusters(k, examples=0, include_uncertain=include_uncertain) if found is None else found
    if not 1 <= index <= len(found):
        raise LibraryError(
            f"cluster {index} does not exist: give a cluster between 1 and {len(found)}"
            if found
            else "the library is empty: there are no clusters"
        )
    cluster = found[index - 1]
    return Playlist(f"cluster {cluster.index}: {cluster.description}", lib.cluster_tracks(cluster))
