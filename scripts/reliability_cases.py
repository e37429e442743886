"""The hostile-input cases of issue 12, run against one or more checkouts: a before/after table.

Each case builds its inputs in a fresh temporary folder, runs the ``moodscope`` command line (or a
few lines of Python) of a checkout — its ``src`` folder first on ``PYTHONPATH`` — and describes what
happened in one table cell. Give ``--src`` once per checkout; the table has one column per checkout::

    git archive <commit-before> | tar -x -C /tmp/before
    python scripts/reliability_cases.py --src /tmp/before/src --src src --out docs/reliability-cases.md
    python scripts/reliability_cases.py --src src --only scan-nan,api-int16      # a few cases

Run it as root on Linux: the character-device case needs ``mknod`` (it makes its own device node in
the temporary folder: the real ``/dev/null`` is never touched), and the read-only cases drop root's
permission override with ``setpriv`` (as a normal user they run as they are). The shipped ``fast``
model analyses everything, in one process (``--workers 1``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import sqlite3
import stat
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

SR = 44_100
MODEL = ("--model", "fast")
UNPRIVILEGED = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-dac_override,-dac_read_search"]


@dataclass
class Result:
    rc: int
    out: str
    err: str
    seconds: float


class Checkout:
    """One checkout's ``src``: runs its command line and its Python API in subprocesses."""

    def __init__(self, src: Path):
        self.src = src.resolve()

    def env(self) -> dict:
        env = dict(os.environ, PYTHONPATH=str(self.src), PYTHONWARNINGS="ignore")
        env.pop("MOODSCOPE_LIBRARY", None)
        return env

    def run(
        self,
        argv: list[str],
        cwd: Path,
        *,
        unprivileged: bool = False,
        umask: int | None = None,
        timeout: float = 600,
    ) -> Result:
        prefix = UNPRIVILEGED if unprivileged and os.geteuid() == 0 else []

        def setup() -> None:
            if umask is not None:
                os.umask(umask)

        start = time.perf_counter()
        proc = subprocess.run(
            [*prefix, *argv], cwd=cwd, env=self.env(), capture_output=True, text=True, timeout=timeout,
            preexec_fn=setup, errors="replace",
        )  # fmt: skip
        here = str(cwd)  # the temporary folder: shortened in what is shown
        return Result(proc.returncode, proc.stdout, proc.stderr.replace(here, "$TMP"), time.perf_counter() - start)

    def cli(self, *args: str | Path, cwd: Path, **kw) -> Result:
        return self.run([sys.executable, "-m", "moodscope", *map(str, args)], cwd, **kw)

    def py(self, code: str, cwd: Path, **kw) -> Result:
        return self.run([sys.executable, "-c", code], cwd, **kw)

    def popen(self, *args: str | Path, cwd: Path, output: int | None = subprocess.PIPE) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "moodscope", *map(str, args)], cwd=cwd, env=self.env(),
            stdout=output, stderr=output, text=True,
        )  # fmt: skip


# ---- describing results --------------------------------------------------------------------------


def short(text: str, width: int = 140) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def message(r: Result) -> str:
    """The line a user would read: the traceback's last line, else the error line, else the first line."""
    lines = [line for line in r.err.splitlines() if line.strip() and "it/s]" not in line and "file/s]" not in line]
    if any(line.startswith("Traceback") for line in lines):
        return f"traceback `{short(lines[-1], 90)}`"
    for i, line in enumerate(lines):
        if line.startswith("moodscope: error") or ": error: argument" in line:
            return f"`{short(line)}`"
        if line.endswith("files failed:") and i + 1 < len(lines):  # analyze: the first reason
            return f"`{short(lines[i + 1])}`"
    return f"`{short(lines[0])}`" if lines else ""


def outcome(r: Result) -> str:
    msg = message(r)
    return f"exit {r.rc}" + (f", {msg}" if msg else "")


def noise_lines(err: str) -> int:
    """Lines a decoder printed on the terminal by itself (mpg123, libsndfile)."""
    marks = ("Note: ", "Warning: ", "[src/libmpg123", "possibly a pipe?")
    return sum(any(m in line for m in marks) for line in err.splitlines())


def strict_json(text: str):
    def refuse(name):
        raise ValueError(f"{name} in JSON")

    return json.loads(text, parse_constant=refuse)


