"""The web server under load, on loopback only: concurrent uploads, /health meanwhile, memory, and
library queries over HTTP on a large library.

1. **Uploads**: ``moodscope serve --model accurate`` (``--workers``, default: the server's own
   default) gets ``--uploads`` (20) simultaneous uploads of real 30-s clips (4Q MP3s from
   ``../shared/data``). A client that gets 503 waits the ``Retry-After`` it was given and tries again
   (each upload's latency counts from its first attempt to its answer). Meanwhile ``/api/v1/health``
   is asked every 50 ms and the server's resident memory (its process and any children, from
   ``/proc``) is sampled every 50 ms. Reference in the same run: one clip analysed in this process
   (``moodscope.analyze``, the same model), so the latencies can be read as multiples of one analysis.
   Goals: every upload answered 200 in the end; ``/health`` p95 <= 100 ms; peak memory <= 1.5 GB.
2. **Queries**: a synthetic library of ``--tracks`` (100,000) tracks (the builder of
   ``benchmarks/library.py``; ``--library FILE`` keeps it for the next run) behind ``moodscope
   serve``; each query of a mix (track pages, mood lists, text search, track detail, similar,
   playlist, journey, clusters, stats) is asked ``--repeat`` times after one warm-up; reported
   p50/p95 per query and over all. Reference in the same run: the same library calls in this
   process (for ``/tracks``: the page and its total). Goal: p95 <= 150 ms. The text search is also
   compared in process with the table scan it replaced (schema 8's full-text index against
   ``text_index = False``, alternating, the same results checked), on a selective and an unselective
   text; a ``--library`` of an older schema is migrated on open (timed). ``/map`` (every track's
   point: megabytes of JSON at this size) is reported apart: the first request (which builds it),
   then cached, gzip and plain, and a revalidation (304). ``--browser``: the page in headless
   Chromium, from navigation to every track drawn, and one repaint of every dot.

    python benchmarks/serve.py                          # both parts, 20 uploads, 100,000 tracks
    python benchmarks/serve.py --skip-queries --workers 2 --json docs/benchmarks/serve.json
    python benchmarks/serve.py --skip-uploads --library /tmp/lib100k.db --browser   # queries, map, page
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from common import save_report
from library import build_synthetic_library

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "4q" / "MER_audio_taffc_dataset"
HOST = "127.0.0.1"  # loopback only
HEALTH_GOAL_MS = 100.0
MEMORY_GOAL_MB = 1536.0
QUERY_GOAL_MS = 150.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict | None = None,
    timeout=600,
):
    """(status, headers, body) of one request to the server on loopback."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def multipart(name: str, data: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n").encode()  # fmt: skip
    return (
        head + data + f"\r\n--{boundary}--\r\n".encode(),
        f"multipart/form-data; boundary={boundary}",
    )


def tree_rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and its descendants (MiB), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        stack.extend(children.get(p, []))
        try:
            with open(f"/proc/{p}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


class Server:
    """``moodscope serve`` as a subprocess on a free loopback port."""

    def __init__(self, *args: str, log: Path):
        self.port = free_port()
        cmd = [
            sys.executable,
            "-m",
            "moodscope",
            "serve",
            "--host",
            HOST,
            "--port",
            str(self.port),
            *args,
        ]
        self.log = open(log, "w")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 300
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"moodscope serve exited: {log.read_text()}")
            try:
                if request(self.port, "GET", "/api/v1/health", timeout=5)[0] == 200:
                    return
            except OSError:
                time.sleep(0.3)
        raise SystemExit("moodscope serve did not start in 300 s")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


# ---- 1. uploads ------------------------------------------------------------------------------------


