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
    UNCERTAIN,
)
from moodscope.errors import AudioError, ModelError, MoodscopeError
from moodscope.version import __version__

if TYPE_CHECKING:
    import pandas as pd

    from moodscope.analysis.ood import SegmentOod
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
    mood: str  # the quadrant's mood, or "uncertain" when the track is out of distribution
    confidence: float  # the dominant quadrant's song-level probability
    probabilities: dict[str, float]
    valence: float  # the track's valence in [0, 1]: the mean of its segments' (see summarize)
    arousal: float
    quadrant_share: dict[str, float]  # fraction of segments whose top quadrant is each
    uncertain: bool = False  # most segments are out of distribution (silence, noise, speech...): no mood claimed
    ood_fraction: float = 0.0  # fraction of segments flagged out of distribution


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
    ood: SegmentOod | None = None  # the out-of-distribution verdict per segment; None: the model gives none
    summary: Summary = field(init=False)

    def __post_init__(self) -> None:
        self.summary = summarize(self.probabilities, self.va, self.ood_flags)

    @property
    def ood_flags(self) -> np.ndarray:
        """Whether each segment is out of distribution [shape=(n,), bool] (all False without a verdict)."""
        return np.zeros(len(self.probabilities), bool) if self.ood is None else self.ood.flag

    @property
    def ood_scores(self) -> np.ndarray:
        """Each segment's embedding OOD score [shape=(n,)] (> 1 flagged), NaN where the model has none."""
        return np.full(len(self.probabilities), np.nan) if self.ood is None else self.ood.score

    @property
    def ood_reasons(self) -> list[str]:
        """Why each segment is flagged (one of :data:`moodscope.analysis.ood.REASONS`; "" if it is not)."""
        return [""] * len(self.probabilities) if self.ood is None else self.ood.reason

    @property
    def moods(self) -> list[str]:
        """Each segment's mood: its top quadrant's, or "uncertain" where the segment is out of distribution."""
        return [UNCERTAIN if f else QUADRANT_MOODS[q] for q, f in zip(self.quadrants, self.ood_flags)]

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
        """One row per segment: track, start, end, quadrant, mood, p_Q1..p_Q4, valence, arousal, the
        out-of-distribution columns ood (bool), ood_score (null without an embedding score), ood_reason,
        and the provenance columns moodscope_version, model, model_hash (the same on every row of a track)."""
        import pandas as pd

        frame = pd.DataFrame(
            {
                "track": self.source,
                "start": self.starts,
                "end": self.starts + SEGMENT_SECONDS,
                "quadrant": self.quadrants,
                "mood": self.moods,
            }
        )
        for i, q in enumerate(QUADRANTS):
            frame[f"p_{q}"] = self.probabilities[:, i]
        frame["valence"] = self.va[:, 0]
        frame["arousal"] = self.va[:, 1]
        frame["ood"] = self.ood_flags
        frame["ood_score"] = pd.array(self.ood_scores, dtype="Float64")  # NaN (no embedding score) -> null
        frame["ood_reason"] = self.ood_reasons
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
            "uncertain": s.uncertain,
            "ood_fraction": s.ood_fraction,
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
                    "mood": mood,
                    "probabilities": {k: round(float(p), 4) for k, p in zip(QUADRANTS, probs)},
                    "valence": round(float(v), 4),
                    "arousal": round(float(a), 4),
                    "ood": bool(flag),
                    "ood_score": round(float(score), 4) if np.isfinite(score) else None,
                    "ood_reason": reason,
                }
                for s, q, mood, probs, (v, a), flag, score, reason in zip(
                    self.starts,
                    self.quadrants,
                    self.moods,
                    self.probabilities,
                    self.va,
                    self.ood_flags,
                    self.ood_scores,
                    self.ood_reasons,
                )
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
    "uncertain",
    "ood_fraction",
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


