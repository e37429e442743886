"""Audio decoding, mono mix-down, resampling and cutting into 5-second segments.

MP3, Ogg Vorbis/Opus, FLAC, WAV and AIFF are decoded with libsndfile (``soundfile``); M4A/AAC and
anything libsndfile refuses are decoded with FFmpeg through PyAV. Resampling uses ``soxr`` (VHQ).

Segment policy: a track is cut into non-overlapping segments of ``SEGMENT_SAMPLES`` samples and only
whole segments are kept (a trailing remainder is dropped). A file shorter than one segment is an
:class:`~moodscope.errors.AudioError`. Silence is valid audio: its features are finite (zeros).

Damaged files: a file that cannot be opened as audio (empty, not audio, unknown format, a folder,
missing) is an :class:`~moodscope.errors.AudioError` naming it. A truncated or partly damaged file
(an MP3, FLAC, Ogg or WAV cut short by an interrupted download, a few garbled frames) is decoded as
far as its data goes, as players do: when libsndfile stops at damaged data, FFmpeg takes over where
it stopped and skips the packets it cannot decode. The features describe the audio that is there,
and if less than one segment remains it is "too short". What decoders print by themselves
(mpg123's "Note: Illegal Audio-MPEG-Header", "Warning: Xing stream size off") is kept off the
terminal (it is logged at debug level), and error messages name the file once.

Non-finite samples (NaN, infinity) and samples beyond ±``MAX_SAMPLE_MAGNITUDE`` (100, i.e. 40 dB
over full scale) are an :class:`~moodscope.errors.AudioError` naming the file and the time of the
first one, whether they come from a file or an array: they are damage, not music, and a result
computed from them would be meaningless (they are not silently repaired).

Arrays (:func:`audio_from_array`): 1-D, ``(samples, channels)`` (what ``soundfile.read`` returns)
or ``(channels, samples)`` (what ``librosa.load(mono=False)`` returns; the shorter axis is taken as
the channels), any float dtype, or integer PCM (int8/16/32, uint8), which is scaled by its full range
to [-1, 1).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import tempfile
import threading
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from moodscope.constants import (
    AUDIO_EXTENSIONS,
    MAX_SAMPLE_MAGNITUDE,
    SAMPLE_RATE,
    SEGMENT_SAMPLES,
    SEGMENT_SECONDS,
)
from moodscope.errors import AudioError

log = logging.getLogger(__name__)

RESAMPLE_QUALITY = "VHQ"
"""soxr's quality setting for every resampling (files and arrays alike)."""
SNDFILE_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif")
BLOCK_SECONDS = 60.0


@dataclass(frozen=True)
class AudioInfo:
    """What the container says about a file, before decoding."""

    path: Path
    sample_rate: int
    channels: int
    duration: float  # seconds


def import_decoders() -> None:
    """Import the bindings of libsndfile and soxr now rather than at the first file (20-40 ms): done
    once in a parent process, they are inherited by the worker processes it forks."""
    import soundfile  # noqa: F401
    import soxr  # noqa: F401


def _check_file(path: Path) -> None:
    if not path.exists():
        raise AudioError(f"{path}: no such file")
    if path.is_dir():
        raise AudioError(f"{path}: is a folder, not an audio file")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: the file is empty (0 bytes)")


def check_samples(y: np.ndarray, source: str, *, offset: float = 0.0, rate: float = SAMPLE_RATE) -> None:
    """Raise :class:`AudioError` naming ``source`` unless every sample of ``y`` is finite and within
    ±``MAX_SAMPLE_MAGNITUDE``.

    ``y`` [shape=(n,) or (n, channels)] starts ``offset`` seconds into the audio at ``rate`` Hz (for
    the time of the first bad sample in the message). Costs one max and one min over the samples.
    """
    if y.size == 0:
        return
    hi, lo = y.max(), y.min()
    if hi <= MAX_SAMPLE_MAGNITUDE and lo >= -MAX_SAMPLE_MAGNITUDE:  # NaN fails both
        return
    bad = ~(np.abs(y) <= MAX_SAMPLE_MAGNITUDE)
    first = int(np.argwhere(bad)[0][0])
    value = float(np.asarray(y[first]).reshape(-1)[bad[first].reshape(-1)][0])
    if math.isnan(value):
        what = "samples that are not numbers (NaN)"
    elif math.isinf(value):
        what = "infinite samples"
    else:
        what = f"samples of {value:.3g}, beyond ±{MAX_SAMPLE_MAGNITUDE:g} (full scale is ±1)"
    raise AudioError(
        f"{source}: the audio is damaged: {what} from {offset + first / rate:.2f} s; moodscope analyses only "
        "finite samples: re-encode or re-export it"
    )


