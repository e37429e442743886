"""The shapes of the API's JSON, for the OpenAPI schema and response validation.

They describe what the library and the analysis already produce (``Track.to_dict``,
``Analysis.to_dict``, ``Cluster.to_dict``, ``MoodLibrary.stats``): objects allow extra fields, so
a field added there (provenance, tags) passes through without a change here.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from moodscope.constants import VA_RANGE

_SCALE = f"in [{VA_RANGE[0]:g}, {VA_RANGE[1]:g}] ({(VA_RANGE[0] + VA_RANGE[1]) / 2:g}: the quadrant boundary)"
VALENCE = (
    f"the model's probability that listeners rate the music positive, p(Q1) + p(Q4), {_SCALE}; for a model "
    "trained with `train --task va`, its regressed mean rating on that scale"
)
AROUSAL = (
    f"the model's probability that listeners rate the music high in arousal, p(Q1) + p(Q2), {_SCALE}; for a model "
    "trained with `train --task va`, its regressed mean rating on that scale"
)


class Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class ErrorBody(BaseModel):
    error: str = Field(description="short description of the error")
    detail: Any = Field(description="what went wrong and what to do; a list of field errors for 422")


class TrackOut(Open):
    id: int
    path: str
    title: str
    artist: str | None
    album: str | None
    duration: float = Field(description="seconds")
    quadrant: str
    mood: str
    confidence: float
    valence: float = Field(description=VALENCE)
    arousal: float = Field(description=AROUSAL)
    probabilities: dict[str, float]
    quadrant_share: dict[str, float]
    uncertain: bool = Field(False, description="mostly silence, noise or speech: mood 'uncertain', not in mood queries")
    ood_fraction: float = Field(0.0, description="share of the segments out of distribution")
    model: str
    score: float | None = Field(None, description="what the query ranked by (distance, confidence), when it ranked")


class PlaylistTrack(TrackOut):
    position: int


class PlaylistOut(Open):
    playlist: str = Field(description="the playlist's name, as the CLI prints it")
    tracks: list[PlaylistTrack]


class TrackPage(BaseModel):
    total: int = Field(description="tracks matching the filters")
    offset: int
    limit: int
    tracks: list[TrackOut]


class Segment(Open):
    start: float
    end: float
    quadrant: str
    mood: str
    probabilities: dict[str, float]
    valence: float = Field(description=VALENCE)
    arousal: float = Field(description=AROUSAL)
    ood: bool = Field(False, description="out of distribution (why: ood_reason)")
    ood_score: float | None = Field(None, description="embedding OOD score, > 1 flagged; null without one")
    ood_reason: str = Field("", description="silence, noise, clicks, speech-like, unlike training music; empty if not")


class Summary(Open):
    quadrant: str
    mood: str
    confidence: float
    probabilities: dict[str, float]
    valence: float = Field(description=VALENCE)
    arousal: float = Field(description=AROUSAL)
    quadrant_share: dict[str, float]
    uncertain: bool = Field(False, description="most segments out of distribution: mood is 'uncertain'")
    ood_fraction: float = Field(0.0, description="share of the segments out of distribution")


class AnalysisOut(Open):
    """The JSON of ``moodscope analyze --format json`` for one file."""

    track: str = Field(description="the uploaded file's name")
    duration: float
    model: str
    summary: Summary
    segments: list[Segment]


class TrackDetail(BaseModel):
    track: TrackOut
    summary: Summary
    timeline: list[Segment]


class ClusterOut(Open):
    cluster: int
    size: int
    fraction: float
    valence: float = Field(description=VALENCE)
    arousal: float = Field(description=AROUSAL)
    variability: float
    quadrant_share: dict[str, float]
    description: str
    examples: list[str]


class StatsOut(Open):
    path: str
    tracks: int
    segments: int
    hours: float
    quadrants: dict[str, int]
    models: dict[str, int]
    failures: int
    failed_files: dict[str, str] | None = Field(None, description="path -> reason, with ?failures=true")


class MapOut(BaseModel):
    """Every track as columns of equal length, by id (``MoodLibrary.points``): indices into the
    ``quadrants`` and ``artists`` lists instead of repeated names, values rounded to 4 decimals."""

    quadrants: list[str] = Field(description="the quadrant names that `quadrant` indexes")
    id: list[int]
    title: list[str]
    artist: list[int] = Field(description="index into `artists`; -1: unknown")
    artists: list[str] = Field(description="every artist once")
    quadrant: list[int] = Field(description="index into `quadrants`")
    confidence: list[float]
    valence: list[float] = Field(description="per track: " + VALENCE)
    arousal: list[float] = Field(description="per track: " + AROUSAL)


class QuadrantInfo(BaseModel):
    mood: str
    colour: str
    centre: list[float] = Field(description="the quadrant's centre on the valence/arousal plane (va_range)")


class AnalysisStatus(BaseModel):
    workers: int
    capacity: int = Field(description="analyses running or waiting at most; beyond that 503")
    admitted: int
    running: int
    max_upload_bytes: int
    model: str


class ScanStatus(BaseModel):
    enabled: bool
    roots: list[str]


class HealthOut(BaseModel):
    status: Literal["ok"]
    version: str
    library: str
    va_range: list[float] = Field(
        description="the range of valence and arousal values (axes of plots); quadrant boundaries at its midpoint"
    )
    segment_seconds: float
    quadrants: dict[str, QuadrantInfo]
    analysis: AnalysisStatus
    scan: ScanStatus


class ScanRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    folder: str | None = Field(
        None,
        max_length=4096,
        description="absolute path inside a --root folder, or relative to the first root (default: the first root)",
    )
    force: bool = False
    retry_failed: bool = False
    prune: bool = True


class JobOut(BaseModel):
    id: int
    folder: str
    options: dict[str, bool]
    state: Literal["queued", "running", "done", "failed"]
    stage: str | None
    done: int
    total: int
    failures: dict[str, str]
    result: dict[str, int | float] | None
    error: str | None
    created: float
    finished: float | None