def summarize(probs: np.ndarray, va: np.ndarray, ood_flags: np.ndarray | None = None) -> Summary:
    """A track's summary from its segments' probabilities [shape=(n, 4)], valence/arousal [shape=(n, 2)]
    and out-of-distribution flags [shape=(n,)] (None: none flagged).

    The song-level probabilities are :func:`moodscope.training.evaluate.song_probabilities` of the
    segments', the rule the song-level training metrics use. The track's valence/arousal are the mean
    of its segments': for a quadrant classifier (segment values :func:`va_from_probabilities`) that is
    exactly the marginals of the song-level probabilities, since that rule is their mean; for a
    ``va`` regressor, the mean of its regressed values. A track most of whose segments are out of
    distribution (:func:`moodscope.analysis.ood.track_uncertain`) is ``uncertain``: its mood says so,
    its quadrant and probabilities stay the model's best guess.
    """
    from moodscope.analysis.ood import track_uncertain
    from moodscope.training.evaluate import song_probabilities

    song = song_probabilities(probs)
    top = int(song.argmax())
    share = np.bincount(probs.argmax(axis=1), minlength=4) / len(probs)
    flags = np.zeros(len(probs), bool) if ood_flags is None else np.asarray(ood_flags, bool)
    uncertain = track_uncertain(flags)
    return Summary(
        quadrant=QUADRANTS[top],
        mood=UNCERTAIN if uncertain else QUADRANT_MOODS[QUADRANTS[top]],
        confidence=round(float(song[top]), 4),
        probabilities={q: round(float(p), 4) for q, p in zip(QUADRANTS, song)},
        valence=round(float(va[:, 0].mean()), 4),
        arousal=round(float(va[:, 1].mean()), 4),
        quadrant_share={q: round(float(s), 4) for q, s in zip(QUADRANTS, share)},
        uncertain=uncertain,
        ood_fraction=round(float(flags.mean()), 4) if len(flags) else 0.0,
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


def build_analysis(source: str, duration: float, model: MoodModel, outputs: list[tuple]) -> Analysis:
    """The :class:`Analysis` of a track from the model's outputs on its segments, batch by batch in
    order: ``(probabilities, valence/arousal or None)`` as ``predict_segments`` returns them, or
    ``(probabilities, valence/arousal or None, SegmentOod or None)`` as
    :func:`~moodscope.analysis.pretrained.predict_with_ood` does.

    Raises :class:`~moodscope.errors.AudioError` when the track had no whole segment.
    """
    from moodscope.analysis.ood import concat_ood

    if not outputs or not sum(len(out[0]) for out in outputs):
        raise AudioError(
            f"{source}: too short ({duration:.2f} s); moodscope needs at least {SEGMENT_SECONDS:g} s of audio"
        )
    p = np.concatenate([out[0] for out in outputs])
    va = np.concatenate([va_from_probabilities(out[0]) if out[1] is None else out[1] for out in outputs])
    verdicts = [out[2] for out in outputs if len(out) > 2 and out[2] is not None]
    ood = concat_ood(verdicts) if len(verdicts) == len(outputs) else None
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
        ood=ood,
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
    from moodscope.analysis.pretrained import load_model, predict_with_ood, segment_inputs

    is_array = not isinstance(path_or_array, (str, os.PathLike))
    if is_array and sr is None:
        raise AudioError("audio array: analyze(array) needs its sample rate: analyze(y, sr=44100)")
    mood_model = load_model(model)

    def predict(segments: np.ndarray) -> tuple:
        return predict_with_ood(mood_model, segment_inputs(mood_model, segments))

    if is_array:
        source = "audio array"
        y = audio_from_array(path_or_array, sr, source=source)
        outputs = [predict(segment_audio(y, source=source))]
        return build_analysis(source, len(y) / SAMPLE_RATE, mood_model, outputs)
    assert not isinstance(path_or_array, np.ndarray)
    stream = SegmentStream(path_or_array)
    outputs = [predict(segments) for segments in stream]
    return build_analysis(str(path_or_array), stream.seconds, mood_model, outputs)