def track_count(db: Path) -> int | str:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            return conn.execute("SELECT count(*) FROM tracks").fetchone()[0]
    except sqlite3.Error as exc:
        return f"unreadable ({exc})"


# ---- inputs --------------------------------------------------------------------------------------


def tone(seconds: float, *, sr: int = SR, channels: int = 2, seed: int = 0) -> np.ndarray:
    """A few notes with some noise [shape=(n, channels)] float32."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    pitch = 220.0 * 2 ** ((np.floor(t / 1.5) + seed) % 5 / 4)
    y = 0.3 * np.sin(2 * np.pi * np.cumsum(pitch) / sr) + 0.02 * rng.standard_normal(len(t))
    return np.repeat(y[:, None], channels, axis=1).astype(np.float32)


def write_wav(path: Path, seconds: float = 7.0, *, seed: int = 0, fill: float | None = None) -> Path:
    """A float WAV; ``fill`` overwrites 0.1 s in its middle with that value (NaN, inf, 1e20)."""
    y = tone(seconds, seed=seed)
    if fill is not None:
        mid = len(y) // 2
        y[mid : mid + SR // 10] = fill
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, y, SR, subtype="FLOAT")
    return path


def music_folder(folder: Path, n: int, seconds: float = 6.0) -> Path:
    for i in range(n):
        write_wav(folder / f"track{i:02d}.wav", seconds, seed=i)
    return folder


def scanned_library(c: Checkout, tmp: Path, n: int = 6) -> Path:
    music = music_folder(tmp / "music", n)
    db = tmp / "lib.db"
    r = c.cli("library", "scan", music, "--db", db, "--workers", "1", *MODEL, cwd=tmp)
    if r.rc != 0:
        raise RuntimeError(f"setup scan failed: {r.err}")
    return db


def read_only(*paths: Path) -> None:
    for p in paths:
        p.chmod(0o555 if p.is_dir() else 0o444)


# ---- cases ---------------------------------------------------------------------------------------


@dataclass
class Case:
    key: str
    group: str
    what: str
    run: Callable[[Checkout, Path], str]


CASES: list[Case] = []


def case(key: str, group: str, what: str):
    def register(fn):
        CASES.append(Case(key, group, what, fn))
        return fn

    return register


def _nonfinite_analyze(fill: float):
    def run(c: Checkout, tmp: Path) -> str:
        path = write_wav(tmp / "bad.wav", fill=fill)
        r = c.cli("analyze", path, "--format", "json", *MODEL, cwd=tmp)
        text = r.out
        try:
            data = strict_json(text) if text.strip() else None
            valid = "valid JSON" if data else "no JSON"
            label = f" labelled {data[0]['summary']['quadrant']}" if data else ""
        except ValueError as exc:
            valid, label = f"invalid JSON ({exc})", ""
            with contextlib.suppress(ValueError, KeyError, IndexError):
                summary = json.loads(text)[0]["summary"]
                label = f", labelled {summary['quadrant']} {summary['mood']}"
        return f"{outcome(r)}; {valid}{label}"

    return run


case("analyze-nan", "non-finite audio", "`analyze nan.wav --format json` (float WAV, 0.1 s of NaN)")(
    _nonfinite_analyze(float("nan"))
)
case("analyze-inf", "non-finite audio", "`analyze inf.wav --format json` (0.1 s of +Inf)")(
    _nonfinite_analyze(float("inf"))
)
case("analyze-1e20", "non-finite audio", "`analyze huge.wav --format json` (0.1 s of 1e20)")(_nonfinite_analyze(1e20))


@case("scan-nan", "non-finite audio", "`library scan` of a.wav, b.wav (NaN), c.wav; then a rescan")
def _scan_nan(c: Checkout, tmp: Path) -> str:
    music = tmp / "music"
    write_wav(music / "a.wav", seed=1)
    write_wav(music / "b.wav", seed=2, fill=float("nan"))
    write_wav(music / "c.wav", seed=3)
    db = tmp / "lib.db"
    first = c.cli("library", "scan", music, "--db", db, "--workers", "1", *MODEL, cwd=tmp)
    n1 = track_count(db)
    second = c.cli("library", "scan", music, "--db", db, "--workers", "1", *MODEL, cwd=tmp)
    return f"scan: {outcome(first)}; {n1} of 2 good files indexed; rescan: {outcome(second)}, {track_count(db)} indexed"


@case("api-nan", "non-finite audio", "`moodscope.analyze(y, sr)` with NaN in `y`, and the same as a file")
def _api_nan(c: Checkout, tmp: Path) -> str:
    path = write_wav(tmp / "nan.wav", fill=float("nan"))
    code = f"""
