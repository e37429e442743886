"""Self-describing checkpoints: one format, one writer and one reader for every moodscope model.

A checkpoint is ``torch.save`` of a dict holding only tensors, strings, numbers, lists and dicts,
so it loads with ``torch.load(path, weights_only=True)`` (this module never loads otherwise)::

    {"format": "moodscope-checkpoint", "format_version": 1,
     "state_dict": {name: tensor},
     "meta": {"arch", "config", "feature_params", "task", "labels", "label_numbering" or "va_scale",
              "metrics", "moodscope_version", "weights_sha256", ...}}

``task`` is ``quadrants`` (outputs: quadrant logits; absent in checkpoints written before it existed)
or ``va`` (outputs: valence and arousal on the [-1, 1] annotation scale, see :data:`VA_SCALE`).

``meta["arch"]`` names the architecture and ``meta["config"]`` is everything needed to rebuild it:
the paper's networks (``cnn``, ``cnn-lstm``, ``hybrid``, with the feature ``normalization`` in
``meta``) and the ``accurate`` model's ensemble of heads (``musicnn-ensemble``,
:mod:`moodscope.analysis.accurate`) alike. Tensors named ``ood.*`` and ``meta["ood"]``, when
present, are the statistics of the model's out-of-distribution score (:mod:`moodscope.analysis.ood`),
not weights. Training runs add ``run``/``train_config``, ``split`` and ``metrics``. A
``.safetensors`` path stores the same weights with ``meta`` as JSON under the
``moodscope`` metadata key.

:func:`write_checkpoint` is the only writer (atomic: a temporary file, fsynced, renamed into place)
and :func:`moodscope.checkpoint_io.read_checkpoint` the only reader (without torch for a
``.safetensors`` file: ``analyze`` with the shipped ``accurate`` model never imports torch; this
module's :func:`read_checkpoint` gives its arrays as tensors): it reads the file once, converts the
layouts of earlier versions, checks ``weights_sha256`` (over the sorted parameter names and bytes)
and the feature parameters' version.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from moodscope import checkpoint_io
from moodscope.checkpoint_io import FORMAT, FORMAT_VERSION, weights_sha256
from moodscope.constants import QUADRANTS
from moodscope.errors import ModelError
from moodscope.features.extract import FEATURE_PARAMS, SegmentFeatures
from moodscope.features.normalization import Normalization
from moodscope.fileio import atomic_write
from moodscope.models import MoodNetwork, build_model, model_config, model_inputs

SMALL_CONFIG = {"filters": [4, 8, 8], "hidden": 8}
SMALL_RECURRENT = {"lstm_units": 8}


VA_LABELS = ("valence", "arousal")
VA_SCALE = (
    "annotation scale [-1, 1]: the dataset's ratings mapped linearly (DEAM and MTurk 1-9: (x - 5) / 4; "
    "PMEmo 0-1: 2x - 1); analyze reports them mapped linearly onto moodscope.constants.VA_RANGE (0..1): (x + 1) / 2"
)
"""What the outputs of a ``va`` checkpoint are (stored in its metadata as ``va_scale``)."""


def base_meta(arch: str, config: dict, *, task: str = "quadrants", **extra: Any) -> dict:
    """The metadata every checkpoint carries: architecture and config, feature parameters, task and
    labels, version; ``extra`` adds e.g. normalization, metrics, train_config, split."""
    from moodscope.version import __version__

    meta = {
        "arch": arch,
        "config": config,
        "feature_params": json.loads(json.dumps(FEATURE_PARAMS)),
        "task": task,
        "labels": list(VA_LABELS if task == "va" else QUADRANTS),
        "moodscope_version": __version__,
    }
    if task == "va":
        meta["va_scale"] = VA_SCALE
    else:
        meta["label_numbering"] = "russell"
    meta.update(extra)
    return meta


def build_meta(model: MoodNetwork, normalization: Normalization, **extra: Any) -> dict:
    """The metadata of a checkpoint of one of the paper's networks, with its feature normalisation."""
    return base_meta(model.name, model_config(model), normalization=normalization.to_dict(), **extra)


def write_checkpoint(path: str | Path, state_dict: dict[str, torch.Tensor], meta: dict, **extra_payload: Any) -> Path:
    """Write ``state_dict`` and ``meta`` (plus ``weights_sha256``) to ``path`` (``.pt`` or ``.safetensors``).

    The one writer of checkpoints: the file appears complete or not at all (temporary file, fsync,
    rename). ``extra_payload`` (e.g. optimizer state for a resumable ``last`` checkpoint) is stored
    beside the weights in ``.pt`` files; it must be made of tensors and plain types too.
    """
    path = Path(path)
    state = {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}
    meta = dict(meta, weights_sha256=weights_sha256(state))
    with atomic_write(path, "wb") as fh:
        if path.suffix == ".safetensors":
            from safetensors.torch import save

            fh.write(save(state, metadata={"moodscope": json.dumps(meta)}))
        else:
            torch.save(
                {"format": FORMAT, "format_version": FORMAT_VERSION, "state_dict": state, "meta": meta} | extra_payload,
                fh,
            )
    return path


