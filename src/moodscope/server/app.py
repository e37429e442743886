"""The FastAPI application: the REST API under ``/api/v1``, the page at ``/``, offline docs at ``/docs``.

Every library endpoint calls what the ``moodscope library`` command calls
(:mod:`moodscope.library.playlists`, :class:`~moodscope.library.MoodLibrary`), so both give the same
results for the same parameters; ``?format=m3u`` (or ``xspf``, ``csv``) returns a playlist as the CLI writes it.
Uploads are analysed by :func:`moodscope.analysis.analyze` in a bounded pool (:mod:`.pool`).
No endpoint takes a file-system path except ``POST /scan``, which must resolve inside ``--root``
folders (:func:`.jobs.resolve_scan_folder`); audio is streamed only for indexed tracks, by id.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.requests import ClientDisconnect

from moodscope.constants import QUADRANT_CENTRES, QUADRANT_COLOURS, QUADRANT_MOODS, SEGMENT_SECONDS, VA_RANGE
from moodscope.server import schemas
from moodscope.server.config import ServerConfig
from moodscope.server.errors import ApiError, install_error_handlers
from moodscope.server.jobs import ScanJobs, resolve_scan_folder
from moodscope.server.mapcache import MapCache, accepts_gzip, etag_matches
from moodscope.server.pool import AnalysisPool
from moodscope.server.schemas import ErrorBody
from moodscope.server.uploads import analyse_upload, receive_upload

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
API = "/api/v1"

AUDIO_MEDIA_TYPES = {
    ".mp3": "audio/mpeg",
    ".wav": "audio/wav",
    ".flac": "audio/flac",
    ".ogg": "audio/ogg",
    ".oga": "audio/ogg",
    ".opus": "audio/ogg",
    ".m4a": "audio/mp4",
    ".aac": "audio/aac",
    ".mp4": "audio/mp4",
    ".aiff": "audio/aiff",
    ".aif": "audio/aiff",
}
"""Content type of each audio extension moodscope indexes (:data:`moodscope.constants.AUDIO_EXTENSIONS`)."""

PLAYLIST_MEDIA_TYPES = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "m3u": "audio/x-mpegurl; charset=utf-8",
    "xspf": "application/xspf+xml; charset=utf-8",
}
PAGE_POLICY = (
    "default-src 'self'; img-src 'self' data:; media-src 'self' blob:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
"""Content-Security-Policy of the page: everything from this server, nothing from anywhere else
(``blob:`` media: the page plays back the file a user just analysed, from the browser's memory)."""

MAX_TRACK_ID = 2**63 - 1
MAX_N = 1000


def _errors(*statuses: int) -> dict:
    return {status: {"model": ErrorBody} for status in (*statuses, 422)}


# ---- state --------------------------------------------------------------------------------------


class LibraryPool:
    """A few open connections to the library, lent to one request thread at a time."""

    def __init__(self, db: Path, size: int):
        from moodscope.library import MoodLibrary

        self._free: queue.Queue = queue.Queue()
        self._all = [MoodLibrary(db, create=True) for _ in range(max(1, size))]
        for lib in self._all:
            self._free.put(lib)

    @contextlib.contextmanager
    def borrow(self) -> Iterator:
        lib = self._free.get()
        try:
            yield lib
        finally:
            self._free.put(lib)

    def close(self) -> None:
        for lib in self._all:
            lib.close()


@dataclass
class ServerState:
    config: ServerConfig
    db: Path
    model_name: str
    libraries: LibraryPool
    pool: AnalysisPool
    jobs: ScanJobs
    uploads: Path
    maps: MapCache


def get_state(request: Request) -> ServerState:
    return request.app.state.server


State = Annotated[ServerState, Depends(get_state)]


def _track(lib, track_id: int):
    from moodscope.errors import LibraryError

    try:
        return lib.track(track_id)
    except LibraryError as exc:
        raise ApiError(404, f"no track with id {track_id} in the library") from exc


def _playlist_response(playlist, fmt: str, filename: str):
    if fmt == "json":
        return playlist.to_dict()
    text = {"m3u": playlist.m3u, "xspf": playlist.xspf, "csv": playlist.csv}[fmt]()
    return Response(
        text,
        media_type=PLAYLIST_MEDIA_TYPES[fmt],
        headers={"Content-Disposition": f'attachment; filename="{filename}.{fmt}"'},
    )


PLAYLIST_RESPONSES = {
    200: {
        "description": "the playlist (JSON as `--format json` prints it, M3U, XSPF or CSV as the CLI writes them)",
        "content": {
            "audio/x-mpegurl": {"schema": {"type": "string"}},
            "application/xspf+xml": {"schema": {"type": "string"}},
            "text/csv": {"schema": {"type": "string"}},
        },
    },
    **_errors(400),
}

Fmt = Annotated[Literal["json", "csv", "m3u", "xspf"], Query(description="json (default), m3u, xspf or csv")]
MoodText = Annotated[str, Query(min_length=1, max_length=100, description="a mood word, Q1..Q4 or a v,a point")]
MinConfidence = Annotated[float, Query(ge=0.0, le=1.0, allow_inf_nan=False, description="at least this confident")]
TrackId = Annotated[int, PathParam(ge=1, le=MAX_TRACK_ID, description="track id")]
IncludeUncertain = Annotated[
    bool, Query(description="also use uncertain tracks (mostly silence, noise or speech; left out by default)")
]


# ---- routes ----------------------------------------------------------------------------------------


class _Router(APIRouter):
    """Responses carry what the library returned: optional fields it left out are not added as nulls."""

    def add_api_route(self, path: str, endpoint, **kwargs) -> None:
        kwargs["response_model_exclude_unset"] = True
        super().add_api_route(path, endpoint, **kwargs)


router = _Router(prefix=API)


@router.get("/health", response_model=schemas.HealthOut, summary="server status and the page's configuration")
async def health(state: State):
    config = state.config
    return {
        "status": "ok",
        "version": _version(),
        "library": str(state.db),
        "va_range": list(VA_RANGE),
        "segment_seconds": SEGMENT_SECONDS,
        "quadrants": {
            q: {"mood": QUADRANT_MOODS[q], "colour": QUADRANT_COLOURS[q], "centre": list(QUADRANT_CENTRES[q])}
            for q in QUADRANT_MOODS
        },
        "analysis": state.pool.status() | {"max_upload_bytes": config.max_upload_bytes, "model": state.model_name},
        "scan": {"enabled": bool(config.roots), "roots": [str(r) for r in config.roots]},
    }


def _version() -> str:
    from moodscope.version import __version__

    return __version__


@router.post(
    "/analyze",
    response_model=schemas.AnalysisOut,
    summary="analyse an uploaded audio file (the JSON of `moodscope analyze --format json`)",
    responses={**_errors(400, 413, 415, 503)},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {"file": {"type": "string", "format": "binary"}},
                    }
                }
            },
        }
    },
)
async def analyze_upload(
    request: Request,
    state: State,
    model: Annotated[
        Literal["fast", "accurate"] | None, Query(description="a shipped model (default: the server's --model)")
    ] = None,
):
    slot = state.pool.reserve()
    upload = None
    try:
        upload = await receive_upload(request, state.uploads, state.config.max_upload_bytes)
        spec = model or state.config.model
        return await state.pool.run(slot, _analyse, upload, spec, cancelled=request.is_disconnected)
    except ClientDisconnect as exc:
        raise ApiError(400, "the client disconnected during the upload") from exc
    finally:
        slot_was_used = upload is not None
        if not slot_was_used:
            slot.release()
        if upload is not None:
            upload.remove()