import numpy as np, soundfile as sf, moodscope
y, sr = sf.read({str(path)!r}, dtype="float32")
y = y.mean(axis=1)  # mono: the shape is another case
for name, arg, kw in (("array", y, dict(sr=sr)), ("file", {str(path)!r}, {{}})):
    try:
        a = moodscope.analyze(arg, model="fast", **kw)
        print(f"{{name}}: result {{a.summary.quadrant}} confidence {{a.summary.confidence}}")
    except Exception as exc:
        print(f"{{name}}: {{type(exc).__name__}}: {{str(exc)[:90]}}")
"""
    r = c.py(code, tmp)
    return "; ".join(r.out.split("\n")[:2]) if r.rc == 0 else outcome(r)


def _failed_run_keeps(fmt: str):
    def run(c: Checkout, tmp: Path) -> str:
        good = write_wav(tmp / "good.wav")
        empty = tmp / "empty.wav"
        empty.write_bytes(b"")
        out = tmp / f"out.{fmt}"
        c.cli("analyze", good, "--out", out, *MODEL, cwd=tmp)
        before = out.read_bytes()
        r = c.cli("analyze", empty, "--out", out, *MODEL, cwd=tmp)
        after = out.read_bytes() if out.exists() else b""
        kept = "kept" if after == before else f"replaced ({len(before)} -> {len(after)} bytes)"
        said = "; says so" if "left as it was" in r.err else ""
        return f"{outcome(r)}; existing out.{fmt} {kept}{said}"

    return run


for _fmt in ("json", "csv", "parquet"):
    case(f"keep-{_fmt}", "failed run", f"every input fails, `--out out.{_fmt}` exists")(_failed_run_keeps(_fmt))


@case("out-chardev", "output files", "`--out NULL --format json`, NULL a character device (`mknod c 1 3`)")
def _out_chardev(c: Checkout, tmp: Path) -> str:
    dev = tmp / "null"
    os.mknod(dev, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    r = c.cli("analyze", write_wav(tmp / "good.wav"), "--out", dev, "--format", "json", *MODEL, cwd=tmp)
    kind = "still a character device" if stat.S_ISCHR(dev.lstat().st_mode) else "turned into a regular file"
    return f"{outcome(r)}; {kind}"


@case("out-symlink", "output files", "`--out link.json`, a symlink to results/target.json")
def _out_symlink(c: Checkout, tmp: Path) -> str:
    (tmp / "results").mkdir()
    target = tmp / "results" / "target.json"
    target.write_text("old")
    link = tmp / "link.json"
    link.symlink_to(target)
    r = c.cli("analyze", write_wav(tmp / "good.wav"), "--out", link, *MODEL, cwd=tmp)
    kept = "link kept" if link.is_symlink() else "link replaced by a regular file"
    written = "target written" if target.read_text() != "old" else "target unchanged"
    return f"{outcome(r)}; {kept}, {written}"


@case("out-fifo", "output files", "`--out pipe --format json`, a FIFO with a reader")
def _out_fifo(c: Checkout, tmp: Path) -> str:
    fifo = tmp / "pipe"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        r = c.cli("analyze", write_wav(tmp / "good.wav"), "--out", fifo, "--format", "json", *MODEL, cwd=tmp)
        got = b""
        try:
            while chunk := os.read(reader, 65536):
                got += chunk
        except BlockingIOError:
            pass
    finally:
        os.close(reader)
    kind = "still a FIFO" if stat.S_ISFIFO(fifo.lstat().st_mode) else "turned into a regular file"
    return f"{outcome(r)}; {kind}; the reader got {len(got)} bytes"


@case("out-umask", "output files", "mode of `--out out.json` under umask 022")
def _out_umask(c: Checkout, tmp: Path) -> str:
    out = tmp / "out.json"
    r = c.cli("analyze", write_wav(tmp / "good.wav"), "--out", out, *MODEL, cwd=tmp, umask=0o022)
    return f"{outcome(r)}; mode {stat.S_IMODE(out.stat().st_mode):04o}" if out.exists() else outcome(r)


@case("out-stdout", "output files", "`--out - --format json`")
def _out_stdout(c: Checkout, tmp: Path) -> str:
    r = c.cli("analyze", write_wav(tmp / "good.wav"), "--out", "-", "--format", "json", *MODEL, cwd=tmp)
    try:
        on_stdout = "JSON on stdout" if strict_json(r.out) else "nothing on stdout"
    except ValueError:
        on_stdout = "no JSON on stdout"
    dash = "; a file named `-` written" if (tmp / "-").exists() else ""
    return f"{outcome(r)}; {on_stdout}{dash}"


def _unwritable_out(option: str, where: Callable[[Path], Path], unprivileged: bool = False):
    def run(c: Checkout, tmp: Path) -> str:
        music = music_folder(tmp / "music", 3, seconds=30.0)
        target = where(tmp)
        r = c.cli("analyze", music, option, target, *MODEL, "--workers", "1", cwd=tmp, unprivileged=unprivileged)
        return f"{outcome(r)} after {r.seconds:.1f} s"

    return run


def _ro_folder(tmp: Path) -> Path:
    ro = tmp / "ro"
    ro.mkdir()
    read_only(ro)
    return ro


def _a_folder(tmp: Path) -> Path:
    (tmp / "existing").mkdir()
    return tmp / "existing"


case("out-readonly", "output files", "`analyze DIR --out ro/out.json` (ro: a read-only folder; 3 files of 30 s)")(
    _unwritable_out("--out", lambda tmp: _ro_folder(tmp) / "out.json", unprivileged=True)
)
case("out-directory", "output files", "`analyze DIR --out existing` (an existing folder)")(
    _unwritable_out("--out", _a_folder)
)
case("out-proc", "output files", "`analyze DIR --out /proc/x.json`")(
    _unwritable_out("--out", lambda tmp: Path("/proc/x.json"))
)
case("plot-readonly", "output files", "`analyze DIR --plot ro/plot.png`")(
    _unwritable_out("--plot", lambda tmp: _ro_folder(tmp) / "plot.png", unprivileged=True)
)


@case("out-xlsx", "output files", "`--out out.xlsx` (a format moodscope does not write)")
def _out_xlsx(c: Checkout, tmp: Path) -> str:
    out = tmp / "out.xlsx"
    r = c.cli("analyze", write_wav(tmp / "good.wav"), "--out", out, *MODEL, cwd=tmp)
    return f"{outcome(r)}; " + ("out.xlsx written (a text table)" if out.exists() else "nothing written")


@case("stale-temp", "output files", "a write killed with SIGKILL, then `analyze --out out.json`")
def _stale_temp(c: Checkout, tmp: Path) -> str:
    out = tmp / "out.json"
    code = f"""
