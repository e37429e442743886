"""The int8 musicnn graphs on CPUs without VNNI: how often their 16-bit pair sums would saturate, what
that would do to the descriptors, and how faithful to float32 each quantization variant is.

ONNX Runtime's U8S8 convolutions on x86-64 with AVX2/AVX-512 but without VNNI multiply uint8
activations by int8 weights with VPMADDUBSW, which adds the two products of adjacent K indices into a
saturating int16: ``a1*w1 + a2*w2`` is clamped to [-32768, 32767] (a in 0..255 is the raw uint8
activation, its zero point is subtracted afterwards). With weights in [-64, 64] (``reduce_range``)
no pair can exceed 255 * 64 * 2 = 32640; with the full range [-127, 127] it can. VNNI (VPDPBUSD) adds
four products into int32 and never saturates, so this machine cannot show the effect: it is computed
here with numpy from each graph's own quantized weights, scales and zero points, on the uint8 inputs
of every quantized convolution, read from the graph run on real patches.

Which products are adjacent depends on the kernel's layout. ONNX Runtime's QLinearConv works channels
last; two orders are counted:

- ``nhwc``: the im2col GEMM's K index is (kh, kw, c), c fastest; pairs (2j, 2j+1) of that index
  (they cross taps when the number of input channels is odd);
- ``nchw``: K is (c, kh, kw), kw fastest (a channels-first im2col), pairs (2j, 2j+1);

and, whatever the order, an upper bound: a pair can only saturate if one of its products exceeds
16383 in magnitude, so the share of outputs with a product that large bounds the share of outputs
with a saturated pair.

The effect on the descriptors is simulated by running the graph without ONNX Runtime's graph
optimisations (each quantized convolution then runs as DequantizeLinear -> float Conv ->
QuantizeLinear) with the saturation error ``(clamp(s) - s) * scale_a * scale_w`` of every saturated pair
sum added to the convolution's output, convolution by convolution in dependency order.

Patches: the start and end patches of the middle 5-s segment of the last 60 clips of the seeded order
calibration draws from (``scripts/export_onnx.py``: calibration uses the first 60 to 240), so never
calibration data. Fidelity: the mean absolute difference of the penultimate layer (and the taggram)
from the float32 PyTorch musicnn (``moodscope.models.musicnn``), the figure docs/models.md quotes.

    python benchmarks/int8_quant.py saturation   # the shipped graphs -> docs/benchmarks/int8-saturation.json
    python benchmarks/int8_quant.py variants     # rebuild the variants, compare -> docs/benchmarks/int8-variants.json
    python benchmarks/int8_quant.py saturation --graphs DIR   # the graphs musicnn_{msd,mtt}_int8.onnx in DIR
    python benchmarks/int8_quant.py speed --reference DIR     # CPU ms per patch, shipped graphs vs those in DIR
    python benchmarks/int8_quant.py same --reference DIR      # bit for bit on every patch of the 4Q clips and music/
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import save_report

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
import export_onnx  # noqa: E402

HELD_OUT = 60
INT16 = (-32768, 32767)
ORDERS = ("nhwc", "nchw")


def held_out_patches(root: Path, cache: Path) -> tuple[list[str], np.ndarray]:
    """The held-out clips' ids and patches [shape=(2 * HELD_OUT, 187, 96)], cached in ``cache``."""
    path = cache / "held_out.npz"
    if path.is_file():
        data = np.load(path)
        return list(data["ids"]), data["patches"]
    items = sorted(export_onnx.clip_order(root)[-HELD_OUT:])
    patches = export_onnx.clip_patches(items)
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(path, ids=np.array([i for i, _ in items]), patches=patches)
    return [i for i, _ in items], patches


def float32_outputs(patches: np.ndarray, cache: Path) -> dict[str, dict[str, np.ndarray]]:
    """The float32 PyTorch musicnn's outputs on ``patches``: {net: {output: [shape=(n, d)]}}, cached."""
    path = cache / "float32.npz"
    if path.is_file():
        data = np.load(path)
        return {net: {k.split("/")[1]: data[k] for k in data.files if k.startswith(net)} for net in ("msd", "mtt")}
    from moodscope.models.musicnn import load_musicnn, run_musicnn

    out = {net: run_musicnn(patches, model=load_musicnn(net)) for net in ("msd", "mtt")}
    np.savez(path, **{f"{net}/{k}": v for net, d in out.items() for k, v in d.items()})
    return out


