"""musicnn in PyTorch: the pretrained music tagger of Pons & Serra (2019) as an embedding extractor.

A re-implementation of ``musicnn.models.build_musicnn`` (the ``musicnn`` PyPI package 0.1.0, ISC
licence, Music Technology Group, Universitat Pompeu Fabra) that loads the ``MSD_musicnn`` and
``MTT_musicnn`` weights converted by ``scripts/convert_musicnn.py``. No TensorFlow is needed.

Input: log-mel patches (:mod:`moodscope.features.musicnn_input`, numpy): 16 kHz audio, STFT n_fft
512 / hop 256 (Hann, centred, zero padded), 96 Slaney mel bands (librosa defaults), power spectrum,
``log10(10000 * mel + 1)``; patches of 187 frames (2.992 s), non-overlapping, a trailing remainder
dropped (as ``musicnn.extractor``).

This float32 network is the reference (checked against TensorFlow's musicnn in the tests) from which
``scripts/export_onnx.py`` builds the int8 ONNX graphs that ``analyze`` runs
(:mod:`moodscope.analysis.musicnn_onnx`); training research and that export use it, analysis does not.

Network (T = 187 frames, F = 96 bands; BN = batch norm with TF's epsilon 1e-3; ReLU before BN):

* input BN (a single scalar affine);
* front-end, every branch conv -> ReLU -> BN -> max over frequency:
  timbral 7x38 and 7x67 kernels (time x freq, time zero-padded by 3, freq 'valid'), 204 filters each;
  temporal 128x1, 64x1 and 32x1 kernels ('same' in TF's sense: 63/64, 31/32, 15/16 zero frames
  before/after), 51 filters each; concatenated: 561 channels per frame;
* mid-end: three 1-D convs of width 7 (zero-padded by 3), 64 filters, conv -> ReLU -> BN, the second
  and third with residual connections; the front-end and the three outputs are concatenated into
  753 channels per frame;
* back-end: max and mean over time (753 + 753; flattened interleaved, max0, mean0, max1, ...), BN,
  dense 200 + ReLU + BN (the "penultimate" layer), dense 50 -> sigmoid (the taggram).

The outputs of :func:`musicnn_embeddings` per patch are ``taggram`` (50 tag probabilities),
``penultimate`` (200), ``max_pool`` and ``mean_pool`` (753 each: the mid-end pooled over time;
musicnn's extractor calls them the same). ``tags`` names the taggram columns.

Deviation from the reference code, on purpose: ``musicnn.extractor.batch_data`` casts the mel
spectrogram to float16 and then evaluates ``log10(10000 * x + 1)`` in float16, which overflows to
``inf`` for mel power above ~6.55 (1-3 % of bins of ordinary commercial music) and saturates the
whole patch to a constant output. The checkpoints' input batch-norm statistics (mean 2.20 for MSD)
show training saw finite values, so here the float16 *storage* is kept (the mel is rounded to
float16, as the training data were) but the logarithm is taken in float32.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from moodscope.errors import AudioError, ModelError
from moodscope.features.musicnn_input import (  # noqa: F401 (musicnn's input, re-exported here)
    HOP,
    MUSICNN_SR,
    N_FFT,
    N_MELS,
    N_MIDEND,
    N_PENULTIMATE,
    N_TAGS,
    NETWORKS,
    OUTPUT_DIMS,
    PATCH_FRAMES,
    PATCH_SECONDS,
    musicnn_log_mel,
    musicnn_patches,
    patch_starts,
    patch_times,
    to_musicnn_rate,
)
from moodscope.paths import WEIGHTS_DIR

BN_EPS = 1e-3  # tf.compat.v1.layers.batch_normalization default


def weights_path(name: str = "msd") -> Path:
    """The safetensors file of model ``name`` ("msd" = MSD_musicnn, "mtt" = MTT_musicnn)."""
    if name not in NETWORKS:
        raise ModelError(f"unknown musicnn model {name!r}: choose one of {', '.join(NETWORKS)}")
    return WEIGHTS_DIR / f"musicnn_{name}.safetensors"


class FrozenBatchNorm(nn.Module):
    """Inference-only batch norm with TF's epsilon, over dimension 1."""

    weight: torch.Tensor
    bias: torch.Tensor
    running_mean: torch.Tensor
    running_var: torch.Tensor

    def __init__(self, n: int) -> None:
        super().__init__()
        for buf in ("weight", "bias", "running_mean", "running_var"):
            self.register_buffer(buf, torch.zeros(n))

    def scale_shift(self) -> tuple[torch.Tensor, torch.Tensor]:
        scale = self.weight * torch.rsqrt(self.running_var + BN_EPS)
        return scale, self.bias - self.running_mean * scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale, shift = self.scale_shift()
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return x * scale.view(shape) + shift.view(shape)


