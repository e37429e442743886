"""Analyse music: a timeline of 5-second segments and a summary per track.

``analyze(path_or_array)`` streams the audio in blocks (bounded memory, whatever the length),
cuts whole 5-s segments, asks a :class:`~moodscope.analysis.pretrained.MoodModel` for the four quadrant
probabilities of each segment and summarises them. A file shorter than one segment is an
:class:`~moodscope.errors.AudioError` (no padding: a padded segment's features would describe
silence as much as music).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from moodscope.audio import audio_from_array, segment_audio, stream_audio
from moodscope.constants import (
    QUADRANT_MOODS,
    QUADRANT_SIGNS,
    QUADRANTS,
    SAMPLE_RATE,
    SEGMENT_SAMPLES,
    SEGMENT_SECONDS,
)
from moodscope.errors import AudioError, ModelError, MoodscopeError
from moodscope.version import __version__

if TYPE_CHECKING:
    import pandas as pd

    from moodscope.analysis.pretrained import MoodModel

log = logging.getLogger(__name__)

BATCH_SEGMENTS = 24
"""Segments analysed per batch while streaming (2 minutes of audio): bounds memory on long files."""

VA_FROM_PROBABILITIES = (
    "valence = the model's probability that listeners rate the segment positive, p(Q1) + p(Q4); arousal = its "
    "probability that they rate it high, p(Q1) + p(Q2): the marginals of the quadrant probabilities, in [0, 1] "
    "(0.5 = undecided, the quadrant boundary); a track's are the marginals of its song-level probabilities"
)
"""What ``valence``/``arousal`` mean for a model that gives quadrant probabilities (every shipped model)."""

_POSITIVE_VALENCE = [QUADRANTS.index(q) for q, (sv, _) in QUADRANT_SIGNS.items() if sv > 0]  # Q1, Q4
_HIGH_AROUSAL = [QUADRANTS.index(q) for q, (_, sa) in QUADRANT_SIGNS.items() if sa > 0]  # Q1, Q2


def va_from_probabilities(probs: np.ndarray) -> np.ndarray:
    """Valence and arousal [shape=(n, 2)] in [0, 1] from quadrant probabilities [shape=(n, 4)] (Q1..Q4):
    the marginals valence = p(Q1) + p(Q4) (positive), arousal = p(Q1) + p(Q2) (high).

    For a model whose quadrant probabilities are the product of a valence and an arousal probability,
    these are exactly those two probabilities.
    """
    probs = np.asarray(probs, dtype=np.float64)
    return np.stack([probs[..., _POSITIVE_VALENCE].sum(axis=-1), probs[..., _HIGH_AROUSAL].sum(axis=-1)], axis=-1)


@dataclass
class Summary:
    quadrant: str  # dominant quadrant (song-level aggregation of the segment probabilities)
    mood: str
    confidence: float  # the dominant quadrant's song-level probability
    probabilities: dict[str, float]
    valence: float  # the track's valence in [0, 1]: the mean of its segments' (see summarize)
    arousal: float
    quadrant_share: dict[str, float]  # fraction of segments whose top quadrant is each


@dataclass
class Analysis:
    """The mood of one track: per-segment timeline and summary."""

    source: str
    duration: float  # seconds of audio decoded
    model: str
    starts: np.ndarray  # (n,) segment start times, seconds
    probabilities: np.ndarray  # (n, 4) Q1..Q4
    va: np.ndarray  # (n, 2) valence, arousal in [0, 1] (VA_RANGE; what they are: va_meaning)
    model_hash: str = ""  # SHA-256 of the model's content (checkpoint and weights files); "" if unknown
    moodscope_version: str = __version__
    va_meaning: str = VA_FROM_PROBABILITIES  # what the valence/arousal numbers are (the model's va_meaning)
    summary: Summary = field(init=False)

    def __post_init__(self) -> None:
        self.summary = summarize(self.probabilities, self.va)

    @property
    def provenance(self) -> dict[str, str]:
        """What produced this analysis: ``moodscope_version``, ``model`` (name) and ``model_hash``.

        Every writer of analyses (JSON, CSV, Parquet, the library) stores these three fields.
        """
        return {"moodscope_version": self.moodscope_version, "model": self.model, "model_hash": self.model_hash}

    @property
    def quadrants(self) -> list[str]:
        return [QUADRANTS[i] for i in self.probabilities.argmax(axis=1)]

    def to_dataframe(self) -> pd.DataFrame:
        """One row per segment: track, start, end, quadrant, mood, p_Q1..p_Q4, valence, arousal and the
        provenance columns moodscope_version, model, model_hash (the same on every row of a track)."""
        import pandas as pd

        quads = self.quadrants
        frame = pd.DataFrame(
            {
                "track": self.source,
                "start": self.starts,
                "end": self.starts + SEGMENT_SECONDS,
                "quadrant": quads,
                "mood": [QUADRANT_MOODS[q] for q in quads],
            }
        )
        for i, q in enumerate(QUADRANTS):
            frame[f"p_{q}"] = self.probabilities[:, i]
        frame["valence"] = self.va[:, 0]
        frame["arousal"] = self.va[:, 1]
        for key, value in self.provenance.items():
            frame[key] = value
        return frame

    def summary_row(self) -> dict:
        """One row for the whole track (:data:`TRACK_COLUMNS`): its summary, size and provenance."""
        s = self.summary
        return {
            "track": self.source,
            "duration": float(self.duration),
            "n_segments": len(self.starts),
            "quadrant": s.quadrant,
            "mood": s.mood,
            "confidence": s.confidence,
            **{f"p_{q}": s.probabilities[q] for q in QUADRANTS},
            "valence": s.valence,
            "arousal": s.arousal,
            **{f"share_{q}": s.quadrant_share[q] for q in QUADRANTS},
            **self.provenance,
            "va_meaning": self.va_meaning,
        }

    def to_dict(self) -> dict:
        return {
            "track": self.source,
            "duration": round(float(self.duration), 3),
            **self.provenance,
            "va_meaning": self.va_meaning,
            "summary": asdict(self.summary),
            "segments": [
                {
                    "start": float(s),
                    "end": float(s + SEGMENT_SECONDS),
                    "quadrant": q,
                    "mood": QUADRANT_MOODS[q],
                    "probabilities": {k: round(float(p), 4) for k, p in zip(QUADRANTS, probs)},
                    "valence": round(float(v), 4),
                    "arousal": round(float(a), 4),
                }
                for s, q, probs, (v, a) in zip(self.starts, self.quadrants, self.probabilities, self.va)
            ],
        }

    def to_json(self, **kw: Any) -> str:
        return json.dumps(self.to_dict(), **{"allow_nan": False, **kw})


TRACK_COLUMNS = (
    "track",
    "duration",
    "n_segments",
    "quadrant",
    "mood",
    "confidence",
    *(f"p_{q}" for q in QUADRANTS),
    "valence",
    "arousal",
    *(f"share_{q}" for q in QUADRANTS),
    "moodscope_version",
    "model",
    "model_hash",
    "va_meaning",
)
"""The columns of a per-track table (:meth:`Analysis.summary_row`), documented in docs/formats.md."""

ROWS = ("segments", "tracks")


def analyses_frame(analyses: Sequence[Analysis], rows: str = "segments") -> pd.DataFrame:
    """The table CSV and Parquet outputs hold: one row per segment (:meth:`Analysis.to_dataframe`) or,
    with ``rows="tracks"``, one per track (:meth:`Analysis.summary_row`)."""
    import pandas as pd

    if rows not in ROWS:
        raise MoodscopeError(f"rows must be one of {', '.join(ROWS)}, not {rows!r}")
    if rows == "tracks":
        return pd.DataFrame([a.summary_row() for a in analyses], columns=list(TRACK_COLUMNS))
    return pd.concat([a.to_dataframe() for a in analyses], ignore_index=True) if analyses else pd.DataFrame()


def provenance_metadata(analyses: list[Analysis]) -> dict:
    """File-level provenance of a set of analyses, for the metadata of a file holding them:
    ``{"moodscope_version": ..., "models": {model name: model hash}, "va_meaning": {model name: what its
    valence/arousal are}}``."""
    return {
        "moodscope_version": __version__,
        "models": {a.model: a.model_hash for a in analyses},
        "va_meaning": {a.model: a.va_meaning for a in analyses},
    }


def summarize(probs: np.ndarray, va: np.ndarray) -> Summary:
    """A track's summary from its segments' probabilities [shape=(n, 4)] and valence/arousal [shape=(n, 2)].

    The song-level probabilities are :func:`moodscope.training.evaluate.song_probabilities` of the
    segments', the rule the song-level training metrics use. The track's valence/arousal are the mean
    of its segments': for a quadrant classifier (segment values :func:`va_from_probabilities`) that is
    exactly the marginals of the song-level probabilities, since that rule is their mean; for a
    ``va`` regressor, the mean of its regressed values.
    """
    from moodscope.training.evaluate import song_probabilities

    song = song_probabilities(probs)
    top = int(song.argmax())
    share = np.bincount(probs.argmax(axis=1), minlength=4) / len(probs)
    return Summary(
        quadrant=QUADRANTS[top],
        mood=QUADRANT_MOODS[QUADRANTS[top]],
        confidence=round(float(song[top]), 4),
        probabilities={q: round(float(p), 4) for q, p in zip(QUADRANTS, song)},
        valence=round(float(va[:, 0].mean()), 4),
        arousal=round(float(va[:, 1].mean()), 4),
        quadrant_share={q: round(float(s), 4) for q, s in zip(QUADRANTS, share)},
    )


def _segment_batches(blocks: Iterator[np.ndarray], batch: int) -> Iterator[np.ndarray]:
    """Regroup a stream of audio blocks into batches of whole segments [shape=(<=batch, SEGMENT_SAMPLES)]."""
    pending = np.zeros(0, dtype=np.float32)
    want = batch * SEGMENT_SAMPLES
    for block in blocks:
        pending = np.concatenate([pending, block])
        while len(pending) >= want:
            yield pending[:want].reshape(batch, SEGMENT_SAMPLES)
            pending = pending[want:]
    n = len(pending) // SEGMENT_SAMPLES
    if n:
        yield pending[: n * SEGMENT_SAMPLES].reshape(n, SEGMENT_SAMPLES)


class SegmentStream:
    """The whole 5-s segments of a file, decoded block by block (bounded memory, whatever the length),
    in batches [shape=(<=batch, SEGMENT_SAMPLES)]; :attr:`seconds` of audio decoded so far."""

    def __init__(self, path: str | os.PathLike, batch: int = BATCH_SEGMENTS):
        self.path = path
        self.batch = batch
        self.samples = 0

    @property
    def seconds(self) -> float:
        return self.samples / SAMPLE_RATE

    def _counted(self) -> Iterator[np.ndarray]:
        for block in stream_audio(self.path):
            self.samples += len(block)
            yield block

    def __iter__(self) -> Iterator[np.ndarray]:
        return _segment_batches(self._counted(), self.batch)


def build_analysis(
    source: str, duration: float, model: MoodModel, outputs: list[tuple[np.ndarray, np.ndarray | None]]
) -> Analysis:
    """The :class:`Analysis` of a track from the model's outputs on its segments, batch by batch in
    order (``(probabilities, valence/arousal or None)`` as ``predict_segments`` returns them).

    Raises :class:`~moodscope.errors.AudioError` when the track had no whole segment.
    """
    if not outputs or not sum(len(p) for p, _ in outputs):
        raise AudioError(
            f"{source}: too short ({duration:.2f} s); moodscope needs at least {SEGMENT_SECONDS:g} s of audio"
        )
    p = np.concatenate([p for p, _ in outputs])
    va = np.concatenate([va_from_probabilities(p) if va is None else va for p, va in outputs])
    if not (np.isfinite(p).all() and np.isfinite(va).all()):
        raise ModelError(f"{source}: the model {model.name} gave non-finite probabilities; is its checkpoint damaged?")
    return Analysis(
        source=source,
        duration=duration,
        model=model.name,
        starts=np.arange(len(p)) * SEGMENT_SECONDS,
        probabilities=p,
        va=va,
        model_hash=getattr(model, "content_hash", ""),
        va_meaning=getattr(model, "va_meaning", VA_FROM_PROBABILITIES),
    )


def analyze(
    path_or_array: str | os.PathLike | np.ndarray,
    sr: int | None = None,
    model: str | os.PathLike | MoodModel | None = None,
) -> Analysis:
    """Analyse one file, or an array of audio samples at rate ``sr``.

    An array is 1-D, ``(samples, channels)`` or ``(channels, samples)``, float or integer PCM (see
    :func:`moodscope.audio.audio_from_array`). ``model`` is a model name ('accurate', 'fast'), a
    checkpoint path, a loaded model, or None for the default. Raises
    :class:`~moodscope.errors.AudioError` naming the file (or "audio array") when it cannot be used:
    undecodable, too short, or damaged samples (NaN, infinity).
    """
    from moodscope.analysis.pretrained import load_model

    is_array = not isinstance(path_or_array, (str, os.PathLike))
    if is_array and sr is None:
        raise AudioError("audio array: analyze(array) needs its sample rate: analyze(y, sr=44100)")
    mood_model = load_model(model)
    if is_array:
        source = "audio array"
        y = audio_from_array(path_or_array, sr, source=source)
        outputs = [mood_model.predict_segments(segment_audio(y, source=source))]
        return build_analysis(source, len(y) / SAMPLE_RATE, mood_model, outputs)
    assert not isinstance(path_or_array, np.ndarray)
    stream = SegmentStream(path_or_array)
    outputs = [mood_model.predict_segments(segments) for segments in stream]
    return build_analysis(str(path_or_array), stream.seconds, mood_model, outputs)
