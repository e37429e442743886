"""The file's own tags, with mutagen: title, artist, album and duration read for the library, and
moodscope's mood tags (:data:`MOOD_TAGS`) read, written and removed.

:func:`read_tags` never raises: a file without tags, or with tags mutagen cannot parse, simply has
none (the library then shows the file name as the title). The mood tags are written into the
container's own tag format and nothing else is changed: other tags keep their values, order and
ID3 version (a v2.3 tag stays v2.3; an ID3v1 tag is kept byte for byte).
"""

from __future__ import annotations

import logging
import os

from moodscope.constants import QUADRANT_MOODS, UNCERTAIN
from moodscope.errors import AudioError, UnsupportedFormatError
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


# ---- moodscope's own tags -----------------------------------------------------------------------

MOOD_TAGS = (
    "MOOD",
    "MOODSCOPE_QUADRANT",
    "MOODSCOPE_VALENCE",
    "MOODSCOPE_AROUSAL",
    "MOODSCOPE_CONFIDENCE",
    "MOODSCOPE_MODEL",
)
"""The tags ``moodscope library tag`` writes (and ``--remove`` takes off), in this order. In MP3, WAV
and AIFF they are ID3 ``TXXX`` frames with these descriptions, in FLAC, Ogg Vorbis and Opus Vorbis
comments with these names, in MP4/M4A iTunes freeform atoms ``----:com.apple.iTunes:<NAME>``."""

MP4_FREEFORM = "----:com.apple.iTunes:"


def mood_word(quadrant: str) -> str:
    """The one-word mood of a quadrant: ``happy``, ``tense``, ``sad`` or ``calm`` (first of its pair)."""
    return QUADRANT_MOODS[quadrant].split("/")[0]


def mood_tag_values(track) -> dict[str, str]:
    """The values of :data:`MOOD_TAGS` for a :class:`~moodscope.library.db.Track`, as written to files
    (``MOOD`` is ``uncertain`` for a track that is mostly silence, noise or speech)."""
    return {
        "MOOD": UNCERTAIN if getattr(track, "uncertain", False) else mood_word(track.quadrant),
        "MOODSCOPE_QUADRANT": track.quadrant,
        "MOODSCOPE_VALENCE": f"{track.valence:.4f}",
        "MOODSCOPE_AROUSAL": f"{track.arousal:.4f}",
        "MOODSCOPE_CONFIDENCE": f"{track.confidence:.4f}",
        "MOODSCOPE_MODEL": track.model_label,
    }


def open_tagged(path_or_file, *, path: str | os.PathLike | None = None):
    """Open an audio file with mutagen for reading and writing tags; ID3 tags are kept in their
    version (v2.3 stays v2.3: no frame is translated). Raises :class:`AudioError` when mutagen cannot
    read the file, :class:`UnsupportedFormatError` when its container cannot hold moodscope's tags."""
    import mutagen
    from mutagen.id3 import ID3

    name = path if path is not None else path_or_file
    try:
        audio = mutagen.File(path_or_file)
        if audio is not None and isinstance(audio.tags, ID3) and audio.tags.version >= (2, 3, 0):
            if hasattr(path_or_file, "seek"):
                path_or_file.seek(0)
            audio = type(audio)(path_or_file, translate=False)
    except Exception as exc:
        raise AudioError(f"{name}: tags cannot be read ({exc}); is it an audio file?") from exc
    if audio is None or _kind(audio) is None:
        what = type(audio).__name__ if audio is not None else "an unknown format"
        raise UnsupportedFormatError(
            f"{name}: {what} files cannot hold moodscope's tags (MP3, FLAC, Ogg, Opus, M4A, WAV, AIFF can)"
        )
    return audio


def _kind(audio) -> str | None:
    import mutagen.aiff
    import mutagen.flac
    import mutagen.wave
    from mutagen.id3 import ID3FileType
    from mutagen.mp4 import MP4
    from mutagen.ogg import OggFileType

    if isinstance(audio, (ID3FileType, mutagen.wave.WAVE, mutagen.aiff.AIFF)):
        return "id3"
    if isinstance(audio, (mutagen.flac.FLAC, OggFileType)):
        return "vorbis"
    if isinstance(audio, MP4):
        return "mp4"
    return None