def session(path_or_bytes, *, optimised: bool = True):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    if not optimised:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    source = path_or_bytes if isinstance(path_or_bytes, bytes) else str(path_or_bytes)
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def run(sess, patches: np.ndarray, feeds: dict | None = None, batch: int = 3) -> list[np.ndarray]:
    """All the session's outputs on ``patches`` in batches of ``batch``, concatenated."""
    parts = []
    for i in range(0, len(patches), batch):
        extra = {k: v[i : i + batch] for k, v in (feeds or {}).items()}
        parts.append(sess.run(None, {"mel": patches[i : i + batch]} | extra))
    return [np.concatenate([p[j] for p in parts]) for j in range(len(parts[0]))]


def fidelity(graph: Path | bytes, patches: np.ndarray, reference: dict[str, np.ndarray]) -> dict:
    """Mean (max) |int8 - float32| of the penultimate layer and the taggram, and ms per patch (batch 3, one thread)."""
    sess = session(graph)
    run(sess, patches[:3])
    start = time.process_time()
    taggram, penultimate, *_ = run(sess, patches)
    ms = 1000 * (time.process_time() - start) / len(patches)
    error = np.abs(penultimate - reference["penultimate"])
    return {
        "penultimate_mean_abs": round(float(error.mean()), 4),
        "penultimate_max_abs": round(float(error.max()), 3),
        "penultimate_std_float32": round(float(reference["penultimate"].std()), 3),
        "taggram_mean_abs": round(float(np.abs(taggram - reference["taggram"]).mean()), 4),
        "cpu_ms_per_patch": round(ms, 2),
    }


# --- saturation -----------------------------------------------------------------------------------


def quantized_convs(model) -> list[dict]:
    """Each quantized Conv of the QDQ graph: its uint8 input tensor, zero point and scale, its int8
    weights [shape=(O, C, KH, KW)], per-channel weight scales, pads, and its (float) output name."""
    from onnx import helper, numpy_helper

    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    producer = {o: n for n in model.graph.node for o in n.output}
    convs = []
    for node in model.graph.node:
        if node.op_type != "Conv":
            continue
        x_dq, w_dq = producer[node.input[0]], producer[node.input[1]]
        weights = inits[w_dq.input[0]]
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        pads = list(attrs.get("pads", [0] * 2 * (weights.ndim - 2)))
        rank = weights.ndim
        if weights.ndim == 3:  # 1-D convolution: (O, C, K) -> (O, C, 1, K)
            weights, pads = weights[:, :, None, :], [0, pads[0], 0, pads[1]]
        assert (
            attrs.get("group", 1) == 1
            and set(attrs.get("strides", [1])) == {1}
            and set(attrs.get("dilations", [1])) == {1}
        )
        convs.append(
            {
                "name": node.name,
                "input": x_dq.input[0],
                "input_scale": float(inits[x_dq.input[1]]),
                "input_zero_point": int(inits[x_dq.input[2]]),
                "weights": weights.astype(np.int32),
                "weight_scale": inits[w_dq.input[1]].astype(np.float64),
                "pads": pads,  # top, left, bottom, right
                "output": node.output[0],
                "rank": rank,
            }
        )
    return convs


def pair_indices(shape: tuple[int, int, int], order: str) -> np.ndarray:
    """Pairs of (c, kh, kw) K indices whose products one VPMADDUBSW adds [shape=(pairs, 2, 3)]; an odd K's
    last index is paired with itself and flagged by a c of -1 in the second slot."""
    c, kh, kw = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    k = np.stack([c, kh, kw], axis=-1)  # (C, KH, KW, 3)
    flat = k.transpose(1, 2, 0, 3).reshape(-1, 3) if order == "nhwc" else k.reshape(-1, 3)
    if len(flat) % 2:
        flat = np.concatenate([flat, [[-1, 0, 0]]])
    return flat.reshape(-1, 2, 3)


