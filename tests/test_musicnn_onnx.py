"""The int8 ONNX musicnn graphs that ``analyze`` runs, the numpy log-mel they read, and analysis without torch."""

from __future__ import annotations

import hashlib
import json
import multiprocessing

import numpy as np
import pytest

from conftest import fresh_python, load_script
from test_musicnn import synthetic_signal


def test_numpy_log_mel_matches_torch_stft() -> None:
    """The numpy log-mel equals the torch.stft one it replaced, bar float16 rounding flips."""
    import torch

    from moodscope.features.musicnn_input import FLOAT16_MAX, N_FFT, musicnn_log_mel
    from moodscope.models.musicnn import musicnn_log_mel as reexported

    assert reexported is musicnn_log_mel
    y = synthetic_signal(seconds=12.0)
    spec = torch.stft(
        torch.from_numpy(y),
        N_FFT,
        256,
        window=torch.hann_window(N_FFT, periodic=True),
        center=True,
        pad_mode="constant",
        return_complex=True,
    )
    from moodscope.features.musicnn_input import _mel_basis_t

    power = (spec.real.square() + spec.imag.square()).numpy().T  # (frames, 257)
    mel = np.minimum(power @ _mel_basis_t(), FLOAT16_MAX).astype(np.float16).astype(np.float32)
    reference = np.log10(mel * 10000 + 1)
    ours = musicnn_log_mel(y)
    assert ours.shape == reference.shape == (1 + len(y) // 256, 96) and ours.dtype == np.float32
    diff = np.abs(ours - reference)
    assert np.quantile(diff, 0.999) < 1e-5  # the same to float32 rounding...
    assert diff.max() < 1e-3  # ...but where the float16 rounding flips by one ulp (~5e-4 relative)


@pytest.mark.parametrize("net", ["msd", "mtt"])
def test_int8_graph_is_close_to_float32_musicnn(net: str) -> None:
    """The int8 graph computes musicnn: outputs near the float32 reference's (checked against TensorFlow)."""
    from moodscope.analysis.musicnn_onnx import ONNX_OUTPUTS, musicnn_tags, run_musicnn_onnx
    from moodscope.features.musicnn_input import OUTPUT_DIMS, musicnn_log_mel, musicnn_patches
    from moodscope.models.musicnn import load_musicnn, run_musicnn

    patches = musicnn_patches(musicnn_log_mel(synthetic_signal(seconds=20.0)))  # 6 patches
    exact = run_musicnn(patches, model=load_musicnn(net))
    for batch in (3, 4):  # the graph takes any batch size
        int8 = run_musicnn_onnx(patches, net, batch_size=batch)
        assert list(int8) == list(ONNX_OUTPUTS)
        for key, value in int8.items():
            assert value.shape == (len(patches), OUTPUT_DIMS[key]) and value.dtype == np.float32
            error = np.abs(value - exact[key])
            assert error.mean() < 0.1 * exact[key].std(), key
    assert np.abs(int8["penultimate"] - exact["penultimate"]).max() > 0, "int8 rounds: close, not equal"
    assert musicnn_tags(net) == load_musicnn(net).tags


def export_script():
    return load_script("scripts/export_onnx.py")


@pytest.mark.parametrize("net", ["msd", "mtt"])
def test_graph_records_its_source_and_calibration(net: str) -> None:
    """Rebuilding needs what the graph records: the float32 weights it came from (the shipped ones), the
    calibration clips and the settings, which are those of scripts/export_onnx.py as it is."""
    from moodscope.analysis.musicnn_onnx import ONNX_OUTPUTS, graph_metadata
    from moodscope.models.musicnn import weights_path

    script = export_script()
    record = json.loads(graph_metadata(net)["moodscope"])
    assert record["source_sha256"] == hashlib.sha256(weights_path(net).read_bytes()).hexdigest()
    clips = script.CALIBRATION_CLIPS
    assert len(record["calibration"]["clips"]) == clips and record["calibration"]["patches"] == 2 * clips
    assert record["quantization"] == script.SETTINGS | {"outputs": list(ONNX_OUTPUTS)}
    assert record["quantization"]["op_types_to_quantize"] == ["Conv", "MaxPool"]
    assert set(record["versions"]) == {"torch", "onnx", "onnxruntime"}


@pytest.mark.parametrize("net", ["msd", "mtt"])
def test_int8_convolutions_cannot_saturate_without_vnni(net: str) -> None:
    """The graphs compute the same on every x86 CPU. Without VNNI, ONNX Runtime's uint8 x int8 convolutions
    add two adjacent products a1*w1 + a2*w2 into a saturating int16 (VPMADDUBSW); with weights in
    [-64, 64] (``reduce_range``) no pair can reach 2 * 255 * 64 = 32640 < 32767, with [-127, 127] they did
    (docs/speed.md: benchmarks/int8_quant.py)."""
    import onnx
    from onnx import TensorProto, numpy_helper

    from moodscope.analysis.musicnn_onnx import graph_metadata, onnx_path

    graph = onnx.load(str(onnx_path(net))).graph
    int8 = [numpy_helper.to_array(t) for t in graph.initializer if t.data_type == TensorProto.INT8]
    weights = [a for a in int8 if a.ndim >= 3]
    assert len(weights) == 8  # the eight convolutions' filters; the rest are their zero points, all 0
    assert all(not a.any() for a in int8 if a.ndim < 3)
    assert any(t.data_type == TensorProto.UINT8 for t in graph.initializer), "uint8 activations (zero points)"
    for w in weights:
        assert 2 * np.iinfo(np.uint8).max * int(np.abs(w.astype(np.int32)).max()) <= np.iinfo(np.int16).max
    assert json.loads(graph_metadata(net)["moodscope"])["quantization"]["reduce_range"] is True


def _run_in_child(queue, patches) -> None:
    from moodscope.analysis.musicnn_onnx import run_musicnn_onnx

    queue.put(run_musicnn_onnx(patches, "msd")["penultimate"])


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="no fork on this platform")
def test_sessions_survive_fork() -> None:
    """A worker forked after the parent created the session (the local engine does) uses it as is."""
    from moodscope.analysis.musicnn_onnx import run_musicnn_onnx, session
    from moodscope.features.musicnn_input import musicnn_log_mel, musicnn_patches

    patches = musicnn_patches(musicnn_log_mel(synthetic_signal(seconds=7.0)))
    expected = run_musicnn_onnx(patches, "msd")["penultimate"]
    inherited = session("msd")
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_run_in_child, args=(queue, patches))
    child.start()
    got = queue.get(timeout=60)
    child.join(timeout=60)
    assert child.exitcode == 0
    np.testing.assert_array_equal(got, expected)
    assert session("msd") is inherited


