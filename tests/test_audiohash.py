"""The audio hash: the same after any tag edit, different when the audio changes, defined for any file."""

from __future__ import annotations

import hashlib
import shutil

import mutagen
import pytest

from conftest import TAG_CONTAINERS, write_audio
from moodscope.library.audiohash import audio_hash


def add_big_tags(path, size: int = 200_000) -> None:
    """Tags large enough to move the audio (MP3, FLAC, M4A) or re-page the headers (Ogg)."""
    from mutagen.id3 import COMM, ID3, TIT2
    from mutagen.mp4 import MP4

    audio = mutagen.File(path)
    if audio.tags is None:
        audio.add_tags()
    if isinstance(audio.tags, ID3):
        audio.tags.add(TIT2(encoding=3, text=["A title"]))
        audio.tags.add(COMM(encoding=3, lang="eng", desc="", text=["x" * size]))
    elif isinstance(audio, MP4):
        audio.tags["\xa9nam"] = ["A title"]
        audio.tags["\xa9cmt"] = ["x" * size]
    else:
        audio.tags["TITLE"] = ["A title"]
        audio.tags["COMMENT"] = ["x" * size]
    audio.save()


@pytest.mark.parametrize("ext", TAG_CONTAINERS)
def test_tag_edits_keep_the_audio_hash(tmp_path, ext):
    path = write_audio(tmp_path / f"a{ext}")
    before, whole = audio_hash(path), hashlib.sha256(path.read_bytes()).hexdigest()
    size = path.stat().st_size
    add_big_tags(path)
    assert path.stat().st_size > size + 100_000  # the tags really went in
    assert hashlib.sha256(path.read_bytes()).hexdigest() != whole
    assert audio_hash(path) == before
    mutagen.File(path).delete()  # every tag off again
    assert audio_hash(path) == before


@pytest.mark.parametrize("ext", TAG_CONTAINERS)
def test_other_audio_has_another_hash(tmp_path, ext):
    a = write_audio(tmp_path / f"a{ext}", freq=440.0)
    b = write_audio(tmp_path / f"b{ext}", freq=523.25)
    assert audio_hash(a) != audio_hash(b)
    c = tmp_path / f"c{ext}"
    shutil.copyfile(a, c)
    data = bytearray(c.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one byte of audio
    c.write_bytes(bytes(data))
    assert audio_hash(c) != audio_hash(a)


def test_mp3_id3v1_apev2_and_lyrics3_blocks_are_not_audio(tmp_path):
    from mutagen.apev2 import APEv2

    path = write_audio(tmp_path / "a.mp3")
    before = audio_hash(path)
    with open(path, "ab") as fh:
        fh.write(b"TAG" + b"Title".ljust(30, b"\0") + b"\0" * 95)  # ID3v1
    assert audio_hash(path) == before
    ape = APEv2()
    ape["Title"] = "APE title"
    ape.save(path)
    assert b"APETAGEX" in path.read_bytes()[-400:]
    assert audio_hash(path) == before
    with open(path, "ab") as fh:  # Lyrics3v2 after all that
        fh.write(b"LYRICSBEGININD0000210" + b"000021LYRICS200")
    assert audio_hash(path) == before


def test_unparsable_files_are_hashed_whole(tmp_path):
    for name, data in (("ogg.ogg", b"OggS" + b"\x00" * 40), ("m4a.m4a", b"\x00\x00\x00\x10ftypM4A " + b"\x01" * 9)):
        path = tmp_path / name
        path.write_bytes(data)
        assert audio_hash(path) == hashlib.sha256(data).hexdigest()
    truncated = tmp_path / "t.ogg"
    truncated.write_bytes(write_audio(tmp_path / "full.ogg").read_bytes()[:5000])
    assert audio_hash(truncated) == hashlib.sha256(truncated.read_bytes()).hexdigest()
    with open(tmp_path / "full.ogg", "rb") as fh:  # a file object works like a path
        assert audio_hash(fh) == audio_hash(tmp_path / "full.ogg")
