"""Files: writing them so that nobody ever sees a half-written one, and hashing their content."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", **kw) -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success it is fsynced and renamed onto ``path``.

    On any error the temporary file is removed and ``path`` is left as it was.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, **kw) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def sha256_files(*paths: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """SHA-256 (hex) of the concatenated content of ``paths``, in order.

    For one file it equals ``sha256sum FILE``; for several it is the hash of ``cat FILE1 FILE2 …``.
    """
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as fh:
            while block := fh.read(chunk):
                digest.update(block)
    return digest.hexdigest()


def write_parquet(frame, path: str | os.PathLike, *, metadata: dict[str, object] | None = None) -> Path:
    """Write a pandas DataFrame to ``path`` as Parquet, atomically, without its index.

    ``metadata`` entries go into the file's schema metadata, each value as JSON under its key (read
    them back with ``json.loads(pyarrow.parquet.read_schema(path).metadata[b"key"])``).
    """
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    extra = {key.encode(): json.dumps(value).encode() for key, value in (metadata or {}).items()}
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), **extra})
    with atomic_write(path, "wb") as fh:
        pq.write_table(table, fh)
    return Path(path)