class FrontEndBranch(nn.Module):
    """conv2d (time x freq) -> ReLU -> BN -> max over frequency, as one fused, exact shortcut.

    BN is a per-channel affine map ``s * v + t``; for ``s >= 0`` the frequency maximum commutes with
    it, the ReLU and the bias; for ``s < 0`` it becomes the minimum, i.e. minus the maximum of the
    convolution with negated filters. So the filters of channels with ``s < 0`` are negated and a
    single max pass over the large (B, C, T, F') map replaces ReLU, BN and max (exact).
    """

    def __init__(self, n_filters: int, kernel: tuple[int, int], time_pad: tuple[int, int]) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, n_filters, kernel)
        self.bn = FrozenBatchNorm(n_filters)
        self.time_pad = time_pad
        self._prepared: dict[tuple, tuple[torch.Tensor, ...]] = {}

    @property
    def _bias(self) -> torch.Tensor:
        bias = self.conv.bias
        assert bias is not None  # the convolution is built with a bias
        return bias

    def prepared(self, layout: Callable[[torch.Tensor], torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """``(filters, sign, bias, scale, shift)``: the filters laid out by ``layout`` (the channels of
        negative BN scale negated); the rest of shape (1, C, 1).

        Computed once per layout and kept (keyed by the parameters' versions, so loading other weights
        in place recomputes them).
        """
        params = (self.conv.weight, self._bias, *self.bn.buffers())
        key = (layout.__name__, *(p._version for p in params), *(p.data_ptr() for p in params))
        if key not in self._prepared:
            with torch.no_grad():
                scale, shift = self.bn.scale_shift()
                sign = torch.where(scale >= 0, 1.0, -1.0)
                filters = layout(self.conv.weight * sign.view(-1, 1, 1, 1))
                column = (sign, self._bias, scale, shift)
                self._prepared[key] = (filters, *(v.reshape(1, -1, 1).clone() for v in column))
        return self._prepared[key]

    @staticmethod
    def taps_filters(weight: torch.Tensor) -> torch.Tensor:
        """(C, 1, kt, kf) filters -> those of the convolution :meth:`forward` runs: (C, kt, 1, kf)."""
        return weight.transpose(1, 2).contiguous(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, T, F) float32 -> (B, C, T) float32."""
        filters, sign, bias, scale, shift = self.prepared(FrontEndBranch.taps_filters)
        padded = F.pad(x, (0, 0, *self.time_pad))
        # the kt time taps become input channels and the tensors go channels-last: the same
        # convolution, ~20 % faster in oneDNN, and the max over frequency then runs over contiguous C
        kt = filters.shape[1]
        n_out = padded.shape[2] - kt + 1
        taps = torch.cat([padded[:, :, i : i + n_out] for i in range(kt)], dim=1)  # (B, kt, T, F)
        z = F.conv2d(taps.contiguous(memory_format=torch.channels_last), filters)  # (B, C, T, F')
        extreme = max_over_frequency(z) * sign  # max over freq (min if s < 0)
        return torch.relu(extreme + bias) * scale + shift


def max_over_frequency(z: torch.Tensor) -> torch.Tensor:
    """(B, C, T, F) -> (B, C, T): the maximum over the last axis, as a max pooling (oneDNN's pooling on
    a channels-last ``z``; a ``MaxPool`` node in the exported ONNX graph, which int8 quantization covers)."""
    # int(): a constant kernel in the exported graph; [..., 0] rather than squeeze(3), which exports as an If
    return F.max_pool2d(z, (1, int(z.shape[3])))[..., 0]


class TemporalBranch(FrontEndBranch):
    """A front-end branch with a (k x 1) kernel, computed polyphase: same result, about twice as fast.

    A conv over time with a single input plane makes a poor GEMM. Splitting time into ``P`` phases
    (``x[P * u + c]`` becomes input channel ``c`` at step ``u``) turns it into a conv with ``P`` input
    channels, ``P`` times as many output channels (one per output phase ``r``) and a kernel of
    ``ceil((k + P - 1) / P)`` steps, whose tap ``(r, c, v)`` is the original tap ``j = P * v + c - r``.
    """

    PHASES = 16

    @staticmethod
    def polyphase_weight(weight: torch.Tensor) -> torch.Tensor:
        """(C, 1, k, 1) filters -> those of the polyphase convolution: (C * P, P, steps, 1)."""
        n_out, _, k, _ = weight.shape
        p = TemporalBranch.PHASES
        steps = -(-(k + p - 1) // p)
        r = torch.arange(p).view(p, 1, 1)
        c = torch.arange(p).view(1, p, 1)
        v = torch.arange(steps).view(1, 1, steps)
        j = p * v + c - r  # (r, c, v)
        j = torch.where((j >= 0) & (j < k), j, k)  # index k of the zero-padded taps is 0
        taps = F.pad(weight.view(n_out, k), (0, 1))[:, j]  # (out, r, c, v)
        return taps.reshape(n_out * p, p, steps, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, T, F) float32 -> (B, C, T) float32, as :meth:`FrontEndBranch.forward`."""
        weight, sign, bias, scale, shift = self.prepared(TemporalBranch.polyphase_weight)
        batch, _, n_time, n_freq = x.shape
        p, steps = self.PHASES, weight.shape[2]
        n_steps = (n_time + p - 1) // p  # not -(-n // p): ONNX divides integers truncating
        length = p * (n_steps + steps - 1)
        before = self.time_pad[0]
        phased = F.pad(x, (0, 0, before, length - n_time - before)).view(batch, n_steps + steps - 1, p, n_freq)
        phased = phased.transpose(1, 2)  # (B, P, steps, F)
        z = F.conv2d(phased, weight)  # (B, C * P, n_steps, F)
        m = max_over_frequency(z).view(batch, -1, p, n_steps).transpose(2, 3).reshape(batch, -1, n_steps * p)
        return torch.relu(m[:, :, :n_time] * sign + bias) * scale + shift


class MidEndLayer(nn.Module):
    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(n_in, n_out, 7, padding=3)
        self.bn = FrozenBatchNorm(n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(torch.relu(self.conv(x)))


class MusiCNN(nn.Module):
    """musicnn (``build_musicnn``, 96 mel bands, 50 tags). ``forward`` takes (B, T, 96) log-mel."""

    tags: tuple[str, ...] = ()
    """Names of the taggram columns (set by :func:`load_musicnn`)."""
    name: str = ""
    """"msd" or "mtt" (set by :func:`load_musicnn`)."""

    def __init__(
        self, n_tags: int = N_TAGS, n_mels: int = N_MELS, midend_filters: int = 64, units: int = N_PENULTIMATE
    ) -> None:
        super().__init__()
        timbral_filters, temporal_filters = int(1.6 * 128), int(1.6 * 32)  # 204, 51
        self.input_bn = FrozenBatchNorm(1)
        self.timbral = nn.ModuleList(
            FrontEndBranch(timbral_filters, (7, int(frac * n_mels)), (3, 3)) for frac in (0.4, 0.7)
        )
        # TF 'same' padding of an even kernel k: (k - 1) // 2 before, k // 2 after
        self.temporal = nn.ModuleList(
            TemporalBranch(temporal_filters, (k, 1), ((k - 1) // 2, k // 2)) for k in (128, 64, 32)
        )
        n_front = 2 * timbral_filters + 3 * temporal_filters  # 561
        self.midend = nn.ModuleList(
            MidEndLayer(n_front if i == 0 else midend_filters, midend_filters) for i in range(3)
        )
        n_mid = n_front + 3 * midend_filters  # 753
        self.pool_bn = FrozenBatchNorm(2 * n_mid)
        self.penultimate = nn.Linear(2 * n_mid, units)
        self.penultimate_bn = FrozenBatchNorm(units)
        self.output = nn.Linear(units, n_tags)

    def forward(self, mel: torch.Tensor) -> dict[str, torch.Tensor]:
        """``mel``: (B, T, 96) float32."""
        return self.from_front(self.front_end(mel))

    def front_end(self, mel: torch.Tensor) -> torch.Tensor:
        """The front-end's output, (B, T, 96) log-mel -> (B, 561, T) float32 (90 % of the cost)."""
        x = self.input_bn(mel.unsqueeze(1))  # (B, 1, T, F)
        branches = (*self.timbral, *self.temporal)
        return torch.cat([branch(x) for branch in branches], dim=1)

    def from_front(self, front: torch.Tensor) -> dict[str, torch.Tensor]:
        """Mid-end and back-end on the front-end's output (B, 561, T), any T: the outputs of :meth:`forward`."""
        h1 = self.midend[0](front)
        h2 = self.midend[1](h1) + h1
        h3 = self.midend[2](h2) + h2
        mid = torch.cat([front, h1, h2, h3], dim=1)  # (B, 753, T)
        max_pool, mean_pool = mid.amax(dim=2), mid.mean(dim=2)
        pooled = torch.stack([max_pool, mean_pool], dim=2).flatten(1)  # TF's concat on a trailing axis
        penultimate = self.penultimate_bn(torch.relu(self.penultimate(self.pool_bn(pooled))))
        logits = self.output(penultimate)
        return {
            "taggram": torch.sigmoid(logits),
            "logits": logits,
            "penultimate": penultimate,
            "max_pool": max_pool,
            "mean_pool": mean_pool,
        }


@functools.cache
def _load(name: str) -> tuple[MusiCNN, tuple[str, ...]]:
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = weights_path(name)
    if not path.is_file():
        raise ModelError(f"{path} is missing: run scripts/convert_musicnn.py (see its docstring)")
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    tags = tuple(json.loads(meta["tags"]))
    model = MusiCNN(n_tags=len(tags))
    state = {k: v.float() for k, v in load_file(str(path)).items()}
    model.load_state_dict(state, strict=True)
    model.eval().requires_grad_(False)
    model.tags, model.name = tags, name
    return model, tags


def load_musicnn(name: str = "msd") -> MusiCNN:
    """The pretrained musicnn ("msd": MSD_musicnn, "mtt": MTT_musicnn), in eval mode, on CPU.

    The model is cached and shared: treat it as read-only. Its ``tags`` attribute names the taggram
    columns. Call it on a (B, T, 96) float32 log-mel tensor (see :func:`musicnn_log_mel`; T = 187
    is what it was trained on) to get a dict of ``taggram``, ``logits``, ``penultimate``, ``max_pool``
    and ``mean_pool`` tensors.
    """
    return _load(name)[0]


def musicnn_tags(name: str = "msd") -> tuple[str, ...]:
    return _load(name)[1]


def run_musicnn(
    patches: np.ndarray,
    *,
    model: nn.Module | None = None,
    batch_size: int = 8,
    outputs: tuple[str, ...] | None = None,
) -> dict[str, np.ndarray]:
    """Run the network on (n, T, 96) log-mel patches in batches; returns float32 arrays of n rows."""
    model = load_musicnn() if model is None else model
    keys = tuple(OUTPUT_DIMS) if outputs is None else outputs
    parts: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    with torch.inference_mode():
        x_all = torch.from_numpy(np.ascontiguousarray(patches, dtype=np.float32))
        for i in range(0, len(x_all), batch_size):
            out = model(x_all[i : i + batch_size])
            for k in keys:
                parts[k].append(out[k].float().numpy())
    return {k: np.concatenate(v) if v else np.zeros((0, OUTPUT_DIMS.get(k, 0)), np.float32) for k, v in parts.items()}


def musicnn_embeddings(
    y: np.ndarray,
    sr: int,
    *,
    model: nn.Module | None = None,
    name: str = "msd",
    batch_size: int = 8,
    hop_seconds: float | None = None,
    num_threads: int | None = None,
) -> dict[str, Any]:
    """musicnn outputs for every 2.992-s patch of ``y`` (mono or (channels, n) audio at rate ``sr``).

    Returns a dict with per-patch float32 arrays ``taggram`` (n, 50), ``penultimate`` (n, 200),
    ``max_pool`` and ``mean_pool`` (n, 753), plus ``times`` (n, 2; start and end in seconds),
    ``tags`` (the 50 tag names) and ``model`` ("msd" or "mtt"). Patches do not overlap unless
    ``hop_seconds`` is given; a remainder shorter than a patch is dropped, and audio shorter than
    one patch is repeat-padded to one.

    Speed: about 1.4 GMAC a patch (80 patches for 4 minutes), 90 % of it in the front-end convs.
    ``num_threads`` temporarily overrides torch's thread count; when other processes keep the cores
    busy, ``num_threads=1`` avoids OpenMP threads spin-waiting for each other (several times slower).
    """
    model = load_musicnn(name) if model is None else model
    y16 = to_musicnn_rate(y, sr)
    if y16.size == 0:
        raise AudioError("cannot embed empty audio")
    hop_frames = PATCH_FRAMES if hop_seconds is None else max(1, round(hop_seconds * MUSICNN_SR / HOP))
    patches = musicnn_patches(musicnn_log_mel(y16), hop_frames=hop_frames)
    previous = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    try:
        out: dict[str, Any] = run_musicnn(patches, model=model, batch_size=batch_size)
    finally:
        if num_threads is not None:
            torch.set_num_threads(previous)
    out["times"] = patch_times(len(patches), hop_frames=hop_frames)
    out["tags"] = list(getattr(model, "tags", ()) or musicnn_tags(name))
    out["model"] = getattr(model, "name", "") or name
    return out