def bench_uploads(clips: list[Path], model: str, workers: int | None, workdir: Path) -> dict:
    from moodscope.analysis import analyze, load_model

    loaded = load_model(model)
    analyze(clips[0], model=loaded)  # warm-up
    start = time.perf_counter()
    analyze(clips[1], model=loaded)
    reference = time.perf_counter() - start

    db = workdir / "uploads.db"
    args = ["--db", str(db), "--model", model] + (["--workers", str(workers)] if workers else [])
    server = Server(*args, log=workdir / "serve-uploads.log")
    try:
        port = server.port
        health = request(port, "GET", "/api/v1/health")
        pool = json.loads(health[2])["analysis"]
        idle_mb = tree_rss_mb(server.process.pid)

        stop = threading.Event()
        health_ms: list[float] = []
        memory_mb: list[float] = []

        health_failures: list[str] = []

        def watch_health() -> None:
            while not stop.is_set():
                t = time.perf_counter()
                try:
                    status = request(port, "GET", "/api/v1/health", timeout=120)[0]
                    if status != 200:
                        health_failures.append(f"status {status}")
                except OSError as exc:
                    health_failures.append(f"{type(exc).__name__}: {exc}")
                health_ms.append(1000 * (time.perf_counter() - t))
                time.sleep(0.05)

        def watch_memory() -> None:
            while not stop.is_set():
                memory_mb.append(tree_rss_mb(server.process.pid))
                time.sleep(0.05)

        results: list[dict] = [{} for _ in clips]
        go = threading.Barrier(len(clips))

        def upload(i: int, clip: Path) -> None:
            body, ctype = multipart(clip.name, clip.read_bytes())
            go.wait()
            first = time.perf_counter()
            rejected, status, answer = 0, None, b""
            try:
                for _ in range(100):
                    status, headers, answer = request(port, "POST", "/api/v1/analyze", body, {"Content-Type": ctype})
                    if status != 503:
                        break
                    rejected += 1
                    retry = {k.lower(): v for k, v in headers.items()}.get("retry-after")
                    assert retry is not None and int(retry) >= 1, "503 without Retry-After"
                    time.sleep(int(retry))
            except OSError as exc:
                status = f"{type(exc).__name__}: {exc}"
            segments = len(json.loads(answer)["segments"]) if status == 200 else 0
            results[i] = {"status": status, "seconds": time.perf_counter() - first, "rejected": rejected,
                          "segments": segments}  # fmt: skip

        watchers = [
            threading.Thread(target=watch_health),
            threading.Thread(target=watch_memory),
        ]
        for t in watchers:
            t.start()
        clients = [threading.Thread(target=upload, args=(i, c)) for i, c in enumerate(clips)]
        started = time.perf_counter()
        for t in clients:
            t.start()
        for t in clients:
            t.join()
        wall = time.perf_counter() - started
        stop.set()
        for t in watchers:
            t.join()
        leftover = json.loads(request(port, "GET", "/api/v1/health")[2])["analysis"]
    finally:
        server.stop()

    latencies = [r["seconds"] for r in results]
    return {
        "model": model,
        "workers": pool["workers"],
        "capacity": pool["capacity"],
        "uploads": len(clips),
        "succeeded": sum(r["status"] == 200 for r in results),
        "statuses": sorted({str(r["status"]) for r in results}),
        "got_503_first": sum(r["rejected"] > 0 for r in results),
        "retries_503": sum(r["rejected"] for r in results),
        "segments": sum(r["segments"] for r in results),
        "wall_s": round(wall, 2),
        "latency_p50_s": round(percentile(latencies, 50), 2),
        "latency_p95_s": round(percentile(latencies, 95), 2),
        "latency_max_s": round(max(latencies), 2),
        "reference_one_analysis_s": round(reference, 2),
        "health_requests": len(health_ms),
        "health_p50_ms": round(percentile(health_ms, 50), 1),
        "health_p95_ms": round(percentile(health_ms, 95), 1),
        "health_max_ms": round(max(health_ms), 1),
        "health_failures": health_failures[:5],
        "memory_idle_mb": round(idle_mb, 1),
        "memory_peak_mb": round(max(memory_mb), 1),
        "slots_after": leftover["admitted"],
    }


# ---- 2. library queries ------------------------------------------------------------------------------


