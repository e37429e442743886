"""A hash of a file's audio payload: the bytes that tag editors leave alone.

Writing tags (``moodscope library tag``, beets, Picard, foobar2000…) changes a file's bytes, so its
SHA-256 changes, but not the audio that was analysed. :func:`audio_hash` hashes only the parts of
the container that carry the audio, so a file whose tags alone changed keeps its audio hash and the
library recognises it without analysing it again:

- **MP3, AAC (ADTS) and anything unrecognised**: the file without its tag blocks — ID3v2 at the
  start (repeated, with footer), ID3v1, Lyrics3v2, APEv2 and appended ID3v2 at the end;
- **FLAC**: the STREAMINFO block and the audio frames (not VORBIS_COMMENT, PICTURE, PADDING or the
  other metadata blocks; tag blocks around the file stripped as above);
- **Ogg (Vorbis, Opus, FLAC, Speex, Theora)**: the concatenated packets of each logical stream
  without its comment header, so that re-paging the headers after a tag edit does not matter
  (page sequence numbers, CRCs and page boundaries are not hashed);
- **MP4/M4A**: the content of the ``mdat`` boxes (the ``moov`` box, where iTunes tags and the
  chunk offsets that move with them live, is left out);
- **WAV/RF64** (``fmt `` and ``data`` chunks) and **AIFF/AIFC** (``COMM`` and ``SSND``).

A file whose structure cannot be parsed (truncated, not what its first bytes claim) is hashed
whole, so the hash is always defined and equal for byte-identical files.
"""

from __future__ import annotations

import hashlib
import os
import struct
from typing import BinaryIO

CHUNK = 1 << 20


class _Malformed(Exception):
    """The container is not what its first bytes claim: hash the whole file instead."""


def audio_hash(file: str | os.PathLike | BinaryIO) -> str:
    """SHA-256 (hex) of the audio payload of ``file`` (see the module docstring).

    ``file`` is a path or a binary file object open for reading (read from its start; its position
    is not restored).
    """
    if not isinstance(file, (str, os.PathLike)):
        return _audio_hash(file)
    with open(file, "rb") as fh:
        return _audio_hash(fh)


def _audio_hash(fh: BinaryIO) -> str:
    fh.seek(0, os.SEEK_END)
    size = fh.tell()
    fh.seek(0)
    head = fh.read(12)
    try:
        if head[:4] == b"OggS":
            return _ogg(fh, size)
        if head[4:8] == b"ftyp":
            return _mp4(fh, size)
        if head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
            return _riff(fh, size, head[:4] == b"RF64")
        if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
            return _aiff(fh, size)
        start, end = _strip_tag_blocks(fh, size)
        fh.seek(start)
        if fh.read(4) == b"fLaC":
            return _flac(fh, start + 4, end)
        digest = hashlib.sha256()
        _hash_range(fh, start, end, digest)
        return digest.hexdigest()
    except (_Malformed, struct.error, ValueError):
        digest = hashlib.sha256()
        _hash_range(fh, 0, size, digest)
        return digest.hexdigest()


def _hash_range(fh: BinaryIO, start: int, end: int, digest) -> None:
    fh.seek(start)
    left = end - start
    while left > 0:
        block = fh.read(min(CHUNK, left))
        if not block:
            break
        digest.update(block)
        left -= len(block)


def _syncsafe(data: bytes) -> int:
    return (data[0] << 21) | (data[1] << 14) | (data[2] << 7) | data[3]


def _strip_tag_blocks(fh: BinaryIO, size: int) -> tuple[int, int]:
    """(start, end) of the file without ID3v2 tags at the start and ID3v1/Lyrics3v2/APEv2/ID3v2 at the end."""
    start = 0
    while True:
        fh.seek(start)
        header = fh.read(10)
        if len(header) < 10 or header[:3] != b"ID3" or any(b & 0x80 for b in header[6:10]):
            break
        footer = 10 if header[5] & 0x10 else 0
        start += 10 + _syncsafe(header[6:10]) + footer
    end = size
    while end > start:
        tail_len = min(end - start, 256)
        fh.seek(end - tail_len)
        tail = fh.read(tail_len)
        if len(tail) >= 128 and tail[-128:-125] == b"TAG":
            end -= 128
        elif len(tail) >= 32 and tail[-32:-24] == b"APETAGEX":
            (tag_size,), (flags,) = struct.unpack("<I", tail[-20:-16]), struct.unpack("<I", tail[-12:-8])
            end -= tag_size + (32 if flags & 0x80000000 else 0)
        elif len(tail) >= 15 and tail[-9:] == b"LYRICS200" and tail[-15:-9].isdigit():
            end -= 15 + int(tail[-15:-9])
        elif len(tail) >= 10 and tail[-10:-7] == b"3DI":
            end -= 20 + _syncsafe(tail[-4:])
        else:
            break
    if end < start:
        raise _Malformed
    return start, end


