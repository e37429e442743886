"""Audio decoding, mono mix-down, resampling and cutting into 5-second segments.

MP3, Ogg Vorbis/Opus, FLAC, WAV and AIFF are decoded with libsndfile (``soundfile``); M4A/AAC and
anything libsndfile refuses are decoded with FFmpeg through PyAV. Resampling uses ``soxr`` (VHQ).

Segment policy: a track is cut into non-overlapping segments of ``SEGMENT_SAMPLES`` samples and only
whole segments are kept (a trailing remainder is dropped). A file shorter than one segment is an
:class:`~moodscope.errors.AudioError`. Silence is valid audio: its features are finite (zeros).

Damaged files: a file that cannot be opened as audio (empty, not audio, unknown format, a folder,
missing) is an :class:`~moodscope.errors.AudioError` naming it. A truncated file (e.g. an MP3 cut
short by an interrupted download) is decoded as far as its data goes, as players do: the features
describe the audio that is there, and if less than one segment remains it is "too short".
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from moodscope.constants import AUDIO_EXTENSIONS, SAMPLE_RATE, SEGMENT_SAMPLES, SEGMENT_SECONDS
from moodscope.errors import AudioError

log = logging.getLogger(__name__)

SNDFILE_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif")
BLOCK_SECONDS = 60.0


@dataclass(frozen=True)
class AudioInfo:
    """What the container says about a file, before decoding."""

    path: Path
    sample_rate: int
    channels: int
    duration: float  # seconds


def _check_file(path: Path) -> None:
    if not path.exists():
        raise AudioError(f"{path}: no such file")
    if path.is_dir():
        raise AudioError(f"{path}: is a folder, not an audio file")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: the file is empty (0 bytes)")


def _to_mono(block: np.ndarray) -> np.ndarray:
    """[shape=(n,) or (n, channels)] -> [shape=(n,)] float32 mean of channels.

    Channels are summed column by column: ``block.mean(axis=1)`` over interleaved frames is an
    order of magnitude slower and was a third of the decoding time of a stereo MP3.
    """
    if block.ndim == 2:
        channels = block.shape[1]
        if channels == 1:
            block = block[:, 0]
        else:
            mono = block[:, 0].astype(np.float32, copy=True)
            for c in range(1, channels):
                mono += block[:, c]
            mono *= np.float32(1.0 / channels)
            block = mono
    return np.ascontiguousarray(block, dtype=np.float32)


def _sndfile_blocks(path: Path, block_frames: int) -> tuple[int, Iterator[np.ndarray]]:
    import soundfile as sf

    handle = sf.SoundFile(str(path))

    def gen() -> Iterator[np.ndarray]:
        with handle:
            while True:
                block = handle.read(block_frames, dtype="float32", always_2d=True)
                if len(block) == 0:
                    return
                yield _to_mono(block)

    return handle.samplerate, gen()


def _pyav_blocks(path: Path, block_frames: int) -> tuple[int, Iterator[np.ndarray]]:
    import av

    container = av.open(str(path))
    streams = container.streams.audio
    if not streams:
        container.close()
        raise AudioError(f"{path}: the file has no audio stream")
    stream = streams[0]
    rate = stream.codec_context.sample_rate or stream.rate
    if not rate:
        container.close()
        raise AudioError(f"{path}: the audio stream has no sample rate")
    # planar float at the native rate and layout: the channels are averaged here, like the libsndfile
    # path does (FFmpeg's own mono downmix weights channels differently, e.g. (L + R) / sqrt(2))
    resampler = av.AudioResampler(format="fltp", rate=rate)

    def planar_mean(out: av.AudioFrame) -> np.ndarray:
        planes = out.to_ndarray()  # (channels, n)
        return planes.mean(axis=0, dtype=np.float32) if planes.shape[0] > 1 else planes[0].astype(np.float32)

    def gen() -> Iterator[np.ndarray]:
        pending: list[np.ndarray] = []
        size = 0
        with container:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    pending.append(planar_mean(out))
                    size += pending[-1].shape[0]
                    if size >= block_frames:
                        yield np.concatenate(pending)
                        pending, size = [], 0
            for out in resampler.resample(None):
                pending.append(planar_mean(out))
        if pending:
            yield np.concatenate(pending)

    return rate, gen()


def _open_blocks(path: Path, block_seconds: float) -> tuple[int, Iterator[np.ndarray]]:
    """Open ``path`` with the right decoder; return its native rate and mono blocks."""
    _check_file(path)
    errors = []
    if path.suffix.lower() in SNDFILE_EXTENSIONS:
        try:
            import soundfile as sf

            info = sf.info(str(path))
            return _sndfile_blocks(path, max(1, int(info.samplerate * block_seconds)))
        except Exception as exc:  # libsndfile refused it: let FFmpeg try
            errors.append(f"libsndfile: {exc}")
    try:
        import av

        try:
            return _pyav_blocks(path, max(1, int(48_000 * block_seconds)))
        except av.error.FFmpegError as exc:
            errors.append(f"ffmpeg: {exc}")
    except AudioError:
        raise
    reason = "; ".join(errors) or "unknown format"
    raise AudioError(
        f"{path}: cannot decode as audio: not a format moodscope reads (MP3, Ogg Vorbis/Opus, FLAC, WAV, "
        f"AIFF, M4A/AAC) or a corrupt file ({reason})"
    )


def stream_audio(path: str | os.PathLike, *, block_seconds: float = BLOCK_SECONDS) -> Iterator[np.ndarray]:
    """Decode ``path`` block by block as mono float32 at ``SAMPLE_RATE`` with bounded memory.

    Yields arrays [shape=(n,)]; their concatenation is the whole resampled track.
    Raises :class:`AudioError` naming the file when it cannot be decoded.
    """
    import soxr

    path = Path(path)
    rate, blocks = _open_blocks(path, block_seconds)
    resampler = (
        None if rate == SAMPLE_RATE else soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32", quality="VHQ")
    )
    produced = 0
    try:
        for block in blocks:
            out = block if resampler is None else resampler.resample_chunk(block)
            if len(out):
                produced += len(out)
                yield out
        if resampler is not None:
            tail = resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
            if len(tail):
                produced += len(tail)
                yield tail
    except AudioError:
        raise
    except Exception as exc:
        raise AudioError(f"{path}: decoding failed after {produced / SAMPLE_RATE:.1f} s ({exc})") from exc
    if produced == 0:
        raise AudioError(f"{path}: no audio samples could be decoded")


def load_audio(path: str | os.PathLike, *, duration: float | None = None) -> np.ndarray:
    """Decode a whole file (or its first ``duration`` seconds) to mono float32 at ``SAMPLE_RATE``."""
    limit = None if duration is None else round(duration * SAMPLE_RATE)
    parts, size = [], 0
    for block in stream_audio(path):
        parts.append(block)
        size += len(block)
        if limit is not None and size >= limit:
            break
    y = np.concatenate(parts)
    return y if limit is None else y[:limit]


def resample(y: np.ndarray, sr: int, *, target: int = SAMPLE_RATE, quality: str = "VHQ") -> np.ndarray:
    """Mix ``y`` [shape=(n,) or (channels, n)] to mono and resample it from ``sr`` to ``target`` Hz."""
    import soxr

    y = np.asarray(y, dtype=np.float32)
    if y.ndim == 2:
        y = y.mean(axis=0)
    if y.ndim != 1:
        raise AudioError(f"expected a 1-D or (channels, samples) array, got shape {y.shape}")
    if sr != target:
        y = soxr.resample(y, sr, target, quality=quality).astype(np.float32, copy=False)
    return y


def segment_audio(
    y: np.ndarray,
    *,
    clip_seconds: float | None = None,
    drop_last: bool = False,
    source: str = "audio",
) -> np.ndarray:
    """Cut ``y`` [shape=(n,)] into non-overlapping segments [shape=(n_segments, SEGMENT_SAMPLES)].

    Only whole segments are kept. ``clip_seconds`` first keeps only the start of the track, and
    ``drop_last`` drops the last whole segment: the paper's policy is ``clip_seconds=45,
    drop_last=True`` (8 segments per 45-s clip). Raises :class:`AudioError` when no whole segment
    remains.
    """
    if clip_seconds is not None:
        y = y[: round(clip_seconds * SAMPLE_RATE)]
    n = len(y) // SEGMENT_SAMPLES
    if drop_last and n > 1:
        n -= 1
    if n < 1:
        raise AudioError(
            # rounded down, so that 4.999 s does not read "too short (5.00 s)"
            f"{source}: too short ({math.floor(len(y) / SAMPLE_RATE * 100) / 100:.2f} s); moodscope needs at least "
            f"{SEGMENT_SECONDS:g} s of audio for one segment"
        )
    segments = y[: n * SEGMENT_SAMPLES].reshape(n, SEGMENT_SAMPLES)
    return np.nan_to_num(segments, copy=False)


def find_audio_files(paths: list[str | os.PathLike] | str | os.PathLike) -> list[Path]:
    """Expand files and folders (recursively) into a sorted list of audio files.

    Folders contribute only files with an audio extension; files named explicitly are always kept
    (so a bad file given by name is reported rather than silently skipped).
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found.extend(
                sorted(
                    f
                    for f in p.rglob("*")
                    if f.is_file() and f.suffix.lower() in AUDIO_EXTENSIONS and not f.name.startswith(".")
                )
            )
        else:
            found.append(p)
    return found