def read_mood_tags(audio) -> dict[str, str]:
    """moodscope's tags found in an opened file (see :func:`open_tagged`), by name in :data:`MOOD_TAGS`.

    Names are matched without regard to case (Vorbis comments are case-insensitive; other tools
    may write ``mood``); a tag with several values gives its first.
    """
    tags, kind = audio.tags, _kind(audio)
    found: dict[str, str] = {}
    if tags is None:
        return found
    wanted = {name.lower(): name for name in MOOD_TAGS}
    if kind == "id3":
        for frame in tags.getall("TXXX"):
            name = wanted.get(frame.desc.lower())
            if name and frame.text and name not in found:
                found[name] = str(frame.text[0])
    elif kind == "vorbis":
        for key, value in tags:
            name = wanted.get(key.lower())
            if name and name not in found:
                found[name] = value
    else:
        for key, values in tags.items():
            if key.startswith(MP4_FREEFORM):
                name = wanted.get(key[len(MP4_FREEFORM) :].lower())
                if name and values and name not in found:
                    found[name] = bytes(values[0]).decode("utf-8", "replace")
    return {name: found[name] for name in MOOD_TAGS if name in found}


def set_mood_tags(audio, values: dict[str, str] | None) -> None:
    """Replace moodscope's tags in an opened file by ``values`` (None: remove them); other tags untouched.

    Changes the object only: call :func:`save_tags` to write.
    """
    kind = _kind(audio)
    if audio.tags is None:
        if values is None:
            return
        audio.add_tags()
    tags = audio.tags
    ours = {name.lower() for name in MOOD_TAGS}
    if kind == "id3":
        from mutagen.id3 import TXXX, Encoding

        for key in [k for k, f in tags.items() if k.startswith("TXXX:") and f.desc.lower() in ours]:
            del tags[key]
        encoding = Encoding.UTF16 if tags.version[:2] == (2, 3) else Encoding.UTF8
        for name, value in (values or {}).items():
            tags.add(TXXX(encoding=encoding, desc=name, text=[value]))
    elif kind == "vorbis":
        for key in {k for k, _ in tags if k.lower() in ours}:
            del tags[key]
        for name, value in (values or {}).items():
            tags[name] = [value]
    else:
        from mutagen.mp4 import AtomDataType, MP4FreeForm

        for key in [k for k in tags if k.startswith(MP4_FREEFORM) and k[len(MP4_FREEFORM) :].lower() in ours]:
            del tags[key]
        for name, value in (values or {}).items():
            tags[MP4_FREEFORM + name] = [MP4FreeForm(value.encode("utf-8"), dataformat=AtomDataType.UTF8)]


def save_tags(audio, fileobj=None) -> None:
    """Write an opened file's tags back (into ``fileobj`` when given), keeping its ID3 version and
    its ID3v1 tag exactly as they were."""
    if _kind(audio) != "id3":
        if fileobj is not None:
            audio.save(fileobj)
        else:
            audio.save()
        return
    from mutagen.id3 import ID3FileType

    kwargs = {"v2_version": 3 if audio.tags.version[:2] == (2, 3) else 4}
    target = fileobj if fileobj is not None else audio.filename
    if isinstance(audio, ID3FileType):  # MP3, AAC…: an ID3v1 tag at the end is restored byte for byte
        old_v1 = _id3v1(target)
        audio.save(target, v1=1, **kwargs)
        if old_v1 is not None and _id3v1(target) is not None:
            _write_tail(target, old_v1)
    else:
        audio.save(target, **kwargs)


def _id3v1(target) -> bytes | None:
    fh = target if hasattr(target, "seek") else open(target, "rb")  # noqa: SIM115
    try:
        fh.seek(0, os.SEEK_END)
        if fh.tell() < 128:
            return None
        fh.seek(-128, os.SEEK_END)
        tail = fh.read(128)
        return tail if tail[:3] == b"TAG" else None
    finally:
        if fh is not target:
            fh.close()


def _write_tail(target, data: bytes) -> None:
    fh = target if hasattr(target, "seek") else open(target, "r+b")  # noqa: SIM115
    try:
        fh.seek(-len(data), os.SEEK_END)
        fh.write(data)
    finally:
        if fh is not target:
            fh.close()
