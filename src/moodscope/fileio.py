"""Files: writing them so that nobody ever sees a half-written one and nothing else at the path is
harmed, and hashing their content.

:func:`atomic_write` is the one way moodscope writes a file that a user named (``--out``, ``--plot``,
``--m3u``, maps, exports) or that it keeps for itself (caches, checkpoints). What happens depends on
what is at the path:

=========================== ==========================================================================
``-``                       standard output (binary modes write to ``sys.stdout.buffer``)
nothing, or a regular file  a temporary file beside it is written, flushed to disk, then renamed onto
                            it in one step: readers see the old content or the new, never a mix; a
                            failed write leaves the old file as it was
a symlink                   followed: the file it points to is replaced as above and the link stays
a character device or FIFO  written straight through (``/dev/null``, a named pipe); so are
                            ``/dev/stdout``, ``/dev/fd/N`` (appended to, as the shell opened them)
a folder, block device,     refused with :class:`~moodscope.errors.OutputError`
socket
=========================== ==========================================================================

Permissions: a new file gets ``0666`` minus the umask, as files made by other programs do; a
replaced file keeps its permission bits (and, when run as root, its owner). Missing parent folders
are created.

Temporary files are named ``.<name>.tmp`` and locked (``flock``) while written. A write killed
before its rename (``kill -9``, a power cut) leaves that file behind; the next write of the same
path finds it unlocked and reuses it, so it never accumulates. (Two processes writing the same path
at once: the second writes a uniquely named temporary file; the last rename wins.)

:func:`check_writable` answers, before any work is done, whether a path could be written, and
why not in one line naming it.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import stat
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from moodscope.errors import OutputError

try:
    import fcntl
except ImportError:  # Windows: no locks; temporary files get unique names and are not reused
    fcntl = None  # type: ignore[assignment]

STDOUT = "-"
"""The output path that means standard output."""

_FD_LINK = re.compile(r"^/(dev/(stdout|stderr|fd/\d+)|proc/(self|\d+)/fd/\d+)$")
"""Paths that name an open file descriptor: written through as they are, whatever they lead to."""

TEMP_SUFFIX = ".tmp"

_DISK_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EROFS}


def _real(path: str | os.PathLike) -> Path:
    """``path`` with every symlink followed (the file a write through the link must replace)."""
    return Path(os.path.realpath(os.fspath(path)))


def _umask() -> int:
    """The process umask, read without changing it (which would race with other threads)."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _kind(st: os.stat_result) -> str | None:
    """Why a path cannot be written as an output file (None when it can)."""
    if stat.S_ISDIR(st.st_mode):
        return "is a folder; give a file name"
    if stat.S_ISBLK(st.st_mode):
        return "is a block device (a disk); give a file name"
    if stat.S_ISSOCK(st.st_mode):
        return "is a socket; give a file name"
    return None


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _stat(path: str | os.PathLike) -> os.stat_result | None:
    """What is at ``path``, following symlinks (also /proc's magic links: /dev/stdout into a pipe); None if nothing."""
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise OutputError(f"{path}: cannot be written ({_reason(exc)})") from exc


def check_writable(path: str | os.PathLike) -> None:
    """Raise :class:`OutputError` (one line naming ``path``) when :func:`atomic_write` could not write it.

    Nothing is created or changed: the folder that would hold the file is probed with a temporary
    file that is removed at once.
    """
    if os.fspath(path) == STDOUT:
        return
    st = _stat(path)
    if st is not None:
        problem = _kind(st)
        if problem:
            raise OutputError(f"{path}: {problem}")
        if not stat.S_ISREG(st.st_mode):  # a device or a FIFO: written in place
            if not os.access(path, os.W_OK):
                raise OutputError(f"{path}: cannot be written (permission denied)")
            return
        if not os.access(path, os.W_OK):
            raise OutputError(f"{path}: the file is read-only; give another path or make it writable")
    folder = _real(path).parent
    while not folder.exists():  # missing folders are created on writing: the nearest existing one decides
        folder = folder.parent
    if not folder.is_dir():
        raise OutputError(f"{path}: cannot be written ({folder} is not a folder)")
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".moodscope-probe-")
    except OSError as exc:
        raise OutputError(f"{path}: cannot be written in {folder} ({_reason(exc)})") from exc
    os.close(fd)
    os.unlink(probe)


def _lock(fd: int) -> bool:
    if fcntl is None:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


