"""Valence/arousal scales, Russell's quadrants, per-segment labels (moodscope.datasets.labels)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moodscope.constants import NEAR_AXIS_THRESHOLD, QUADRANT_CENTRES, QUADRANT_MOODS, QUADRANTS, SEGMENT_SECONDS
from moodscope.datasets.labels import (
    PAPER_TO_RUSSELL,
    near_axis,
    quadrant_from_va,
    quadrant_index,
    reported_quadrant,
    reported_quadrant_index,
    scale_0_1,
    scale_1_9,
    segment_va,
)


def test_scale_1_9():
    assert scale_1_9(1) == -1.0 and scale_1_9(5) == 0.0 and scale_1_9(9) == 1.0
    assert scale_1_9(7) == pytest.approx(0.5)
    np.testing.assert_allclose(scale_1_9(np.array([1.0, 3.0, 9.0])), [-1.0, -0.5, 1.0])


def test_scale_0_1():
    assert scale_0_1(0) == -1.0 and scale_0_1(0.5) == 0.0 and scale_0_1(1) == 1.0
    np.testing.assert_allclose(scale_0_1(np.array([0.25, 0.75])), [-0.5, 0.5])


@given(st.floats(1, 9))
def test_scales_map_into_minus_one_one(x):
    assert -1.0 <= scale_1_9(x) <= 1.0
    assert -1.0 <= scale_0_1((x - 1) / 8) <= 1.0


def test_russell_quadrants():
    assert quadrant_from_va(0.5, 0.5) == "Q1"  # happy/excited
    assert quadrant_from_va(-0.5, 0.5) == "Q2"  # tense/angry
    assert quadrant_from_va(-0.5, -0.5) == "Q3"  # sad/depressed
    assert quadrant_from_va(0.5, -0.5) == "Q4"  # calm/relaxed
    assert QUADRANT_MOODS["Q2"].startswith("tense") and QUADRANT_MOODS["Q4"].startswith("calm")
    for q, (v, a) in QUADRANT_CENTRES.items():  # the centres are on the reported 0-1 scale
        assert 0 < v < 1 and 0 < a < 1
        assert reported_quadrant(v, a) == q


def test_reported_quadrants_split_the_0_1_plane_at_its_midpoint():
    assert reported_quadrant(0.9, 0.9) == "Q1" and reported_quadrant(0.1, 0.9) == "Q2"
    assert reported_quadrant(0.1, 0.1) == "Q3" and reported_quadrant(0.9, 0.1) == "Q4"
    assert reported_quadrant(0.5, 0.9) == "Q1"  # the boundary counts as positive, as on [-1, 1]
    assert reported_quadrant(0.49, 0.5) == "Q2"
    v, a = np.array([0.75, 0.25, 0.25, 0.75]), np.array([0.75, 0.75, 0.25, 0.25])
    np.testing.assert_array_equal(reported_quadrant_index(v, a), [0, 1, 2, 3])


def test_quadrant_index_is_vectorised_and_ordered_like_QUADRANTS():
    v = np.array([0.3, -0.3, -0.3, 0.3])
    a = np.array([0.3, 0.3, -0.3, -0.3])
    np.testing.assert_array_equal(quadrant_index(v, a), [0, 1, 2, 3])
    assert [QUADRANTS[i] for i in quadrant_index(v, a)] == ["Q1", "Q2", "Q3", "Q4"]


def test_axis_points_go_to_the_positive_side():
    assert quadrant_from_va(0.0, 0.0) == "Q1"
    assert quadrant_from_va(0.0, -0.5) == "Q4"  # valence 0 counts as positive
    assert quadrant_from_va(-0.5, 0.0) == "Q2"  # arousal 0 counts as positive
    assert quadrant_from_va(-0.0, -0.0) == "Q1"


@given(st.floats(-1, 1), st.floats(-1, 1))
def test_quadrant_signs(v, a):
    q = quadrant_from_va(v, a)
    assert (q in ("Q1", "Q4")) == (v >= 0)
    assert (q in ("Q1", "Q2")) == (a >= 0)


def test_paper_to_russell_is_an_involution_swapping_q2_and_q4():
    assert PAPER_TO_RUSSELL == {"Q1": "Q1", "Q2": "Q4", "Q3": "Q3", "Q4": "Q2"}
    for q in QUADRANTS:
        assert PAPER_TO_RUSSELL[PAPER_TO_RUSSELL[q]] == q
    assert sorted(PAPER_TO_RUSSELL.values()) == list(QUADRANTS)
    # the paper's "Q2" is +valence -arousal, which is Russell's Q4
    assert PAPER_TO_RUSSELL["Q2"] == quadrant_from_va(0.5, -0.5)


def test_near_axis():
    v = np.array([0.5, 0.01, -0.02, 0.5, -0.3, NEAR_AXIS_THRESHOLD])
    a = np.array([0.5, 0.5, 0.4, -0.024, -0.3, 0.5])
    np.testing.assert_array_equal(near_axis(v, a), [False, True, True, True, False, False])
    np.testing.assert_array_equal(near_axis(v, a, threshold=0.001), [False] * 6)
    assert NEAR_AXIS_THRESHOLD == 0.025


def test_segment_va_static_only():
    out = segment_va(3, (0.2, -0.4))
    assert out.shape == (3, 2)
    np.testing.assert_array_equal(out, [[0.2, -0.4]] * 3)


def test_segment_va_dynamic_means_per_window_with_static_fallback():
    times = np.array([0.0, 2.5, 4.5, 5.0, 9.5, 16.0, 99.0])  # nothing in [10, 15); 99 s is past the end
    valence = np.array([0.1, 0.2, 0.3, -0.5, np.nan, 0.9, 0.7])
    arousal = np.array([0.4, 0.5, 0.6, -0.1, 0.3, -0.9, 0.7])
    out = segment_va(4, (0.05, 0.06), (times, valence, arousal))
    np.testing.assert_allclose(out[0], [0.2, 0.5])  # mean of the three annotations in [0, 5)
    np.testing.assert_allclose(out[1], [-0.5, -0.1])  # the NaN at 9.5 s is ignored
    np.testing.assert_allclose(out[2], [0.05, 0.06])  # no annotation: the static label
    np.testing.assert_allclose(out[3], [0.9, -0.9])


@settings(max_examples=60, deadline=None)
@given(
    n_segments=st.integers(1, 8),
    values=st.lists(
        st.tuples(st.floats(0, 45, exclude_max=True), st.floats(-1, 1), st.floats(-1, 1)), min_size=1, max_size=90
    ),
)
def test_segment_va_is_the_mean_of_the_annotations_inside_each_window(n_segments, values):
    times, valence, arousal = (np.array(x, dtype=float) for x in zip(*values))
    static = (0.123, -0.456)
    out = segment_va(n_segments, static, (times, valence, arousal))
    assert out.shape == (n_segments, 2)
    for i in range(n_segments):
        inside = (times >= i * SEGMENT_SECONDS) & (times < (i + 1) * SEGMENT_SECONDS)
        if inside.any():
            np.testing.assert_allclose(out[i], [valence[inside].mean(), arousal[inside].mean()], atol=1e-12)
            # a mean lies between the smallest and largest annotation in the window
            assert valence[inside].min() - 1e-12 <= out[i, 0] <= valence[inside].max() + 1e-12
        else:
            np.testing.assert_array_equal(out[i], static)
