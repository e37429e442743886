"""Per-segment embeddings for researchers: the descriptors the ``accurate`` model reads, written to Parquet.

Every whole 5-s segment of every file becomes one row (the segmentation of ``moodscope analyze``).
The vectors are the descriptor blocks of :mod:`moodscope.analysis.accurate` (:data:`BLOCK_INFO`):
musicnn's outputs (MSD- and MagnaTagATune-trained taggers) averaged over the two 2.992-s patches
aligned to the segment's start and end, and the ``paper`` block (the paper's 10 Table 2 static
features and the mean and standard deviation of its 13 MFCC).

Parquet schema (one row per segment; a file's rows together and in time order, the files in the order
they were embedded: the order given in one process, the order they finish on an engine)::

    track               string      the audio file's path, as given
    segment             int32       index of the segment in the track (0, 1, ...)
    start, end          float64     seconds
    <block> ...         fixed_size_list<float32>[dim]   one column per requested block
    moodscope_version   string      provenance (the same on every row)
    model               string      the networks and features used, e.g. "musicnn_msd_int8+musicnn_mtt_int8"
    model_hash          string      SHA-256 of the weights files used (``sha256sum``-compatible for one file)

The schema metadata key ``moodscope`` holds JSON: ``{"moodscope_version", "model", "model_hash",
"segment_seconds", "sample_rate", "blocks": {name: {"dim", "description", "names"}}}``, where
``names`` labels the vector's entries where they have names (tag names, feature names). In pandas,
``numpy.stack(frame["msd_penultimate"])`` gives an (n_segments, 200) matrix.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from moodscope.analysis.accurate import BLOCKS, segment_blocks
from moodscope.constants import N_MFCC, SAMPLE_RATE, SEGMENT_SECONDS, STATIC_NAMES
from moodscope.errors import AudioError, ModelError, MoodscopeError

log = logging.getLogger(__name__)

OUTPUT_DESCRIPTIONS = {
    "taggram": "the 50 tag probabilities",
    "penultimate": "the 200-unit penultimate layer",
    "mean_pool": "the 753 mid-end channels, mean over time",
    "max_pool": "the 753 mid-end channels, max over time",
}
PAPER_NAMES = (
    *STATIC_NAMES,
    *(f"mfcc{i}_mean" for i in range(N_MFCC)),
    *(f"mfcc{i}_std" for i in range(N_MFCC)),
)


def block_info(name: str) -> dict:
    """``{"dim", "description", "names"}`` of a descriptor block (``names``: None when the entries are unnamed)."""
    from moodscope.analysis.musicnn_onnx import musicnn_tags
    from moodscope.features.musicnn_input import NETWORKS, OUTPUT_DIMS

    if name == "paper":
        return {
            "dim": len(PAPER_NAMES),
            "description": "the paper's 10 static features (Table 2) and the mean and std over frames of 13 MFCC",
            "names": list(PAPER_NAMES),
        }
    net, _, output = name.partition("_")
    return {
        "dim": OUTPUT_DIMS[output],
        "description": f"{NETWORKS[net]}: {OUTPUT_DESCRIPTIONS[output]}, mean of the segment's two patches",
        "names": list(musicnn_tags(net)) if output == "taggram" else None,
    }


def default_blocks() -> tuple[str, ...]:
    """The blocks the shipped ``accurate`` model reads."""
    from moodscope.analysis.accurate import EmbeddingModel
    from moodscope.analysis.pretrained import load_model

    model = load_model("accurate")
    if not isinstance(model, EmbeddingModel):
        raise ModelError(f"the shipped accurate model is a {model.meta.get('arch')!r} model, not musicnn descriptors")
    return tuple(model.blocks)


def check_blocks(blocks: tuple[str, ...]) -> tuple[str, ...]:
    unknown = [b for b in blocks if b not in BLOCKS]
    if unknown or not blocks:
        named = ", ".join(unknown) or "(none)"
        raise ModelError(f"unknown descriptor block(s) {named}; choose from {', '.join(BLOCKS)} or all")
    return tuple(dict.fromkeys(blocks))


def embedder_provenance(blocks: tuple[str, ...]) -> dict[str, str]:
    """``model`` (the networks and features used) and ``model_hash`` (SHA-256 of the weights files used:
    the int8 ONNX graphs of musicnn that compute the descriptors)."""
    from moodscope.analysis.musicnn_onnx import onnx_path
    from moodscope.fileio import sha256_files
    from moodscope.version import __version__

    nets = [net for net in ("msd", "mtt") if any(b.startswith(f"{net}_") for b in blocks)]
    parts = [f"musicnn_{net}_int8" for net in nets] + (["paper_features"] if "paper" in blocks else [])
    return {
        "moodscope_version": __version__,
        "model": "+".join(parts),
        "model_hash": sha256_files(*(onnx_path(net) for net in nets)) if nets else "",
    }


def track_embeddings(path: str | os.PathLike, blocks: tuple[str, ...]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Segment start times [shape=(n,)] and descriptor blocks {name: [shape=(n, dim)]} of one file.

    The file is decoded in bounded-memory batches of segments. Raises :class:`AudioError` naming the
    file when it cannot be decoded or is shorter than one segment.
    """
    from moodscope.analysis.analyzer import BATCH_SEGMENTS, _segment_batches
    from moodscope.audio import stream_audio

    parts: dict[str, list[np.ndarray]] = {b: [] for b in blocks}
    for segments in _segment_batches(stream_audio(path), BATCH_SEGMENTS):
        for name, value in segment_blocks(segments, blocks).items():
            parts[name].append(value.astype(np.float32))
    if not parts[blocks[0]]:
        raise AudioError(f"{path}: too short; an embedding needs at least {SEGMENT_SECONDS:g} s of audio")
    arrays = {name: np.concatenate(v) for name, v in parts.items()}
    return np.arange(len(arrays[blocks[0]])) * SEGMENT_SECONDS, arrays