import os, signal
from moodscope.fileio import atomic_write
with atomic_write({str(out)!r}, "w") as fh:
    fh.write("half")
    fh.flush()
    os.kill(os.getpid(), signal.SIGKILL)
"""
    c.py(code, tmp)
    left = sorted(p.name for p in tmp.iterdir() if p.name.startswith(".out.json"))
    r = c.cli("analyze", write_wav(tmp / "good.wav"), "--out", out, *MODEL, cwd=tmp)
    after = sorted(p.name for p in tmp.iterdir() if p.name.startswith(".out.json"))
    return f"{len(left)} temporary file(s) after the kill; {len(after)} after the next run ({outcome(r)})"


# ---- worker processes ----------------------------------------------------------------------------


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (children, their children...), from ``/proc``."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat_line = (entry / "stat").read_text()
                parents[int(entry.name)] = int(stat_line.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pids: set[int]) -> set[int]:
    live = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            if (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                live.add(pid)
    return live


def _killed_parent(command: str, sig: signal.Signals):
    def run(c: Checkout, tmp: Path) -> str:
        music = music_folder(tmp / "music", 8, seconds=60.0)
        if command == "analyze":
            argv = ["analyze", music, "--workers", "2", *MODEL]
        else:
            argv = ["library", "scan", music, "--db", tmp / "lib.db", "--workers", "2", *MODEL]
        proc = c.popen(*argv, cwd=tmp, output=subprocess.DEVNULL)  # orphans would hold a pipe open
        workers: set[int] = set()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:  # until the workers have started
            workers |= descendants(proc.pid)
            if len(workers) >= 2:
                time.sleep(3.0)
                workers |= descendants(proc.pid)
                break
            time.sleep(0.2)
        if proc.poll() is not None:
            return f"finished before the signal (exit {proc.returncode})"
        proc.send_signal(sig)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return f"{len(workers)} worker(s); still running 60 s after {sig.name}"
        time.sleep(5.0)
        left = alive(workers)
        for pid in left:  # clean up what the checkout left behind
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        return f"exit {proc.returncode}; {len(workers)} worker process(es); {len(left)} still alive 5 s later"

    return run


for _cmd in ("analyze", "scan"):
    for _sig in (signal.SIGKILL, signal.SIGTERM):
        case(
            f"{_sig.name.lower()}-{_cmd}",
            "worker processes",
            f"`{'library ' if _cmd == 'scan' else ''}{_cmd} DIR --workers 2` (8 files of 60 s), {_sig.name} mid-run",
        )(_killed_parent(_cmd, _sig))


# ---- library database ----------------------------------------------------------------------------


def _corrupt_page(db: Path, page: int) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        size = conn.execute("PRAGMA page_size").fetchone()[0]
    rng = np.random.default_rng(0)
    with open(db, "r+b") as fh:
        fh.seek((page - 1) * size + 100)
        fh.write(rng.integers(0, 256, size - 200, dtype=np.uint8).tobytes())


def _queries(c: Checkout, tmp: Path, db: Path, **kw) -> str:
    cells = []
    for args in (
        ("similar", "1", "--n", "3"),
        ("clusters", "--k", "2"),
        ("journey", "--from", "sad", "--to", "happy", "--n", "3"),
        ("list", "--limit", "3"),
    ):
        r = c.cli("library", *args, "--db", db, cwd=tmp, **kw)
        cells.append(f"{args[0]}: {outcome(r)}")
    return "; ".join(cells)


@case("db-corrupt-page", "library database", "garbage over the `tracks` root page, then queries")
def _db_corrupt(c: Checkout, tmp: Path) -> str:
    db = scanned_library(c, tmp)
    with sqlite3.connect(db) as conn:
        page = conn.execute("SELECT rootpage FROM sqlite_schema WHERE name = 'tracks'").fetchone()[0]
    _corrupt_page(db, page)
    return _queries(c, tmp, db)


@case("db-garbage-profiles", "library database", "stored profiles overwritten with 1e32 / 3e38, then queries")
def _db_garbage(c: Checkout, tmp: Path) -> str:
    db = scanned_library(c, tmp)
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        blob = conn.execute("SELECT profile FROM tracks ORDER BY id LIMIT 1").fetchone()[0]
    data = bytearray(db.read_bytes())
    garbage = struct.pack("<ff", 1e32, 3e38) * (len(blob) // 8)
    start, hits = 0, 0
    while (at := data.find(blob, start)) >= 0:  # the row and the profile snapshot
        data[at : at + len(blob)] = garbage
        start, hits = at + len(blob), hits + 1
    db.write_bytes(bytes(data))
    r = c.cli("library", "similar", "2", "--n", "5", "--db", db, "--format", "json", cwd=tmp)
    try:
        worst = max(abs(t["score"]) for t in json.loads(r.out)["tracks"])
        shown = f"largest distance shown {worst:.3g}"
    except (ValueError, KeyError, TypeError):
        shown = "no distances shown"
    rc = c.cli("library", "clusters", "--k", "2", "--db", db, cwd=tmp)
    big = [w for w in rc.out.split() if "e+" in w]
    return f"similar: {outcome(r)}, {shown}; clusters: {outcome(rc)}" + (f", shows {big[0]}" if big else "")


@case("db-empty-file", "library database", "`library stats --db empty.db` (a 0-byte file)")
def _db_empty(c: Checkout, tmp: Path) -> str:
    db = tmp / "empty.db"
    db.write_bytes(b"")
    r = c.cli("library", "stats", "--db", db, cwd=tmp)
    said = r.out.splitlines()[0] if r.out.strip() else ""
    return f"{outcome(r)}; {said}; file now {db.stat().st_size} bytes"


@case("db-check", "library database", "`library check --db lib.db` (a sound library, then one damaged page)")
def _db_check(c: Checkout, tmp: Path) -> str:
    db = scanned_library(c, tmp)
    good = c.cli("library", "check", "--db", db, cwd=tmp)
    with sqlite3.connect(db) as conn:
        page = conn.execute("SELECT rootpage FROM sqlite_schema WHERE name = 'segments'").fetchone()[0]
    _corrupt_page(db, page)
    bad = c.cli("library", "check", "--db", db, cwd=tmp)
    return f"sound: {outcome(good)}; damaged: {outcome(bad)}"


@case("db-readonly-file", "library database", "queries on a read-only database file")
def _db_ro_file(c: Checkout, tmp: Path) -> str:
    db = scanned_library(c, tmp)
    read_only(db)
    return _queries(c, tmp, db, unprivileged=True)


@case("db-readonly-folder", "library database", "queries on a database in a read-only folder")
def _db_ro_folder(c: Checkout, tmp: Path) -> str:
    db = scanned_library(c, tmp)
    read_only(db.parent)
    try:
        return _queries(c, tmp, db, unprivileged=True)
    finally:
        db.parent.chmod(0o755)


@case("db-readonly-scan", "library database", "`library scan` into a read-only database (3 new files of 30 s)")
def _db_ro_scan(c: Checkout, tmp: Path) -> str:
    db = scanned_library(c, tmp, n=2)
    music_folder(tmp / "more", 3, seconds=30.0)
    read_only(db)
    r = c.cli("library", "scan", tmp / "more", "--db", db, "--workers", "1", *MODEL, cwd=tmp, unprivileged=True)
    return f"{outcome(r)} after {r.seconds:.1f} s"


@case("db-unwritable-place", "library database", "`library scan --db ro/new.db`; `--db /proc/x/lib.db`")
def _db_unwritable(c: Checkout, tmp: Path) -> str:
    music = music_folder(tmp / "music", 1)
    ro = _ro_folder(tmp)
    a = c.cli("library", "scan", music, "--db", ro / "new.db", *MODEL, cwd=tmp, unprivileged=True)
    b = c.cli("library", "scan", music, "--db", "/proc/x/lib.db", *MODEL, cwd=tmp)
    return f"ro/new.db: {outcome(a)}; /proc: {outcome(b)}"


@case("db-left-behind", "library database", "`library scan missing-folder --db new.db` (the scan cannot start)")
def _db_left(c: Checkout, tmp: Path) -> str:
    db = tmp / "new.db"
    r = c.cli("library", "scan", tmp / "missing", "--db", db, *MODEL, cwd=tmp)
    left = [p.name for p in tmp.iterdir() if p.name.startswith("new.db")]
    return f"{outcome(r)}; left behind: {', '.join(left) or 'nothing'}"


@case("scan-symlinked-root", "library database", "scan `music/`, then `link/` (a symlink to music/)")
def _scan_symlink(c: Checkout, tmp: Path) -> str:
    db = scanned_library(c, tmp, n=3)
    (tmp / "link").symlink_to(tmp / "music")
    r = c.cli("library", "scan", tmp / "link", "--db", db, *MODEL, "--workers", "1", cwd=tmp)
    said = r.out.splitlines()[0].split(": ", 1)[-1] if r.out else ""
    return f"{outcome(r)}; {said}; {track_count(db)} rows for 3 files"


@case("scan-concurrent", "library database", "two `library scan` of one folder (8 new files) into one database at once")
def _scan_concurrent(c: Checkout, tmp: Path) -> str:
    music = music_folder(tmp / "music", 8, seconds=10.0)
    db = tmp / "lib.db"
    procs = [c.popen("library", "scan", music, "--db", db, "--workers", "1", *MODEL, cwd=tmp) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    analysed = []
    for out, err in outs:
        first = out.splitlines()[0] if out.strip() else err.strip().splitlines()[-1]
        analysed.append(first.split(": ", 1)[-1].split(",")[0])
    return f"exits {[p.returncode for p in procs]}; {' + '.join(analysed)}; {track_count(db)} tracks"


@case("scan-symlink-loop", "library database", "`loop.mp3 -> loop.mp3` in the folder: scan, then rescan")
def _scan_loop(c: Checkout, tmp: Path) -> str:
    music = music_folder(tmp / "music", 1)
    (music / "loop.mp3").symlink_to(music / "loop.mp3")
    db = tmp / "lib.db"
    first = c.cli("library", "scan", music, "--db", db, *MODEL, cwd=tmp)
    second = c.cli("library", "scan", music, "--db", db, *MODEL, cwd=tmp)
    n2 = sum("loop.mp3" in line for line in (second.out + second.err).splitlines())
    return f"scan: {outcome(first)}; rescan: exit {second.rc}, loop.mp3 on {n2} line(s)"


@case("m3u-newline", "library database", "a file named `a⏎b.wav` in an M3U playlist (`library list --m3u`)")
def _m3u_newline(c: Checkout, tmp: Path) -> str:
    music = tmp / "music"
    write_wav(music / "a\nb.wav")
    db = tmp / "lib.db"
    c.cli("library", "scan", music, "--db", db, *MODEL, cwd=tmp)
    m3u = tmp / "list.m3u"
    r = c.cli("library", "list", "--db", db, "--m3u", m3u, cwd=tmp)
    if not m3u.exists():
        return outcome(r)
    entries = [line for line in m3u.read_text().splitlines() if line and not line.startswith("#")]
    broken = [e for e in entries if not (e.startswith("file:") or Path(e).exists())]
    return f"{outcome(r)}; {len(entries)} entries, {len(broken)} not a file ({', '.join(map(repr, broken))})"


@case("query-arguments", "library database", "`playlist --n -1`, `list --limit -1`, `similar --n 0`, `journey --n -1`")
def _query_args(c: Checkout, tmp: Path) -> str:
    db = scanned_library(c, tmp, n=3)
    cells = []
    for args in (
        ("playlist", "--mood", "calm", "--n", "-1"),
        ("list", "--limit", "-1"),
        ("similar", "1", "--n", "0"),
        ("journey", "--from", "sad", "--to", "happy", "--n", "-1"),
    ):
        r = c.cli("library", *args, "--db", db, cwd=tmp)
        listed = sum(line[:4].strip().isdigit() for line in r.out.splitlines())
        cells.append(f"{args[0]}: exit {r.rc}" + (f", {listed} tracks" if r.rc == 0 else f", {message(r)}"))
    return "; ".join(cells)


# ---- Python API ----------------------------------------------------------------------------------

_API = """
import numpy as np, soundfile as sf, moodscope
demo = {demo!r}
y, sr = sf.read(demo, dtype="float32")          # (n, 2)
def show(name, arg, **kw):
    try:
        a = moodscope.analyze(arg, model="fast", **kw)
        print(f"{{name}}: {{a.summary.quadrant}} {{a.summary.confidence:.2f}} ({{len(a.starts)}} segments)")
    except Exception as exc:
        print(f"{{name}}: {{type(exc).__name__}}: {{str(exc)[:70]}}")
