"""Playlists and the library out of moodscope: M3U and XSPF for music players, JSON and CSV for scripts
(tracks, clusters and the whole library).

Files are written atomically (a temporary file renamed into place), so a player or script never
reads a half-written playlist. M3U files are UTF-8 (as ``.m3u8`` files are) and hold::

    #EXTM3U
    #PLAYLIST:<name>
    #MOODSCOPE:version=<moodscope version> models=<model>@sha256:<model hash>,...
    #EXTINF:<seconds>,<Artist> - <Title>
    <path>

XSPF files (https://xspf.org, version 1) hold the moodscope version as a playlist ``<meta>`` and a
``<track>`` per track with its ``location`` (a ``file://`` URI, or a relative URI reference),
``title``, ``creator`` (artist), ``album``, ``duration`` (ms), an ``annotation`` in words and
moodscope's figures as ``<meta rel="urn:moodscope:NAME">`` elements (:data:`XSPF_META`).

:func:`library_rows` with :func:`library_csv` or :func:`library_json` export the whole library, one
row per track (:data:`LIBRARY_COLUMNS`).

A path holding a line break or another control character (legal in file names, but it would cut
the M3U line in two) is written as a ``file://`` URI with those characters percent-encoded
(``file:///music/a%0Ab.mp3``), which players that read M3U understand, and a warning is logged.
:func:`parse_m3u` reads such URIs back.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import os
import re
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from moodscope import fileio
from moodscope.constants import QUADRANTS
from moodscope.fileio import atomic_write
from moodscope.library.db import Track

if TYPE_CHECKING:
    from moodscope.library.queries import Cluster

log = logging.getLogger(__name__)

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

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


def m3u_location(path: str) -> str:
    """``path`` as an M3U line: as it is, or a ``file://`` URI when it holds a line break (or another control
    character)."""
    if not _CONTROL.search(path):
        return path
    log.warning("%r: the file name holds a line break; written to the M3U file as a file:// URI", path)
    return "file://" + urllib.parse.quote(os.path.abspath(path), safe="/")


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
        if relative_to is not None and not _CONTROL.search(path):
            with contextlib.suppress(ValueError):  # another drive on Windows: keep it absolute
                path = os.path.relpath(path, relative_to)
        lines.append(f"#EXTINF:{round(track.duration)},{_clean(track.display_name)}")
        lines.append(m3u_location(path))
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
        if location.startswith("file://"):
            location = urllib.parse.unquote(urllib.parse.urlsplit(location).path)
        if folder is not None and not os.path.isabs(location) and "://" not in location:
            location = os.path.normpath(os.path.join(folder, location))
        entries.append(M3UEntry(location, *(info or (None, None))))
        info = None
    return entries


def tracks_dict(tracks: Sequence[Track], **meta) -> dict:
    """``{**meta, "tracks": [track dicts in order, with their position]}``."""
    return {**meta, "tracks": [{"position": i, **t.to_dict()} for i, t in enumerate(tracks, start=1)]}


XSPF_NAMESPACE = "http://xspf.org/ns/0/"
XSPF_META = ("quadrant", "mood", "confidence", "valence", "arousal", "model")
"""moodscope's figures in each XSPF ``<track>``: ``<meta rel="urn:moodscope:<name>">value</meta>``."""

_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")  # not allowed in XML 1.0


def _xml_text(text: str) -> str:
    return _XML_INVALID.sub("", str(text))


def _location(path: str, relative_to: str | os.PathLike | None) -> str:
    if relative_to is not None:
        with contextlib.suppress(ValueError):  # another drive on Windows: keep it absolute
            rel = os.path.relpath(path, relative_to)
            return urllib.parse.quote(rel.replace(os.sep, "/"))
    return Path(path).absolute().as_uri()


