"""Inputs of a batch: local files and folders, or fsspec URLs (``s3://bucket/prefix``, ``gs://...``).

A URL is read through `fsspec <https://filesystem-spec.readthedocs.io>`_ and the package for its
protocol (``s3fs`` for ``s3://``, ``gcsfs`` for ``gs://``, ``adlfs`` for ``az://``...). A URL naming a
folder (a prefix) stands for every audio file under it, as a local folder does. Workers copy a
remote file to a local temporary file, decode it there and delete it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import PurePosixPath

from moodscope.constants import AUDIO_EXTENSIONS
from moodscope.errors import AudioError, MoodscopeError


def is_url(path: str | os.PathLike) -> bool:
    """True for ``protocol://...`` (other than plain local paths)."""
    text = os.fspath(path)
    return "://" in text and not os.path.exists(text)


def _filesystem(url: str):
    try:
        import fsspec
    except ImportError as exc:
        raise MoodscopeError(f"{url}: reading URLs needs fsspec: pip install 'moodscope[ray]'") from exc
    try:
        return fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as exc:
        protocol = url.split("://", 1)[0]
        raise MoodscopeError(
            f"{url}: cannot read {protocol}:// URLs ({exc}); install the fsspec package for it "
            "(s3fs for s3://, gcsfs for gs://, adlfs for az://)"
        ) from exc


def list_audio(inputs: Sequence[str | os.PathLike]) -> list[str]:
    """Expand files, folders and URLs into a list of audio files (folders and prefixes recursively,
    sorted; files named explicitly are always kept, so that a bad one is reported)."""
    from moodscope.audio import find_audio_files

    found: list[str] = []
    for item in inputs:
        if not is_url(item):
            found.extend(str(p) for p in find_audio_files([item]))
            continue
        fs, root = _filesystem(str(item))
        if fs.isdir(root):
            names = sorted(name for name in fs.find(root) if _is_audio_name(PurePosixPath(name)))
            found.extend(fs.unstrip_protocol(name) for name in names)
        else:
            found.append(str(item))
    return found


def _is_audio_name(name: PurePosixPath) -> bool:
    return name.suffix.lower() in AUDIO_EXTENSIONS and not name.name.startswith(".")


@contextlib.contextmanager
def local_copy(path: str) -> Iterator[str]:
    """A local path with the content of ``path``: the path itself, or for a URL a temporary copy
    (with the same suffix, so the decoder is chosen the same way), removed afterwards. moodscope
    errors raised in the ``with`` block name the URL, not the copy."""
    if not is_url(path):
        yield path
        return
    fs, remote = _filesystem(path)
    fd, local = tempfile.mkstemp(prefix="moodscope-", suffix=PurePosixPath(remote).suffix)
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                with fs.open(remote, "rb") as src:
                    shutil.copyfileobj(src, out, 1 << 20)
            except FileNotFoundError as exc:
                raise AudioError(f"{path}: no such file") from exc
            except OSError as exc:
                raise AudioError(f"{path}: cannot read: {exc}") from exc
        try:
            yield local
        except MoodscopeError as exc:
            raise type(exc)(str(exc).replace(local, path)) from exc
    finally:
        os.unlink(local)
