"""Nested, group-disjoint cross-validation: how well a *way of choosing* a model does on unseen artists.

The outer folds split the songs by artist (each artist whole in one fold, quadrant-stratified by
:func:`moodscope.training.protocols.stratified_group_folds`). Inside each outer training part, inner
folds (split the same way, by artist) score every candidate (e.g. a regularisation strength, a head
type); the best candidate by inner out-of-fold macro-F1 is refitted on the whole outer training part
and predicts the outer test fold, which the choice never saw. A temperature is fitted on the chosen
candidate's inner out-of-fold predictions (:mod:`moodscope.training.calibration`) and applied to its
outer predictions. Repeating over several outer seeds gives a mean ± std.

A *candidate* is a function ``fit_predict(train, test)`` of two arrays of song indices: it fits on the
songs ``train`` and returns the probabilities of the songs ``test`` as a function of the temperature,
``proba(T) -> [shape=(len(test), 4)]``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from moodscope.constants import N_QUADRANTS, QUADRANTS
from moodscope.errors import DatasetError
from moodscope.training.calibration import ProbaAt, expected_calibration_error, fit_temperature, log_loss
from moodscope.training.evaluate import classification_metrics

FitPredict = Callable[[np.ndarray, np.ndarray], ProbaAt]
NESTED_SEEDS = (0, 1, 2)
OUTER_FOLDS = 5
INNER_FOLDS = 5


def group_folds(y: np.ndarray, groups: np.ndarray, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``k`` (train, test) pairs of row indices, every group (artist) whole on one side, stratified by ``y``."""
    from moodscope.training.protocols import stratified_group_folds

    n_groups = len(np.unique(groups))
    if n_groups < k:
        raise DatasetError(f"{n_groups} artists cannot be split into {k} folds; use fewer folds or more songs")
    fold_of = stratified_group_folds(np.asarray(y), np.asarray(groups), k, np.random.default_rng(seed))
    rows = np.arange(len(y))
    return [(rows[fold_of != f], rows[fold_of == f]) for f in range(k)]


@dataclass
class Selection:
    """The candidate chosen by an inner cross-validation, its inner scores and temperature."""

    chosen: str
    scores: dict[str, float]  # candidate -> out-of-fold macro-F1
    temperature: float = 1.0


def select_candidate(
    candidates: Mapping[str, FitPredict],
    y: np.ndarray,
    groups: np.ndarray,
    rows: np.ndarray,
    *,
    k: int = INNER_FOLDS,
    seed: int = 0,
    calibrate: bool = True,
) -> Selection:
    """Choose among ``candidates`` by artist-grouped ``k``-fold CV over the songs ``rows`` only (out-of-fold
    macro-F1; ties go to the first candidate), and fit a temperature on the chosen one's out-of-fold
    predictions. ``y``/``groups`` cover all songs; nothing outside ``rows`` is touched."""
    rows = np.asarray(rows)
    folds = group_folds(y[rows], groups[rows], k, seed)
    scores, held_out = {}, {}
    for name, fit_predict in candidates.items():
        parts = [(fit_predict(rows[tr], rows[te]), y[rows[te]]) for tr, te in folds]
        oof = np.concatenate([proba(1.0) for proba, _ in parts])
        scores[name] = classification_metrics(np.concatenate([t for _, t in parts]), oof.argmax(axis=1))["macro_f1"]
        held_out[name] = parts
    chosen = max(scores, key=lambda name: scores[name])
    temperature = fit_temperature(held_out[chosen]) if calibrate else 1.0
    return Selection(chosen, scores, temperature)


@dataclass
class OuterFold:
    """One outer fold: its songs, the inner selection and its test predictions (before and after calibration)."""

    seed: int
    fold: int
    train: np.ndarray
    test: np.ndarray
    selection: Selection
    raw: np.ndarray  # (len(test), 4) at temperature 1
    calibrated: np.ndarray  # (len(test), 4) at the selection's temperature


