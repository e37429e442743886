"""Nested artist-grouped cross-validation and temperature calibration, on tiny synthetic song sets."""

from __future__ import annotations

import numpy as np
import pytest

from moodscope.training.calibration import expected_calibration_error, fit_temperature, log_loss
from moodscope.training.nested import group_folds, nested_cv, select_candidate


def synthetic_songs(n_songs: int = 96, noise: float = 0.5, seed: int = 0):
    """Songs whose 2-d descriptor carries their quadrant, two or three songs per artist."""
    rng = np.random.default_rng(seed)
    y = np.arange(n_songs) % 4
    centres = np.array([[1, 1], [-1, 1], [-1, -1], [1, -1]], float)
    x = np.hstack([centres[y] + rng.normal(0, noise, (n_songs, 2)), rng.normal(size=(n_songs, 3))])
    groups = np.array([f"artist{i // (2 + i % 2)}" for i in range(n_songs)])
    return x, y, groups


def softmax_candidate(x: np.ndarray, y: np.ndarray, C: float, sharpen: float = 1.0):
    """A nearest-centroid classifier fitted on the songs ``train`` (logits: minus the squared distance to
    each quadrant's mean, times ``C`` and ``sharpen``); probabilities of ``test`` as a function of the
    temperature. ``sharpen`` > 1 makes an over-confident model."""

    def fit_predict(train: np.ndarray, test: np.ndarray):
        centres = np.stack([x[train][y[train] == q].mean(axis=0) for q in range(4)])
        logits = -((x[test, None, :] - centres[None]) ** 2).sum(axis=-1) * C * sharpen

        def proba(temperature: float) -> np.ndarray:
            z = logits / temperature
            e = np.exp(z - z.max(axis=1, keepdims=True))
            return e / e.sum(axis=1, keepdims=True)

        return proba

    return fit_predict


def test_no_song_or_artist_on_both_sides_and_selection_never_sees_the_outer_test_fold():
    x, y, groups = synthetic_songs()
    calls: list[tuple[np.ndarray, np.ndarray]] = []

    def spy(C):
        inner = softmax_candidate(x, y, C)

        def fit_predict(train, test):
            calls.append((np.array(train), np.array(test)))
            return inner(train, test)

        return fit_predict

    candidates = {"C0.01": spy(0.01), "C1": spy(1.0)}
    result = nested_cv(candidates, y, groups, seeds=(0, 1), outer_k=4, inner_k=3)
    assert len(result.folds) == 8
    for train, test in calls:
        assert not set(train) & set(test)
        assert not set(groups[train]) & set(groups[test]), "an artist on both sides of a split"
    per_fold = len(candidates) * 3 + 1  # inner fits of every candidate, then the outer refit
    assert len(calls) == per_fold * len(result.folds)
    for i, fold in enumerate(result.folds):
        chunk = calls[i * per_fold : (i + 1) * per_fold]
        *inner, outer = chunk
        assert np.array_equal(outer[0], fold.train) and np.array_equal(outer[1], fold.test)
        for train, test in inner:
            seen = np.concatenate([train, test])
            assert not np.isin(seen, fold.test).any(), "the inner selection saw an outer test song"
            assert np.isin(seen, fold.train).all()
    for seed in (0, 1):
        tests = np.concatenate([f.test for f in result.folds if f.seed == seed])
        assert np.array_equal(np.sort(tests), np.arange(len(y))), "outer test folds must partition the songs"


def test_nested_cv_learns_a_separable_task_and_not_a_shuffled_one():
    x, y, groups = synthetic_songs()
    candidates = {f"C{C}": softmax_candidate(x, y, C) for C in (0.01, 1.0)}
    summary = nested_cv(candidates, y, groups, seeds=(0, 1), outer_k=4, inner_k=3).summary()
    assert summary["macro_f1"]["mean"] > 0.8
    assert len(summary["macro_f1"]["values"]) == 2
    assert np.sum(summary["confusion_summed_over_seeds"]) == 2 * len(y)
    assert set(summary["f1_per_quadrant"]) == {"Q1", "Q2", "Q3", "Q4"}
    assert sum(summary["chosen"].values()) == 8
    shuffled = np.random.default_rng(1).permutation(y)
    candidates = {f"C{C}": softmax_candidate(x, shuffled, C) for C in (0.01, 1.0)}
    assert nested_cv(candidates, shuffled, groups, seeds=(0,), outer_k=4, inner_k=3).summary()["macro_f1"]["mean"] < 0.5


def test_group_folds_keep_artists_whole_and_refuse_too_few_artists():
    _, y, groups = synthetic_songs(n_songs=40)
    for train, test in group_folds(y, groups, 4, seed=3):
        assert not set(groups[train]) & set(groups[test])
    with pytest.raises(Exception, match="artists cannot be split"):
        group_folds(y[:6], groups[:6], 5, seed=0)


def test_expected_calibration_error_known_answers():
    y = np.zeros(10, int)
    confident = np.tile([0.9, 0.1 / 3, 0.1 / 3, 0.1 / 3], (10, 1))
    right_90 = y.copy()
    right_90[0] = 1  # 9 of 10 right at confidence 0.9: perfectly calibrated
    assert expected_calibration_error(confident, right_90) == pytest.approx(0.0, abs=1e-12)
    half = y.copy()
    half[:5] = 2  # half right at confidence 0.9
    assert expected_calibration_error(confident, half) == pytest.approx(0.4)


def test_temperature_fitted_on_one_fold_does_not_increase_the_error_on_a_held_out_fold():
    x, y, groups = synthetic_songs(n_songs=240, noise=1.2, seed=4)
    overconfident = softmax_candidate(x, y, C=1.0, sharpen=6.0)
    (fit_rows, held_rows), *_ = group_folds(y, groups, 2, seed=0)
    selection = select_candidate({"sharp": overconfident}, y, groups, fit_rows, k=3, seed=1)
    assert selection.temperature > 1.5, "an over-confident model needs softening"
    proba = overconfident(fit_rows, held_rows)
    before, after = proba(1.0), proba(selection.temperature)
    held = y[held_rows]
    assert expected_calibration_error(after, held) < expected_calibration_error(before, held)
    assert log_loss(after, held) < log_loss(before, held)
    assert np.array_equal(before.argmax(axis=1), after.argmax(axis=1))


def test_fit_temperature_recovers_a_known_temperature():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (4000, 4))
    true_t = 2.5
    p = np.exp(logits / true_t)
    p /= p.sum(axis=1, keepdims=True)
    y = np.array([rng.choice(4, p=row) for row in p])

    def proba(t: float) -> np.ndarray:
        e = np.exp(logits / t)
        return e / e.sum(axis=1, keepdims=True)

    assert fit_temperature([(proba, y)]) == pytest.approx(true_t, rel=0.1)
