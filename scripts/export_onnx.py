"""Build the int8 ONNX graphs of musicnn that ``analyze`` runs (``moodscope.analysis.musicnn_onnx``).

For each network (MSD, MTT) it

1. exports the float32 PyTorch musicnn (``moodscope.models.musicnn``, loaded from the shipped
   ``musicnn_{net}.safetensors``) to ONNX as PyTorch computes it (timbral branches over time taps,
   temporal ones polyphase, each front-end convolution followed by a max pool over frequency), with
   the four outputs of ``ONNX_OUTPUTS`` and a dynamic batch axis;
2. quantizes its eight convolutions and the max pools to int8 with ONNX Runtime's static
   quantization (QDQ format, uint8 activations, int8 per-channel weights in [-64, 64]
   (``reduce_range``), MinMax ranges averaged over the calibration batches): batch norms, ReLUs, sums
   and concatenations stay float32 (quantizing those ruins the descriptors, docs/speed.md). The 7-bit
   weights make the graphs compute the same on every x86 CPU: without VNNI, ONNX Runtime adds pairs of
   uint8 x int8 products into a saturating int16 (VPMADDUBSW), and 2 * 255 * 64 = 32640 never
   saturates, while full-range weights did (benchmarks/int8_quant.py);
3. calibrates the activation ranges on a recorded set of patches: the two patches (start and end)
   of the middle 5-s segment of :data:`CALIBRATION_CLIPS` clips of the 4Q dataset, drawn with a fixed
   seed from its sorted track ids (only the audio is used, not the labels);
4. leaves out the front-end channels that output 0.0 on every input (musicnn's dead filters:
   ``scripts/prune_onnx.py``; the same outputs bit for bit, a third of the multiply-adds);
5. writes ``src/moodscope/weights/musicnn_{net}_int8.onnx`` with metadata ``tags`` (the tag names) and
   ``moodscope`` (JSON: the source weights' SHA-256, the calibration clips, the settings, the channels
   left out and the versions of torch, onnx and onnxruntime).

Run it from the repository root (it needs the ``export`` extra: ``pip install -e '.[export]'``)::

    python scripts/export_onnx.py --root ../shared/data/4q/MER_audio_taffc_dataset

Re-running it with the same versions on the same kind of CPU writes the same bytes (``--check`` compares instead of
writing); on another CPU float constants can differ in their last bits (docs/speed.md, "On a CPU without VNNI").
After a rebuild the ``accurate`` head must be retrained on the new descriptors
(``moodscope train --shipped accurate``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
from prune_onnx import prune_and_record  # noqa: E402

CALIBRATION_CLIPS = 120
CALIBRATION_SEED = 0
BATCH = 3
SETTINGS = {
    "format": "QDQ",
    "op_types_to_quantize": ["Conv", "MaxPool"],
    "activation_type": "QUInt8",
    "weight_type": "QInt8",
    "per_channel": True,
    "reduce_range": True,
    "calibrate_method": "MinMax",
    "extra_options": {"CalibMovingAverage": True},
    "opset": 17,
}


def clip_order(root: Path) -> list[tuple[str, Path]]:
    """The 4Q clips (track id, audio path) in the seeded random order calibration draws from: the
    calibration set is the first :data:`CALIBRATION_CLIPS`; clips from the end of this order are
    never used for calibration (benchmarks/int8_quant.py holds out the last 60)."""
    from moodscope.datasets import load_dataset

    items = sorted(load_dataset("4q", root).audio_items())
    return [items[i] for i in np.random.default_rng(CALIBRATION_SEED).permutation(len(items))]


def clip_patches(items: list[tuple[str, Path]]) -> np.ndarray:
    """The start and end patches of each clip's middle 5-s segment [shape=(2 * len(items), 187, 96)]."""
    from moodscope.analysis.accurate import musicnn_patch_mels
    from moodscope.audio import load_audio, segment_audio

    patches = []
    for _, path in items:
        segments = segment_audio(load_audio(path), source=str(path))
        patches.append(musicnn_patch_mels(segments[len(segments) // 2 : len(segments) // 2 + 1]))
    return np.concatenate(patches)


def calibration_set(root: Path, n_clips: int = CALIBRATION_CLIPS) -> tuple[list[str], np.ndarray]:
    """The calibration clips' track ids and their patches [shape=(2 * n_clips, 187, 96)]."""
    chosen = sorted(clip_order(root)[:n_clips])
    return [track_id for track_id, _ in chosen], clip_patches(chosen)


def export(net: str, calibration: np.ndarray, clips: list[str], workdir: Path, settings: dict = SETTINGS) -> bytes:
    """The bytes of the int8 ONNX graph of ``net``, quantized with ``settings`` (:data:`SETTINGS`)."""
    import onnx
    import onnxruntime
    import torch
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from moodscope.analysis.musicnn_onnx import INPUT_NAME, ONNX_OUTPUTS
    from moodscope.models.musicnn import load_musicnn, musicnn_tags, weights_path

    class Outputs(torch.nn.Module):
        def __init__(self, model: torch.nn.Module) -> None:
            super().__init__()
            self.model = model

        def forward(self, mel: torch.Tensor) -> tuple[torch.Tensor, ...]:
            out = self.model(mel)
            return tuple(out[k] for k in ONNX_OUTPUTS)

    float32 = workdir / f"{net}_float32.onnx"
    prepared = workdir / f"{net}_prepared.onnx"
    quantized = workdir / f"{net}_int8.onnx"
    axes = {name: {0: "batch"} for name in (INPUT_NAME, *ONNX_OUTPUTS)}
    example = torch.from_numpy(calibration[:BATCH])
    model = load_musicnn(net)
    with torch.inference_mode():
        model(example)  # the branches prepare their filters now, so the graph holds them as constants
    torch.onnx.export(
        Outputs(model).eval(),
        (example,),
        str(float32),
        input_names=[INPUT_NAME],
        output_names=list(ONNX_OUTPUTS),
        dynamic_axes=axes,
        opset_version=settings["opset"],
        dynamo=False,
    )
    quant_pre_process(str(float32), str(prepared))

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter({INPUT_NAME: calibration[i : i + BATCH]} for i in range(0, len(calibration), BATCH))

        def get_next(self) -> dict | None:
            return next(self.batches, None)

    quantize_static(
        str(prepared),
        str(quantized),
        Reader(),
        quant_format=QuantFormat.QDQ,
        op_types_to_quantize=settings["op_types_to_quantize"],
        per_channel=settings["per_channel"],
        reduce_range=settings["reduce_range"],
        activation_type=getattr(QuantType, settings["activation_type"]),
        weight_type=getattr(QuantType, settings["weight_type"]),
        calibrate_method=getattr(CalibrationMethod, settings["calibrate_method"]),
        extra_options=settings["extra_options"],
    )
    graph = onnx.load(str(quantized))
    pruning = prune_and_record(graph)
    source = weights_path(net)
    record = {
        "network": f"musicnn {net.upper()} (moodscope.models.musicnn, float32), int8",
        "source_weights": source.name,
        "source_sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
        "quantization": settings | {"outputs": list(ONNX_OUTPUTS)},
        "calibration": {
            "dataset": "4q (MER_audio_taffc_dataset), audio only",
            "selection": f"numpy default_rng({CALIBRATION_SEED}).permutation of the sorted track ids, first "
            f"{len(clips)}; the start and end patches of each clip's middle 5-s segment",
            "patches": len(calibration),
            "clips": clips,
        },
        "versions": {"torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__},
        "script": "scripts/export_onnx.py",
        "pruning": pruning,
    }
    set_metadata(graph, json.dumps(list(musicnn_tags(net))), record)
    return graph.SerializeToString()


def set_metadata(graph, tags: str, record: dict) -> None:
    """Replace ``graph``'s metadata by ``tags`` (JSON list of the tag names) and ``moodscope`` (``record``)."""
    del graph.metadata_props[:]
    for key, value in (("tags", tags), ("moodscope", json.dumps(record))):
        graph.metadata_props.add(key=key, value=value)


def prune_shipped(net: str) -> bytes:
    """The shipped graph of ``net``, built before the pruning step existed, with it applied and recorded:
    the bytes ``export`` gives on the CPU that built the graph (the rebuild is not needed)."""
    import onnx

    from moodscope.analysis.musicnn_onnx import onnx_path

    graph = onnx.load(str(onnx_path(net)))
    metadata = {prop.key: prop.value for prop in graph.metadata_props}
    record = json.loads(metadata["moodscope"])
    if "pruning" in record:
        raise SystemExit(f"{onnx_path(net)} is pruned already")
    record["pruning"] = prune_and_record(graph)
    set_metadata(graph, metadata["tags"], record)
    return graph.SerializeToString()


def main(argv: list[str] | None = None) -> int:
    from moodscope.analysis.musicnn_onnx import NETWORKS, onnx_path
    from moodscope.fileio import atomic_write

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=REPO.parent / "shared/data/4q/MER_audio_taffc_dataset")
    parser.add_argument("--check", action="store_true", help="compare with the shipped files instead of writing")
    parser.add_argument(
        "--prune-shipped", action="store_true", help="only apply the pruning step to shipped graphs built without it"
    )
    args = parser.parse_args(argv)
    if not args.prune_shipped:
        clips, calibration = calibration_set(args.root)
    same = True
    with tempfile.TemporaryDirectory() as tmp:
        for net in NETWORKS:
            data = prune_shipped(net) if args.prune_shipped else export(net, calibration, clips, Path(tmp))
            target = onnx_path(net)
            if args.check:
                equal = target.is_file() and target.read_bytes() == data
                same &= equal
                print(f"{target.name}: {'identical' if equal else 'DIFFERENT'}")
            else:
                with atomic_write(target, "wb") as fh:
                    fh.write(data)
                print(f"wrote {target} ({len(data) / 1e6:.1f} MB, sha256 {hashlib.sha256(data).hexdigest()[:12]})")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
