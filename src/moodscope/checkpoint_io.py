"""Reading moodscope checkpoints, without torch for ``.safetensors`` files (see :mod:`moodscope.models.checkpoint`
for the format and the writer).

:func:`read_checkpoint` is the one reader of checkpoints. A ``.safetensors`` checkpoint is read with
``safetensors.numpy`` into numpy arrays, so that ``analyze`` with the shipped ``accurate`` model (a
``.safetensors`` file) does not import torch (1.2-1.7 CPU-seconds); a ``.pt`` checkpoint needs
``torch.load`` (``weights_only=True``) and gives tensors.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from moodscope.errors import ModelError
from moodscope.features.extract import FEATURE_PARAMS

FORMAT = "moodscope-checkpoint"
FORMAT_VERSION = 1
LEGACY_ENSEMBLE_KIND = "embedding-ensemble"
"""The ``accurate`` model's own format before moodscope 0.2: no hash, other key names; converted on load."""


def weights_sha256(state_dict: dict[str, Any]) -> str:
    """SHA-256 over the sorted parameter names, dtypes and bytes: the identity of a model's weights.

    The arrays may be torch tensors or numpy arrays (hashed as the tensors they are stored as: the
    dtype named as torch names it, e.g. ``torch.float32``), so both readers agree."""
    h = hashlib.sha256()
    for name in sorted(state_dict):
        value = state_dict[name]
        if isinstance(value, np.ndarray):
            dtype, data = f"torch.{value.dtype}", np.ascontiguousarray(value).tobytes()
        else:  # a torch tensor
            import torch

            t = value.detach().cpu().contiguous()
            dtype = str(t.dtype)
            data = t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes()
        h.update(name.encode())
        h.update(dtype.encode())
        h.update(data)
    return h.hexdigest()


def _first_line(exc: Exception) -> str:
    """A one-line reason; torch's advice to unpickle an untrusted file is never passed on."""
    text = str(exc).strip()
    if "weights_only" in text:
        return "it holds pickled Python objects, which moodscope never loads (they could run code)"
    return text.splitlines()[0] if text else type(exc).__name__


def _from_legacy_ensemble(old: dict) -> dict:
    """An ``embedding-ensemble`` checkpoint (the ``accurate`` model's format up to moodscope 0.1)
    in today's layout: each head's arrays as ``heads.<i>.<name>`` tensors, keys renamed."""
    heads = old["heads"]
    state = {f"heads.{i}.{k}": h[k] for i, h in enumerate(heads) for k in ("mean", "scale", "weight", "bias")}
    meta = {
        "arch": old.get("architecture", "musicnn-ensemble"),
        "config": {"heads": [list(h["blocks"]) for h in heads]},
        "feature_params": old["feature_params"],
        "labels": list(old["labels"]),
        "label_numbering": "russell",
        "metrics": old.get("metrics", {}),
        "train_config": old.get("config", {}),
        "moodscope_version": old.get("package_version"),
        "converted_from": f"{LEGACY_ENSEMBLE_KIND} format_version {old.get('format_version', 1)}",
        "weights_sha256": weights_sha256(state),
    }
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "state_dict": state, "meta": meta}


def _load_payload(path: Path) -> dict:
    try:
        if path.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), framework="np") as fh:
                meta = json.loads((fh.metadata() or {})["moodscope"])
                state = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118 (safe_open is not a dict)
            return {"format": FORMAT, "format_version": FORMAT_VERSION, "state_dict": state, "meta": meta}
        import torch

        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelError(f"{path}: not a readable moodscope checkpoint ({_first_line(exc)})") from exc
    if isinstance(payload, dict) and payload.get("kind") == LEGACY_ENSEMBLE_KIND:
        return _from_legacy_ensemble(payload)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ModelError(f"{path}: not a moodscope checkpoint (no '{FORMAT}' format tag)")
    return payload


def read_checkpoint(path: str | Path, *, verify: bool = True) -> dict:
    """The checkpoint at ``path`` as a dict (``state_dict``, ``meta`` and any extra payload).

    The one reader of checkpoints: loaded once and safely, earlier layouts converted. The arrays are
    numpy arrays for a ``.safetensors`` file (read without torch), tensors for a ``.pt`` file. With
    ``verify`` the weights must match ``meta["weights_sha256"]`` and the feature parameters (which
    every model's checkpoint records; a training run's ``last.pt`` may not) the version this
    moodscope computes; :class:`~moodscope.errors.ModelError` otherwise.
    """
    path = Path(path)
    if not path.exists():
        raise ModelError(f"{path}: no such checkpoint; train one with `moodscope train` or give another path")
    payload = _load_payload(path)
    if verify:
        meta, state = payload["meta"], payload["state_dict"]
        if "weights_sha256" not in meta:
            raise ModelError(f"{path}: no weights_sha256 in its metadata; write it with moodscope's checkpoint writer")
        if meta["weights_sha256"] != weights_sha256(state):
            raise ModelError(
                f"{path}: weights do not match their sha256; the file is corrupt, train or download it again"
            )
        version = meta.get("feature_params", {}).get("version")
        if "feature_params" in meta and version != FEATURE_PARAMS["version"]:
            raise ModelError(
                f"{path}: trained on features version {version}, this moodscope computes version "
                f"{FEATURE_PARAMS['version']}; retrain the model"
            )
    return payload
