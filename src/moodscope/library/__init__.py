"""The mood library: index a music collection by mood and query it.

Mood playlists, journeys from one mood to another, similar-mood search, clusters, maps, M3U and
XSPF playlists, whole-library CSV/JSON export and mood tags written into the files, over an
embedded SQLite database. Start with :class:`MoodLibrary`.
"""

from __future__ import annotations

from moodscope.library.api import MoodLibrary
from moodscope.library.db import Track, default_library_path
from moodscope.library.export import parse_m3u, parse_xspf, tracks_csv, tracks_json, write_m3u, write_xspf
from moodscope.library.queries import Cluster, Mood, parse_mood
from moodscope.library.scan import ScanResult, model_analyzer

__all__ = [
    "Cluster",
    "Mood",
    "MoodLibrary",
    "ScanResult",
    "Track",
    "default_library_path",
    "model_analyzer",
    "parse_m3u",
    "parse_mood",
    "parse_xspf",
    "tracks_csv",
    "tracks_json",
    "write_m3u",
    "write_xspf",
]
