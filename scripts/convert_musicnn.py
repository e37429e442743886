"""Convert the musicnn TF1 checkpoints to PyTorch-layout safetensors for ``moodscope.models.musicnn``.

The ``musicnn`` PyPI package (Jordi Pons & Xavier Serra, Music Technology Group, Universitat Pompeu
Fabra; ISC licence) ships TF1 checkpoints (``musicnn/MSD_musicnn/.index`` + ``.data-00000-of-00001``).
This script reads them *without TensorFlow*: a TF checkpoint V2 is an SSTable (LevelDB table format)
``.index`` mapping variable names to ``BundleEntryProto`` records (dtype, shape, offset, size, crc32c)
plus a ``.data`` shard of raw little-endian tensor bytes. Every tensor's CRC32-C is checked.

Run it (from the repository root; nothing else needs installing)::

    pip download --no-deps musicnn==0.1.0 -d /tmp/musicnn_dl
    .venv/bin/python scripts/convert_musicnn.py /tmp/musicnn_dl/musicnn-0.1.0-py3-none-any.whl

It writes ``src/moodscope/weights/musicnn_msd.safetensors`` and ``musicnn_mtt.safetensors``
(float32, ~3.2 MB each; ``--dtype float16`` halves that) and prints a per-tensor summary. The source
may be the wheel, an unpacked wheel directory, or an installed ``musicnn`` package directory.

Optionally ``--check-tf`` (run with a Python that has ``tensorflow``) compares every tensor with
``tf.train.load_checkpoint``'s reading of the same checkpoint, and ``--golden`` writes
``tests/data/musicnn_golden.npz``: the *original* musicnn TF graph (``musicnn.models`` imported from
the wheel) run on ``synthetic_signal()`` of ``tests/test_musicnn.py``. Both need TensorFlow, kept out
of the project in a separate virtualenv::

    python3 -m venv /work/tfconv/venv
    /work/tfconv/venv/bin/pip install tensorflow-cpu "tf_keras~=2.21.0" librosa safetensors pytest
    TF_USE_LEGACY_KERAS=1 /work/tfconv/venv/bin/python scripts/convert_musicnn.py \
        /tmp/musicnn_dl/musicnn-0.1.0-py3-none-any.whl --check-tf --golden
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
WEIGHTS_DIR = REPO / "src" / "moodscope" / "weights"

# ----------------------------------------------------------------------------------------------------
# Minimal TF checkpoint V2 reader
# ----------------------------------------------------------------------------------------------------

_TABLE_MAGIC = 0xDB4775248B80FB57
_FOOTER_SIZE = 48
_BLOCK_TRAILER_SIZE = 5  # 1 byte compression type + 4 bytes masked crc32c

# tensorflow/core/framework/types.proto
_TF_DTYPES: dict[int, np.dtype] = {
    1: np.dtype("<f4"),  # DT_FLOAT
    2: np.dtype("<f8"),  # DT_DOUBLE
    3: np.dtype("<i4"),  # DT_INT32
    4: np.dtype("u1"),  # DT_UINT8
    6: np.dtype("i1"),  # DT_INT8
    9: np.dtype("<i8"),  # DT_INT64
    10: np.dtype("?"),  # DT_BOOL
    19: np.dtype("<f2"),  # DT_HALF
}


def _crc32c_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), the checksum TF stores for every tensor."""
    crc = 0xFFFFFFFF
    table = _CRC_TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _unmask_crc(masked: int) -> int:
    rot = (masked - 0xA282EAD8) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result, shift = 0, 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _proto_fields(buf: bytes) -> list[tuple[int, int | bytes]]:
    """Decode a protobuf message into (field number, value) pairs (varint / bytes / fixed values)."""
    fields: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            (value,) = struct.unpack_from("<Q", buf, pos)
            pos += 8
        elif wire == 2:
            length, pos = _varint(buf, pos)
            value = buf[pos : pos + length]
            pos += length
        elif wire == 5:
            (value,) = struct.unpack_from("<I", buf, pos)
            pos += 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        fields.append((number, value))
    return fields


