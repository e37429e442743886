"""The ``Range`` header parser of the audio endpoint (RFC 9110 §14), on its own: which bytes each
form asks of a file, what is ignored (whole file) and what is refused (400, 416)."""

from __future__ import annotations

import asyncio
import os

import pytest

from moodscope.errors import MoodscopeError
from moodscope.server.ranges import (
    ByteRange,
    RangeError,
    file_validators,
    if_range_matches,
    parse_range,
    read_file_bytes,
)


@pytest.mark.parametrize(
    ("header", "size", "first", "last"),
    [
        ("bytes=0-99", 1000, 0, 99),
        ("bytes=100-199", 1000, 100, 199),
        ("bytes=500-", 1000, 500, 999),
        ("bytes=0-", 1000, 0, 999),
        ("bytes=990-5000", 1000, 990, 999),  # a last byte beyond the end means the end
        ("bytes=999-999", 1000, 999, 999),
        ("bytes=-1", 1000, 999, 999),
        ("bytes=-50", 1000, 950, 999),
        ("bytes=-5000", 1000, 0, 999),  # a suffix longer than the file is the whole file
        ("BYTES=1-2", 1000, 1, 2),  # the unit is case-insensitive
        ("bytes= 7 - 9 ", 1000, 7, 9),
        ("bytes=3-4,", 1000, 3, 4),  # empty list elements are ignored
        ("bytes=0-0", 1, 0, 0),
        ("bytes=12345678901234567890-", 2**70, 12345678901234567890, 2**70 - 1),
    ],
)
def test_single_ranges(header, size, first, last):
    found = parse_range(header, size)
    assert found == ByteRange(first, last, size)
    assert found.length == last - first + 1
    assert found.content_range == f"bytes {first}-{last}/{size}"


@pytest.mark.parametrize(
    ("header", "size"),
    [
        ("lines=1-2", 1000),  # a unit the server does not understand MUST be ignored
        ("items=0-", 1000),
        ("bytes=0-9,20-29", 1000),  # several ranges: the whole file
        ("bytes=0-9, -5", 1000),
        ("bytes=0-9,5000-", 1000),  # one of several satisfiable: still the whole file
        ("bytes=-10", 0),  # a suffix of an empty file: the whole (empty) file
    ],
)
def test_headers_answered_with_the_whole_file(header, size):
    assert parse_range(header, size) is None


@pytest.mark.parametrize(
    ("header", "size"),
    [
        ("bytes=1000-", 1000),  # first byte at the end
        ("bytes=5000-6000", 1000),
        ("bytes=-0", 1000),  # a zero-length suffix
        ("bytes=0-", 0),  # nothing can be had of an empty file
        ("bytes=0-0", 0),
        ("bytes=1000-,2000-", 1000),  # none of several
    ],
)
def test_unsatisfiable_ranges_are_416(header, size):
    with pytest.raises(RangeError) as caught:
        parse_range(header, size)
    assert caught.value.status == 416 and str(size) in str(caught.value)
    assert isinstance(caught.value, MoodscopeError)


@pytest.mark.parametrize(
    "header",
    ["bytes", "bytes=", "bytes=,", "bytes=abc", "bytes=-", "bytes=5-2", "bytes=1-2-3", "bytes=0x10-",
     "bytes=+1-2", "bytes=1.5-2", "bytes=0-9,abc", "=0-9", "by tes=0-1", "bytes=½-1", "bytes=--5"],
)  # fmt: skip
def test_malformed_byte_ranges_are_400(header):
    with pytest.raises(RangeError) as caught:
        parse_range(header, 1000)
    assert caught.value.status == 400 and "Range header" in str(caught.value)


def test_if_range_needs_a_strong_match(tmp_path):
    path = tmp_path / "a.bin"
    path.write_bytes(b"x" * 10)
    validators = file_validators(path.stat())
    assert validators["etag"].startswith('"') and validators["last-modified"].endswith("GMT")
    assert if_range_matches(None, validators)
    assert if_range_matches(validators["etag"], validators)
    assert if_range_matches(validators["last-modified"], validators)
    assert not if_range_matches("W/" + validators["etag"], validators)
    assert not if_range_matches('"something-else"', validators)
    os.utime(path, ns=(0, 10**18))
    assert file_validators(path.stat())["etag"] != validators["etag"]  # the file changed: another tag


def test_read_file_bytes_reads_exactly_the_range(tmp_path):
    data = os.urandom(300_000)
    path = tmp_path / "a.bin"
    path.write_bytes(data)

    async def read(first, length):
        return b"".join([chunk async for chunk in read_file_bytes(path, first, length)])

    for first, length in [(0, len(data)), (1, 99), (70_000, 140_000), (len(data) - 1, 1), (10, 0)]:
        assert asyncio.run(read(first, length)) == data[first : first + length]
    assert asyncio.run(read(len(data) - 5, 100)) == data[-5:]  # a file that shrank: what is left
