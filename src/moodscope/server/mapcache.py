"""The library's map (``GET /api/v1/map``), encoded once per state of the library.

Every track's point is megabytes of JSON on a large library (about 48 bytes a track). It is built
(:meth:`~moodscope.library.MoodLibrary.points`), encoded and gzip-compressed once per change of
the library — the ``generation`` counter that triggers advance in every transaction that changes a
track, whichever process writes — and then served from memory. Each encoding has a strong ``ETag``
(a hash of its bytes), so a browser that already holds the current map gets 304 Not Modified.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import threading
from dataclasses import dataclass

GZIP_LEVEL = 6


@dataclass(frozen=True)
class EncodedMap:
    """The map's JSON at one generation of the library, plain and gzip-compressed, with their ETags."""

    generation: int
    json: bytes
    gzip: bytes
    etag: str
    gzip_etag: str

    @classmethod
    def encode(cls, points: dict, generation: int) -> EncodedMap:
        data = json.dumps(points, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
        tag = hashlib.blake2b(data, digest_size=16).hexdigest()
        return cls(generation, data, gzip.compress(data, GZIP_LEVEL, mtime=0), f'"{tag}"', f'"{tag}-gzip"')


class MapCache:
    """The current :class:`EncodedMap`; rebuilt (by one request, the others wait for it) when the
    library's generation has moved on."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._map: EncodedMap | None = None

    def get(self, lib) -> EncodedMap:
        """The map of the open :class:`~moodscope.library.MoodLibrary` ``lib`` as it is now."""
        from moodscope.library.db import generation

        now = generation(lib.conn)
        found = self._map
        if found is not None and found.generation == now:
            return found
        with self._lock:
            if self._map is None or self._map.generation != now:
                self._map = EncodedMap.encode(lib.points(), now)  # read after `now`: never older than it
            return self._map


def accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether an ``Accept-Encoding`` header allows gzip (``gzip`` or ``*`` with a non-zero q)."""
    for item in (accept_encoding or "").split(","):
        coding, *params = (part.strip() for part in item.split(";"))
        if coding.lower() not in ("gzip", "x-gzip", "*"):
            continue
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    return float(value) > 0
                except ValueError:
                    return False
        return True
    return False


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Whether ``If-None-Match`` names ``etag`` (weak comparison, RFC 9110 §13.1.2) or is ``*``."""
    if if_none_match is None:
        return False
    tags = [tag.strip() for tag in if_none_match.split(",")]
    return "*" in tags or etag in (tag.removeprefix("W/") for tag in tags)