def padded_input(x: np.ndarray, conv: dict) -> tuple[np.ndarray, tuple[int, int, int]]:
    """``conv``'s uint8 input ``x`` [shape=(N, C, H, W) or (N, C, W)] as int32 (N, C, H, W), padded with
    its zero point as the convolution pads it; and (N, OH, OW), the shape of its output per channel."""
    _, _, kh_n, kw_n = conv["weights"].shape
    x = x[:, :, None, :] if x.ndim == 3 else x
    top, left, bottom, right = conv["pads"]
    x = np.pad(
        x.astype(np.int32), ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=conv["input_zero_point"]
    )
    n, _, h, wd = x.shape
    return x, (n, h - kh_n + 1, wd - kw_n + 1)


def saturation(x: np.ndarray, conv: dict, order: str) -> tuple[np.ndarray, dict]:
    """The int16 saturation of ``conv`` on its uint8 input ``x`` [shape=(N, C, H, W)] (or (N, C, W)):
    the error it adds to the integer accumulator [shape=(N, O, OH, OW)] and counts."""
    w = conv["weights"]
    o_n = w.shape[0]
    x, (n, oh, ow) = padded_input(x, conv)
    error = np.zeros((n, o_n, oh, ow), np.int64)
    saturated_pairs = 0
    pairs = pair_indices(w.shape[1:], order)
    big = 255 * np.abs(w)  # the largest product each weight can make
    for (c1, h1, w1), (c2, h2, w2) in pairs:
        w_1 = w[:, c1, h1, w1]
        w_2 = w[:, c2, h2, w2] if c2 >= 0 else np.zeros_like(w_1)
        live = np.flatnonzero(big[:, c1, h1, w1] + (255 * np.abs(w_2)) > INT16[1])
        if not len(live):
            continue
        a1 = x[:, c1, h1 : h1 + oh, w1 : w1 + ow]
        a2 = x[:, c2, h2 : h2 + oh, w2 : w2 + ow] if c2 >= 0 else np.zeros_like(a1)
        s = w_1[live, None, None, None] * a1[None] + w_2[live, None, None, None] * a2[None]  # (live, N, OH, OW)
        clipped = np.clip(s, *INT16)
        saturated_pairs += int((clipped != s).sum())
        error[:, live] += (clipped - s).transpose(1, 0, 2, 3)
    outputs = error.size
    counts = {
        "outputs": outputs,
        "pair_sums": outputs * len(pairs),
        "saturated_pair_sums": saturated_pairs,
        "saturated_pair_fraction": saturated_pairs / (outputs * len(pairs)),
        "outputs_with_a_saturated_pair": int((error != 0).sum()),
        "output_fraction_with_a_saturated_pair": float((error != 0).mean()),
        "accumulator_error_mean_abs_when_saturated": float(np.abs(error[error != 0]).mean())
        if (error != 0).any()
        else 0.0,
    }
    return error, counts


