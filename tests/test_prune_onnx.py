"""scripts/prune_onnx.py: the int8 graphs without the front-end channels that are 0.0 on every input
compute the same numbers, bit for bit."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import load_script

DEAD = (1, 4)


def prune_script():
    return load_script("scripts/prune_onnx.py")


def session(model):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def quantized(tmp_path_factory):
    """A front end as musicnn's, quantized as scripts/export_onnx.py quantizes: a convolution without bias
    whose filters 1 and 4 are dead (1e-30 of the others), then a max over frequency, a batch norm and a ReLU."""
    import onnx
    import torch
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    torch.manual_seed(0)

    class FrontEnd(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(2, 6, (1, 5), bias=False)
            with torch.no_grad():
                self.conv.weight[list(DEAD)] *= 1e-30
                self.conv.weight[5] *= 1e-2  # small, not dead: it must stay
            self.pool = torch.nn.MaxPool2d((1, 12))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.relu(self.pool(self.conv(x))[..., 0] * 0.7 + 0.1)

    work = tmp_path_factory.mktemp("prune")
    torch.onnx.export(
        FrontEnd().eval(),
        (torch.randn(3, 2, 8, 16),),
        str(work / "float.onnx"),
        input_names=["x"],
        output_names=["y"],
        dynamic_axes={"x": {0: "b"}, "y": {0: "b"}},
        opset_version=17,
        dynamo=False,
    )
    rng = np.random.default_rng(0)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter({"x": rng.normal(size=(3, 2, 8, 16)).astype(np.float32)} for _ in range(4))

        def get_next(self):
            return next(self.batches, None)

    quantize_static(
        str(work / "float.onnx"),
        str(work / "int8.onnx"),
        Reader(),
        quant_format=QuantFormat.QDQ,
        op_types_to_quantize=["Conv", "MaxPool"],
        per_channel=True,
        reduce_range=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
    )
    return onnx.load(str(work / "int8.onnx"))


def conv_weights(model) -> np.ndarray:
    from onnx import TensorProto, numpy_helper

    int8 = [t for t in model.graph.initializer if t.data_type == TensorProto.INT8 and t.dims[0] > 1]
    return numpy_helper.to_array(int8[0])


def test_dead_channels_are_left_out_and_the_outputs_stay_the_same(quantized) -> None:
    import onnx

    original = onnx.ModelProto()
    original.CopyFrom(quantized)
    pruned = onnx.ModelProto()
    pruned.CopyFrom(quantized)
    report = prune_script().prune_constant_channels(pruned)
    onnx.checker.check_model(pruned)
    assert [(r["channels"], r["kept"]) for r in report] == [(6, 4)], report
    assert report[0]["largest_bound_left_out"] < prune_script().MAX_BOUND
    assert conv_weights(original).shape[0] == 6 and conv_weights(pruned).shape[0] == 4
    before, after = session(original), session(pruned)
    rng = np.random.default_rng(1)
    for scale in (0.5, 1.0, 4.0, 100.0):  # inside the calibration range and far beyond it (uint8 saturates)
        x = (scale * rng.normal(size=(5, 2, 8, 16))).astype(np.float32)
        expected, got = before.run(None, {"x": x})[0], after.run(None, {"x": x})[0]
        assert got.shape == expected.shape == (5, 6, 8)
        np.testing.assert_array_equal(got, expected)
        assert np.ptp(got[:, 5]) > 0, "the small live filter still varies with the input"
    assert prune_script().prune_constant_channels(pruned) == [], "nothing left to prune"


def test_bound_is_the_largest_output_in_quantization_steps() -> None:
    """One filter [64, -64] over an input at zero point 0: 2 * 64 * 255 integer units, times 0.5 * 0.25 / 0.1."""
    bounds = prune_script().channel_bounds(np.array([[64, -64], [1, 0]], np.int8), np.array([0.25, 1e-30]), 0.5, 0, 0.1)
    assert bounds[0] == pytest.approx(2 * 64 * 255 * 0.5 * 0.25 / 0.1)
    assert bounds[1] < 1e-20


@pytest.mark.parametrize("net", ["msd", "mtt"])
def test_shipped_graphs_are_pruned_as_recorded(net: str) -> None:
    """The shipped graphs leave musicnn's dead front-end channels out, record which, and nothing else is prunable."""
    import onnx
    from onnx import numpy_helper

    from moodscope.analysis.musicnn_onnx import graph_metadata, onnx_path

    record = json.loads(graph_metadata(net)["moodscope"])["pruning"]
    assert record["rule"] == "scripts/prune_onnx.py"
    convolutions = {r["conv"]: r for r in record["convolutions"]}
    front_end = [f"/model/timbral.{i}/Conv" for i in (0, 1)] + [f"/model/temporal.{i}/Conv" for i in (0, 1, 2)]
    assert set(convolutions) == set(front_end)
    graph = onnx.load(str(onnx_path(net)))

    producers = {out: node for node in graph.graph.node for out in node.output}
    initializers = {t.name: t for t in graph.graph.initializer}
    for node in graph.graph.node:
        if node.name in convolutions:
            weights = numpy_helper.to_array(initializers[producers[node.input[1]].input[0]])
            assert weights.shape[0] == convolutions[node.name]["kept"] < convolutions[node.name]["channels"]
            assert convolutions[node.name]["largest_bound_left_out"] < prune_script().MAX_BOUND
    assert prune_script().prune_constant_channels(graph) == []