def _analyse(upload, spec):
    from moodscope.analysis.pretrained import load_model

    return analyse_upload(upload, load_model(spec))


@router.get("/tracks", response_model=schemas.TrackPage, responses=_errors(400), summary="tracks, filtered and paged")
def list_tracks(
    state: State,
    mood: Annotated[str | None, Query(max_length=100, description="a mood word, Q1..Q4 or a v,a point")] = None,
    min_confidence: MinConfidence = 0.0,
    q: Annotated[str | None, Query(max_length=200, description="text in the title, artist or path")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_N)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_TRACK_ID)] = 0,
):
    from moodscope.library.queries import parse_mood

    target = parse_mood(mood) if mood else None
    with state.libraries.borrow() as lib:
        tracks, total = lib.track_page(target, min_confidence=min_confidence, limit=limit, offset=offset, text=q)
    return {"total": total, "offset": offset, "limit": limit, "tracks": [t.to_dict() for t in tracks]}


@router.get("/tracks/{track_id}", response_model=schemas.TrackDetail, responses=_errors(404), summary="one track")
def track_detail(state: State, track_id: TrackId):
    with state.libraries.borrow() as lib:
        track = _track(lib, track_id)
        analysis = lib.analysis(track).to_dict()
    return {"track": track.to_dict(), "summary": analysis["summary"], "timeline": analysis["segments"]}