def queries(n: int) -> dict:
    """name: (HTTP path, the same call in process), on a library of ``n`` tracks."""
    tid = n // 2 + 1
    return {
        # a page of tracks and the total, as GET /tracks computes them
        "tracks page": (
            "/tracks?limit=50&offset=5000",
            lambda lib: lib.track_page(limit=50, offset=5000),
        ),
        "tracks calm conf>=0.6": (
            "/tracks?mood=calm&min_confidence=0.6&limit=100",
            lambda lib: lib.track_page("calm", min_confidence=0.6, limit=100),
        ),
        "tracks near 0.7,0.3": (
            "/tracks?mood=0.7,0.3&limit=50",
            lambda lib: lib.track_page("0.7,0.3", limit=50),
        ),
        "tracks text search": (
            "/tracks?q=Artist%20123&limit=50",
            lambda lib: lib.track_page(text="Artist 123", limit=50),
        ),
        "track detail": (f"/tracks/{tid}", lambda lib: lib.analysis(tid)),
        "similar": (f"/similar/{tid}?n=10", lambda lib: lib.similar(tid, n=10)),
        "playlist happy 60 min": (
            "/playlist?mood=happy&minutes=60",
            lambda lib: lib.playlist("happy", minutes=60),
        ),
        "playlist 0.2,0.4 n=20": (
            "/playlist?mood=0.2,0.4&n=20",
            lambda lib: lib.playlist("0.2,0.4", n=20),
        ),
        "journey sad->happy": (
            "/journey?from=sad&to=happy&n=12",
            lambda lib: lib.journey("sad", "happy", n=12),
        ),
        "journey m3u": (
            "/journey?from=tense&to=calm&n=12&format=m3u",
            lambda lib: lib.journey("tense", "calm"),
        ),
        "clusters k=6": ("/clusters?k=6", lambda lib: lib.clusters(6)),
        "stats": ("/stats", lambda lib: lib.stats()),
    }


TEXT_SEARCHES = {
    "Artist 123": "an artist's 20 tracks and those of 10 more artists (Artist 1230..1239): 220",
    "Track 99999": "one track",
    "mp3": "every track (the index narrows nothing)",
}
"""Texts of the text-search comparison: the full-text index (schema 8) against the scan it replaced."""


def bench_text_search(lib, repeat: int) -> dict:
    """The text filter as ``GET /tracks?q=`` asks it (a page of 50 and the total), in process, through the
    library's full-text index and by the scan of the table it replaced (``text_index = False``), alternating."""
    out = {}
    for text, what in TEXT_SEARCHES.items():
        times: dict[bool, list[float]] = {True: [], False: []}
        results = {}
        for indexed in (True, False):  # warm-up, and the two must agree
            lib.text_index = indexed
            page, total = lib.track_page(text=text, limit=50)
            results[indexed] = ([t.id for t in page], total)
        assert results[True] == results[False], text
        for _ in range(repeat):
            for indexed in (True, False):
                lib.text_index = indexed
                t = time.perf_counter()
                lib.track_page(text=text, limit=50)
                times[indexed].append(1000 * (time.perf_counter() - t))
        lib.text_index = True
        index_p50, scan_p50 = percentile(times[True], 50), percentile(times[False], 50)
        out[text] = {
            "matches": results[True][1],
            "what": what,
            "index_p50_ms": round(index_p50, 2),
            "index_p95_ms": round(percentile(times[True], 95), 2),
            "scan_p50_ms": round(scan_p50, 2),
            "scan_p95_ms": round(percentile(times[False], 95), 2),
            "speedup_p50": round(scan_p50 / index_p50, 1),
        }
    return out