TORCH_FREE = "import sys\n{code}\nprint('torch' in sys.modules, 'onnxruntime' in sys.modules)"


def test_analysis_with_accurate_does_not_import_torch(tmp_path) -> None:
    """The library call, the CLI's analyze and embed with ``accurate``: ONNX Runtime, never torch."""
    library = "import moodscope\nfrom moodscope.paths import DEMO_CLIP\nmoodscope.analyze(DEMO_CLIP, model='accurate')"
    assert fresh_python(TORCH_FREE.format(code=library)).split() == ["False", "True"]
    for command in (
        ["analyze", "{demo}", "--model", "accurate", "--out", str(tmp_path / "out.json")],
        ["embed", "{demo}", "--out", str(tmp_path / "emb.parquet")],
        ["analyze", "{demo}", "{demo}", "--workers", "2", "--out", str(tmp_path / "two.json")],
    ):
        cli = (
            "from moodscope.cli import main\nfrom moodscope.paths import DEMO_CLIP\n"
            f"assert main([a.replace('{{demo}}', str(DEMO_CLIP)) for a in {command!r}]) == 0"
        )
        assert fresh_python(TORCH_FREE.format(code=cli)).split() == ["False", "True"], command
    assert json.loads((tmp_path / "two.json").read_text())[0]["model"] == "accurate"


def test_training_descriptors_are_recomputed_when_the_graphs_change(tmp_path, monkeypatch) -> None:
    """The ``accurate`` head is trained on the descriptors analysis computes: the training cache is keyed
    by the musicnn graphs' SHA-256, so rebuilt graphs never meet descriptors of the old ones."""
    from moodscope import fileio
    from moodscope.analysis.accurate import dataset_blocks
    from test_analyze_cli import write_audio

    items = [("a", write_audio(tmp_path / "a.wav", 6.0))]
    cache = tmp_path / "blocks.npz"
    computed: list[int] = []

    def blocks():
        return dataset_blocks(items, cache, blocks=("msd_penultimate",), progress=lambda done, _: computed.append(done))

    first = blocks()
    assert computed == [1] and first.blocks["msd_penultimate"].shape == (1, 200)
    blocks()
    assert computed == [1]  # cached
    monkeypatch.setattr(fileio, "sha256_files", lambda *paths: "graphs rebuilt")
    again = blocks()
    assert computed == [1, 1]  # recomputed
    np.testing.assert_array_equal(again.blocks["msd_penultimate"], first.blocks["msd_penultimate"])