def _read_block(table: bytes, offset: int, size: int) -> list[tuple[bytes, bytes]]:
    """The (key, value) entries of one SSTable block (prefix-compressed keys, restart array at the end)."""
    compression = table[offset + size]
    if compression != 0:
        raise ValueError(f"compressed SSTable blocks (type {compression}) are not supported")
    block = table[offset : offset + size]
    (num_restarts,) = struct.unpack_from("<I", block, len(block) - 4)
    end = len(block) - 4 * (num_restarts + 1)
    entries, pos, key = [], 0, b""
    while pos < end:
        shared, pos = _varint(block, pos)
        non_shared, pos = _varint(block, pos)
        value_len, pos = _varint(block, pos)
        key = key[:shared] + block[pos : pos + non_shared]
        pos += non_shared
        entries.append((key, block[pos : pos + value_len]))
        pos += value_len
    return entries


@dataclass(frozen=True)
class BundleEntry:
    dtype: np.dtype
    shape: tuple[int, ...]
    shard_id: int
    offset: int
    size: int
    crc32c: int


def _parse_entry(value: bytes) -> BundleEntry:
    dtype_code, shape, shard, offset, size, crc = 0, (), 0, 0, 0, 0
    for number, v in _proto_fields(value):
        if number == 1:
            dtype_code = int(v)  # type: ignore[arg-type]
        elif number == 2:
            dims = []
            for dn, dv in _proto_fields(v):  # type: ignore[arg-type]
                if dn == 2:  # TensorShapeProto.dim
                    dims.append(next((int(x) for n, x in _proto_fields(dv) if n == 1), 0))  # type: ignore[arg-type]
            shape = tuple(dims)
        elif number == 3:
            shard = int(v)  # type: ignore[arg-type]
        elif number == 4:
            offset = int(v)  # type: ignore[arg-type]
        elif number == 5:
            size = int(v)  # type: ignore[arg-type]
        elif number == 6:
            crc = int(v)  # type: ignore[arg-type]
        elif number == 7:
            raise ValueError("sliced (partitioned) checkpoint variables are not supported")
    if dtype_code not in _TF_DTYPES:
        raise ValueError(f"unsupported TF dtype code {dtype_code}")
    return BundleEntry(_TF_DTYPES[dtype_code], shape, shard, offset, size, crc)


def read_checkpoint(index: bytes, data: bytes, *, verify: bool = True) -> dict[str, np.ndarray]:
    """All tensors of a single-shard TF checkpoint V2, given the bytes of its .index and .data files."""
    if len(index) < _FOOTER_SIZE:
        raise ValueError("checkpoint index too short")
    footer = index[-_FOOTER_SIZE:]
    (magic,) = struct.unpack_from("<Q", footer, _FOOTER_SIZE - 8)
    if magic != _TABLE_MAGIC:
        raise ValueError("not a TF checkpoint index (bad SSTable magic)")
    _meta_off, pos = _varint(footer, 0)
    _meta_size, pos = _varint(footer, pos)
    index_off, pos = _varint(footer, pos)
    index_size, pos = _varint(footer, pos)
    tensors: dict[str, np.ndarray] = {}
    for _last_key, handle in _read_block(index, index_off, index_size):
        block_off, p = _varint(handle, 0)
        block_size, _ = _varint(handle, p)
        for key, value in _read_block(index, block_off, block_size):
            if key == b"":  # BundleHeaderProto: num_shards = 1, endianness = 2, version = 3
                header = dict(_proto_fields(value))
                if int(header.get(1, 1)) != 1:  # type: ignore[arg-type]
                    raise ValueError("multi-shard checkpoints are not supported")
                if int(header.get(2, 0)) != 0:  # type: ignore[arg-type]
                    raise ValueError("big-endian checkpoints are not supported")
                continue
            entry = _parse_entry(value)
            raw = data[entry.offset : entry.offset + entry.size]
            if len(raw) != entry.size:
                raise ValueError(f"{key!r}: tensor bytes out of range")
            if verify and _unmask_crc(entry.crc32c) != crc32c(raw):
                raise ValueError(f"{key.decode()}: CRC32-C mismatch, corrupt checkpoint")
            tensors[key.decode()] = np.frombuffer(raw, dtype=entry.dtype).reshape(entry.shape).copy()
    return tensors


# ----------------------------------------------------------------------------------------------------
# musicnn variable names -> moodscope.models.musicnn.MusiCNN state dict
# ----------------------------------------------------------------------------------------------------

