"""The file's own tags (title, artist, album) and duration, read with mutagen.

Never raises: a file without tags, or with tags mutagen cannot parse, simply has none (the
library then shows the file name as the title).
"""

from __future__ import annotations

import logging
import os

from moodscope.library.db import Tags

log = logging.getLogger(__name__)


def _first(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    text = str(value).strip() if value is not None else ""
    return text or None


def read_tags(path: str | os.PathLike) -> Tags:
    """Title, artist, album and duration (seconds) of ``path``; missing values are None."""
    try:
        import mutagen

        audio = mutagen.File(str(path), easy=True)
    except Exception as exc:  # mutagen raises many types on odd files; tags are optional
        log.debug("%s: no readable tags (%s)", path, exc)
        return Tags()
    if audio is None:
        return Tags()
    tags = audio.tags or {}
    duration = getattr(getattr(audio, "info", None), "length", None)

    def get(key: str) -> str | None:
        try:
            return _first(tags.get(key))
        except Exception:
            return None

    return Tags(
        title=get("title"),
        artist=get("artist") or get("albumartist"),
        album=get("album"),
        duration=float(duration) if duration and duration > 0 else None,
    )
