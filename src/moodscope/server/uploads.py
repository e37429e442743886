"""Receiving an uploaded file: streamed to a temporary file, refused as soon as it is too large.

The request body (``multipart/form-data`` with the audio in the field ``file``) is parsed as it
arrives with python-multipart's streaming parser: the file's bytes go straight to a temporary file
in the server's upload folder and nothing else is kept. A body larger than the limit is refused
with 413 before it is read (from ``Content-Length``) or as soon as the limit is passed (chunked
uploads), so a 2 GB upload never reaches the disk. The file gets no extension: its type is decided
by decoding it, never by its name or its ``Content-Type``. The caller removes the file
(:meth:`Upload.remove`); on any error here — including the client disconnecting — it is removed
before the error propagates.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Request
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from moodscope.server.errors import ApiError

FIELD = "file"
OVERHEAD_BYTES = 64 * 1024
"""Room for the multipart framing and small form fields beyond the file's own size limit."""


@dataclass
class Upload:
    path: Path  # the temporary file
    filename: str  # the client's file name (base name only), for messages and the result
    size: int  # bytes

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def clean_filename(raw: bytes | str | None) -> str:
    """The base name of a client's file name, without control characters, at most 200 characters."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else (raw or "")
    text = re.split(r"[\\/]", text)[-1]
    text = "".join(ch for ch in text if ch.isprintable()).strip()
    return text[:200] or "upload"


def _too_large(limit: int) -> ApiError:
    return ApiError(
        413,
        f"the file is larger than this server accepts ({limit / 2**20:g} MiB); "
        "send a shorter excerpt or start the server with a larger --max-upload-mb",
    )


class _Receiver:
    """python-multipart callbacks: the first part named ``file`` (with a filename) goes to ``fd``."""

    def __init__(self, fd: int, limit: int):
        self.fd = fd
        self.limit = limit
        self.size = 0
        self.filename: str | None = None
        self.found = False
        self.complete = False
        self.over = False
        self._header_name = b""
        self._header_value = b""
        self._disposition = b""
        self._writing = False

    def on_part_begin(self) -> None:
        self._disposition = b""
        self._writing = False

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        if self._header_name.strip().lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name = self._header_value = b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        if not self.found and options.get(b"name") == FIELD.encode() and b"filename" in options:
            self.found = self._writing = True
            self.filename = clean_filename(options[b"filename"])

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if not self._writing or self.over:
            return
        self.size += end - start
        if self.size > self.limit:
            self.over = True
            return
        view = memoryview(data)[start:end]
        while view:
            view = view[os.write(self.fd, view) :]

    def on_part_end(self) -> None:
        if self._writing:
            self.complete = True
        self._writing = False

    def callbacks(self) -> Any:  # python-multipart's MultipartCallbacks (a TypedDict)
        names = ("on_part_begin", "on_header_field", "on_header_value", "on_header_end", "on_headers_finished",
                 "on_part_data", "on_part_end")  # fmt: skip
        return {name: getattr(self, name) for name in names}


async def receive_upload(request: Request, folder: Path, limit: int) -> Upload:
    """Stream the request's ``file`` field into a new file in ``folder``; at most ``limit`` bytes.

    Raises :class:`ApiError` 415 (not multipart), 400 (malformed body, empty file), 422 (no
    ``file`` field), 413 (too large); ``starlette.requests.ClientDisconnect`` when the client goes.
    """
    kind, params = parse_options_header(request.headers.get("content-type", ""))
    if kind != b"multipart/form-data":
        raise ApiError(415, f"send the audio as multipart/form-data with the file in the field {FIELD!r}")
    boundary = params.get(b"boundary")
    if not boundary:
        raise ApiError(400, "the multipart Content-Type has no boundary")
    length = request.headers.get("content-length")
    if length is not None and length.strip().isdigit() and int(length) > limit + OVERHEAD_BYTES:
        raise _too_large(limit)
    fd, name = tempfile.mkstemp(dir=folder, prefix="upload-")
    path = Path(name)
    try:
        receiver = _Receiver(fd, limit)
        parser = MultipartParser(boundary, receiver.callbacks())
        received = 0
        try:
            async for chunk in request.stream():
                received += len(chunk)
                if received > limit + OVERHEAD_BYTES:
                    raise _too_large(limit)
                parser.write(chunk)
                if receiver.over:
                    raise _too_large(limit)
            parser.finalize()
        except MultipartParseError as exc:
            raise ApiError(400, f"malformed multipart body ({exc})") from exc
        if not receiver.found:
            raise ApiError(422, f"no file in the upload: send the audio in the multipart field {FIELD!r}")
        if not receiver.complete:
            raise ApiError(400, "the upload ended before the file was complete")
        if receiver.size == 0:
            raise ApiError(400, f"{receiver.filename}: the file is empty (0 bytes)")
        return Upload(path, receiver.filename or "upload", receiver.size)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    finally:
        os.close(fd)


def analyse_upload(upload: Upload, model) -> dict:
    """The ``analyze --format json`` content of an uploaded file (runs on a pool thread).

    First decode a second of it: a file that does not decode at all is 415, whatever its name and
    header said; a file that decodes but cannot be analysed (too short, corrupt further on) is 422.
    Messages name the client's file, not the temporary one.
    """
    from moodscope.analysis.analyzer import analyze
    from moodscope.audio import stream_audio
    from moodscope.errors import AudioError

    def message(exc: Exception) -> str:
        return str(exc).replace(str(upload.path), upload.filename)

    try:
        blocks = stream_audio(upload.path, block_seconds=1.0)
        try:
            next(blocks)
        finally:
            blocks.close()
    except AudioError as exc:
        raise ApiError(415, message(exc), error="not decodable audio") from exc
    try:
        analysis = analyze(upload.path, model=model)
    except AudioError as exc:
        raise ApiError(422, message(exc), error="audio cannot be analysed") from exc
    finally:
        upload.remove()
    out = analysis.to_dict()
    out["track"] = upload.filename
    return out