def product_bound(x: np.ndarray, conv: dict) -> dict:
    """Order-free bound: outputs with some |a * w| > 16383 (necessary for any pair containing it to saturate)."""
    w = conv["weights"]
    o_n, c_n, kh_n, kw_n = w.shape
    x, (n, oh, ow) = padded_input(x, conv)
    hit = np.zeros((o_n, n, oh, ow), bool)
    big_products = 0
    for c in range(c_n):
        for kh in range(kh_n):
            for kw in range(kw_n):
                live = np.flatnonzero(255 * np.abs(w[:, c, kh, kw]) > INT16[1] // 2)
                if not len(live):
                    continue
                p = (
                    np.abs(w[live, c, kh, kw, None, None, None] * x[None, :, c, kh : kh + oh, kw : kw + ow])
                    > INT16[1] // 2
                )
                big_products += int(p.sum())
                hit[live] |= p
    return {
        "products_over_16383_fraction": big_products / (hit.size * c_n * kh_n * kw_n),
        "output_fraction_with_a_product_over_16383": float(hit.mean()),
    }


def with_corrections(model, convs: list[dict]):
    """A copy of ``model`` whose Conv outputs get an added input ``<conv>:correction`` and whose outputs
    include each quantized Conv's uint8 input."""
    import copy

    from onnx import TensorProto, helper

    m = copy.deepcopy(model)
    by_name = {c["name"]: c for c in convs}
    for node in m.graph.node:
        if node.name in by_name:
            raw = node.output[0] + ":raw"
            original = node.output[0]
            node.output[0] = raw
            m.graph.node.append(helper.make_node("Add", [raw, node.name + ":correction"], [original]))
            m.graph.input.append(helper.make_tensor_value_info(node.name + ":correction", TensorProto.FLOAT, None))
    for c in convs:
        m.graph.output.append(helper.make_tensor_value_info(c["input"], TensorProto.UINT8, None))
    # keep the graph topologically sorted: move each Add right after its Conv
    nodes = list(m.graph.node)
    adds = {n.input[0]: n for n in nodes if n.op_type == "Add" and n.input[0].endswith(":raw")}
    ordered = []
    for n in nodes:
        if n.op_type == "Add" and n.input[0].endswith(":raw"):
            continue
        ordered.append(n)
        if n.output and n.output[0] in adds:
            ordered.append(adds[n.output[0]])
    del m.graph.node[:]
    m.graph.node.extend(ordered)
    return m


def conv_depths(model, convs: list[dict]) -> dict[str, int]:
    """How many quantized Convs lie upstream of each Conv's input (0 for the front end)."""
    producer = {o: n for n in model.graph.node for o in n.output}
    conv_names = {c["name"] for c in convs}
    memo: dict[str, int] = {}

    def depth(tensor: str) -> int:
        if tensor in memo:
            return memo[tensor]
        node = producer.get(tensor)
        d = 0 if node is None else max([depth(i) for i in node.input if i] + [0]) + (node.name in conv_names)
        memo[tensor] = d
        return d

    sys.setrecursionlimit(10000)
    return {c["name"]: depth(c["input"]) for c in convs}


def saturation_report(graph: Path, patches: np.ndarray, reference: dict[str, np.ndarray]) -> dict:
    """Per quantized Conv and per order, the saturation counts on ``patches``, and the simulated effect on
    the penultimate layer (against the same graph unsaturated and against float32)."""
    import onnx

    model = onnx.load(str(graph))
    convs = quantized_convs(model)
    probe = session(with_corrections(model, convs).SerializeToString(), optimised=False)
    names = [o.name for o in probe.get_outputs()]
    depths = conv_depths(model, convs)
    n = len(patches)

    report: dict = {
        "graph": graph.name,
        "weight_range": [int(min(c["weights"].min() for c in convs)), int(max(c["weights"].max() for c in convs))],
    }
    base = dict(
        zip(
            names,
            run(
                probe,
                patches,
                {f"{c['name']}:correction": np.zeros((n,) + (1,) * (c["rank"] - 1), np.float32) for c in convs},
            ),
        )
    )
    report["unsaturated_vs_float32_penultimate_mean_abs"] = round(
        float(np.abs(base["penultimate"] - reference["penultimate"]).mean()), 4
    )
    report["convs"] = {
        c["name"]: {"weights": list(c["weights"].shape), "input_zero_point": c["input_zero_point"]} for c in convs
    }
    for c in convs:
        report["convs"][c["name"]]["bound"] = product_bound(base[c["input"]], c)
    for order in ORDERS:
        corrections = {c["name"]: np.zeros((n,) + (1,) * (c["rank"] - 1), np.float32) for c in convs}
        outs = base
        for level in sorted(set(depths.values())):
            for c in (c for c in convs if depths[c["name"]] == level):
                error, counts = saturation(outs[c["input"]], c, order)
                report["convs"][c["name"]][order] = counts
                real = error * c["input_scale"] * c["weight_scale"][None, :, None, None]
                if c["rank"] == 3:
                    real = real[:, :, 0, :]
                corrections[c["name"]] = real.astype(np.float32)
            outs = dict(zip(names, run(probe, patches, {f"{k}:correction": v for k, v in corrections.items()})))
        diff = np.abs(outs["penultimate"] - base["penultimate"])
        report[f"simulated_{order}"] = {
            "penultimate_mean_abs_vs_unsaturated": round(float(diff.mean()), 4),
            "penultimate_max_abs_vs_unsaturated": round(float(diff.max()), 3),
            "penultimate_mean_abs_vs_float32": round(
                float(np.abs(outs["penultimate"] - reference["penultimate"]).mean()), 4
            ),
            "taggram_mean_abs_vs_unsaturated": round(float(np.abs(outs["taggram"] - base["taggram"]).mean()), 4),
            "top_tag_changed_fraction": round(
                float((outs["taggram"].argmax(1) != base["taggram"].argmax(1)).mean()), 3
            ),
        }
    return report


# --- variants -------------------------------------------------------------------------------------

VARIANTS: dict[str, tuple[int, dict]] = {
    # name: (calibration clips, settings changed from export_onnx.SETTINGS)
    "full range (shipped before), MinMax, moving average, 60 clips": (60, {"reduce_range": False}),
    "reduce_range, MinMax, moving average, 60 clips": (60, {"reduce_range": True}),
    "reduce_range, MinMax, no moving average, 60 clips": (
        60,
        {"reduce_range": True, "extra_options": {"CalibMovingAverage": False}},
    ),
    "reduce_range, MinMax, moving average, 120 clips": (120, {"reduce_range": True}),
    "reduce_range, MinMax, moving average, 240 clips": (240, {"reduce_range": True}),
    "reduce_range, Percentile 99.999, 60 clips": (
        60,
        {"reduce_range": True, "calibrate_method": "Percentile", "extra_options": {}},
    ),
    "reduce_range, Percentile 99.99, 120 clips": (
        120,
        {"reduce_range": True, "calibrate_method": "Percentile", "extra_options": {"CalibPercentile": 99.99}},
    ),
    "reduce_range, Entropy, 60 clips": (60, {"reduce_range": True, "calibrate_method": "Entropy", "extra_options": {}}),
    "U8U8 (uint8 weights), MinMax, moving average, 60 clips": (60, {"weight_type": "QUInt8"}),
}


def variants_report(root: Path, patches: np.ndarray, reference: dict, names: list[str], nets: list[str]) -> dict:
    results = {}
    calibrations: dict[int, tuple[list[str], np.ndarray]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            clips, changes = VARIANTS[name]
            if clips not in calibrations:
                calibrations[clips] = export_onnx.calibration_set(root, clips)
            ids, calibration = calibrations[clips]
            settings = export_onnx.SETTINGS | {"reduce_range": False} | changes
            results[name] = {"settings": settings, "calibration_clips": clips}
            for net in nets:
                start = time.perf_counter()
                data = export_onnx.export(net, calibration, ids, Path(tmp), settings)
                path = Path(tmp) / f"{net}.onnx"
                path.write_bytes(data)
                results[name][net] = fidelity(path, patches, reference[net]) | {
                    "export_s": round(time.perf_counter() - start, 1)
                }
                print(name, net, results[name][net], flush=True)
    return results


def speed_report(graphs: Path, reference: Path, patches: np.ndarray, nets: list[str], rounds: int) -> dict:
    """CPU milliseconds per patch (batch 3, one thread) of the graphs in ``graphs`` and ``reference``,
    alternating in one process, ``rounds`` times; medians and their ratio per network."""
    sessions = {
        (net, which): session(folder / f"musicnn_{net}_int8.onnx")
        for net in nets
        for which, folder in (("this", graphs), ("reference", reference))
    }
    for sess in sessions.values():
        run(sess, patches[:3])
    times: dict = {key: [] for key in sessions}
    for r in range(rounds):
        order = list(sessions) if r % 2 == 0 else list(reversed(sessions))
        for key in order:
            start = time.process_time()
            run(sessions[key], patches)
            times[key].append(1000 * (time.process_time() - start) / len(patches))
    out = {}
    for net in nets:
        this, ref = float(np.median(times[(net, "this")])), float(np.median(times[(net, "reference")]))
        out[net] = {
            "this_ms": round(this, 2),
            "reference_ms": round(ref, 2),
            "ratio": round(this / ref, 3),
            "rounds_this": [round(t, 2) for t in times[(net, "this")]],
            "rounds_reference": [round(t, 2) for t in times[(net, "reference")]],
        }
    return out


def same_report(graphs: Path, reference: Path, files: list[Path], nets: list[str]) -> dict:
    """Whether the graphs in ``graphs`` and ``reference`` give the same outputs, bit for bit, on every
    patch ``analyze`` computes for ``files`` (batches of 3): patches, outputs compared, outputs differing."""
    from moodscope.analysis.accurate import musicnn_patch_mels
    from moodscope.audio import load_audio, segment_audio

    sessions = {
        net: (session(graphs / f"musicnn_{net}_int8.onnx"), session(reference / f"musicnn_{net}_int8.onnx"))
        for net in nets
    }
    patches = compared = differing = 0
    for k, path in enumerate(files):
        mels = musicnn_patch_mels(segment_audio(load_audio(path), source=str(path)))
        for this, ref in sessions.values():
            for ours, theirs in zip(run(this, mels), run(ref, mels)):
                compared += 1
                differing += int(not np.array_equal(ours, theirs))
        patches += len(mels)
        if k % 50 == 0:
            print(f"{k + 1}/{len(files)} files, {patches} patches, {differing} outputs differing", flush=True)
    return {"files": len(files), "patches": patches, "outputs_compared": compared, "outputs_differing": differing}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=["saturation", "variants", "speed", "same"])
    parser.add_argument("--reference", type=Path, help="speed, same: folder of the graphs to compare with")
    parser.add_argument("--music", type=Path, default=REPO.parent / "shared/data/music", help="same: full tracks too")
    parser.add_argument("--rounds", type=int, default=6, help="speed: alternating rounds (default: 6)")
    parser.add_argument("--root", type=Path, default=REPO.parent / "shared/data/4q/MER_audio_taffc_dataset")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "moodscope-int8-quant")
    parser.add_argument(
        "--graphs", type=Path, default=REPO / "src/moodscope/weights", help="folder of musicnn_{net}_int8.onnx"
    )
    parser.add_argument(
        "--saturation-patches", type=int, default=24, help="count saturation on the first N held-out patches (slow)"
    )
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), help="names of VARIANTS (default: all)")
    parser.add_argument("--nets", nargs="*", default=["msd", "mtt"])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    report: dict = {"load_average_start": os.getloadavg()}
    if args.what != "same":  # the held-out patches and their float32 outputs; "same" reads whole files
        ids, patches = held_out_patches(args.root, args.cache)
        reference = float32_outputs(patches, args.cache)
        report |= {"held_out_clips": ids, "patches": len(patches)}
    start = time.perf_counter()
    if args.what == "saturation":
        for net in args.nets:
            graph = args.graphs / f"musicnn_{net}_int8.onnx"
            n = args.saturation_patches
            subset = {k: v[:n] for k, v in reference[net].items()}
            report[net] = saturation_report(graph, patches[:n], subset) | {"saturation_patches": n}
            report[net]["fidelity"] = fidelity(graph, patches, reference[net])
            print(json.dumps({net: {k: v for k, v in report[net].items() if k != "convs"}}, indent=1), flush=True)
        default = REPO / "docs/benchmarks/int8-saturation.json"
    elif args.what == "speed":
        if args.reference is None:
            parser.error("speed needs --reference DIR")
        report["graphs"], report["reference"] = str(args.graphs), str(args.reference)
        report["speed"] = speed_report(args.graphs, args.reference, patches, args.nets, args.rounds)
        print(json.dumps(report["speed"], indent=1))
        default = REPO / "docs/benchmarks/int8-speed.json"
    elif args.what == "same":
        if args.reference is None:
            parser.error("same needs --reference DIR")
        from moodscope.audio import find_audio_files

        files = find_audio_files([args.root] + ([args.music] if args.music.is_dir() else []))
        report["graphs"], report["reference"] = str(args.graphs), str(args.reference)
        report["same"] = same_report(args.graphs, args.reference, files, args.nets)
        print(json.dumps(report["same"], indent=1))
        default = REPO / "docs/benchmarks/int8-pruned-same.json"
    else:
        report["variants"] = variants_report(args.root, patches, reference, args.variants, args.nets)
        default = REPO / "docs/benchmarks/int8-variants.json"
    report["seconds"] = round(time.perf_counter() - start, 1)
    report["load_average_end"] = os.getloadavg()
    save_report(args.json or default, report, argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
