"""``moodscope serve``: the web app and HTTP API on this machine (needs the ``web`` extra)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from moodscope.cli.library import DB_HELP
from moodscope.cli.options import add_model_option


def register(sub: argparse._SubParsersAction) -> None:
    from moodscope.server.config import MAX_UPLOAD_MB, default_workers

    p = sub.add_parser(
        "serve",
        help="the web app and HTTP API: analyse uploads, browse the mood library, build journeys",
        description="Serve a page (at /) and a REST API (under /api/v1, docs at /docs) over the mood library "
        "and the analysis. Binds to 127.0.0.1 by default: only this machine can connect. "
        "Needs the web extra: pip install 'moodscope[web]'.",
    )
    p.add_argument("--db", type=Path, default=None, metavar="PATH", help=DB_HELP)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    p.add_argument("--port", type=int, default=8000, help="port (default: %(default)s)")
    add_model_option(p)
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help=f"analyses run at once, also the processes of a scan (default: half the cores, here {default_workers()})",
    )
    p.add_argument("--queue", type=int, default=None, help="uploads that may wait for a worker (default: 4 per worker)")
    p.add_argument(
        "--root",
        dest="roots",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="a folder the API may scan (repeatable; none: scanning through the API is disabled)",
    )
    p.add_argument(
        "--max-upload-mb", type=float, default=MAX_UPLOAD_MB, help="largest upload accepted (default: %(default)s)"
    )
    p.add_argument("--cors-origin", metavar="URL", help="allow pages from this one origin to call the API (off)")
    p.set_defaults(func=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    from moodscope.errors import MoodscopeError

    try:
        import uvicorn

        from moodscope.server.app import create_app
    except ImportError as exc:
        raise MoodscopeError(
            f"moodscope serve needs the web extra ({exc.name} is missing): pip install 'moodscope[web]'"
        ) from exc
    from moodscope.library.db import default_library_path
    from moodscope.server.config import ServerConfig, default_workers

    if not 0 <= args.port <= 65535:
        raise MoodscopeError(f"--port must be between 0 and 65535 (got {args.port})")
    config = ServerConfig(
        db=args.db,
        model=args.model,
        workers=args.workers if args.workers is not None else default_workers(),
        queue=args.queue,
        roots=tuple(args.roots),
        max_upload_bytes=int(args.max_upload_mb * 2**20),
        cors_origin=args.cors_origin,
    )
    app = create_app(config)
    host = f"[{args.host}]" if ":" in args.host else args.host
    scanning = ", ".join(map(str, config.roots)) if config.roots else "disabled (no --root)"
    print(
        f"moodscope: serving the library {config.db or default_library_path()} on http://{host}:{args.port}/ "
        f"(API under /api/v1, docs at /docs); scans: {scanning}; Ctrl-C stops",
        file=sys.stderr,
        flush=True,
    )
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"moodscope: warning: listening on {args.host}: other machines can reach this server", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", timeout_graceful_shutdown=5)
    return 0