def bench_queries(n: int, repeat: int, workdir: Path, library: Path | None = None, browser: bool = False) -> dict:
    from moodscope.library import MoodLibrary
    from moodscope.library.db import SCHEMA_VERSION

    db = library or workdir / "queries.db"
    start = time.perf_counter()
    if not db.exists():
        build_synthetic_library(db, n)
    built = time.perf_counter() - start
    with contextlib.closing(sqlite3.connect(db)) as conn:
        schema = conn.execute("PRAGMA user_version").fetchone()[0]
    start = time.perf_counter()
    with MoodLibrary(db, create=False) as lib:  # migrates a library of an older schema
        opened = time.perf_counter() - start
        if len(lib) != n:
            raise SystemExit(f"{db} holds {len(lib)} tracks, not --tracks {n}: give another --library")
        text_search = bench_text_search(lib, repeat)
    server = Server(
        "--db",
        str(db),
        "--model",
        "fast",
        "--workers",
        "1",
        log=workdir / "serve-queries.log",
    )
    try:
        out: dict = {
            "tracks": n,
            "build_s": round(built, 1),
            "repeat": repeat,
            "schema": schema,
            "queries": {},
            "text_search_index_vs_scan": text_search,
        }
        if schema < SCHEMA_VERSION:
            out[f"migrated_from_schema_{schema}_s"] = round(opened, 2)
        out["map"] = bench_map(server.port)  # first: the first request builds the map
        every: list[float] = []
        with MoodLibrary(db, create=False) as lib:
            for name, (path, call) in queries(n).items():
                call(lib)
                reference = []
                for _ in range(repeat):
                    t = time.perf_counter()
                    call(lib)
                    reference.append(1000 * (time.perf_counter() - t))
                path = "/api/v1" + path
                status, _, body = request(server.port, "GET", path)  # warm-up
                assert status == 200, (path, status, body[:300])
                times = []
                for _ in range(repeat):
                    t = time.perf_counter()
                    status, _, body = request(server.port, "GET", path)
                    times.append(1000 * (time.perf_counter() - t))
                    assert status == 200, (path, status)
                every.extend(times)
                out["queries"][name] = {
                    "path": path,
                    "p50_ms": round(percentile(times, 50), 1),
                    "p95_ms": round(percentile(times, 95), 1),
                    "in_process_p50_ms": round(percentile(reference, 50), 1),
                    "in_process_p95_ms": round(percentile(reference, 95), 1),
                    "bytes": len(body),
                }
        out["all_p50_ms"] = round(percentile(every, 50), 1)
        out["all_p95_ms"] = round(percentile(every, 95), 1)
        out["cold_start_note"] = (
            "after one warm-up request per query (the profile matrix is loaded once per connection)"
        )
        if browser:
            out["page"] = bench_page(server.port)
    finally:
        server.stop()
    return out


def bench_map(port: int) -> dict:
    """GET /map: the first request (built and encoded), then from the cache, plain and gzip; a revalidation."""
    timed = {}
    for name, headers in [("first_gzip", {"Accept-Encoding": "gzip"}), ("cached_gzip", {"Accept-Encoding": "gzip"}),
                          ("cached_plain", {})]:  # fmt: skip
        t = time.perf_counter()
        status, got, body = request(port, "GET", "/api/v1/map", headers=headers)
        timed[name] = (status, round(1000 * (time.perf_counter() - t), 1), len(body), got)
    etag = {k.lower(): v for k, v in timed["cached_gzip"][3].items()}.get("etag")
    t = time.perf_counter()
    revalidate = {"Accept-Encoding": "gzip", "If-None-Match": etag or '"none"'}
    status_304 = request(port, "GET", "/api/v1/map", headers=revalidate)[0]
    return {
        "status": timed["first_gzip"][0],
        "first_ms": timed["first_gzip"][1],
        "cached_gzip_ms": timed["cached_gzip"][1],
        "cached_plain_ms": timed["cached_plain"][1],
        "gzip_bytes": timed["cached_gzip"][2],
        "bytes": timed["cached_plain"][2],
        "revalidate_status": status_304,
        "revalidate_ms": round(1000 * (time.perf_counter() - t), 1),
    }