def _open_temp(target: Path, mode_bits: int, *, readable: bool = False) -> tuple[int, Path]:
    """A locked, empty temporary file beside ``target`` -> (fd, path)."""
    tmp = target.with_name(f".{target.name}{TEMP_SUFFIX}")
    if fcntl is not None:
        access = os.O_RDWR if readable else os.O_WRONLY
        for _ in range(5):
            try:
                fd = os.open(tmp, access | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
            except PermissionError:  # left by another user: write beside it
                break
            if not _lock(fd):  # another process is writing this output right now
                os.close(fd)
                break
            try:
                same = os.stat(tmp).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:  # ours: whatever it holds is left from a killed write
                os.ftruncate(fd, 0)
                os.fchmod(fd, mode_bits)
                return fd, tmp
            os.close(fd)  # renamed into place by the writer that held it: try again
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=TEMP_SUFFIX)
    _lock(fd)
    os.fchmod(fd, mode_bits)
    return fd, Path(name)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", **kw) -> Iterator[IO]:
    """Open ``path`` for writing (``mode`` ``'w'`` or ``'wb'``, or ``'w+b'`` to read back what was written
    before it replaces ``path``; ``kw`` as for :func:`open`); see the module docstring.

    Regular files are replaced atomically when the ``with`` block ends without an exception; on
    any exception the temporary file is removed and ``path`` is left as it was. Raises
    :class:`OutputError` naming the path when it cannot be written.
    """
    if "w" not in mode:
        raise ValueError(f"atomic_write writes a whole file: mode must be 'w' or 'wb', not {mode!r}")
    if os.fspath(path) == STDOUT:
        if "b" in mode:
            sys.stdout.flush()
            yield sys.stdout.buffer
            sys.stdout.buffer.flush()
        else:
            yield sys.stdout
            sys.stdout.flush()
        return
    st = _stat(path)
    descriptor = bool(_FD_LINK.match(os.path.abspath(path)))
    if st is not None and (descriptor or not stat.S_ISREG(st.st_mode)):
        problem = _kind(st)
        if problem:
            raise OutputError(f"{path}: {problem}")
        # a character device, a FIFO, or an open descriptor (/dev/stdout redirected anywhere, appended to
        # as the shell set it up: never truncated, never replaced): straight through
        try:
            fh = open(path, mode.replace("w", "a") if descriptor else mode, **kw)  # noqa: SIM115 (closed below)
        except OSError as exc:
            raise OutputError(f"{path}: cannot be written ({_reason(exc)})") from exc
        with fh:
            yield fh
        return
    real = _real(path)
    try:
        real.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = _open_temp(real, stat.S_IMODE(st.st_mode) if st else 0o666 & ~_umask(), readable="+" in mode)
    except OSError as exc:
        raise OutputError(f"{path}: cannot be written in {real.parent} ({_reason(exc)})") from exc
    try:
        if st is not None and hasattr(os, "geteuid") and os.geteuid() == 0:
            with contextlib.suppress(OSError):
                os.fchown(fd, st.st_uid, st.st_gid)
        try:
            with os.fdopen(fd, mode, closefd=False, **kw) as fh:
                yield fh
                fh.flush()
        except OSError as exc:
            if exc.errno in _DISK_ERRORS:
                raise OutputError(f"{path}: cannot be written ({_reason(exc)}); the old content is kept") from exc
            raise
        try:
            os.fsync(fd)
            os.replace(tmp, real)
        except OSError as exc:
            raise OutputError(f"{path}: cannot be written ({_reason(exc)}); the old content is kept") from exc
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    finally:
        os.close(fd)  # after the rename: the lock is held until the file is in place


def write_text(path: str | os.PathLike, text: str, *, newline: str | None = None) -> Path:
    """Write ``text`` (UTF-8) to ``path`` with :func:`atomic_write`; returns the path."""
    with atomic_write(path, "w", encoding="utf-8", newline=newline) as fh:
        fh.write(text)
    return Path(path)


def save_figure(fig, path: str | os.PathLike, **kw) -> Path:
    """Save a matplotlib figure to ``path`` with :func:`atomic_write`, in the format its suffix names (else PNG)."""
    suffix = os.path.splitext(os.fspath(path))[1].lstrip(".").lower() or "png"
    with atomic_write(path, "wb") as fh:
        fig.savefig(fh, format=suffix, **kw)
    return Path(path)


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

    from moodscope.extras import require

    pa = require("pyarrow", "parquet", "Parquet output")
    pq = require("pyarrow.parquet", "parquet", "Parquet output")

    table = pa.Table.from_pandas(frame, preserve_index=False)
    extra = {key.encode(): json.dumps(value).encode() for key, value in (metadata or {}).items()}
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), **extra})
    with atomic_write(path, "wb") as fh:
        pq.write_table(table, fh)
    return Path(path)