@dataclass
class NestedResult:
    """Every outer fold of every seed, and the figures over them (:meth:`summary`)."""

    y: np.ndarray
    folds: list[OuterFold] = field(default_factory=list)

    def predictions(self, seed: int, calibrated: bool = True) -> np.ndarray:
        """The outer test probabilities of all songs under one seed [shape=(n_songs, 4)]."""
        out = np.full((len(self.y), N_QUADRANTS), np.nan)
        for f in self.folds:
            if f.seed == seed:
                out[f.test] = f.calibrated if calibrated else f.raw
        return out

    def summary(self) -> dict:
        """Macro-F1 and accuracy (mean ± std over seeds, and per seed), mean per-quadrant F1, the
        confusion matrix summed over seeds (rows = true quadrant), ECE and log-loss before and after
        calibration, the candidates chosen and the temperatures: JSON-ready."""
        seeds = sorted({f.seed for f in self.folds})
        per_seed = []
        for seed in seeds:
            cal, raw = self.predictions(seed, True), self.predictions(seed, False)
            m = classification_metrics(self.y, cal.argmax(axis=1))
            m["macro_f1_uncalibrated"] = classification_metrics(self.y, raw.argmax(axis=1))["macro_f1"]
            m["ece_before"], m["ece_after"] = (expected_calibration_error(p, self.y) for p in (raw, cal))
            m["log_loss_before"], m["log_loss_after"] = (log_loss(p, self.y) for p in (raw, cal))
            per_seed.append(m)

        def stat(key: str) -> dict:
            values = [float(m[key]) for m in per_seed]
            return {"mean": float(np.mean(values)), "std": float(np.std(values)), "values": values}

        chosen: dict[str, int] = {}
        for f in self.folds:
            chosen[f.selection.chosen] = chosen.get(f.selection.chosen, 0) + 1
        keys = ("macro_f1", "accuracy", "macro_f1_uncalibrated", "ece_before", "ece_after")
        return {
            "protocol": "nested artist-grouped CV",
            "seeds": seeds,
            "outer_folds": len(self.folds) // max(len(seeds), 1),
            "n_songs": len(self.y),
            **{key: stat(key) for key in keys},
            "log_loss_before": stat("log_loss_before"),
            "log_loss_after": stat("log_loss_after"),
            "f1_per_quadrant": {q: float(np.mean([m["per_quadrant"][q]["f1"] for m in per_seed])) for q in QUADRANTS},
            "confusion_summed_over_seeds": np.sum([m["confusion"] for m in per_seed], axis=0).tolist(),
            "chosen": chosen,
            "temperatures": [f.selection.temperature for f in self.folds],
        }


def summary_line(name: str, summary: dict, width: int = 16) -> str:
    """One line of a :meth:`NestedResult.summary` for a console: the calibrated macro-F1 (mean ± std and
    per seed), the uncalibrated one, the per-quadrant F1 and the candidates the inner folds chose."""
    f1 = " ".join(f"{v:.3f}" for v in summary["f1_per_quadrant"].values())
    seeds = ", ".join(f"{v:.3f}" for v in summary["macro_f1"]["values"])
    return (
        f"{name:{width}s} {summary['macro_f1']['mean']:.3f} ± {summary['macro_f1']['std']:.3f} (seeds {seeds}) "
        f"uncal {summary['macro_f1_uncalibrated']['mean']:.3f} F1 Q1-Q4 {f1} chosen {summary['chosen']}"
    )


def nested_cv(
    candidates: Mapping[str, FitPredict],
    y: np.ndarray,
    groups: np.ndarray,
    *,
    seeds: Sequence[int] = NESTED_SEEDS,
    outer_k: int = OUTER_FOLDS,
    inner_k: int = INNER_FOLDS,
    calibrate: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> NestedResult:
    """Nested cross-validation of a choice among ``candidates`` on songs with labels ``y`` (0..3) and
    artist ``groups`` [shape=(n_songs,)]: for each seed, ``outer_k`` artist-grouped outer folds; in each,
    :func:`select_candidate` over ``inner_k`` inner folds of the outer training songs only, then the
    chosen candidate refitted on them predicts the outer test songs. ``progress(done, total)`` counts
    outer folds."""
    y, groups = np.asarray(y, int), np.asarray(groups)
    result = NestedResult(y=y)
    total = len(seeds) * outer_k
    for seed in seeds:
        for fold, (train, test) in enumerate(group_folds(y, groups, outer_k, seed)):
            inner_seed = 1000 * (seed + 1) + fold
            selection = select_candidate(candidates, y, groups, train, k=inner_k, seed=inner_seed, calibrate=calibrate)
            proba = candidates[selection.chosen](train, test)
            result.folds.append(OuterFold(seed, fold, train, test, selection, proba(1.0), proba(selection.temperature)))
            if progress:
                progress(len(result.folds), total)
    return result