"""


def _api(lines: str):
    def run(c: Checkout, tmp: Path) -> str:
        demo = c.src / "moodscope" / "data" / "demo.ogg"
        r = c.py(_API.format(demo=str(demo)) + lines, tmp)
        return "; ".join(r.out.strip().splitlines()) if r.rc == 0 else outcome(r)

    return run


case("api-shapes", "Python API", "`analyze(y, sr)` with y from `soundfile.read` (n, 2), its transpose, mono")(
    _api('show("(n, 2)", y, sr=sr)\nshow("(2, n)", y.T, sr=sr)\nshow("1-D", y.mean(axis=1), sr=sr)')
)
case("api-int16", "Python API", "the demo clip as (2, n) float32, float64, int16 and int32 arrays")(
    _api(
        'show("float32", y.T, sr=sr)\nshow("float64", y.T.astype(np.float64), sr=sr)\n'
        'show("int16", sf.read(demo, dtype="int16")[0].T, sr=sr)\n'
        'show("int32", sf.read(demo, dtype="int32")[0].T, sr=sr)'
    )
)
case("api-refusals", "Python API", "empty array, `sr=0`, `sr=-1`, strings, no `sr`")(
    _api(
        'show("empty", np.zeros(0, np.float32), sr=sr)\nshow("sr=0", y, sr=0)\nshow("sr=-1", y, sr=-1)\n'
        'show("strings", np.array(["a"] * 300000), sr=sr)\nshow("no sr", y)'
    )
)


# ---- decoding ------------------------------------------------------------------------------------


def _truncated(c: Checkout, tmp: Path, fmt: str) -> str:
    full = tmp / f"full.{fmt.lower()}"
    sf.write(full, tone(14.0), SR, format=fmt)
    data = full.read_bytes()
    cut = tmp / f"truncated.{fmt.lower()}"
    cut.write_bytes(data[: len(data) // 2])
    r = c.cli("analyze", cut, "--format", "json", *MODEL, cwd=tmp)
    try:
        got = f"{strict_json(r.out)[0]['duration']:.1f} s of 14 decoded"
    except (ValueError, IndexError, KeyError):
        got = "nothing decoded"
    return f"{outcome(r)}; {got}; {noise_lines(r.err)} decoder line(s) on the terminal"


case("trunc-flac", "decoding", "a 14-s FLAC cut in half")(lambda c, tmp: _truncated(c, tmp, "FLAC"))
case("trunc-mp3", "decoding", "a 14-s MP3 cut in half")(lambda c, tmp: _truncated(c, tmp, "MP3"))
case("trunc-ogg", "decoding", "a 14-s Ogg Vorbis cut in half")(lambda c, tmp: _truncated(c, tmp, "OGG"))


@case("garbled-mp3", "decoding", "a 14-s MP3 with 4 kB of garbage at one third")
def _garbled(c: Checkout, tmp: Path) -> str:
    full = tmp / "full.mp3"
    sf.write(full, tone(14.0), SR, format="MP3")
    data = bytearray(full.read_bytes())
    at = len(data) // 3
    data[at : at + 4000] = np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes()
    path = tmp / "garbled.mp3"
    path.write_bytes(bytes(data))
    r = c.cli("analyze", path, "--format", "json", *MODEL, cwd=tmp)
    try:
        got = f"{strict_json(r.out)[0]['duration']:.1f} s decoded"
    except (ValueError, IndexError, KeyError):
        got = "nothing decoded"
    return f"{outcome(r)}; {got}; {noise_lines(r.err)} decoder line(s) on the terminal"


@case("junk-mp3", "decoding", "`analyze junk.mp3` (50 kB of random bytes)")
def _junk(c: Checkout, tmp: Path) -> str:
    path = tmp / "junk.mp3"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    r = c.cli("analyze", path, *MODEL, cwd=tmp)
    reason = next((line for line in r.err.splitlines() if "junk.mp3" in line), "")
    return (
        f"exit {r.rc}; {noise_lines(r.err)} decoder line(s) on the terminal; the error line names the path "
        f"{reason.count('junk.mp3')} time(s): `{short(reason, 140)}`"
    )


# ---- the table -----------------------------------------------------------------------------------


def run_case(checkout: Checkout, item: Case) -> str:
    tmp = Path(tempfile.mkdtemp(prefix=f"moodscope-{item.key}-"))
    tmp.chmod(0o755)
    try:
        return item.run(checkout, tmp).replace(str(tmp), "$TMP").replace("|", "\\|")
    except Exception as exc:
        return f"(case failed to run: {type(exc).__name__}: {short(str(exc), 100)})"
    finally:
        for p in [tmp, *tmp.rglob("*")]:
            if p.is_dir() and not p.is_symlink():
                p.chmod(0o755)
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", type=Path, action="append", required=True, help="a checkout's src folder")
    parser.add_argument("--label", action="append", help="column titles (default: the --src paths)")
    parser.add_argument("--only", help="comma-separated case keys")
    parser.add_argument("--out", type=Path, help="write the markdown table here too")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    checkouts = [Checkout(s) for s in args.src]
    labels = args.label or [str(s) for s in args.src]
    chosen = [c for c in CASES if not args.only or c.key in args.only.split(",")]
    lines = ["| case | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
    print("\n".join(lines), flush=True)
    for item in chosen:
        cells = [run_case(c, item) for c in checkouts]
        lines.append(f"| **{item.key}**: {item.what} | " + " | ".join(cells) + " |")
        print(lines[-1], flush=True)
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