# What decoders print on the terminal by themselves (mpg123 inside libsndfile): logged, not shown.
_DECODER_NOISE = re.compile(r"^(Note: |Warning: |\[src/libmpg123/|\[.*mpg123)")
_stderr_lock = threading.Lock()
_stderr_users = 0
_stderr_saved: tuple[int, Any] | None = None  # (the saved descriptor, the capture file)


@contextlib.contextmanager
def _quiet_decoder() -> Iterator[None]:
    """Keep what C decoders write to file descriptor 2 off the terminal while the block runs.

    The descriptor is pointed at a temporary file; afterwards decoder messages are logged at debug
    level and any other line (another thread's) is written back to the real stderr. Threads share
    one redirection (counted), so decoding in parallel threads is not serialised.
    """
    global _stderr_users, _stderr_saved
    try:
        with _stderr_lock:
            if _stderr_users == 0:
                capture = tempfile.TemporaryFile(mode="w+b")  # noqa: SIM115 (closed when the last user leaves)
                saved = os.dup(2)
                try:
                    os.dup2(capture.fileno(), 2)
                except OSError:
                    os.close(saved)
                    capture.close()
                    raise
                _stderr_saved = (saved, capture)
            _stderr_users += 1
    except OSError:  # no stderr to redirect (closed descriptor): nothing to keep quiet
        yield
        return
    try:
        yield
    finally:
        with _stderr_lock:
            _stderr_users -= 1
            if _stderr_users == 0 and _stderr_saved is not None:
                saved, capture = _stderr_saved
                _stderr_saved = None
                os.dup2(saved, 2)
                os.close(saved)
                capture.seek(0)
                text = capture.read().decode("utf-8", "replace")
                capture.close()
                for line in text.splitlines():
                    if _DECODER_NOISE.match(line):
                        log.debug("decoder: %s", line)
                    elif line.strip():
                        os.write(2, (line + "\n").encode())


def _reason(exc: BaseException, path: Path) -> str:
    """A decoder's error without the file name (the message names it already) or libsndfile's guesses."""
    text = getattr(exc, "error_string", None) or getattr(exc, "strerror", None) or str(exc)
    for name in (f"'{path}'", f'"{path}"', str(path)):
        text = text.replace(name, "")
    text = text.replace("(possibly a pipe?)", "").replace("Error : ", "")
    text = " ".join(text.split()).strip(" :.;")
    return text or type(exc).__name__


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
            mono = np.add(block[:, 0], block[:, 1], dtype=np.float32)
            for c in range(2, channels):
                mono += block[:, c]
            mono *= np.float32(1.0 / channels)
            block = mono
    return np.ascontiguousarray(block, dtype=np.float32)


def _sndfile_blocks(path: Path, block_frames: int) -> tuple[int, Iterator[np.ndarray]]:
    """Decode with libsndfile; at damaged data, FFmpeg carries on from where libsndfile stopped."""
    import soundfile as sf

    with _quiet_decoder():
        handle = sf.SoundFile(str(path))
    rate = handle.samplerate

    def gen() -> Iterator[np.ndarray]:
        done = 0  # frames yielded
        with handle:
            while True:
                try:
                    with _quiet_decoder():
                        block = handle.read(block_frames, dtype="float32", always_2d=True)
                except sf.SoundFileError as exc:
                    log.info("%s: libsndfile stopped at %.1f s (%s); FFmpeg decodes the rest", path, done / rate,
                             _reason(exc, path))  # fmt: skip
                    yield from _pyav_blocks(path, block_frames, skip=done, rate=rate)[1]
                    return
                if len(block) == 0:
                    return
                done += len(block)
                yield _to_mono(block)

    return rate, gen()