MODELS = {"msd": "MSD_musicnn", "mtt": "MTT_musicnn"}

# musicnn/configuration.py of musicnn 0.1.0, in output-unit order
MTT_LABELS = [
    "guitar", "classical", "slow", "techno", "strings", "drums", "electronic", "rock", "fast", "piano",
    "ambient", "beat", "violin", "vocal", "synth", "female", "indian", "opera", "male", "singing",
    "vocals", "no vocals", "harpsichord", "loud", "quiet", "flute", "woman", "male vocal", "no vocal", "pop",
    "soft", "sitar", "solo", "man", "classic", "choir", "voice", "new age", "dance", "male voice",
    "female vocal", "beats", "harp", "cello", "no voice", "weird", "country", "metal", "female voice", "choral",
]  # fmt: skip
MSD_LABELS = [
    "rock", "pop", "alternative", "indie", "electronic", "female vocalists", "dance", "00s", "alternative rock",
    "jazz", "beautiful", "metal", "chillout", "male vocalists", "classic rock", "soul", "indie rock", "Mellow",
    "electronica", "80s", "folk", "90s", "chill", "instrumental", "punk", "oldies", "blues", "hard rock",
    "ambient", "acoustic", "experimental", "female vocalist", "guitar", "Hip-Hop", "70s", "party", "country",
    "easy listening", "sexy", "catchy", "funk", "electro", "heavy metal", "Progressive rock", "60s", "rnb",
    "indie pop", "sad", "House", "happy",
]  # fmt: skip
LABELS = {"msd": MSD_LABELS, "mtt": MTT_LABELS}

# tf.compat.v1.layers auto-names, in the order musicnn's build_musicnn creates them
CONVS = {
    "conv2d": "timbral.0.conv",  # 7 x 38 (0.4 * 96 mel bands), 204 filters
    "conv2d_1": "timbral.1.conv",  # 7 x 67 (0.7 * 96), 204 filters
    "conv2d_2": "temporal.0.conv",  # 128 x 1, 51 filters
    "conv2d_3": "temporal.1.conv",  # 64 x 1, 51 filters
    "conv2d_4": "temporal.2.conv",  # 32 x 1, 51 filters
    "conv2d_5": "midend.0.conv",  # 7 x 561 -> 64
    "conv2d_6": "midend.1.conv",  # 7 x 64 -> 64 (+ residual)
    "conv2d_7": "midend.2.conv",  # 7 x 64 -> 64 (+ residual)
}
BATCH_NORMS = {
    "batch_normalization": "input_bn",
    "batch_normalization_1": "timbral.0.bn",
    "batch_normalization_2": "timbral.1.bn",
    "batch_normalization_3": "temporal.0.bn",
    "batch_normalization_4": "temporal.1.bn",
    "batch_normalization_5": "temporal.2.bn",
    "batch_normalization_6": "midend.0.bn",
    "batch_normalization_7": "midend.1.bn",
    "batch_normalization_8": "midend.2.bn",
    "batch_normalization_9": "pool_bn",
    "batch_normalization_10": "penultimate_bn",
}
DENSES = {"dense": "penultimate", "dense_1": "output"}
BN_FIELDS = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean", "moving_variance": "running_var"}