def bench_page(port: int) -> dict:
    """The page in headless Chromium (Playwright, /usr/bin/chromium): from navigation to every track on
    the map, how it draws them, and one repaint of every dot (zoom, pan and filters repaint)."""
    from playwright.sync_api import sync_playwright

    args = ["--no-sandbox", "--headless", "--disable-gpu", "--no-first-run"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=args)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.set_default_timeout(600_000)
            t = time.perf_counter()
            page.goto(f"http://{HOST}:{port}/")
            page.wait_for_selector("body[data-ready=true]", state="attached")
            ready = time.perf_counter() - t
            out = {"ready_s": round(ready, 2), "mode": page.locator("#map").get_attribute("data-mode"),
                   "count": page.locator("#map-count").inner_text()}  # fmt: skip
            repaint = page.evaluate(
                """() => { const m = window.moodscope && window.moodscope.map;
                    if (!m || m.mode !== "canvas") return null;
                    const times = []; for (let k = 0; k < 5; k++) { const t = performance.now(); m.draw();
                    times.push(performance.now() - t); } return times.sort((a, b) => a - b)[2]; }"""
            )
            out["repaint_ms"] = None if repaint is None else round(repaint, 1)
        finally:
            browser.close()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--uploads",
        type=int,
        default=20,
        help="simultaneous uploads (default: %(default)s)",
    )
    parser.add_argument(
        "--model",
        default="accurate",
        help="model of the upload server (default: %(default)s)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="--workers of the upload server (default: its own)",
    )
    parser.add_argument("--tracks", type=int, default=100_000, help="tracks of the query library")
    parser.add_argument(
        "--library",
        type=Path,
        help="keep the synthetic query library in this file (built when it does not exist) and reuse it",
    )
    parser.add_argument(
        "--browser",
        action="store_true",
        help="also time the page with every track in headless Chromium (/usr/bin/chromium)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=20,
        help="timed requests per query (default: %(default)s)",
    )
    parser.add_argument("--skip-uploads", action="store_true")
    parser.add_argument("--skip-queries", action="store_true")
    parser.add_argument(
        "--data",
        type=Path,
        default=DATA,
        help="the 4Q dataset folder (real 30-s clips)",
    )
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = parser.parse_args(argv)
    report: dict = {"load_average": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="moodscope-serve-bench-") as tmp:
        if not args.skip_uploads:
            clips = sorted(args.data.glob("Q?/*.mp3"))
            if not clips:
                raise SystemExit(f"no 4Q clips under {args.data}: give --data or --skip-uploads")
            step = max(1, len(clips) // args.uploads)
            picked = clips[::step][: args.uploads]
            report["uploads"] = u = bench_uploads(picked, args.model, args.workers, Path(tmp))
            print(
                f"{u['uploads']} simultaneous uploads ({u['model']} model, {u['workers']} worker(s), capacity "
                f"{u['capacity']}): {u['succeeded']} succeeded (statuses {u['statuses']}; {u['got_503_first']} got "
                f"503 + Retry-After first, {u['retries_503']} retries) in {u['wall_s']} s\n"
                f"  latency p50 {u['latency_p50_s']} s, p95 {u['latency_p95_s']} s, max {u['latency_max_s']} s "
                f"(one analysis in process: {u['reference_one_analysis_s']} s)\n"
                f"  /health during the load: p50 {u['health_p50_ms']} ms, p95 {u['health_p95_ms']} ms, max "
                f"{u['health_max_ms']} ms over {u['health_requests']} requests (goal p95 <= {HEALTH_GOAL_MS:g} ms)\n"
                f"  server memory: {u['memory_idle_mb']} MB idle, peak {u['memory_peak_mb']} MB "
                f"(goal <= {MEMORY_GOAL_MB:g} MB)",
                flush=True,
            )
        if not args.skip_queries:
            report["queries"] = q = bench_queries(args.tracks, args.repeat, Path(tmp), args.library, args.browser)
            print(f"library queries over HTTP on {q['tracks']} tracks (built in {q['build_s']} s), "
                  f"{q['repeat']} requests each after a warm-up:")  # fmt: skip
            for name, f in q["queries"].items():
                print(f"  {name:<24} p50 {f['p50_ms']:>6.1f} ms  p95 {f['p95_ms']:>6.1f} ms   "
                      f"(in process {f['in_process_p50_ms']:>6.1f} ms)")  # fmt: skip
            print(f"  all queries: p50 {q['all_p50_ms']} ms, p95 {q['all_p95_ms']} ms (goal <= {QUERY_GOAL_MS:g} ms)")
            print("  text search in process, full-text index against the table scan it replaced (page of 50 + total):")
            for text, f in q["text_search_index_vs_scan"].items():
                print(f"    {text!r:<14} {f['matches']:>6} matches: index p50 {f['index_p50_ms']:>7.2f} ms, scan p50 "
                      f"{f['scan_p50_ms']:>7.2f} ms: {f['speedup_p50']}x")  # fmt: skip
            m = q["map"]
            print(f"  /map of every track: {m['bytes'] / 1e6:.1f} MB ({m['gzip_bytes'] / 1e6:.2f} MB gzip); first "
                  f"request {m['first_ms']} ms, then {m['cached_gzip_ms']} ms gzip / {m['cached_plain_ms']} ms plain, "
                  f"{m['revalidate_status']} on revalidation in {m['revalidate_ms']} ms")  # fmt: skip
            if "page" in q:
                pg = q["page"]
                print(f"  the page: every track drawn ({pg['mode']}, {pg['count']}) {pg['ready_s']} s after navigation;"
                      f" a repaint of every dot {pg['repaint_ms']} ms")  # fmt: skip
    report["load_average_after"] = os.getloadavg()[0]
    if args.json:
        save_report(args.json, report, argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