@dataclass
class EmbedResult:
    out: Path | None  # None when nothing was written (every file failed)
    tracks: int = 0
    segments: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # path -> reason


def _schema(blocks: tuple[str, ...], metadata: dict):
    import json

    import pyarrow as pa

    fields = [
        pa.field("track", pa.string()),
        pa.field("segment", pa.int32()),
        pa.field("start", pa.float64()),
        pa.field("end", pa.float64()),
        *(pa.field(b, pa.list_(pa.float32(), metadata["blocks"][b]["dim"])) for b in blocks),
        pa.field("moodscope_version", pa.string()),
        pa.field("model", pa.string()),
        pa.field("model_hash", pa.string()),
    ]
    return pa.schema(fields, metadata={"moodscope": json.dumps(metadata)})


def _table(schema, track: str, starts: np.ndarray, arrays: dict[str, np.ndarray], provenance: dict):
    import pyarrow as pa

    n = len(starts)
    columns = [
        pa.array([track] * n, pa.string()),
        pa.array(np.arange(n, dtype=np.int32)),
        pa.array(starts.astype(np.float64)),
        pa.array((starts + SEGMENT_SECONDS).astype(np.float64)),
    ]
    for x in arrays.values():
        columns.append(pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), x.shape[1]))
    columns += [pa.array([provenance[k]] * n, pa.string()) for k in ("moodscope_version", "model", "model_hash")]
    return pa.Table.from_arrays(columns, schema=schema)


EmbedRunner = Callable[[list[Path], tuple[str, ...]], Iterator[tuple[str, Any, str | None]]]
"""Embeds files with some blocks: yields ``(path, (starts, {block: vectors}) or None, failure reason or
None)`` once per file, in any order. The command line passes one running on an engine."""


def in_process(paths: list[Path], blocks: tuple[str, ...]) -> Iterator[tuple[str, Any, str | None]]:
    """An :data:`EmbedRunner` embedding the files one after the other in this process."""
    for path in paths:
        try:
            yield str(path), track_embeddings(path, blocks), None
        except MoodscopeError as exc:
            yield str(path), None, str(exc)
        except Exception as exc:  # one bad file never stops a batch
            yield str(path), None, f"{path}: {type(exc).__name__}: {exc}"


def embed_files(
    paths: list[Path],
    out: str | os.PathLike,
    *,
    blocks: tuple[str, ...] | None = None,
    run: EmbedRunner | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> EmbedResult:
    """Write the per-segment embeddings of ``paths`` to the Parquet file ``out`` (schema: module docstring).

    ``run`` computes them (default :func:`in_process`); one row group per file, files in the order
    they come back. The file appears only when complete (written beside it, then renamed), and only if
    at least one file could be embedded; failures are collected with their reasons.
    """
    from moodscope.extras import require
    from moodscope.fileio import atomic_write

    pq = require("pyarrow.parquet", "parquet", "moodscope embed (Parquet output)")
    blocks = check_blocks(tuple(blocks) if blocks else default_blocks())
    provenance = embedder_provenance(blocks)
    metadata = provenance | {
        "segment_seconds": SEGMENT_SECONDS,
        "sample_rate": SAMPLE_RATE,
        "blocks": {b: block_info(b) for b in blocks},
    }
    schema = _schema(blocks, metadata)
    result = EmbedResult(out=None)

    def tables() -> Iterator:
        for done, (path, value, error) in enumerate((run or in_process)(list(paths), blocks), 1):
            if value is None:
                result.failed[path] = error or "unknown error"
            else:
                starts, arrays = value
                yield _table(schema, path, starts, arrays, provenance)
            if progress:
                progress(done, len(paths))

    pending = tables()
    first = next(pending, None)  # None: every file failed (the generator ran to its end)
    if first is None:
        return result
    with atomic_write(out, "wb") as fh, pq.ParquetWriter(fh, schema) as writer:
        for table in itertools.chain([first], pending):
            writer.write_table(table)
            result.tracks += 1
            result.segments += table.num_rows
    result.out = Path(out)
    return result