def xspf_text(tracks: Sequence[Track], *, name: str | None = None, relative_to: str | os.PathLike | None = None) -> str:
    """An XSPF playlist of ``tracks``; locations are ``file://`` URIs, or relative to the folder ``relative_to``."""
    import xml.etree.ElementTree as ET

    from moodscope.version import __version__

    ET.register_namespace("", XSPF_NAMESPACE)
    q = f"{{{XSPF_NAMESPACE}}}"
    playlist = ET.Element(q + "playlist", version="1")
    if name:
        ET.SubElement(playlist, q + "title").text = _xml_text(_clean(name))
    ET.SubElement(playlist, q + "creator").text = "moodscope"
    ET.SubElement(playlist, q + "meta", rel="urn:moodscope:version").text = __version__
    track_list = ET.SubElement(playlist, q + "trackList")
    for t in tracks:
        item = ET.SubElement(track_list, q + "track")
        ET.SubElement(item, q + "location").text = _location(t.path, relative_to)
        ET.SubElement(item, q + "title").text = _xml_text(t.display_title)
        if t.artist:
            ET.SubElement(item, q + "creator").text = _xml_text(t.artist)
        if t.album:
            ET.SubElement(item, q + "album").text = _xml_text(t.album)
        ET.SubElement(item, q + "duration").text = str(round(t.duration * 1000))
        words = f"{t.mood} ({t.quadrant}), confidence {t.confidence:.2f}, valence {t.valence:.2f}"
        ET.SubElement(item, q + "annotation").text = f"{words}, arousal {t.arousal:.2f}"
        figures = {
            "quadrant": t.quadrant,
            "mood": t.mood,
            "confidence": f"{t.confidence:.4f}",
            "valence": f"{t.valence:.4f}",
            "arousal": f"{t.arousal:.4f}",
            "model": _xml_text(t.model_label),
        }
        for key in XSPF_META:
            ET.SubElement(item, q + "meta", rel=f"urn:moodscope:{key}").text = figures[key]
    ET.indent(playlist)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(playlist, encoding="unicode") + "\n"


def write_xspf(
    tracks: Sequence[Track], path: str | os.PathLike, *, name: str | None = None, relative: bool = False
) -> Path:
    """Write an XSPF playlist to ``path`` (atomically); ``relative`` locations are relative to its folder."""
    path = Path(path)
    text = xspf_text(tracks, name=name, relative_to=path.resolve().parent if relative else None)
    with atomic_write(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(text)
    return path


def parse_xspf(path: str | os.PathLike) -> list[M3UEntry]:
    """Read an XSPF playlist: each track's location as a path (relative ones resolved against the
    playlist's folder), duration (seconds, rounded) and title."""
    import xml.etree.ElementTree as ET

    path = Path(path)
    q = f"{{{XSPF_NAMESPACE}}}"
    entries = []
    for track in ET.parse(path).getroot().iter(q + "track"):
        location = track.findtext(q + "location") or ""
        parsed = urllib.parse.urlsplit(location)
        if parsed.scheme == "file":
            location = urllib.request.url2pathname(parsed.path)
        elif not parsed.scheme:
            location = os.path.normpath(path.resolve().parent / urllib.parse.unquote(location))
        duration = track.findtext(q + "duration")
        entries.append(
            M3UEntry(location, round(int(duration) / 1000) if duration else None, track.findtext(q + "title"))
        )
    return entries


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


LIBRARY_COLUMNS = (
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
    *(f"share_{q}" for q in QUADRANTS),
    "model",
    "model_hash",
    "sha256",
    "analysed_at",
)
"""Columns of the whole-library export (see docs/library.md)."""


def library_rows(conn) -> list[dict]:
    """Every track of the library as a flat dict with :data:`LIBRARY_COLUMNS`, by id."""
    import datetime

    from moodscope.library.db import select_tracks

    extra = {row[0]: row[1:] for row in conn.execute("SELECT id, hash, scanned_at FROM tracks")}
    rows = []
    for t in select_tracks(conn):
        digest, scanned_at = extra[t.id]
        rows.append(
            {
                "id": t.id,
                "path": t.path,
                "title": t.display_title,
                "artist": t.artist,
                "album": t.album,
                "duration": round(t.duration, 3),
                "quadrant": t.quadrant,
                "mood": t.mood,
                "confidence": round(t.confidence, 4),
                "valence": round(t.valence, 4),
                "arousal": round(t.arousal, 4),
                **{f"p_{q}": round(t.probabilities[q], 4) for q in QUADRANTS},
                **{f"share_{q}": round(t.quadrant_share[q], 4) for q in QUADRANTS},
                "model": t.model,
                "model_hash": t.model_hash,
                "sha256": digest,
                "analysed_at": datetime.datetime.fromtimestamp(scanned_at, datetime.UTC).isoformat(timespec="seconds"),
            }
        )
    return rows


def library_csv(rows: Sequence[dict]) -> str:
    """CSV with :data:`LIBRARY_COLUMNS` (a header line, then one line per track; unknown values empty)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=LIBRARY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: ("" if v is None else v) for k, v in row.items()} for row in rows)
    return buffer.getvalue()


def library_json(rows: Sequence[dict], **meta) -> str:
    """JSON: ``{**meta, "columns": LIBRARY_COLUMNS, "tracks": rows}`` (unknown values null)."""
    return json.dumps({**meta, "columns": list(LIBRARY_COLUMNS), "tracks": list(rows)}, indent=1, ensure_ascii=False)


def write_text(text: str, path: str | os.PathLike) -> Path:
    """Write ``text`` to ``path`` atomically (UTF-8, line ends as they are)."""
    return fileio.write_text(path, text, newline="")


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
