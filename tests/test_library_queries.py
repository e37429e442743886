"""Mood queries on synthetic profiles: moods, similar, playlists, journeys (property test), clusters."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from moodscope.analysis.analyzer import va_from_probabilities
from moodscope.constants import QUADRANT_CENTRES, QUADRANTS
from moodscope.errors import LibraryError
from moodscope.library.db import Profiles
from moodscope.library.export import CLUSTER_CSV_COLUMNS, clusters_csv, clusters_json
from moodscope.library.profile import PROFILE_SIZE, SHAPE, SHAPE_POINTS, SHARE, STD, VA, profile_vector
from moodscope.library.queries import (
    clusters,
    describe_cluster,
    fill_playlist,
    journey,
    kmeans,
    parse_mood,
    rank_for_mood,
    similar,
)


def synthetic_profiles(n: int, seed: int = 0) -> Profiles:
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        k = int(rng.integers(1, 12))
        probs = rng.dirichlet(np.full(4, 0.5), size=k)
        rows.append(profile_vector(probs, va_from_probabilities(probs)))
    m = np.stack(rows)
    song = m[:, 2:6]
    return Profiles(
        ids=np.arange(1, n + 1),
        quadrant=song.argmax(axis=1).astype(np.int8),
        confidence=song.max(axis=1).astype(np.float32),
        duration=rng.uniform(60, 400, n).astype(np.float32),
        matrix=m,
    )


def test_profile_vector_layout():
    probs = np.array([[1, 0, 0, 0], [1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 1, 0.0]])
    va = np.array([[0.5, 0.5], [0.5, 0.5], [-0.5, -0.5], [-0.5, -0.5]])
    p = profile_vector(probs, va)
    assert p.shape == (PROFILE_SIZE,) and p.dtype == np.float32
    assert np.allclose(p[VA], 0) and np.allclose(p[SHARE], [0.5, 0, 0.5, 0]) and np.allclose(p[STD], 0.5)
    shape = p[SHAPE].reshape(2, SHAPE_POINTS)
    assert shape[0, 0] == pytest.approx(0.5) and shape[0, -1] == pytest.approx(-0.5)  # valence falls
    one = profile_vector(probs[:1], va[:1])
    assert np.allclose(one[SHAPE], 0) and np.allclose(one[STD], 0)
    with pytest.raises(ValueError):
        profile_vector(np.zeros((0, 4)), np.zeros((0, 2)))


@pytest.mark.parametrize(
    ("text", "quadrant", "is_point"),
    [
        ("happy", "Q1", False),
        ("Excited", "Q1", False),
        ("angry", "Q2", False),
        ("tense", "Q2", False),
        ("sad", "Q3", False),
        ("depressed", "Q3", False),
        ("calm", "Q4", False),
        ("relaxed", "Q4", False),
        ("q4", "Q4", False),
        ("calm/relaxed", "Q4", False),
        ("0.7,0.2", "Q4", True),
        ("0.3, 0.85", "Q2", True),
        ("0.5,0.9", "Q1", True),  # neutral valence counts as positive, as on the map
        ("0,0", "Q3", True),
    ],
)
def test_parse_mood(text, quadrant, is_point):
    mood = parse_mood(text)
    assert mood.quadrant == quadrant and mood.is_point == is_point
    if not is_point:
        assert mood.point == QUADRANT_CENTRES[quadrant]


@pytest.mark.parametrize("text", ["gloomy", "2,0", "0.1", "", "-0.2,0.5", "0.5,1.01"])
def test_parse_mood_errors(text):
    with pytest.raises(LibraryError):
        parse_mood(text)


def test_similar_finds_the_twin_first():
    prof = synthetic_profiles(200)
    prof.matrix[150] = prof.matrix[7] + 1e-4
    rows, dist = similar(prof, 7, n=5)
    assert rows[0] == 150 and 7 not in rows and np.all(np.diff(dist) >= 0) and len(rows) == 5
    assert len(similar(prof, 0, n=1000)[0]) == 199


def test_rank_for_mood_and_fill_playlist():
    prof = synthetic_profiles(300)
    rows, scores = rank_for_mood(prof, parse_mood("calm"), min_confidence=0.4)
    assert np.all(prof.quadrant[rows] == 3) and np.all(np.diff(scores) <= 0) and np.all(scores >= 0.4)
    rows, dist = rank_for_mood(prof, parse_mood("0.3,0.3"))
    assert len(rows) == 300 and np.all(np.diff(dist) >= 0)
    chosen = fill_playlist(rows, prof.duration, minutes=30)
    total = prof.duration[chosen].sum()
    assert total <= 30 * 60 and total > 25 * 60 and len(set(chosen.tolist())) == len(chosen)
    assert len(fill_playlist(rows, prof.duration, n=7)) == 7
    assert len(fill_playlist(rows, prof.duration)) == 20
    assert len(fill_playlist(rows, prof.duration, minutes=600, n=3)) == 3


points = st.tuples(st.floats(-1, 1), st.floats(-1, 1))


@settings(max_examples=300, deadline=None)
@given(
    va=arrays(np.float64, st.tuples(st.integers(1, 60), st.just(2)), elements=st.floats(-1, 1)),
    start=points,
    target=points,
    n=st.integers(1, 20),
)
def test_journey_moves_monotonically_toward_the_target(va, start, target, n):
    rows, waypoints = journey(va, start, target, n)
    assert len(rows) == min(n, len(va)) and len(set(rows.tolist())) == len(rows)
    assert len(waypoints) == len(rows)
    d = np.hypot(*(va[rows] - np.asarray(target)).T)
    assert np.all(np.diff(d) <= 1e-12), "each step must be at least as close to the target"
    if len(rows) >= 2:
        nearest = np.hypot(*(va - np.asarray(target)).T).min()
        assert d[-1] == pytest.approx(nearest), "the journey ends at the track nearest the target"


def journey_by_definition(va, start, target, n):
    """The journey as its docstring defines it, measured against every track at every step."""
    count = min(n, len(va))
    waypoints = np.asarray(start) + (np.linspace(0, 1, count) if count > 1 else np.ones(1))[:, None] * (
        np.asarray(target) - np.asarray(start)
    )
    by_rank = np.argsort(np.hypot(*(va - np.asarray(target)).T), kind="stable")
    chosen, upper = [], len(va)
    for i, w in enumerate(waypoints):
        lower = count - 1 - i  # the steps still to come keep the `lower` tracks nearest the target
        window = va[by_rank[lower:upper]]
        upper = lower + int(np.argmin(np.hypot(window[:, 0] - w[0], window[:, 1] - w[1])))
        chosen.append(by_rank[upper])
    return np.asarray(chosen, dtype=np.int64)


@pytest.mark.parametrize("grid_min", [0, 10**9])  # with the grid index, and measuring every track
def test_journey_is_the_defined_path_with_or_without_the_grid(grid_min):
    rng = np.random.default_rng(5)
    for trial in range(170):
        small = trial < 150  # then larger libraries, where only some tracks are ranked and the grid finds the rest
        size = int(rng.integers(1, 300)) if small else int(rng.integers(1500, 5000))
        va = rng.uniform(-1, 1, (size, 2)).astype(np.float32).astype(np.float64)
        if trial % 2:
            va = np.round(va * 5) / 5  # a coarse grid: many tracks at the same place, many ties
        elif trial % 3 == 0:
            va = np.clip(rng.normal(0.2, 0.1, va.shape), -1, 1)  # a cloud, with waypoints far outside it
        start, target = tuple(rng.uniform(-1.2, 1.2, 2)), tuple(rng.uniform(-1, 1, 2))
        n = int(rng.integers(1, len(va) + 3)) if small else int(rng.integers(1, 400))
        cache: dict = {}
        for _ in range(2):  # the second call reuses the cached grid
            rows, _ = journey(va, start, target, n, cache=cache, grid_min=grid_min)
            assert np.array_equal(rows, journey_by_definition(va, start, target, n)), (trial, len(va), n)
        assert ("journey_grid" in cache) == (grid_min == 0)


def test_journey_follows_the_line_on_a_grid():
    g = np.linspace(-0.5, 0.5, 11)
    va = np.array([(v, a) for v in g for a in g])
    rows, _ = journey(va, (-0.5, -0.5), (0.5, 0.5), n=11)
    assert np.allclose(va[rows], np.stack([g, g], axis=1))  # the diagonal, step by step


def test_kmeans_recovers_separated_blobs():
    rng = np.random.default_rng(0)
    centres = np.array([[0, 0], [5, 5], [-5, 5]])
    x = np.concatenate([c + 0.3 * rng.standard_normal((100, 2)) for c in centres])
    labels, found = kmeans(x, 3)
    assert len(np.unique(labels)) == 3 and found.shape == (3, 2)
    for c in range(3):
        assert len(np.unique(labels[c * 100 : (c + 1) * 100])) == 1
    assert np.array_equal(kmeans(x, 3)[0], labels)  # deterministic
    assert len(np.unique(kmeans(x[:2], 5)[0])) <= 2  # k capped at the number of points


def test_clusters_describe_groups_in_words_and_figures():
    prof = synthetic_profiles(400, seed=3)
    found = clusters(prof, 4)
    assert [c.index for c in found] == [1, 2, 3, 4]
    assert sum(c.size for c in found) == 400 and found[0].size >= found[-1].size
    assert sorted(np.concatenate([c.rows for c in found]).tolist()) == list(range(400))
    for c in found:
        assert abs(sum(c.quadrant_share.values()) - 1) < 1e-4
        assert "valence" in c.description and "arousal" in c.description
        d = c.to_dict()
        assert d["size"] == c.size and "description" in d
    with pytest.raises(LibraryError):
        clusters(prof, 0)


def test_clusters_csv_and_json_have_a_row_per_cluster():
    found = clusters(synthetic_profiles(200, seed=4), 3)
    rows = list(csv.DictReader(io.StringIO(clusters_csv(found))))
    assert list(rows[0]) == list(CLUSTER_CSV_COLUMNS)
    assert [int(r["cluster"]) for r in rows] == [1, 2, 3] and sum(int(r["size"]) for r in rows) == 200
    for row, c in zip(rows, found, strict=True):
        assert float(row["valence"]) == pytest.approx(c.valence, abs=1e-3) and row["words"] == c.description
        assert sum(float(row[q]) for q in QUADRANTS) == pytest.approx(1, abs=1e-3)
    assert [d["size"] for d in json.loads(clusters_json(found))] == [c.size for c in found]


def test_describe_cluster_words():
    text = describe_cluster(0.8, 0.2, {"Q1": 0.1, "Q2": 0.0, "Q3": 0.1, "Q4": 0.8}, 0.02)
    assert text.startswith("mostly calm/relaxed (Q4 80%)")
    assert "positive valence (0.80)" in text and "low arousal (0.20)" in text and "steady" in text
    assert "neutral valence (0.52)" in describe_cluster(0.52, 0.6, {"Q1": 0.6, "Q2": 0.4, "Q3": 0, "Q4": 0}, 0.1)
    mixed = describe_cluster(0.5, 0.5, {"Q1": 0.3, "Q2": 0.25, "Q3": 0.25, "Q4": 0.2}, 0.3)
    assert mixed.startswith("mixed moods") and "change a lot" in mixed