def save_checkpoint(path: str | Path, model: MoodNetwork, meta: dict, **extra_payload: Any) -> Path:
    """Write ``model``'s weights and ``meta`` to ``path`` with :func:`write_checkpoint`."""
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    return write_checkpoint(path, state, meta, **extra_payload)


def read_checkpoint(path: str | Path, *, verify: bool = True) -> dict:
    """:func:`moodscope.checkpoint_io.read_checkpoint` (the one reader), with every array as a torch tensor."""
    payload = checkpoint_io.read_checkpoint(path, verify=verify)
    payload["state_dict"] = {k: torch.as_tensor(v) for k, v in payload["state_dict"].items()}
    return payload


def module_from_checkpoint(payload: dict, source: str | Path = "checkpoint") -> MoodNetwork:
    """Rebuild, in eval mode, the network of a checkpoint of one of the paper's architectures."""
    arch = payload["meta"].get("arch")
    try:
        model = build_model(arch, **payload["meta"]["config"])
    except ModelError as exc:
        raise ModelError(
            f"{source}: a {arch!r} checkpoint, not one of the paper's networks; load it with "
            f"moodscope.load_model ({exc})"
        ) from exc
    model.load_state_dict({k: torch.as_tensor(v) for k, v in payload["state_dict"].items() if not k.startswith("ood.")})
    model.eval()
    return model


def load_checkpoint(path: str | Path) -> tuple[MoodNetwork, dict]:
    """Rebuild the network of a checkpoint, in eval mode, and return it with its metadata dict."""
    payload = read_checkpoint(path)
    return module_from_checkpoint(payload, path), payload["meta"]


@torch.no_grad()
def predict_outputs(model: MoodNetwork, meta: dict, features: SegmentFeatures, batch_size: int = 256) -> np.ndarray:
    """The model's raw outputs [shape=(n, n_outputs)] on raw (unnormalised) ``features``, after the
    normalisation stored in ``meta``: quadrant logits, or valence/arousal for a ``va`` checkpoint."""
    was_training = model.training
    model.eval()
    norm = Normalization.from_dict(meta["normalization"])
    out = []
    for start in range(0, len(features), batch_size):
        part = norm.apply(features.select(slice(start, start + batch_size)))
        inputs = {k: torch.from_numpy(v) for k, v in model_inputs(model, part).items()}
        out.append(model(**inputs).numpy())
    model.train(was_training)
    if not out:
        return np.zeros((0, len(meta.get("labels", QUADRANTS))), np.float32)
    return np.concatenate(out).astype(np.float32)


def predict_proba(model: MoodNetwork, meta: dict, features: SegmentFeatures, batch_size: int = 256) -> np.ndarray:
    """Quadrant probabilities [shape=(n, 4)] (Q1..Q4, Russell) of raw (unnormalised) ``features``: a
    softmax over the logits of a ``quadrants`` checkpoint."""
    if meta.get("task", "quadrants") != "quadrants":
        raise ModelError("this checkpoint regresses valence/arousal; use predict_outputs (or analyze) instead")
    logits = torch.from_numpy(predict_outputs(model, meta, features, batch_size))
    return torch.softmax(logits, dim=1).numpy().astype(np.float32)


def save_random_checkpoint(
    path: str | Path, arch: str = "hybrid", seed: int = 0, *, task: str = "quadrants", **config
) -> Path:
    """A tiny randomly initialised model (small config unless ``config`` overrides) with identity
    normalisation scaled to typical feature magnitudes, for CLI and server smoke tests. ``task="va"``
    makes a valence/arousal regressor (2 outputs, a validation RMSE of 0.3 per dimension)."""
    torch.manual_seed(seed)
    small = dict(SMALL_CONFIG) | ({} if arch == "cnn" else SMALL_RECURRENT) | config
    if task == "va":
        small["n_classes"] = len(VA_LABELS)
    model = build_model(arch, **small)
    norm = Normalization.identity()
    norm.std["mfcc"][:] = 50.0  # MFCCs of music span tens of dB
    norm.std["delta"][:] = norm.std["delta2"][:] = 5.0
    norm.std["series"][:] = [0.3, 0.1, 0.1, 2000.0, 2000.0]
    norm.std["static"][:] = [0.3, 0.1, 0.1, 0.05, 0.1, 0.05, 2000.0, 1000.0, 2000.0, 500.0]
    extra = {"va_val_rmse": [0.3, 0.3]} if task == "va" else {}
    meta = build_meta(model, norm, task=task, random=True, seed=seed, metrics={}, **extra)
    return save_checkpoint(path, model, meta)