def _flac(fh: BinaryIO, pos: int, end: int) -> str:
    digest = hashlib.sha256()
    while True:
        fh.seek(pos)
        header = fh.read(4)
        if len(header) < 4:
            raise _Malformed
        length = int.from_bytes(header[1:4], "big")
        if header[0] & 0x7F == 0:  # STREAMINFO
            digest.update(fh.read(length))
        pos += 4 + length
        if header[0] & 0x80:
            break
        if pos > end:
            raise _Malformed
    _hash_range(fh, pos, end, digest)
    return digest.hexdigest()


# Ogg: the first packet names the codec; which header packets are comments.
_OGG_HEADERS = {  # magic of the first packet -> (number of header packets or None, comment test)
    b"\x01vorbis": (3, lambda i, p: i == 1),
    b"OpusHead": (2, lambda i, p: i == 1),
    b"Speex   ": (2, lambda i, p: i == 1),
    b"\x80theora": (3, lambda i, p: i == 1),
    b"\x7fFLAC": (None, lambda i, p: i > 0 and p[:1] and p[0] & 0x7F == 4),
}


class _OggStream:
    def __init__(self) -> None:
        self.digest = hashlib.sha256()
        self.packets = 0  # header packets completed
        self.n_headers = 1  # until the first packet says otherwise
        self.is_comment = lambda i, p: False
        self.pending = bytearray()

    @property
    def in_headers(self) -> bool:
        return self.packets < self.n_headers

    def packet(self, data: bytes) -> None:
        if self.packets == 0:
            for magic, (n, test) in _OGG_HEADERS.items():
                if data.startswith(magic):
                    self.is_comment = test
                    self.n_headers = n if n is not None else 1 + int.from_bytes(data[7:9], "big")
                    break
        if not self.is_comment(self.packets, data):
            self.digest.update(data)
        self.packets += 1


def _ogg(fh: BinaryIO, size: int) -> str:
    streams: dict[int, _OggStream] = {}
    fh.seek(0)
    while True:
        header = fh.read(27)
        if not header:
            break
        if len(header) < 27 or header[:4] != b"OggS":
            raise _Malformed
        serial = struct.unpack("<I", header[14:18])[0]
        lacing = fh.read(header[26])
        payload = fh.read(sum(lacing))
        if len(lacing) < header[26] or len(payload) < sum(lacing):
            raise _Malformed
        stream = streams.setdefault(serial, _OggStream())
        if not stream.in_headers:
            stream.digest.update(payload)
            continue
        offset = 0
        for n in lacing:
            stream.pending += payload[offset : offset + n]
            offset += n
            if n < 255:
                stream.packet(bytes(stream.pending))
                stream.pending.clear()
                if not stream.in_headers:
                    stream.digest.update(payload[offset:])  # audio packets on the rest of the page
                    break
    if not streams:
        raise _Malformed
    combined = hashlib.sha256()
    for stream in streams.values():
        combined.update(stream.digest.digest())
    return combined.hexdigest()


def _boxes(fh: BinaryIO, pos: int, end: int, layout: str):
    """(type, payload start, payload end) of each box or chunk from ``pos`` to ``end``.

    ``layout``: ``'mp4'`` (big-endian size including the header, 64-bit and to-the-end sizes),
    ``'riff'`` (little-endian size of the payload, padded to even) or ``'iff'`` (the same, big-endian).
    """
    while pos + 8 <= end:
        fh.seek(pos)
        raw = fh.read(8)
        if layout == "mp4":
            length, kind = struct.unpack(">I4s", raw)
            start = pos + 8
            if length == 1:
                length = struct.unpack(">Q", fh.read(8))[0]
                start = pos + 16
            elif length == 0:
                length = end - pos
            stop = nxt = pos + length
            if stop < start:
                raise _Malformed
        else:
            kind, length = raw[:4], struct.unpack("<I" if layout == "riff" else ">I", raw[4:8])[0]
            start = pos + 8
            stop = start + length
            nxt = stop + (length & 1)
        yield kind, start, min(stop, end)
        pos = nxt


def _mp4(fh: BinaryIO, size: int) -> str:
    digest, found = hashlib.sha256(), False
    for kind, start, stop in _boxes(fh, 0, size, "mp4"):
        if kind == b"mdat":
            _hash_range(fh, start, stop, digest)
            found = True
    if not found:
        raise _Malformed
    return digest.hexdigest()


def _riff(fh: BinaryIO, size: int, rf64: bool) -> str:
    digest, data_size = hashlib.sha256(), None
    for kind, start, stop in _boxes(fh, 12, size, "riff"):
        if kind == b"ds64":
            fh.seek(start + 8)
            data_size = struct.unpack("<Q", fh.read(8))[0]
        if kind in (b"fmt ", b"data"):
            if kind == b"data" and rf64 and data_size is not None:
                stop = min(start + data_size, size)
            digest.update(kind)
            _hash_range(fh, start, stop, digest)
            if kind == b"data" and rf64:
                break
    return digest.hexdigest()


def _aiff(fh: BinaryIO, size: int) -> str:
    digest = hashlib.sha256()
    for kind, start, stop in _boxes(fh, 12, size, "iff"):
        if kind in (b"COMM", b"SSND"):
            digest.update(kind)
            _hash_range(fh, start, stop, digest)
    return digest.hexdigest()
