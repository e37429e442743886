"""Model cards: what a model is, how well it did, what it is made of and under which terms.

:func:`model_card` describes a shipped model or any checkpoint from its metadata: architecture,
headline evaluation figures, the content hash that analysis outputs carry (``model_hash``), size
and licence. ``moodscope models`` prints the cards of the shipped models.

Figures come from ``meta["metrics"]``: its ``headline`` entry when a checkpoint has one
(``{"evaluation": "what the figures measure", "figures": {name: value}}``), else the song-level
cross-validation of ``cross_validation`` (the ``accurate`` model), else the song- and
segment-level test metrics of a ``moodscope train`` run.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from moodscope.analysis.pretrained import DEFAULT_MODEL, SHIPPED_MODELS, load_model

RESEARCH_USE = (
    "research use only: trained on the 4Q dataset's clips (AllMusic previews), which its authors "
    "distribute for research use; the weights inherit those terms"
)
SHIPPED_CARDS = {
    "accurate": {
        "description": "musicnn embeddings (MSD and MagnaTagATune taggers, int8 ONNX graphs run by ONNX Runtime) and "
        "two calibrated logistic heads, P(valence positive) and P(arousal high), whose products are the quadrant "
        "probabilities",
        "licence": f"{RESEARCH_USE}; runs musicnn's MSD and MTT weights (ISC licence, weights/MUSICNN_LICENSE)",
    },
    "fast": {
        "description": "the paper's Model 3 (hybrid: CNN over MFCC, LSTM over RMS and ZCR, DNN over statics)",
        "licence": RESEARCH_USE,
    },
}
"""What the metadata of a shipped model does not say: a description and its licence."""


@dataclass
class ModelCard:
    name: str  # 'accurate', 'fast' or '<arch>:<file name>'
    arch: str
    description: str
    evaluation: str  # what the figures measure
    figures: dict[str, float]  # e.g. {"song_macro_f1": 0.75, "song_accuracy": 0.75}
    content_hash: str  # SHA-256 of the model's files: the ``model_hash`` of its analyses
    size_bytes: int  # of all its files
    licence: str
    files: list[str] = field(default_factory=list)
    default: bool = False
    moodscope_version: str = ""  # that wrote the checkpoint

    def to_dict(self) -> dict:
        return asdict(self)


def headline_figures(meta: dict) -> tuple[str, dict[str, float]]:
    """(what the figures measure, {figure: value}) from a checkpoint's metadata; ('', {}) if none."""
    metrics = meta.get("metrics") or {}
    if "headline" in metrics:
        return metrics["headline"]["evaluation"], dict(metrics["headline"]["figures"])
    if "cross_validation" in metrics:
        cv = metrics["cross_validation"]
        folds = len(cv["folds"]["macro_f1"]["values"])
        where = f"{metrics.get('dataset', '?')} ({metrics.get('n_songs', '?')} songs)"
        figures = {
            "song_macro_f1": cv["pooled"]["macro_f1"],
            "song_accuracy": cv["pooled"]["accuracy"],
            "song_macro_f1_fold_std": cv["folds"]["macro_f1"]["std"],
        }
        return f"song level, artist-grouped {folds}-fold cross-validation on {where}, pooled", figures
    if "song" in metrics and "segment" in metrics:
        run = meta.get("run", {})
        figures = {
            f"{level}_{name}": metrics[level][name]
            for level in ("song", "segment")
            for name in ("macro_f1", "accuracy")
        }
        where = (
            f"the test part of fold {run.get('fold', 0) + 1} of {run.get('folds', 1)} on {run.get('dataset', '?')} "
            f"({run.get('protocol', '?')} protocol, {metrics['song']['n']} songs)"
        )
        return where, figures
    return "", {}


def model_card(spec: str | os.PathLike) -> ModelCard:
    """The card of a shipped model (by name) or of a checkpoint (by path)."""
    model = load_model(spec)
    meta = model.meta
    shipped = SHIPPED_CARDS.get(str(spec), {})
    evaluation, figures = headline_figures(meta)
    return ModelCard(
        name=model.name,
        arch=str(meta.get("arch", "?")),
        description=shipped.get("description", meta.get("description", "")),
        evaluation=evaluation,
        figures={k: round(float(v), 4) for k, v in figures.items()},
        content_hash=model.content_hash,
        size_bytes=sum(Path(f).stat().st_size for f in model.files),
        licence=shipped.get("licence", meta.get("licence", "not recorded in the checkpoint")),
        files=[str(f) for f in model.files],
        default=str(spec) == DEFAULT_MODEL,
        moodscope_version=str(meta.get("moodscope_version", "")),
    )


def shipped_model_cards() -> list[ModelCard]:
    """The cards of the models shipped in the package, the default first."""
    return [model_card(name) for name in sorted(SHIPPED_MODELS, key=lambda n: n != DEFAULT_MODEL)]
