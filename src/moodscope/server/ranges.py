"""HTTP range requests (RFC 9110 §14) for the audio endpoint: one byte range, parsed here.

The server answers a single byte range (``bytes=first-last``, ``bytes=first-``, the suffix
``bytes=-length``) with 206 and that range; it ignores what RFC 9110 lets it ignore (and answers
200 with the whole file): a range unit other than ``bytes`` (which it MUST ignore, §14.2), a list
of several ranges, a ``Range`` sent with an ``If-Range`` that no longer matches the file, and
the suffix range of an empty file. A ``bytes`` range that cannot be satisfied (first byte at or
beyond the end, a zero-length suffix) is 416 with ``Content-Range: bytes */size``; a ``bytes``
header that is not a valid range set (``bytes=abc``, ``bytes=5-2``) is refused with 400 (§14.2:
the server MAY reject an invalid ranges-specifier).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from email.utils import formatdate

from moodscope.errors import MoodscopeError

_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_DIGITS = re.compile(r"^[0-9]+$")
CHUNK_BYTES = 64 * 1024


class RangeError(MoodscopeError):
    """A ``Range`` header that is refused: ``status`` 400 (invalid) or 416 (not satisfiable)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ByteRange:
    """Bytes ``first`` to ``last`` (both included) of a file of ``size`` bytes."""

    first: int
    last: int
    size: int

    @property
    def length(self) -> int:
        return self.last - self.first + 1

    @property
    def content_range(self) -> str:
        return f"bytes {self.first}-{self.last}/{self.size}"


def parse_range(header: str, size: int) -> ByteRange | None:
    """The byte range a ``Range`` header asks of a file of ``size`` bytes; None: serve the whole file.

    Raises :class:`RangeError` (400) for an invalid ``bytes`` range set and (416) for a range that
    starts at or beyond the end of the file.
    """
    unit, eq, spec = header.partition("=")
    unit = unit.strip()
    if not eq or not _TOKEN.match(unit):
        raise RangeError(400, f"malformed Range header {header!r}: expected bytes=first-last")
    if unit.lower() != "bytes":
        return None  # RFC 9110 §14.2: a range unit the server does not understand is ignored
    parts = [p.strip() for p in spec.split(",")]
    parts = [p for p in parts if p]  # empty list elements are allowed and ignored (§5.6.1)
    if not parts:
        raise RangeError(400, f"malformed Range header {header!r}: no range given")
    specs = [_range_spec(p, header) for p in parts]
    found = [r for r in (_in_file(first, last, size) for first, last in specs) if r is not None]
    if not found:
        if size == 0 and any(first is None and last is not None and last > 0 for first, last in specs):
            return None  # a suffix of an empty file is satisfiable (§14.1.1): the whole (empty) file
        raise RangeError(416, f"the range {header!r} asks for no byte of the file ({size} bytes)")
    if len(specs) > 1:
        return None  # several ranges: the server may ignore the header (§14.2) and send the whole file
    return found[0]


def _in_file(first: int | None, last: int | None, size: int) -> ByteRange | None:
    """The bytes of a parsed range spec in a file of ``size`` bytes; None when there are none (it starts
    at or beyond the end, or is a zero-length suffix: §14.1.1)."""
    if first is None:  # suffix range: the last `last` bytes
        if last is None:
            return None
        return ByteRange(max(0, size - last), size - 1, size) if last > 0 and size > 0 else None
    if first >= size:
        return None
    return ByteRange(first, size - 1 if last is None else min(last, size - 1), size)


def _range_spec(part: str, header: str) -> tuple[int | None, int | None]:
    """``first-last`` -> (first, last); ``first-`` -> (first, None); ``-suffix`` -> (None, suffix)."""
    first, dash, last = part.partition("-")
    first, last = first.strip(), last.strip()
    if not dash or not (first or last) or any(s and not _DIGITS.match(s) for s in (first, last)):
        raise RangeError(400, f"malformed Range header {header!r}: {part!r} is not first-last, first- or -suffix")
    if not first:
        return None, int(last)
    if last and int(last) < int(first):
        raise RangeError(400, f"malformed Range header {header!r}: {part!r} ends before it starts")
    return int(first), int(last) if last else None


def file_validators(stat: os.stat_result) -> dict[str, str]:
    """``ETag`` (strong, from the size and modification time) and ``Last-Modified`` of a file."""
    digest = hashlib.sha256(f"{stat.st_mtime_ns}-{stat.st_size}".encode()).hexdigest()[:32]
    return {"etag": f'"{digest}"', "last-modified": formatdate(stat.st_mtime, usegmt=True)}


def if_range_matches(if_range: str | None, validators: dict[str, str]) -> bool:
    """Whether a range may be served under this ``If-Range`` (§13.1.5: a strong match of the ETag
    or the exact Last-Modified date; a weak ETag never matches)."""
    if if_range is None:
        return True
    value = if_range.strip()
    if value.startswith("W/"):
        return False
    return value in (validators["etag"], validators["last-modified"])


async def read_file_bytes(path: str | os.PathLike, first: int, length: int) -> AsyncIterator[bytes]:
    """``length`` bytes of ``path`` from byte ``first``, in chunks, without blocking the event loop."""
    import anyio

    async with await anyio.open_file(path, "rb") as fh:
        await fh.seek(first)
        left = length
        while left > 0:
            chunk = await fh.read(min(CHUNK_BYTES, left))
            if not chunk:
                break
            left -= len(chunk)
            yield chunk
