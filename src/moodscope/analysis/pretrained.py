"""Models that ``analyze`` can use: the ones shipped in the package, or a user's checkpoint.

A mood model turns a batch of 5-s segments [shape=(n, SEGMENT_SAMPLES)] into quadrant
probabilities [shape=(n, 4)] (and optionally its own valence/arousal estimates). Shipped weights
live in ``moodscope/weights/`` and are found relative to this file; nothing is downloaded.

- ``accurate`` (default): musicnn embeddings + the paper's features, an ensemble head.
- ``fast``: the paper's ``hybrid`` model on the Table 2 features alone.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from moodscope.errors import ModelError
from moodscope.paths import WEIGHTS_DIR

if TYPE_CHECKING:
    from moodscope.analysis.ood import SegmentOod

SHIPPED_MODELS = {"accurate": WEIGHTS_DIR / "accurate.safetensors", "fast": WEIGHTS_DIR / "fast.pt"}
DEFAULT_MODEL = "accurate"


class MoodModel(Protocol):
    """What ``analyze`` runs: a loaded model that turns 5-s segments into quadrant probabilities (the
    shipped models, checkpoints of any architecture). The paper's networks inside are
    :class:`moodscope.models.blocks.MoodNetwork` modules."""

    name: str
    content_hash: str
    """SHA-256 of the model's content: the bytes of its checkpoint followed by those of any weights
    file it loads besides (the int8 ONNX musicnn graphs of ``accurate``); see :func:`model_content_hash`."""
    files: tuple[Path, ...]
    """The files the model is made of: its checkpoint, then any weights file it loads besides."""
    meta: dict
    """The checkpoint's metadata (see :mod:`moodscope.models.checkpoint`)."""

    def predict_segments(self, segments: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Quadrant probabilities [shape=(n, 4)] and valence/arousal [shape=(n, 2)] or None."""
        ...

    # Optional: ``segment_inputs``/``predict_inputs``/``predict_with_ood`` (see the functions of those
    # names below), and ``batch_across_files = False`` for a model whose forward pass is cheap beside
    # decoding (the ray engine then runs it in its decode tasks, :mod:`moodscope.engine.ray_engine`).


REGRESSED_VA = (
    "regressed valence/arousal: the model's estimate of the listeners' mean rating, trained on {dataset} "
    "({targets} targets), kept within the rating scale; the annotation scale [-1, 1] mapped linearly onto "
    "{low:g}..{high:g}, (x + 1) / 2 (DEAM's and MTurk's 1-9 ratings r as (r - 1) / 8, PMEmo's 0-1 as given; the "
    "neutral midpoint at {mid:g}); the quadrant probabilities take the truth as Gaussian around each estimate with "
    "the validation RMSE, so their marginals p(Q1) + p(Q4), p(Q1) + p(Q2) are the probabilities of a positive "
    "valence and a high arousal, Phi(x / RMSE), which lie on the same side of {mid:g} as the regressed values"
)
"""What ``valence``/``arousal`` mean in the output of a ``va`` checkpoint (``Analysis.va_meaning``)."""


class FeatureModel:
    """One of the paper's architectures (``cnn``, ``cnn-lstm``, ``hybrid``) on the Table 2 features: a
    quadrant classifier, or a valence/arousal regressor (a checkpoint of ``train --task va``)."""

    batch_across_files = False
    """Its forward pass is a small part of the work (about 6 % for ``fast``; decoding and the Table 2
    features are the rest): the ray engine runs it where the audio is decoded, without model actors."""

    def __init__(self, payload: dict, name: str):
        """``payload``: a checkpoint read by :func:`moodscope.models.checkpoint.read_checkpoint`."""
        from moodscope.analysis.ood import OodStats
        from moodscope.models.checkpoint import module_from_checkpoint

        self.meta = payload["meta"]
        self.module = module_from_checkpoint(payload, name)
        self.ood = OodStats.from_checkpoint(payload)
        self.name = name
        self.content_hash = ""  # set by the loader, which knows the files
        self.files: tuple[Path, ...] = ()
        self.task = self.meta.get("task", "quadrants")
        if self.task == "va":
            from moodscope.constants import VA_RANGE

            run = self.meta.get("run", {})
            low, high = VA_RANGE
            self.va_meaning = REGRESSED_VA.format(
                dataset=run.get("dataset") or "an unnamed dataset",
                targets=run.get("va_targets", "static"),
                low=low,
                high=high,
                mid=(low + high) / 2,
            )

    def segment_inputs(self, segments: np.ndarray) -> dict[str, np.ndarray]:
        """The Table 2 features of each segment and the signal check's measurements (see
        :func:`segment_inputs`)."""
        from moodscope.analysis.ood import signal_inputs
        from moodscope.features.extract import extract_features

        return extract_features(segments).as_dict() | signal_inputs(segments)

    def predict_with_ood(self, inputs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray | None, SegmentOod]:
        """:meth:`predict_inputs` and the OOD verdict: the signal check, and a score on the ``paper``
        block (static features, MFCC mean and std) when the checkpoint carries its statistics."""
        from moodscope.analysis.accurate import paper_block_of
        from moodscope.analysis.ood import segment_ood

        score = None if self.ood is None else self.ood.scores({"paper": paper_block_of(inputs)})
        return (*self.predict_inputs(inputs), segment_ood(inputs, score))

    def predict_inputs(self, inputs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        from moodscope.analysis.ood import SIGNAL_INPUTS
        from moodscope.features.extract import SegmentFeatures
        from moodscope.models.checkpoint import predict_outputs, predict_proba

        features = SegmentFeatures(**{k: v for k, v in inputs.items() if k not in SIGNAL_INPUTS})
        if self.task != "va":
            return predict_proba(self.module, self.meta, features), None
        from moodscope.datasets.labels import quadrant_probabilities_from_va, to_reported_va

        va = np.clip(predict_outputs(self.module, self.meta, features).astype(np.float64), -1.0, 1.0)
        probs = quadrant_probabilities_from_va(va, self.meta.get("va_val_rmse", (0.5, 0.5)))
        return probs, np.asarray(to_reported_va(va))

    def predict_segments(self, segments: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        return self.predict_inputs(self.segment_inputs(segments))


def segment_inputs(model: MoodModel, segments: np.ndarray) -> dict[str, np.ndarray]:
    """What ``model`` needs from segments [shape=(n, SEGMENT_SAMPLES)] before its forward pass:
    arrays whose first axis is the segment (the raw segments for a model that does not say).

    With :func:`predict_inputs`, this splits ``model.predict_segments`` in two, so that a pipeline
    can compute inputs where the audio is decoded and batch them across files for the model.
    """
    split = getattr(model, "segment_inputs", None)
    return split(segments) if split is not None else {"segments": segments}


def predict_inputs(model: MoodModel, inputs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
    """``model.predict_segments`` on what :func:`segment_inputs` computed (segments of any files)."""
    predict = getattr(model, "predict_inputs", None)
    return predict(inputs) if predict is not None else model.predict_segments(inputs["segments"])


def predict_with_ood(
    model: MoodModel, inputs: dict[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray | None, SegmentOod | None]:
    """:func:`predict_inputs` and the model's out-of-distribution verdict on the segments
    (:mod:`moodscope.analysis.ood`), or None for a model that does not give one."""
    predict = getattr(model, "predict_with_ood", None)
    return predict(inputs) if predict is not None else (*predict_inputs(model, inputs), None)


def model_content_hash(path: Path, *also: Path) -> str:
    """The content hash of a model: SHA-256 of its checkpoint's bytes, then of ``also`` (further weights
    files the model reads). For a single-file model it equals ``sha256sum CHECKPOINT``."""
    from moodscope.fileio import sha256_files

    return sha256_files(path, *also)


def resolve_model_path(spec: str | os.PathLike) -> tuple[Path, str | None]:
    """A shipped model name or a checkpoint path -> (path, display name)."""
    if str(spec) in SHIPPED_MODELS:
        path = SHIPPED_MODELS[str(spec)]
        if not path.exists():
            raise ModelError(
                f"the shipped model {spec!r} is missing from this installation ({path}); reinstall moodscope"
            )
        return path, str(spec)
    path = Path(spec).expanduser()
    if not path.exists():
        names = ", ".join(SHIPPED_MODELS)
        raise ModelError(f"{spec}: no such model; give one of {names} or the path of a checkpoint")
    return path, None


@functools.lru_cache(maxsize=8)
def _load(path: Path, name: str | None) -> MoodModel:
    """The model of the checkpoint at ``path``, whatever its architecture (the file is read once).

    An ``accurate`` model's ONNX Runtime sessions are created here too, so that worker processes
    forked afterwards inherit them; a ``.safetensors`` ``accurate`` checkpoint is loaded without torch."""
    from moodscope.analysis.accurate import ARCH as ENSEMBLE_ARCH
    from moodscope.checkpoint_io import read_checkpoint

    payload = read_checkpoint(path)
    arch = payload["meta"].get("arch")
    if arch == ENSEMBLE_ARCH:
        from moodscope.analysis.accurate import EmbeddingModel
        from moodscope.analysis.musicnn_onnx import onnx_path, session

        ensemble = EmbeddingModel.from_checkpoint(payload, name=name or f"accurate:{path.name}")
        nets = sorted({block.split("_")[0] for block in ensemble.blocks if block != "paper"})
        for net in nets:
            session(net)
        ensemble.files = (path, *(onnx_path(net) for net in nets))
        model: MoodModel = ensemble
    else:
        model = FeatureModel(payload, name=name or f"{arch}:{path.name}")
        model.files = (path,)
    model.content_hash = model_content_hash(*model.files)
    return model


def load_model(spec: str | os.PathLike | MoodModel | None = None) -> MoodModel:
    """Load a mood model by shipped name ('accurate', 'fast') or checkpoint path; None = the default."""
    if spec is not None and not isinstance(spec, (str, os.PathLike)):
        return spec  # already a model
    if spec is None:
        spec = DEFAULT_MODEL if SHIPPED_MODELS[DEFAULT_MODEL].exists() else "fast"
    path, name = resolve_model_path(spec)
    return _load(path.resolve(), name)
