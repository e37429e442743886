"""Self-describing checkpoints: everything needed to rebuild and use a model, and nothing pickled.

A checkpoint is ``torch.save`` of a dict holding only tensors, strings, numbers, lists and dicts,
so it loads with ``torch.load(path, weights_only=True)`` (this module never loads otherwise)::

    {"format": "moodscope-checkpoint", "format_version": 1,
     "state_dict": {name: tensor},
     "meta": {"arch", "config", "feature_params", "normalization", "labels", "label_numbering",
              "metrics", "train_config", "split", "moodscope_version", "weights_sha256", ...}}

A ``.safetensors`` path stores the same weights with ``meta`` as JSON under the ``moodscope``
metadata key. ``weights_sha256`` (over the sorted parameter names and bytes) is checked on load.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from moodscope.constants import QUADRANTS
from moodscope.errors import ModelError
from moodscope.features.extract import FEATURE_PARAMS, SegmentFeatures
from moodscope.features.normalization import Normalization
from moodscope.models import MoodModel, build_model, model_config, model_inputs

FORMAT = "moodscope-checkpoint"
FORMAT_VERSION = 1

SMALL_CONFIG = {"filters": [4, 8, 8], "hidden": 8}
SMALL_RECURRENT = {"lstm_units": 8}


def weights_sha256(state_dict: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for name in sorted(state_dict):
        t = state_dict[name].detach().cpu().contiguous()
        h.update(name.encode())
        h.update(str(t.dtype).encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    return h.hexdigest()


def build_meta(model: MoodModel, normalization: Normalization, **extra) -> dict:
    """The metadata of a checkpoint of ``model``; ``extra`` adds e.g. metrics, train_config, split."""
    from moodscope.version import __version__

    meta = {
        "arch": model.name,
        "config": model_config(model),
        "feature_params": json.loads(json.dumps(FEATURE_PARAMS)),
        "normalization": normalization.to_dict(),
        "labels": list(QUADRANTS),
        "label_numbering": "russell",
        "moodscope_version": __version__,
    }
    meta.update(extra)
    return meta


def _atomic_torch_save(obj: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_checkpoint(path: str | Path, model: MoodModel, meta: dict, **extra_payload) -> Path:
    """Write ``model``'s weights and ``meta`` to ``path`` (``.pt`` or ``.safetensors``), atomically.

    ``extra_payload`` (e.g. optimizer state for a resumable ``last`` checkpoint) is stored beside
    the weights in ``.pt`` files; it must be made of tensors and plain types too.
    """
    path = Path(path)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    meta = dict(meta, weights_sha256=weights_sha256(state))
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        path.parent.mkdir(parents=True, exist_ok=True)
        save_file(state, str(path), metadata={"moodscope": json.dumps(meta)})
        return path
    _atomic_torch_save(
        {"format": FORMAT, "format_version": FORMAT_VERSION, "state_dict": state, "meta": meta} | extra_payload, path
    )
    return path


def read_checkpoint(path: str | Path) -> dict:
    """The raw checkpoint dict (``state_dict``, ``meta`` and any extra payload), loaded safely."""
    path = Path(path)
    if not path.exists():
        raise ModelError(f"{path}: no such checkpoint; train one with `moodscope train` or give another path")
    try:
        if path.suffix == ".safetensors":
            from safetensors import safe_open
            from safetensors.torch import load_file

            with safe_open(str(path), framework="pt") as fh:
                meta = json.loads((fh.metadata() or {})["moodscope"])
            return {"format": FORMAT, "state_dict": load_file(str(path)), "meta": meta}
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelError(f"{path}: not a readable moodscope checkpoint ({type(exc).__name__}: {exc})") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ModelError(f"{path}: not a moodscope checkpoint (no '{FORMAT}' format tag)")
    return payload


def load_checkpoint(path: str | Path) -> tuple[MoodModel, dict]:
    """Rebuild the model of a checkpoint, in eval mode, and return it with its metadata dict."""
    payload = read_checkpoint(path)
    meta, state = payload["meta"], payload["state_dict"]
    expected = meta.get("weights_sha256")
    if expected and weights_sha256(state) != expected:
        raise ModelError(f"{path}: weights do not match their sha256; the file is corrupt, train or download it again")
    if meta.get("feature_params", {}).get("version") != FEATURE_PARAMS["version"]:
        raise ModelError(
            f"{path}: trained on features version {meta.get('feature_params', {}).get('version')}, "
            f"this moodscope computes version {FEATURE_PARAMS['version']}; retrain the model"
        )
    model = build_model(meta["arch"], **meta["config"])
    model.load_state_dict(state)
    model.eval()
    return model, meta


@torch.no_grad()
def predict_proba(model: MoodModel, meta: dict, features: SegmentFeatures, batch_size: int = 256) -> np.ndarray:
    """Quadrant probabilities [shape=(n, 4)] (Q1..Q4, Russell) of raw (unnormalised) ``features``.

    Applies the normalisation stored in ``meta`` and a softmax over the model's logits.
    """
    was_training = model.training
    model.eval()
    norm = Normalization.from_dict(meta["normalization"])
    out = []
    for start in range(0, len(features), batch_size):
        part = norm.apply(features.select(slice(start, start + batch_size)))
        inputs = {k: torch.from_numpy(v) for k, v in model_inputs(model, part).items()}
        out.append(torch.softmax(model(**inputs), dim=1).numpy())
    model.train(was_training)
    if not out:
        return np.zeros((0, len(QUADRANTS)), np.float32)
    return np.concatenate(out).astype(np.float32)


def save_random_checkpoint(path: str | Path, arch: str = "hybrid", seed: int = 0, **config) -> Path:
    """A tiny randomly initialised model (small config unless ``config`` overrides) with identity
    normalisation scaled to typical feature magnitudes, for CLI and server smoke tests."""
    torch.manual_seed(seed)
    small = dict(SMALL_CONFIG) | ({} if arch == "cnn" else SMALL_RECURRENT) | config
    model = build_model(arch, **small)
    norm = Normalization.identity()
    norm.std["mfcc"][:] = 50.0  # MFCCs of music span tens of dB
    norm.std["delta"][:] = norm.std["delta2"][:] = 5.0
    norm.std["series"][:] = [0.3, 0.1, 0.1, 2000.0, 2000.0]
    norm.std["static"][:] = [0.3, 0.1, 0.1, 0.05, 0.1, 0.05, 2000.0, 1000.0, 2000.0, 500.0]
    meta = build_meta(model, norm, random=True, seed=seed, metrics={})
    return save_checkpoint(path, model, meta)