def _pyav_blocks(
    path: Path, block_frames: int, *, skip: int = 0, rate: int | None = None
) -> tuple[int, Iterator[np.ndarray]]:
    """Decode with FFmpeg (PyAV), skipping packets it cannot decode, and the first ``skip`` frames.

    ``rate`` is the sample rate the caller expects (when taking over from libsndfile).
    """
    import av

    container = av.open(str(path))
    streams = container.streams.audio
    if not streams:
        container.close()
        raise AudioError(f"{path}: the file has no audio stream")
    stream = streams[0]
    native = stream.codec_context.sample_rate or stream.rate
    if not native:
        container.close()
        raise AudioError(f"{path}: the audio stream has no sample rate")
    if rate is not None and native != rate:
        container.close()
        raise AudioError(f"{path}: damaged audio data after {skip / rate:.1f} s")
    # planar float at the native rate and layout: the channels are averaged here, like the libsndfile
    # path does (FFmpeg's own mono downmix weights channels differently, e.g. (L + R) / sqrt(2))
    resampler = av.AudioResampler(format="fltp", rate=native)

    def planar_mean(out: av.AudioFrame) -> np.ndarray:
        planes = out.to_ndarray()  # (channels, n)
        return planes.mean(axis=0, dtype=np.float32) if planes.shape[0] > 1 else planes[0].astype(np.float32)

    def gen() -> Iterator[np.ndarray]:
        pending: list[np.ndarray] = []
        size, to_skip, damaged = 0, skip, 0

        def take(out: av.AudioFrame) -> None:
            nonlocal size, to_skip
            mono = planar_mean(out)
            if to_skip:
                cut = min(to_skip, len(mono))
                mono, to_skip = mono[cut:], to_skip - cut
            if len(mono):
                pending.append(mono)
                size += len(mono)

        with container:
            for packet in container.demux(stream):
                try:
                    frames = packet.decode()
                except av.error.FFmpegError:  # a damaged packet: skipped, as players do
                    damaged += 1
                    continue
                for frame in frames:
                    for out in resampler.resample(frame):
                        take(out)
                if size >= block_frames:
                    yield np.concatenate(pending)
                    pending, size = [], 0
            for out in resampler.resample(None):
                take(out)
        if damaged:
            log.info("%s: %d damaged packet(s) skipped", path, damaged)
        if pending:
            yield np.concatenate(pending)

    return native, gen()


def _open_blocks(path: Path, block_seconds: float) -> tuple[int, Iterator[np.ndarray]]:
    """Open ``path`` with the right decoder; return its native rate and mono blocks."""
    _check_file(path)
    errors = []
    if path.suffix.lower() in SNDFILE_EXTENSIONS:
        try:
            import soundfile as sf

            with _quiet_decoder():
                info = sf.info(str(path))
            return _sndfile_blocks(path, max(1, int(info.samplerate * block_seconds)))
        except Exception as exc:  # libsndfile refused it: let FFmpeg try
            errors.append(f"libsndfile: {_reason(exc, path)}")
    try:
        import av

        try:
            return _pyav_blocks(path, max(1, int(48_000 * block_seconds)))
        except av.error.FFmpegError as exc:
            errors.append(f"FFmpeg: {_reason(exc, path)}")
    except AudioError:
        raise
    reason = errors[-1] if errors else "unknown format"  # FFmpeg's, the last decoder tried
    raise AudioError(
        f"{path}: cannot decode as audio ({reason}): not a format moodscope reads (MP3, Ogg Vorbis/Opus, FLAC, "
        "WAV, AIFF, M4A/AAC) or a damaged file"
    )


