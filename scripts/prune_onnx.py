"""Leave out of an int8 ONNX graph the convolution channels that output the same value on every input.

musicnn's published weights leave most of its front-end filters dead: 181 of MSD's 204 7x38 timbral
filters and 190 of its 204 7x67 ones are zeros to float32 precision, and MTT has fewer but many
(docs/speed.md). ONNX Runtime's quantizer gives such a filter a per-channel weight scale of about
1e-32, so in the int8 graph its integer sum, times the requantization multiplier (input scale x weight
scale / output scale), stays below half a quantization step whatever the input: the convolution
outputs its zero point, the max pool after it keeps it, and the dequantized value is exactly 0.0. Such
a channel can be left out of the convolution and put back as 0.0 after the max pool: the graph computes
the same numbers, bit for bit, on every input, with a fraction of the multiply-adds.

A channel is left out when its bound, ``max |w| x K x max |a - a0| x input scale x weight scale /
output scale`` (``w`` its int8 weights, ``K`` their number per output, ``a`` the uint8 input and ``a0``
its zero point), is below :data:`MAX_BOUND`, a little under one half so that the float32 rounding of the
multiplier cannot matter. The pattern rewritten is the one ``scripts/export_onnx.py``'s quantization
makes for musicnn's front end, and nothing else::

    DequantizeLinear(x) -> Conv(no bias, weights DequantizeLinear(int8, per-channel scales))
        -> QuantizeLinear -> DequantizeLinear -> MaxPool -> QuantizeLinear -> DequantizeLinear -> y

becomes ``Conv`` over the kept channels ... ``-> DequantizeLinear -> Pad(one channel of 0.0) ->
Gather(channels) -> y``, ``y`` in the original channel order. The mid-end convolutions have biases
(a dead channel there is a constant, not 0.0) and cost little: they are left as they are.
"""

from __future__ import annotations

from typing import Any

import numpy as np

MAX_BOUND = 0.49
CHAIN = ("QuantizeLinear", "DequantizeLinear", "MaxPool", "QuantizeLinear", "DequantizeLinear")


def channel_bounds(
    weights: np.ndarray, weight_scales: np.ndarray, input_scale: float, input_zero_point: int, output_scale: float
) -> np.ndarray:
    """For each output channel, the largest |integer sum x multiplier| any uint8 input can give, in output
    quantization steps: below one half, the channel outputs its zero point on every input."""
    flat = np.abs(weights.reshape(len(weights), -1).astype(np.float64))
    largest_sum = flat.max(axis=1) * flat.shape[1] * max(input_zero_point, 255 - input_zero_point)
    return largest_sum * input_scale * weight_scales.astype(np.float64) / output_scale


def prune_constant_channels(model: Any) -> list[dict]:
    """Rewrite ``model`` (an ``onnx.ModelProto``, changed in place) without the channels of its front-end
    convolutions that are constant on every input; return what was left out, one entry per convolution
    changed: ``conv`` (node name), ``channels``, ``kept`` and ``largest_bound_left_out``."""
    from onnx import numpy_helper

    graph = model.graph
    initializers = {t.name: t for t in graph.initializer}
    producers = {out: node for node in graph.node for out in node.output}

    def value(name: str) -> np.ndarray:
        return numpy_helper.to_array(initializers[name])

    graph_outputs = {o.name for o in graph.output}

    def only_consumer(name: str) -> Any:
        found = [node for node in graph.node if name in node.input]
        return found[0] if len(found) == 1 and name not in graph_outputs else None

    pruned = []
    for conv in [node for node in graph.node if node.op_type == "Conv" and len(node.input) == 2]:
        x_dq, w_dq = producers.get(conv.input[0]), producers.get(conv.input[1])
        if not (x_dq and w_dq and x_dq.op_type == w_dq.op_type == "DequantizeLinear"):
            continue
        if not all(name in initializers for name in (*w_dq.input, *x_dq.input[1:])):
            continue
        chain = [conv]
        for op_type in CHAIN:
            nxt = only_consumer(chain[-1].output[0])
            if nxt is None or nxt.op_type != op_type:
                break
            chain.append(nxt)
        if len(chain) != len(CHAIN) + 1:
            continue
        weights, scales, zero_points = (value(name) for name in w_dq.input)
        if np.any(zero_points != 0) or scales.shape != (len(weights),):
            continue
        bounds = channel_bounds(
            weights, scales, float(value(x_dq.input[1])), int(value(x_dq.input[2])), float(value(chain[1].input[1]))
        )
        dead = bounds < MAX_BOUND
        if not dead.any() or dead.all():
            continue
        kept = np.flatnonzero(~dead)
        for name, array in zip(w_dq.input, (weights, scales, zero_points)):
            initializers[name].CopyFrom(numpy_helper.from_array(array[kept], name))
        stale = {out for node in chain for out in node.output}
        kept_value_info = [v for v in graph.value_info if v.name not in stale]
        del graph.value_info[:]
        graph.value_info.extend(kept_value_info)

        _put_back_zeros(graph, chain[-1], kept, len(weights), weights.ndim)
        pruned.append(
            {
                "conv": conv.name,
                "channels": len(weights),
                "kept": len(kept),
                "largest_bound_left_out": float(f"{bounds[dead].max():.3g}"),
            }
        )
    return pruned


def prune_and_record(model: Any) -> dict:
    """:func:`prune_constant_channels` on ``model``, and the record the graph's metadata keeps of it."""
    return {"rule": "scripts/prune_onnx.py", "convolutions": prune_constant_channels(model)}


def _put_back_zeros(graph: Any, last: Any, kept: np.ndarray, channels: int, rank: int) -> None:
    """Make ``last``'s output (the kept channels) the full ``channels`` again, 0.0 where left out: the
    output is padded with one channel of 0.0, and a Gather takes each channel from its place."""
    from onnx import helper, numpy_helper

    y = last.output[0]
    live = f"{y}_kept_channels"
    last.output[0] = live
    pads = np.zeros(2 * rank, np.int64)
    pads[rank + 1] = 1  # after the last channel
    order = np.full(channels, len(kept), np.int64)
    order[kept] = np.arange(len(kept))
    graph.initializer.extend([numpy_helper.from_array(pads, f"{y}_pads"), numpy_helper.from_array(order, f"{y}_order")])
    at = list(graph.node).index(last) + 1
    graph.node.insert(at, helper.make_node("Pad", [live, f"{y}_pads"], [f"{y}_padded"], mode="constant"))
    graph.node.insert(at + 1, helper.make_node("Gather", [f"{y}_padded", f"{y}_order"], [y], axis=1))