@router.get(
    "/tracks/{track_id}/audio",
    response_class=StreamingResponse,
    summary="the track's audio file (one HTTP byte range at a time: RFC 9110)",
    responses={
        200: {"content": {t: {} for t in sorted(set(AUDIO_MEDIA_TYPES.values()))}, "description": "the file"},
        206: {"description": "the requested byte range"},
        **_errors(400, 404, 416),
    },
)
def track_audio(
    state: State,
    track_id: TrackId,
    range_: Annotated[str | None, Header(alias="range", max_length=1000)] = None,
    if_range: Annotated[str | None, Header(alias="if-range", max_length=200)] = None,
):
    from moodscope.server.ranges import RangeError, file_validators, if_range_matches, parse_range, read_file_bytes

    with state.libraries.borrow() as lib:
        track = _track(lib, track_id)
    path = Path(track.path)
    try:
        stat = path.stat()
    except OSError as exc:
        raise ApiError(404, f"the file of track {track_id} is gone ({track.path}); rescan its folder") from exc
    validators = file_validators(stat)
    wanted = None
    if range_ is not None and if_range_matches(if_range, validators):
        try:
            wanted = parse_range(range_, stat.st_size)
        except RangeError as exc:
            headers = {"Content-Range": f"bytes */{stat.st_size}"} if exc.status == 416 else None
            raise ApiError(exc.status, str(exc), headers=headers) from exc
    first, length = (wanted.first, wanted.length) if wanted else (0, stat.st_size)
    headers = {"accept-ranges": "bytes", "content-length": str(length), **validators}
    if wanted:
        headers["content-range"] = wanted.content_range
    return StreamingResponse(
        read_file_bytes(path, first, length),
        status_code=206 if wanted else 200,
        media_type=AUDIO_MEDIA_TYPES.get(path.suffix.lower(), "application/octet-stream"),
        headers=headers,
    )


@router.get(
    "/map",
    response_model=schemas.MapOut,
    responses={304: {"description": "the map has not changed since the copy named by If-None-Match"}},
    summary="every track on the valence/arousal plane (compact columns; gzip and ETag)",
)
def track_map(state: State, request: Request):
    with state.libraries.borrow() as lib:
        encoded = state.maps.get(lib)
    gz = accepts_gzip(request.headers.get("accept-encoding"))
    etag = encoded.gzip_etag if gz else encoded.etag
    headers = {"ETag": etag, "Vary": "Accept-Encoding", "Cache-Control": "no-cache"}
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    if gz:
        headers["Content-Encoding"] = "gzip"
    return Response(encoded.gzip if gz else encoded.json, media_type="application/json", headers=headers)


@router.get(
    "/playlist",
    response_model=schemas.PlaylistOut,
    responses=PLAYLIST_RESPONSES,
    summary="a playlist of one mood (`moodscope library playlist`)",
)
def playlist(
    state: State,
    mood: MoodText,
    minutes: Annotated[float | None, Query(gt=0, le=100_000, allow_inf_nan=False)] = None,
    n: Annotated[int | None, Query(ge=1, le=MAX_N)] = None,
    min_confidence: MinConfidence = 0.0,
    format: Fmt = "json",
):
    from moodscope.library.playlists import mood_playlist

    if minutes is not None and n is not None:
        raise ApiError(400, "give minutes or n, not both")
    with state.libraries.borrow() as lib:
        found = mood_playlist(lib, mood, minutes=minutes, n=n, min_confidence=min_confidence)
    return _playlist_response(found, format, "moodscope-playlist")


@router.get(
    "/journey",
    response_model=schemas.PlaylistOut,
    responses=PLAYLIST_RESPONSES,
    summary="a playlist moving step by step from one mood to another (`moodscope library journey`)",
)
def journey(
    state: State,
    start: Annotated[str, Query(alias="from", min_length=1, max_length=100, description="the starting mood")],
    to: Annotated[str, Query(min_length=1, max_length=100, description="the target mood")],
    n: Annotated[int, Query(ge=1, le=MAX_N)] = 12,
    format: Fmt = "json",
):
    from moodscope.library.playlists import journey_playlist

    with state.libraries.borrow() as lib:
        found = journey_playlist(lib, start, to, n=n)
    return _playlist_response(found, format, "moodscope-journey")


@router.get(
    "/similar/{track_id}",
    response_model=schemas.PlaylistOut,
    responses={**PLAYLIST_RESPONSES, **_errors(400, 404)},
    summary="tracks with the most similar emotion profile (`moodscope library similar`)",
)
def similar(
    state: State,
    track_id: TrackId,
    n: Annotated[int, Query(ge=1, le=MAX_N)] = 10,
    format: Fmt = "json",
    include_uncertain: IncludeUncertain = False,
):
    from moodscope.library.playlists import similar_playlist

    with state.libraries.borrow() as lib:
        found = similar_playlist(lib, _track(lib, track_id), n=n, include_uncertain=include_uncertain)
    return _playlist_response(found, format, "moodscope-similar")