def stream_audio(path: str | os.PathLike, *, block_seconds: float = BLOCK_SECONDS) -> Generator[np.ndarray, None, None]:
    """Decode ``path`` block by block as mono float32 at ``SAMPLE_RATE`` with bounded memory.

    Yields arrays [shape=(n,)]; their concatenation is the whole resampled track, the same samples
    whatever ``block_seconds`` (a file of one block is resampled in one call, longer ones by a stream;
    one block is decoded ahead). Raises :class:`AudioError` naming the file when it cannot be decoded.
    """
    import soxr

    path = Path(path)
    rate, blocks = _open_blocks(path, block_seconds)
    resampler = None  # a resampling stream, for a file of more than one block
    produced = 0  # samples at SAMPLE_RATE
    native = 0  # samples at the file's rate
    try:
        block = next(blocks, None)
        while block is not None:
            check_samples(block, str(path), offset=native / rate, rate=rate)
            native += len(block)
            following = next(blocks, None)
            if rate == SAMPLE_RATE:
                out = block
            elif following is None and resampler is None:
                # the whole file in one block: the stream's samples in one call, without its buffers and tail
                out = resample(block, rate)
            else:
                if resampler is None:
                    resampler = soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32", quality=RESAMPLE_QUALITY)
                out = resampler.resample_chunk(block)
            if len(out):
                produced += len(out)
                yield out
            block = following
        if resampler is not None:
            tail = resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
            if len(tail):
                produced += len(tail)
                yield tail
    except AudioError:
        raise
    except Exception as exc:
        reason = _reason(exc, path)
        raise AudioError(f"{path}: decoding failed after {produced / SAMPLE_RATE:.1f} s ({reason})") from exc
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
    y = parts[0] if len(parts) == 1 else np.concatenate(parts)
    return y if limit is None else y[:limit]


def resample(y: np.ndarray, sr: float, *, target: int = SAMPLE_RATE, quality: str = RESAMPLE_QUALITY) -> np.ndarray:
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


MAX_CHANNELS = 64
"""An array axis this short or shorter can be the channels of (samples, channels) audio."""


def audio_from_array(y, sr, *, source: str = "audio array") -> np.ndarray:
    """Audio given as an array -> mono float32 [shape=(n,)] at ``SAMPLE_RATE``; see the module docstring.

    ``y`` [shape=(n,), (n, channels) or (channels, n)] is float, or integer PCM scaled by its full
    range. Raises :class:`AudioError` naming ``source`` for a bad sample rate, an empty or
    non-numeric array, an unknown layout and damaged samples (NaN, infinity, beyond
    ±``MAX_SAMPLE_MAGNITUDE``).
    """
    try:
        rate = float(sr)
    except (TypeError, ValueError):
        raise AudioError(f"{source}: the sample rate must be a number of Hz, not {sr!r}") from None
    if not (math.isfinite(rate) and rate > 0):
        raise AudioError(f"{source}: the sample rate must be positive (got {sr!r}); e.g. analyze(y, sr=44100)")
    try:
        y = np.asarray(y)
    except (TypeError, ValueError) as exc:
        raise AudioError(f"{source}: not an array of audio samples ({exc})") from None
    if y.dtype.kind in "iu":
        if y.dtype.itemsize > 4:
            raise AudioError(
                f"{source}: {y.dtype} samples are not PCM; give int16/int32 PCM or floats in [-1, 1] "
                "(e.g. y.astype(np.int16) if that is what the data is)"
            )
        info = np.iinfo(y.dtype)
        full = 2.0 ** (8 * y.dtype.itemsize - 1)
        zero = 0.0 if info.min < 0 else full  # unsigned PCM (8-bit WAV) is centred on half its range
        y = ((y.astype(np.float64) - zero) / full).astype(np.float32)
    elif y.dtype.kind != "f":
        raise AudioError(f"{source}: expected numbers (float or integer PCM samples), got an array of {y.dtype}")
    if y.size == 0:
        raise AudioError(f"{source}: the array is empty")
    if y.ndim == 2:
        if min(y.shape) > MAX_CHANNELS:
            raise AudioError(
                f"{source}: cannot tell samples from channels in shape {y.shape}; give (samples,), "
                "(samples, channels) or (channels, samples)"
            )
        if y.shape[0] < y.shape[1]:  # (channels, n) -> (n, channels)
            y = y.T
    elif y.ndim != 1:
        raise AudioError(f"{source}: expected (samples,), (samples, channels) or (channels, samples), got {y.shape}")
    check_samples(y, source, rate=rate)
    mono = _to_mono(y.astype(np.float32, copy=False))
    return resample(mono, int(rate) if rate.is_integer() else rate)


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
    return y[: n * SEGMENT_SAMPLES].reshape(n, SEGMENT_SAMPLES)


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
