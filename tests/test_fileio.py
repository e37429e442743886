"""The output writer (moodscope.fileio): atomic for files, straight through for devices and pipes."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import threading

import pytest

from conftest import without_root_override
from moodscope.errors import OutputError
from moodscope.fileio import atomic_write, check_writable


def as_user(code: str, *args: str) -> subprocess.CompletedProcess:
    """Run Python ``code`` so that read-only files and folders are read-only to it (even as root)."""
    return subprocess.run([*without_root_override(), sys.executable, "-c", code, *args], capture_output=True, text=True)


def read_only(path) -> None:
    path.chmod(0o555 if path.is_dir() else 0o444)


def test_a_new_file_honours_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        with atomic_write(tmp_path / "out.txt") as fh:
            fh.write("hello")
    finally:
        os.umask(old)
    assert (tmp_path / "out.txt").read_text() == "hello"
    assert stat.S_IMODE((tmp_path / "out.txt").stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]  # no temporary file left


def test_a_replaced_file_keeps_its_mode(tmp_path):
    out = tmp_path / "out.txt"
    out.write_text("old")
    out.chmod(0o604)
    with atomic_write(out) as fh:
        fh.write("new")
    assert out.read_text() == "new"
    assert stat.S_IMODE(out.stat().st_mode) == 0o604


def test_missing_folders_are_created(tmp_path):
    with atomic_write(tmp_path / "a" / "b" / "out.bin", "wb") as fh:
        fh.write(b"\x00\x01")
    assert (tmp_path / "a" / "b" / "out.bin").read_bytes() == b"\x00\x01"


def test_a_failed_write_leaves_the_old_file(tmp_path):
    out = tmp_path / "out.txt"
    out.write_text("old")
    with pytest.raises(RuntimeError), atomic_write(out) as fh:
        fh.write("half of the new")
        raise RuntimeError("the writer failed")
    assert out.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_a_symlink_is_written_through_and_kept(tmp_path):
    (tmp_path / "results").mkdir()
    target = tmp_path / "results" / "target.json"
    target.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    with atomic_write(link) as fh:
        fh.write("new")
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_text() == "new"
    assert not any(p.name.endswith(".tmp") for p in tmp_path.rglob("*"))


def test_a_dangling_symlink_creates_its_target(tmp_path):
    link = tmp_path / "link.txt"
    link.symlink_to(tmp_path / "later.txt")
    with atomic_write(link) as fh:
        fh.write("made")
    assert link.is_symlink() and (tmp_path / "later.txt").read_text() == "made"


def test_a_character_device_is_written_straight_through(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("making a device node (mknod) needs root")
    dev = tmp_path / "null"
    os.mknod(dev, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # the null device, under another name
    with atomic_write(dev) as fh:
        fh.write("into the void")
    assert stat.S_ISCHR(dev.lstat().st_mode)
    with atomic_write(os.devnull, "wb") as fh:  # the real one: stays a device too
        fh.write(b"x")
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)


def test_a_fifo_is_written_straight_through(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    with atomic_write(fifo) as fh:
        fh.write("through the pipe")
    reader.join(timeout=10)
    assert got == [b"through the pipe"]
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


def test_dash_is_standard_output(capsys):
    with atomic_write("-") as fh:
        fh.write("to stdout")
    assert capsys.readouterr().out == "to stdout"


@pytest.mark.parametrize("make", ["folder", "proc", "socket"])
def test_paths_that_cannot_be_written_are_one_line_errors(tmp_path, make):
    if make == "folder":
        path = tmp_path / "existing"
        path.mkdir()
    elif make == "proc":
        path = "/proc/moodscope-x.json"
    else:
        import socket

        path = tmp_path / "sock"
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(path))
    with pytest.raises(OutputError) as info:
        check_writable(path)
    assert str(info.value).startswith(f"{path}: ") and "\n" not in str(info.value)
    with pytest.raises(OutputError, match=f"^{path}: "), atomic_write(path) as fh:
        fh.write("x")


def test_check_writable_creates_nothing(tmp_path):
    check_writable(tmp_path / "new" / "deeper" / "out.json")
    check_writable(tmp_path / "out.json")
    assert list(tmp_path.iterdir()) == []


def test_a_read_only_folder_and_file_are_refused_before_writing(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    (tmp_path / "locked.json").write_text("keep")
    read_only(tmp_path / "locked.json")
    read_only(ro)
    try:
        code = (
            "import sys\nfrom moodscope.fileio import check_writable\nfrom moodscope.errors import OutputError\n"
            "for p in sys.argv[1:]:\n"
            "    try:\n        check_writable(p)\n        print('ok', p)\n"
            "    except OutputError as exc:\n        print(exc)\n"
        )
        proc = as_user(code, str(ro / "out.json"), str(tmp_path / "locked.json"))
    finally:
        ro.chmod(0o755)
    lines = proc.stdout.splitlines()
    assert lines[0].startswith(f"{ro / 'out.json'}: cannot be written in {ro}"), proc.stdout + proc.stderr
    assert lines[1].startswith(f"{tmp_path / 'locked.json'}: the file is read-only"), proc.stdout
    assert (tmp_path / "locked.json").read_text() == "keep"


def test_the_temporary_file_of_a_killed_write_is_reused_by_the_next_write(tmp_path):
    out = tmp_path / "out.json"
    code = (
        "import os, signal, sys\nfrom moodscope.fileio import atomic_write\n"
        "with atomic_write(sys.argv[1]) as fh:\n"
        "    fh.write('half'); fh.flush(); os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(out)])
    assert proc.returncode == -signal.SIGKILL
    left = [p.name for p in tmp_path.iterdir()]
    assert len(left) == 1 and left[0].startswith(".out.json")  # the killed write's temporary file
    with atomic_write(out) as fh:
        fh.write("whole")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]
    assert out.read_text() == "whole"


def test_a_write_in_progress_is_not_disturbed_by_another(tmp_path):
    """Two writers of one path at once: each writes its own temporary file; the last rename wins."""
    out = tmp_path / "out.txt"
    with atomic_write(out) as first:
        first.write("first")
        with atomic_write(out) as second:
            second.write("second")
        assert out.read_text() == "second"
    assert out.read_text() == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_dev_stdout_is_written_through_whatever_it_leads_to(tmp_path):
    """A pipe, or a file the shell opened for appending: written through, never replaced or truncated."""
    code = (
        "import sys\nfrom moodscope.fileio import atomic_write, check_writable\n"
        "check_writable('/dev/stdout')\n"
        "with atomic_write('/dev/stdout') as fh:\n    fh.write('through\\n')\n"
    )
    piped = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert piped.returncode == 0 and piped.stdout == "through\n", piped.stderr
    log = tmp_path / "log.txt"
    log.write_text("earlier\n")
    with open(log, "a") as appended:
        proc = subprocess.run([sys.executable, "-c", code], stdout=appended, stderr=subprocess.PIPE, text=True)
    assert proc.returncode == 0, proc.stderr
    assert log.read_text() == "earlier\nthrough\n"