K = Annotated[int, Query(ge=1, le=50, description="number of clusters")]


@router.get(
    "/clusters",
    response_model=list[schemas.ClusterOut],
    responses=_errors(400),
    summary="groups of tracks by emotion profile (`moodscope library clusters`)",
)
def clusters(
    state: State,
    k: K = 6,
    examples: Annotated[int, Query(ge=0, le=50)] = 3,
    include_uncertain: IncludeUncertain = False,
):
    with state.libraries.borrow() as lib:
        return [c.to_dict() for c in lib.clusters(k, examples=examples, include_uncertain=include_uncertain)]


@router.get(
    "/clusters/{index}",
    response_model=schemas.PlaylistOut,
    responses={**PLAYLIST_RESPONSES, **_errors(400, 404)},
    summary="the tracks of one cluster (`moodscope library clusters --cluster I`)",
)
def cluster_tracks(
    state: State,
    index: Annotated[int, PathParam(ge=1, le=50, description="1 = the largest cluster")],
    k: K = 6,
    format: Fmt = "json",
    include_uncertain: IncludeUncertain = False,
):
    from moodscope.errors import LibraryError
    from moodscope.library.playlists import cluster_playlist

    with state.libraries.borrow() as lib:
        try:
            found = cluster_playlist(lib, k, index, include_uncertain=include_uncertain)
        except LibraryError as exc:
            raise ApiError(404, str(exc)) from exc
    return _playlist_response(found, format, f"moodscope-cluster-{index}")


@router.get("/stats", response_model=schemas.StatsOut, summary="what the library holds (`moodscope library stats`)")
def stats(state: State, failures: Annotated[bool, Query(description="also list the files that failed")] = False):
    with state.libraries.borrow() as lib:
        out = lib.stats()
        if failures:
            out["failed_files"] = lib.failures()
    return out


@router.post(
    "/scan",
    status_code=202,
    response_model=schemas.JobOut,
    responses=_errors(400, 403, 503),
    summary="scan a folder inside the server's --root folders into the library",
)
def scan(state: State, body: schemas.ScanRequest):
    folder = resolve_scan_folder(body.folder, state.config.roots)
    job = state.jobs.submit(folder, force=body.force, retry_failed=body.retry_failed, prune=body.prune)
    return job.to_dict()


@router.get("/jobs/{job_id}", response_model=schemas.JobOut, responses=_errors(404), summary="a scan job's progress")
def job(state: State, job_id: Annotated[int, PathParam(ge=1, le=MAX_TRACK_ID)]):
    found = state.jobs.get(job_id)
    if found is None:
        raise ApiError(404, f"no scan job {job_id} (jobs are kept in memory until the server stops)")
    return found.to_dict()


# ---- the application ---------------------------------------------------------------------------


def create_app(config: ServerConfig | None = None) -> FastAPI:
    """The application for ``config``. The model is loaded and the library opened here, so a bad
    ``--model`` or ``--db`` is an error (:class:`~moodscope.errors.MoodscopeError`) before serving."""
    from fastapi.middleware.cors import CORSMiddleware
    from fastapi_offline import FastAPIOffline

    from moodscope.analysis.pretrained import load_model
    from moodscope.library import MoodLibrary

    config = config or ServerConfig()
    model_name = load_model(config.model).name
    with MoodLibrary(config.db, create=True) as lib:  # creates or migrates it; LibraryError if unusable
        db = lib.path

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        assert config.queue is not None  # ServerConfig.__post_init__ sets it
        uploads = Path(tempfile.mkdtemp(prefix="moodscope-uploads-"))
        state = ServerState(
            config=config,
            db=db,
            model_name=model_name,
            libraries=LibraryPool(db, config.connections),
            pool=AnalysisPool(config.workers, config.queue),
            jobs=ScanJobs(db, model=config.model, workers=config.workers),
            uploads=uploads,
            maps=MapCache(),
        )
        app.state.server = state
        try:
            yield
        finally:
            state.pool.shutdown()
            state.jobs.shutdown()
            state.libraries.close()
            shutil.rmtree(uploads, ignore_errors=True)

    app = FastAPIOffline(
        title="moodscope",
        version=_version(),
        description="Music emotion recognition: analyse audio, browse a mood library, build journeys.",
        lifespan=lifespan,
        redoc_url=None,
        static_url="/static-docs",
    )
    install_error_handlers(app)
    if config.cors_origin:
        app.add_middleware(
            CORSMiddleware, allow_origins=[config.cors_origin], allow_methods=["GET", "POST"], allow_headers=["*"]
        )
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(STATIC / "index.html", headers={"Content-Security-Policy": PAGE_POLICY})

    return app