def to_state_dict(tf_vars: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Rename and re-layout the inference variables (Adam slots and counters are dropped)."""
    out: dict[str, np.ndarray] = {}
    for tf_name, name in CONVS.items():
        kernel = tf_vars[f"{tf_name}/kernel"]  # HWIO: (time, freq, in, out)
        # front-end: OIHW (out, 1, time, freq); mid-end: a conv over (time, all channels) with a single
        # input plane is a Conv1d, (out, in=channels, time)
        midend = name.startswith("midend")
        out[f"{name}.weight"] = kernel[:, :, 0, :].transpose(2, 1, 0) if midend else kernel.transpose(3, 2, 0, 1)
        out[f"{name}.bias"] = tf_vars[f"{tf_name}/bias"]
    for tf_name, name in BATCH_NORMS.items():
        for tf_field, field in BN_FIELDS.items():
            out[f"{name}.{field}"] = tf_vars[f"{tf_name}/{tf_field}"]
    for tf_name, name in DENSES.items():
        out[f"{name}.weight"] = tf_vars[f"{tf_name}/kernel"].T  # (in, out) -> (out, in)
        out[f"{name}.bias"] = tf_vars[f"{tf_name}/bias"]
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in out.items()}


# ----------------------------------------------------------------------------------------------------


class _Source:
    """The musicnn package files, from a wheel or a directory (unpacked wheel or installed package)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.zip = zipfile.ZipFile(path) if path.is_file() else None

    def read(self, rel: str) -> bytes:
        if self.zip is not None:
            return self.zip.read(f"musicnn/{rel}")
        base = self.path / "musicnn" if (self.path / "musicnn").is_dir() else self.path
        return (base / rel).read_bytes()

    def licence(self) -> str:
        if self.zip is not None:
            name = next(n for n in self.zip.namelist() if n.endswith(".dist-info/LICENSE.md"))
            return self.zip.read(name).decode()
        hits = sorted(self.path.glob("*.dist-info/LICENSE.md")) + sorted(self.path.parent.glob("musicnn*/LICENSE*"))
        return hits[0].read_text() if hits else ""


def convert(source: _Source, key: str, dtype: str, *, verify: bool = True) -> tuple[dict[str, np.ndarray], Path]:
    from safetensors.numpy import save_file

    model_dir = MODELS[key]
    tf_vars = read_checkpoint(
        source.read(f"{model_dir}/.index"), source.read(f"{model_dir}/.data-00000-of-00001"), verify=verify
    )
    state = to_state_dict(tf_vars)
    config = json.loads(source.read(f"{model_dir}/config.json"))
    if config["num_classes_dataset"] != len(LABELS[key]):
        raise ValueError(f"{model_dir}: {config['num_classes_dataset']} classes, expected {len(LABELS[key])}")
    metadata = {
        "model": model_dir,
        "source": "musicnn 0.1.0 (PyPI), Pons & Serra, MTG-UPF, ISC licence",
        "tags": json.dumps(LABELS[key]),
        "n_frames": str(config["n_frames"]),
        "audio_rep": json.dumps(config["audio_rep"]),
        "storage_dtype": dtype,
    }
    WEIGHTS_DIR.mkdir(parents=True, exist_ok=True)
    path = WEIGHTS_DIR / f"musicnn_{key}.safetensors"
    save_file({k: v.astype(dtype) for k, v in state.items()}, str(path), metadata=metadata)
    return tf_vars, path


def check_with_tf(source: _Source, key: str, tf_vars: dict[str, np.ndarray]) -> None:
    import tempfile

    tf = _import_tensorflow(source)
    with tempfile.TemporaryDirectory() as tmp:
        for suffix in (".index", ".data-00000-of-00001"):
            Path(tmp, f"ckpt{suffix}").write_bytes(source.read(f"{MODELS[key]}/{suffix}"))
        reader = tf.train.load_checkpoint(str(Path(tmp, "ckpt")))
        names = set(reader.get_variable_to_shape_map())
        if names != set(tf_vars):
            raise AssertionError(f"variable sets differ: {sorted(names ^ set(tf_vars))}")
        for name in sorted(names):
            if not np.array_equal(reader.get_tensor(name), tf_vars[name]):
                raise AssertionError(f"{name} differs from TensorFlow's reading")
    print(f"  TensorFlow {tf.__version__} reads the same {len(names)} tensors, bit for bit")


def _import_tensorflow(source: _Source):  # -> the tensorflow module
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # musicnn uses tf.compat.v1.layers
    import tensorflow as tf

    tf.compat.v1.disable_eager_execution()
    if str(source.path) not in sys.path:
        sys.path.insert(0, str(source.path))  # a wheel is a zip: zipimport finds musicnn.models in it
    return tf


def run_reference(source: _Source, key: str, patches: np.ndarray) -> dict[str, np.ndarray]:
    """The original musicnn TF graph (``musicnn.models.define_model``) on (n, 187, 96) log-mel patches."""
    import tempfile

    tf = _import_tensorflow(source)
    from musicnn import models

    tf.compat.v1.reset_default_graph()
    with tf.name_scope("model"):
        x = tf.compat.v1.placeholder(tf.float32, [None, patches.shape[1], 96])
        is_training = tf.compat.v1.placeholder(tf.bool)
        logits, _, _, _, _, _, mean_pool, max_pool, penultimate = models.define_model(
            x, is_training, MODELS[key], len(LABELS[key])
        )
        taggram = tf.nn.sigmoid(logits)
    with tempfile.TemporaryDirectory() as tmp, tf.compat.v1.Session() as sess:
        for suffix in (".index", ".data-00000-of-00001"):
            Path(tmp, f"ckpt{suffix}").write_bytes(source.read(f"{MODELS[key]}/{suffix}"))
        tf.compat.v1.train.Saver().restore(sess, str(Path(tmp, "ckpt")))
        fetched = sess.run(
            [taggram, penultimate, max_pool, mean_pool], feed_dict={x: patches.astype(np.float32), is_training: False}
        )
    return dict(zip(("taggram", "penultimate", "max_pool", "mean_pool"), fetched))


def reference_patches(y16: np.ndarray) -> np.ndarray:
    """musicnn.extractor.batch_data's input, but with the logarithm in float32 (see moodscope/models/musicnn.py)."""
    import librosa

    mel = librosa.feature.melspectrogram(y=y16, sr=16_000, hop_length=256, n_fft=512, n_mels=96).T
    log_mel = np.log10(10_000 * mel.astype(np.float16).astype(np.float32) + 1)
    starts = range(0, len(log_mel) - 187 + 1, 187)
    return np.stack([log_mel[s : s + 187] for s in starts])


def write_golden(source: _Source, keys: list[str]) -> Path:
    import importlib.util

    spec = importlib.util.spec_from_file_location("test_musicnn", REPO / "tests" / "test_musicnn.py")
    assert spec is not None and spec.loader is not None
    test_module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(test_module)
    y = test_module.synthetic_signal()
    patches = reference_patches(y)
    golden: dict[str, np.ndarray] = {"signal_probe": y[:: len(y) // 50]}
    for key in keys:
        golden[f"{key}_tags"] = np.array(LABELS[key])
        for name, value in run_reference(source, key, patches).items():
            golden[f"{key}_{name}"] = value.astype(np.float32)
    path = REPO / "tests" / "data" / "musicnn_golden.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **golden)
    print(f"golden outputs of {len(patches)} patches -> {path.relative_to(REPO)} ({path.stat().st_size / 1e3:.0f} kB)")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="musicnn wheel, unpacked wheel or installed musicnn package dir")
    parser.add_argument("--models", nargs="+", choices=sorted(MODELS), default=["msd", "mtt"])
    parser.add_argument("--dtype", choices=["float32", "float16"], default="float32", help="storage dtype")
    parser.add_argument("--check-tf", action="store_true", help="cross-check the reader against TensorFlow")
    parser.add_argument("--golden", action="store_true", help="write tests/data/musicnn_golden.npz (needs TF)")
    args = parser.parse_args(argv)

    source = _Source(args.source)
    for key in args.models:
        tf_vars, path = convert(source, key, args.dtype)
        n_params = sum(v.size for k, v in to_state_dict(tf_vars).items())
        print(f"{MODELS[key]}: {len(tf_vars)} checkpoint tensors (CRC32-C ok), {n_params:,} inference values")
        print(f"  -> {path.relative_to(REPO)} ({path.stat().st_size / 1e6:.2f} MB)")
        if args.check_tf:
            check_with_tf(source, key, tf_vars)
    licence = source.licence()
    if licence:
        attribution = (
            "The files musicnn_msd.safetensors and musicnn_mtt.safetensors in this folder are the MSD_musicnn\n"
            "and MTT_musicnn weights of the `musicnn` package (version 0.1.0, PyPI; Jordi Pons and Xavier Serra,\n"
            "Music Technology Group, Universitat Pompeu Fabra), converted from TensorFlow checkpoints to\n"
            "safetensors by scripts/convert_musicnn.py. They are distributed under musicnn's ISC licence:\n\n"
        )
        (WEIGHTS_DIR / "MUSICNN_LICENSE").write_text(attribution + licence.strip() + "\n")
    if args.golden:
        write_golden(source, args.models)
    return 0


if __name__ == "__main__":
    sys.exit(main())
