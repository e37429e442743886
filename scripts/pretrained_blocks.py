"""Descriptors of the 4Q segments from other pretrained networks found on PyPI with their weights, as
extra blocks for ``scripts/levers.py`` (docs/models.md, "Levers tried").

Two wheels carry usable weights (checked with ``pip download``; the others download at run time):

- ``basic-pitch`` 0.4.0 (Spotify, Apache-2.0): note, onset and pitch-contour posteriors of polyphonic
  transcription. :func:`melodic_features` turns them into 28 melodic, expressive and polyphony features
  per segment (the "novel features" direction of Panda et al. 2018, who made the 4Q dataset): polyphony,
  onset rate, register, predominant-melody range, steps, leaps, vibrato and glides, interval classes of
  simultaneous notes, key mode and clarity of the note profile.
- ``vibenet`` 0.1.0 (GPL-3.0): an EfficientNet-B0 distilled on the Free Music Archive to predict
  Spotify-style audio features (valence, energy, danceability, ...). Its 7 outputs (``out``), the
  256-unit trunk (``trunk``) and the 1280-unit pooled backbone (``pool``) of every segment.

Each block is written as ``OUT/<name>/levers-4q-tonal.npz`` (``tonal``, ``track_ids``), the shape
``levers.py run --tonal OUT/<name>`` reads, so that every tonal lever (``tonal``, ``pen-tonal-scaled``,
``valence-tonal``, ...) runs on it beside the shipped recipe. The weights are read from the wheels
and never enter moodscope.

Usage (from the repository root)::

    pip download --no-deps basic-pitch==0.4.0 vibenet==0.1.0 -d WHEELS
    python scripts/pretrained_blocks.py basic-pitch WHEELS/basic_pitch-0.4.0-py2.py3-none-any.whl --out BLOCKS
    python scripts/pretrained_blocks.py vibenet WHEELS/vibenet-0.1.0-py3-none-any.whl --out BLOCKS
    python scripts/levers.py run --cache DIR --tonal BLOCKS/vibenet-trunk --out R shipped pen-tonal-scaled
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
import zipfile
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache, partial
from pathlib import Path

import numpy as np
from levers import _key_correlations  # the Krumhansl-Kessler key correlations of the tonal features

from moodscope.constants import SAMPLE_RATE, SEGMENT_SAMPLES

# --- basic-pitch ---------------------------------------------------------------------------------
BP_MODEL = "basic_pitch/saved_models/icassp_2022/nmp.onnx"
BP_HOP = 256  # basic-pitch's FFT hop at 22 050 Hz, its (and moodscope's) sample rate
BP_WINDOW = 43_844  # samples per model input (2 s less one hop)
BP_OVERLAP_FRAMES = 30
BP_FPS = SAMPLE_RATE / BP_HOP
BP_MIDI0 = 21  # A0, the lowest of its 88 notes
NOTE_ACTIVE = 0.3  # basic-pitch's default frame threshold
ONSET_PEAK = 0.5  # and its onset threshold
VOICED = 0.3  # contour salience of a frame with a predominant melody
MELODIC_NAMES = (
    *("log_polyphony_mean", "polyphony_std", "note_activity", "log_onset_rate"),
    *("register_mean", "register_std", "low_share", "high_share", "pitch_range"),
    *("voiced", "melody_mean", "melody_std", "melody_range", "melody_step", "melody_leaps"),
    *("vibrato_cents", "glide", "melody_salience", "melody_direction"),
    *(f"interval_class_{i}" for i in range(1, 7)),
    *("mode", "key_clarity", "note_entropy"),
)

# --- vibenet -------------------------------------------------------------------------------------
VIBENET_MODEL = "vibenet/artifacts/efficientnet_model.onnx"
VIBENET_SR = 16_000
VIBENET_OUTPUTS = {"out": "out", "trunk": "gelu", "pool": "view"}  # block -> graph tensor


@lru_cache(maxsize=2)
def _session(network: str, wheel: Path):
    """An ONNX Runtime session (one thread) of ``network``'s graph, read from its wheel."""
    import onnxruntime as ort

    with zipfile.ZipFile(wheel) as z:
        model = z.read(BP_MODEL if network == "basic-pitch" else VIBENET_MODEL)
    if network == "vibenet":
        model = vibenet_graph(model)
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    return ort.InferenceSession(model, options)


