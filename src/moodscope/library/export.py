"""Playlists out of the library: extended M3U for music players, JSON and CSV for scripts (tracks and clusters).

Files are written atomically (a temporary file renamed into place), so a player or script never
reads a half-written playlist. M3U files are UTF-8 (as ``.m3u8`` files are) and hold::

    #EXTM3U
    #PLAYLIST:<name>
    #MOODSCOPE:version=<moodscope version> models=<model>@sha256:<model hash>,...
    #EXTINF:<seconds>,<Artist> - <Title>
    <path>
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from moodscope.constants import QUADRANTS
from moodscope.fileio import atomic_write
from moodscope.library.db import Track

if TYPE_CHECKING:
    from moodscope.library.queries import Cluster

CSV_COLUMNS = (
    "position",
    "id",
    "path",
    "title",
    "artist",
    "album",
    "duration",
    "quadrant",
    "mood",
    "confidence",
    "valence",
    "arousal",
    *(f"p_{q}" for q in QUADRANTS),
    "score",
    "model",
    "model_hash",
    "moodscope_version",
)


def _clean(text: str) -> str:
    return " ".join(str(text).split())  # no line breaks inside an #EXTINF title


def provenance_comment(tracks: Sequence[Track]) -> str:
    """``#MOODSCOPE:version=… models=name@sha256:…,…``: who analysed the tracks (players skip such lines)."""
    from moodscope.version import __version__

    models = sorted({f"{t.model}@sha256:{t.model_hash or 'unknown'}" for t in tracks})
    return f"#MOODSCOPE:version={__version__} models={','.join(models)}"


def m3u_text(tracks: Sequence[Track], *, name: str | None = None, relative_to: str | os.PathLike | None = None) -> str:
    """Extended M3U of ``tracks``; paths are absolute, or relative to the folder ``relative_to``."""
    lines = ["#EXTM3U"]
    if name:
        lines.append(f"#PLAYLIST:{_clean(name)}")
    if tracks:
        lines.append(provenance_comment(tracks))
    for track in tracks:
        path = track.path
        if relative_to is not None:
            with contextlib.suppress(ValueError):  # another drive on Windows: keep it absolute
                path = os.path.relpath(path, relative_to)
        lines.append(f"#EXTINF:{round(track.duration)},{_clean(track.display_name)}")
        lines.append(path)
    return "\n".join(lines) + "\n"


def write_m3u(
    tracks: Sequence[Track], path: str | os.PathLike, *, name: str | None = None, relative: bool = False
) -> Path:
    """Write an extended M3U playlist to ``path`` (atomically); ``relative`` paths are relative to its folder."""
    path = Path(path)
    text = m3u_text(tracks, name=name, relative_to=path.resolve().parent if relative else None)
    with atomic_write(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(text)
    return path


@dataclass(frozen=True)
class M3UEntry:
    path: str
    duration: int | None  # seconds; None when the file gives -1 or no #EXTINF
    title: str | None


def parse_m3u(path_or_text: str | os.PathLike, *, base: str | os.PathLike | None = None) -> list[M3UEntry]:
    """Read an (extended) M3U file, or M3U text; relative paths are resolved against the file's folder."""
    if isinstance(path_or_text, str) and "\n" in path_or_text:
        text, folder = path_or_text, base
    else:
        text = Path(path_or_text).read_text(encoding="utf-8-sig")
        folder = base if base is not None else Path(path_or_text).resolve().parent
    entries, info = [], None
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#EXTINF:"):
            seconds, _, title = line[len("#EXTINF:") :].partition(",")
            try:
                duration = int(float(seconds.split()[0])) if seconds.strip() else None
            except ValueError:
                duration = None
            info = (None if duration is None or duration < 0 else duration, title or None)
            continue
        if line.startswith("#"):
            continue
        location = line
        if folder is not None and not os.path.isabs(location) and "://" not in location:
            location = os.path.normpath(os.path.join(folder, location))
        entries.append(M3UEntry(location, *(info or (None, None))))
        info = None
    return entries


def tracks_dict(tracks: Sequence[Track], **meta) -> dict:
    """``{**meta, "tracks": [track dicts in order, with their position]}``."""
    return {**meta, "tracks": [{"position": i, **t.to_dict()} for i, t in enumerate(tracks, start=1)]}


def tracks_json(tracks: Sequence[Track], **meta) -> str:
    """:func:`tracks_dict` as indented JSON."""
    return json.dumps(tracks_dict(tracks, **meta), indent=2, ensure_ascii=False, allow_nan=False)


def tracks_csv(tracks: Sequence[Track]) -> str:
    """CSV with :data:`CSV_COLUMNS`, one row per track in order."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for i, t in enumerate(tracks, start=1):
        writer.writerow(
            [
                i,
                t.id,
                t.path,
                t.display_title,
                t.artist or "",
                t.album or "",
                f"{t.duration:.3f}",
                t.quadrant,
                t.mood,
                f"{t.confidence:.4f}",
                f"{t.valence:.4f}",
                f"{t.arousal:.4f}",
                *(f"{t.probabilities[q]:.4f}" for q in QUADRANTS),
                "" if t.score is None else f"{t.score:.5f}",
                t.model,
                t.model_hash,
                t.moodscope_version,
            ]
        )
    return buffer.getvalue()


def write_text(text: str, path: str | os.PathLike) -> Path:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    with atomic_write(path, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)
    return Path(path)


CLUSTER_CSV_COLUMNS = ("cluster", "size", "fraction", "valence", "arousal", "variability", *QUADRANTS, "words")


def clusters_csv(clusters: Sequence[Cluster]) -> str:
    """CSV with :data:`CLUSTER_CSV_COLUMNS`, one row per cluster (largest first); ``Q1..Q4`` are the
    shares of the cluster's segments in each quadrant."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CLUSTER_CSV_COLUMNS)
    for c in clusters:
        d = c.to_dict()
        writer.writerow(
            [d["cluster"], d["size"], d["fraction"], d["valence"], d["arousal"], d["variability"]]
            + [d["quadrant_share"][q] for q in QUADRANTS]
            + [d["description"]]
        )
    return buffer.getvalue()


def clusters_json(clusters: Sequence[Cluster]) -> str:
    """JSON: a list of :meth:`Cluster.to_dict` objects, largest cluster first."""
    return json.dumps([c.to_dict() for c in clusters], indent=2, ensure_ascii=False, allow_nan=False)
