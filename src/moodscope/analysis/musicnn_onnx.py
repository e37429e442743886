"""musicnn as ``analyze`` runs it: int8 ONNX graphs in ONNX Runtime, without torch.

``scripts/export_onnx.py`` builds ``weights/musicnn_{msd,mtt}_int8.onnx`` from the float32 PyTorch
musicnn (:mod:`moodscope.models.musicnn`, the reference checked against TensorFlow's): the network is
exported as PyTorch computes it (timbral branches over time taps, temporal ones polyphase, each
front-end convolution followed by the max over frequency), then its eight convolutions and the max
pools are quantized to int8 (static QDQ: uint8 activations, int8 per-channel weights in [-64, 64],
MinMax ranges calibrated on a recorded set of real 4Q patches); batch norms, ReLUs, sums and
concatenations stay float32. The 7-bit weights (``reduce_range``) make the outputs the same on every
x86 CPU: without VNNI, ONNX Runtime adds pairs of uint8 x int8 products in saturating int16, which
2 * 255 * 64 = 32640 never overflows (full-range weights did, on about a third of the front-end's
outputs: docs/speed.md). The front-end channels of musicnn's dead filters, which output 0.0 on every input,
are left out of the convolutions and put back as 0.0 after the max pool (``scripts/prune_onnx.py``: the
same outputs bit for bit with a third of the multiply-adds). The graph's metadata records the tag names
(``tags``) and how it was made (``moodscope``: the source weights' SHA-256, the calibration clips, the
quantization settings, the channels left out, the versions).

On a CPU with AVX-512 VNNI (and AMX-int8) ONNX Runtime's int8 convolutions are about 1.5x as fast
as PyTorch's bfloat16 ones and 4x as fast as float32 (docs/speed.md); without VNNI they are slower.
Outputs differ from float32 musicnn's by about 0.06 (MSD) and 0.04 (MTT) on average in the penultimate
layer (its standard deviation over music: 0.5-0.75); the ``accurate`` head is trained on these very
descriptors.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import numpy as np

from moodscope.errors import ModelError
from moodscope.features.musicnn_input import NETWORKS, OUTPUT_DIMS
from moodscope.paths import WEIGHTS_DIR

ONNX_OUTPUTS = ("taggram", "penultimate", "mean_pool", "max_pool")
"""The graphs' outputs, in order: (B, 50) tag probabilities, (B, 200), (B, 753), (B, 753)."""
INPUT_NAME = "mel"
"""The graphs' input: (B, 187, 96) float32 log-mel patches (:mod:`moodscope.features.musicnn_input`)."""


def onnx_path(net: str) -> Path:
    """The int8 ONNX graph of musicnn ``net`` ("msd" or "mtt") shipped in the package."""
    if net not in NETWORKS:
        raise ModelError(f"unknown musicnn network {net!r}: choose one of {', '.join(NETWORKS)}")
    return WEIGHTS_DIR / f"musicnn_{net}_int8.onnx"


@functools.cache
def session(net: str) -> Any:
    """The ONNX Runtime session of ``net`` in this process, created on first use, with one thread (a
    worker among one per core). A forked worker inherits its parent's session and uses it as is: with
    one intra-op thread ONNX Runtime starts no thread pool, so nothing is lost in the fork
    (tests/test_musicnn_onnx.py checks it)."""
    import onnxruntime as ort

    path = onnx_path(net)
    if not path.is_file():
        raise ModelError(f"{path} is missing: reinstall moodscope, or rebuild it with scripts/export_onnx.py")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


@functools.cache
def graph_metadata(net: str) -> dict[str, str]:
    """The graph's metadata: ``tags`` (JSON list of the 50 tag names) and ``moodscope`` (JSON: how it was built)."""
    return dict(session(net).get_modelmeta().custom_metadata_map)


def musicnn_tags(net: str) -> tuple[str, ...]:
    """The names of the taggram columns of ``net``."""
    return tuple(json.loads(graph_metadata(net)["tags"]))


def run_musicnn_onnx(patches: np.ndarray, net: str, *, batch_size: int = 3) -> dict[str, np.ndarray]:
    """musicnn ``net`` on log-mel patches [shape=(n, 187, 96)] in batches of ``batch_size``:
    {output: float32 [shape=(n, d)]} for each of :data:`ONNX_OUTPUTS`."""
    sess = session(net)
    x = np.ascontiguousarray(patches, dtype=np.float32)
    parts = [sess.run(None, {INPUT_NAME: x[i : i + batch_size]}) for i in range(0, len(x), batch_size)]
    if not parts:
        return {k: np.zeros((0, OUTPUT_DIMS[k]), np.float32) for k in ONNX_OUTPUTS}
    return {k: np.concatenate([p[i] for p in parts]) for i, k in enumerate(ONNX_OUTPUTS)}


def preload() -> None:
    """Import ONNX Runtime and create both sessions in this process (before workers are forked)."""
    for net in NETWORKS:
        session(net)