def basic_pitch_posteriors(wheel: Path, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Note (frames x 88), onset (frames x 88) and contour (frames x 264) posteriors of ``y`` at
    SAMPLE_RATE, windowed and unwrapped as ``basic_pitch.inference`` does."""
    overlap = BP_OVERLAP_FRAMES * BP_HOP
    padded = np.concatenate([np.zeros(overlap // 2, np.float32), y.astype(np.float32)])
    starts = range(0, len(padded), BP_WINDOW - overlap)
    windows = np.stack([np.pad(padded[s : s + BP_WINDOW], (0, max(0, s + BP_WINDOW - len(padded)))) for s in starts])
    names = ["StatefulPartitionedCall:1", "StatefulPartitionedCall:2", "StatefulPartitionedCall:0"]
    outs = [
        _session("basic-pitch", wheel).run(names, {"serving_default_input_2:0": windows[i : i + 16, :, None]})
        for i in range(0, len(windows), 16)
    ]
    n_frames = int(len(y) * BP_FPS / SAMPLE_RATE)
    half = BP_OVERLAP_FRAMES // 2

    def unwrap(k: int) -> np.ndarray:
        a = np.concatenate([o[k] for o in outs])[:, half:-half]
        return a.reshape(-1, a.shape[-1])[:n_frames]

    return unwrap(0), unwrap(1), unwrap(2)


def melodic_features(note: np.ndarray, onset: np.ndarray, contour: np.ndarray) -> np.ndarray:
    """The :data:`MELODIC_NAMES` of one segment's basic-pitch posteriors."""
    seconds = len(note) / BP_FPS
    active = note > NOTE_ACTIVE
    polyphony = active.sum(1)
    midi = np.arange(note.shape[1]) + BP_MIDI0
    weight = note.sum(0)
    total = weight.sum() + 1e-9
    register = float((weight * midi).sum() / total)
    spread = float(np.sqrt((weight * (midi - register) ** 2).sum() / total))
    pitches = np.nonzero(active)[1] + BP_MIDI0
    pitch_range = float(np.ptp(np.percentile(pitches, [5, 95]))) if len(pitches) > 5 else 0.0
    peaks = (onset[1:-1] > ONSET_PEAK) & (onset[1:-1] >= onset[:-2]) & (onset[1:-1] > onset[2:])

    salience = contour.max(1)
    melody = contour.argmax(1) / 3.0 + BP_MIDI0  # 3 contour bins per semitone
    voiced = salience > VOICED
    melodic = [register, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]  # mean, std, range, step, leaps, vibrato, glide, direction
    consecutive = voiced[1:] & voiced[:-1]
    if voiced.sum() > 10 and consecutive.any():
        sung = melody[voiced]
        steps = np.abs(np.diff(melody))[consecutive]
        smooth = np.convolve(melody, np.ones(15) / 15, mode="same")  # about 0.17 s
        deviation = (melody - smooth)[voiced]
        small = deviation[np.abs(deviation) < 1.0]
        slope = np.diff(smooth)[consecutive]
        melodic = [
            *(float(sung.mean()), float(sung.std()), float(np.ptp(np.percentile(sung, [5, 95])))),
            *(float(np.median(steps)), float((steps > 1.5).mean())),
            float(small.std() * 100) if len(small) > 5 else 0.0,  # cents
            float(((np.abs(slope) > 0.03) & (np.abs(slope) < 0.3)).mean()),
            float(np.sign(slope).mean()),
        ]
    classes = np.zeros(7)
    for frame in np.nonzero(polyphony >= 2)[0][::2]:
        p = np.nonzero(active[frame])[0]
        d = np.abs(p[:, None] - p[None, :])[np.triu_indices(len(p), 1)] % 12
        classes += np.bincount(np.minimum(d, 12 - d), minlength=7)[:7]
    classes = classes[1:] / (classes[1:].sum() + 1e-9)
    profile = np.zeros(12)
    np.add.at(profile, midi % 12, weight)
    keys = _key_correlations(profile[:, None])[:, :, 0]  # (major/minor, tonic)
    mode, clarity = keys[0].max() - keys[1].max(), keys.max()
    shares = profile / (profile.sum() + 1e-9)
    return np.array(
        [
            *(np.log1p(polyphony.mean()), polyphony.std(), active.any(1).mean(), np.log1p(peaks.sum() / seconds)),
            *(register, spread, weight[: 48 - BP_MIDI0].sum() / total, weight[72 - BP_MIDI0 :].sum() / total),
            *(pitch_range, voiced.mean(), *melodic[:-1], salience.mean(), melodic[-1]),
            *classes,
            *(mode, clarity, -(shares * np.log(shares + 1e-12)).sum()),
        ],
        dtype=np.float64,
    )


def basic_pitch_clip(wheel: Path, segments: np.ndarray) -> dict[str, np.ndarray]:
    note, onset, contour = basic_pitch_posteriors(wheel, segments.reshape(-1))
    bounds = np.round(np.arange(len(segments) + 1) * SEGMENT_SAMPLES / BP_HOP).astype(int)
    rows = [melodic_features(note[a:b], onset[a:b], contour[a:b]) for a, b in itertools.pairwise(bounds)]
    return {"melodic": np.nan_to_num(np.stack(rows))}


def _vibenet_mel(y: np.ndarray) -> np.ndarray:
    """VibeNet's input: 128-band mel power in dB (1024-point FFT, 640-sample Hann window, hop 320, 16 kHz,
    80 dB floor), as ``vibenet.core.extract_mel``."""
    import librosa
    from numpy.lib.stride_tricks import sliding_window_view
    from scipy.signal import get_window

    frames = sliding_window_view(y, 640)[::320] * get_window("hann", 640, fftbins=True)[None]
    spec = np.fft.rfft(frames, n=1024, axis=-1)
    mel = librosa.filters.mel(sr=VIBENET_SR, n_fft=1024, n_mels=128, fmin=0.0, fmax=8000.0) @ np.abs(spec.T) ** 2
    db = 10.0 * np.log10(np.maximum(1e-10, mel))
    return np.maximum(db, db.max() - 80.0).astype(np.float32)


def vibenet_graph(original: bytes) -> bytes:
    """The wheel's graph with its batch size freed (it reshapes to 1 x 1280) and the trunk and pooled
    backbone as outputs too."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load_from_string(original)
    for init in model.graph.initializer:
        if init.name == "val_482":  # the reshape's target shape [1, 1280]
            init.CopyFrom(numpy_helper.from_array(np.array([-1, 1280], np.int64), init.name))
    for tensor in ("gelu", "view"):
        model.graph.output.append(helper.make_tensor_value_info(tensor, TensorProto.FLOAT, None))
    return model.SerializeToString()


def vibenet_clip(wheel: Path, segments: np.ndarray) -> dict[str, np.ndarray]:
    import soxr

    y = soxr.resample(segments.reshape(-1).astype(np.float32), SAMPLE_RATE, VIBENET_SR)
    n = 5 * VIBENET_SR
    mels = np.stack([_vibenet_mel(y[i * n : (i + 1) * n]) for i in range(len(segments))])
    values = _session("vibenet", wheel).run(list(VIBENET_OUTPUTS.values()), {"x": mels})
    return {f"vibenet-{block}": v.astype(np.float64) for block, v in zip(VIBENET_OUTPUTS, values)}


def _clip(describe: Callable[[Path, np.ndarray], dict[str, np.ndarray]], wheel: Path, path: Path) -> dict:
    from moodscope.audio import load_audio, segment_audio

    return describe(wheel, segment_audio(load_audio(path), source=str(path)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("network", choices=["basic-pitch", "vibenet"])
    parser.add_argument("wheel", type=Path, help="the network's wheel, from pip download")
    parser.add_argument("--out", type=Path, required=True, help="folder of the blocks (one subfolder each)")
    parser.add_argument("--root", type=Path, default=Path("../shared/data/4q/MER_audio_taffc_dataset"))
    parser.add_argument("--workers", type=int, default=2, help="processes (each one core)")
    args = parser.parse_args(argv)

    from moodscope.datasets import load_dataset
    from moodscope.features.cache import atomic_write_npz

    describe = basic_pitch_clip if args.network == "basic-pitch" else vibenet_clip
    items = load_dataset("4q", args.root).audio_items()
    start = time.time()
    with ProcessPoolExecutor(args.workers) as pool:
        clips = list(pool.map(partial(_clip, describe, args.wheel.resolve()), [p for _, p in items], chunksize=4))
    track_ids = np.concatenate([[t] * len(next(iter(c.values()))) for (t, _), c in zip(items, clips)])
    for block in clips[0]:
        folder = args.out / block
        folder.mkdir(parents=True, exist_ok=True)
        values = np.concatenate([c[block] for c in clips])
        atomic_write_npz(folder / "levers-4q-tonal.npz", {"tonal": values, "track_ids": track_ids})
        print(f"{block}: {values.shape[1]} values per segment -> {folder}", flush=True)
    print(f"{len(items)} clips in {time.time() - start:.0f} s ({args.workers} processes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
