"""Mood queries as vectorised numpy over the library's profile matrix (no SQL, no I/O).

Every function takes a :class:`~moodscope.library.db.Profiles` (or plain arrays) and returns row
indices into it, so they are testable on synthetic data and fast on large libraries (each answers
in a few milliseconds on 100,000 tracks).

Moods are given as words (``happy``, ``excited``, ``tense``, ``angry``, ``sad``, ``depressed``,
``calm``, ``relaxed``, the full ``happy/excited``…), quadrant names (``Q1``..``Q4``) or a
valence/arousal point ``"v,a"`` on the reported scale ``VA_RANGE`` (both in [0, 1]; 0.5 is the quadrant
boundary, so ``"0.5,0.9"`` is neutral valence, high arousal).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

import numpy as np

from moodscope.constants import QUADRANT_CENTRES, QUADRANT_MOODS, QUADRANTS, SEED, VA_MIDPOINT, VA_RANGE
from moodscope.datasets.labels import reported_quadrant
from moodscope.errors import LibraryError
from moodscope.library.db import Profiles
from moodscope.library.profile import SHAPE, SHAPE_POINTS, SHARE, STD, VA

MOOD_WORDS: dict[str, str] = {}
for _q, _words in QUADRANT_MOODS.items():
    MOOD_WORDS[_q.lower()] = _q
    MOOD_WORDS[_words.lower()] = _q
    for _word in _words.split("/"):
        MOOD_WORDS[_word.lower()] = _q

_POINT = re.compile(r"^\s*([-+]?\d*\.?\d+(?:[eE][-+]?\d+)?)\s*[,;]\s*([-+]?\d*\.?\d+(?:[eE][-+]?\d+)?)\s*$")


@dataclass(frozen=True)
class Mood:
    """A mood asked for: a quadrant (words and Q1..Q4) or a valence/arousal point."""

    text: str
    point: tuple[float, float]  # valence, arousal in VA_RANGE: the quadrant centre for words
    quadrant: str
    is_point: bool

    @property
    def label(self) -> str:
        if self.is_point:
            return f"valence {self.point[0]:.2f}, arousal {self.point[1]:.2f}"
        return f"{QUADRANT_MOODS[self.quadrant]} ({self.quadrant})"


def parse_mood(text: str) -> Mood:
    """``'calm'``, ``'Q4'``, ``'calm/relaxed'`` or ``'0.7,0.3'`` -> :class:`Mood`; else :class:`LibraryError`."""
    key = str(text).strip().lower()
    if key in MOOD_WORDS:
        q = MOOD_WORDS[key]
        v, a = QUADRANT_CENTRES[q]
        return Mood(str(text), (float(v), float(a)), q, False)
    match = _POINT.match(key)
    if match:
        v, a = float(match.group(1)), float(match.group(2))
        low, high = VA_RANGE
        if not (low <= v <= high and low <= a <= high):
            raise LibraryError(
                f"mood point {text!r}: valence and arousal must both lie in [{low:g}, {high:g}] "
                f"({VA_MIDPOINT:g} is neutral), e.g. 0.8,0.3 for positive and calm"
            )
        return Mood(str(text), (v, a), reported_quadrant(v, a), True)
    words = ", ".join(sorted(w for w in MOOD_WORDS if "/" not in w and not w.startswith("q")))
    raise LibraryError(
        f"unknown mood {text!r}; give one of {words}, Q1..Q4, or a valence,arousal point in [0, 1] like 0.8,0.3"
    )


# ---- similar ------------------------------------------------------------------------------------

SIMILARITY_WEIGHTS = {"va": 1.0, "share": 0.5, "shape": 0.5}
"""Weights of the squared differences in the similarity distance: mean valence/arousal (2 values),
quadrant distribution (4 shares summing to 1) and timeline shape (mean over its points)."""


def _similarity_space(matrix: np.ndarray) -> np.ndarray:
    """Profiles scaled so that Euclidean distance is the weighted similarity distance."""
    w = SIMILARITY_WEIGHTS
    return np.concatenate(
        [
            matrix[:, VA] * np.sqrt(w["va"]),
            matrix[:, SHARE] * np.sqrt(w["share"]),
            matrix[:, SHAPE] * np.sqrt(w["shape"] / (2 * SHAPE_POINTS)),
        ],
        axis=1,
    )


def similar(
    profiles: Profiles, row: int, n: int = 10, *, include_uncertain: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """The ``n`` rows nearest to row ``row`` by emotion profile (itself excluded), nearest first.

    d² = w_va·|Δ(valence, arousal)|² + w_share·|Δ quadrant shares|² + w_shape·mean(Δ shape²), with
    :data:`SIMILARITY_WEIGHTS`. Ties are broken by row order. Uncertain tracks (mostly silence, noise or
    speech) are not offered unless ``include_uncertain``. Returns (rows, distances).
    """
    space = profiles.cache.get("similarity")
    if space is None:
        space = profiles.cache["similarity"] = _similarity_space(profiles.matrix)
    diff = space - space[row]
    d = np.sqrt(np.einsum("ij,ij->i", diff, diff))
    d[row] = np.inf
    candidates = len(d) - 1
    if not include_uncertain:
        d[profiles.uncertain] = np.inf
        candidates = int(np.count_nonzero(~profiles.uncertain)) - int(not profiles.uncertain[row])
    n = max(0, min(n, candidates))
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    top = np.argpartition(d, n - 1)[:n] if n < len(d) else np.arange(len(d))
    top = np.sort(top)  # ties in row order
    top = top[np.argsort(d[top], kind="stable")]
    return top, d[top]


# ---- playlist ------------------------------------------------------------------------------------


def _best(keys: np.ndarray, limit: int | None) -> np.ndarray:
    """Positions of the ``limit`` smallest ``keys`` in order (ties by position); all when ``limit`` is None."""
    if limit is not None and limit < len(keys):
        part = np.sort(np.argpartition(keys, limit)[: limit + 1])
        kth = keys[part].max()
        part = np.flatnonzero(keys <= kth)  # every position tied with the cut-off, in position order
        return part[np.argsort(keys[part], kind="stable")][:limit]
    return np.argsort(keys, kind="stable")


def rank_for_mood(
    profiles: Profiles, mood: Mood, *, min_confidence: float = 0.0, limit: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Rows matching ``mood``, best first, with their scores (only the best ``limit`` when given).

    A quadrant mood keeps the tracks whose dominant quadrant it is, ranked by confidence (highest
    first, ties by row; score = confidence). A point ranks every track by the distance of its mean
    valence/arousal to the point (ties by row; score = distance). Uncertain tracks (mostly silence,
    noise or speech: :mod:`moodscope.analysis.ood`) have no mood and are left out of both.
    """
    keep = (profiles.confidence >= min_confidence) & ~profiles.uncertain
    if mood.is_point:
        rows = np.flatnonzero(keep)
        va = profiles.matrix[rows, :2]
        d = np.hypot(va[:, 0] - mood.point[0], va[:, 1] - mood.point[1])
        order = _best(d, limit)
        return rows[order], d[order].astype(np.float64)
    rows = np.flatnonzero(keep & (profiles.quadrant == QUADRANTS.index(mood.quadrant)))
    conf = profiles.confidence[rows]
    order = _best(-conf, limit)
    return rows[order], conf[order].astype(np.float64)


def fill_playlist(
    ranked: np.ndarray, durations: np.ndarray, *, minutes: float | None = None, n: int | None = None
) -> np.ndarray:
    """The first ranked rows that fit: at most ``n`` tracks and at most ``minutes`` in total.

    With ``minutes``, a track that would overshoot is skipped and shorter ones further down the
    ranking may still fill the gap. Default: 20 tracks.
    """
    if minutes is None and n is None:
        n = 20
    if minutes is None:
        return ranked[: max(0, n or 0)]
    budget = minutes * 60.0
    limit = n if n is not None else len(ranked)
    chosen, total = [], 0.0
    for row in ranked:
        d = float(durations[row])
        if total + d <= budget + 1e-6:
            chosen.append(row)
            total += d
            if len(chosen) >= limit or budget - total < 1.0:
                break
    return np.asarray(chosen, dtype=np.int64)


# ---- journey -------------------------------------------------------------------------------------


JOURNEY_GRID_MIN = 4096
"""From this many tracks on, a journey step looks at the tracks of the grid cells nearest its waypoint
instead of measuring the distance to every track."""


class _GridIndex:
    """Rows of 2-D points bucketed into a square grid of about 16 points a cell (rows sorted by cell)."""

    def __init__(self, xy: np.ndarray):
        self.side = side = max(1, int(np.sqrt(len(xy) / 16)))
        self.lo = lo = xy.min(axis=0)
        self.size = size = np.maximum(xy.max(axis=0) - lo, 1e-12) / side  # (width, height) of a cell
        col, row = self._cell(xy).T
        flat = row * side + col
        self.order = np.argsort(flat, kind="stable")
        self.starts = np.searchsorted(flat[self.order], np.arange(side**2 + 1))  # cell c: order[starts[c]:starts[c+1]]
        self.cells = cells = np.flatnonzero(np.diff(self.starts))  # the cells that hold rows
        self.x0, self.y0 = lo[0] + (cells % side) * size[0], lo[1] + (cells // side) * size[1]
        self.x1, self.y1 = self.x0 + size[0], self.y0 + size[1]

    def _cell(self, xy: np.ndarray) -> np.ndarray:
        return np.clip(((xy - self.lo) / self.size).astype(np.int64), 0, self.side - 1)

    def around(self, w: np.ndarray, reach: int) -> tuple[np.ndarray, float]:
        """The rows of the cells within ``reach`` cells of ``w``'s, and a distance that every other row is
        at least as far from ``w`` (inf: there is no other row)."""
        col, row = self._cell(w[None, :])[0]
        c0, c1 = max(0, col - reach), min(self.side - 1, col + reach)
        r0, r1 = max(0, row - reach), min(self.side - 1, row + reach)
        lines = np.arange(r0, r1 + 1) * self.side  # each grid row's cells c0..c1 are one slice of `order`
        rows = np.concatenate([self.order[a:b] for a, b in zip(self.starts[lines + c0], self.starts[lines + c1 + 1])])
        x0, y0 = self.lo + np.array([c0, r0]) * self.size
        x1, y1 = self.lo + np.array([c1 + 1, r1 + 1]) * self.size
        gaps = [w[0] - x0 if c0 > 0 else np.inf, x1 - w[0] if c1 < self.side - 1 else np.inf,
                w[1] - y0 if r0 > 0 else np.inf, y1 - w[1] if r1 < self.side - 1 else np.inf]  # fmt: skip
        return rows, min(gaps) - 1e-9  # a margin for the rounding of the cell bounds

    def by_distance(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The non-empty cells, nearest to ``w`` first, and for each a distance none of its rows is nearer than."""
        dx = np.maximum(np.maximum(self.x0 - w[0], w[0] - self.x1), 0.0)
        dy = np.maximum(np.maximum(self.y0 - w[1], w[1] - self.y1), 0.0)
        near = np.hypot(dx, dy) - 1e-9
        order = np.argsort(near, kind="stable")
        return self.cells[order], near[order]

    def rows(self, cells: np.ndarray) -> np.ndarray:
        return np.concatenate([self.order[a:b] for a, b in zip(self.starts[cells], self.starts[cells + 1])])


def journey(
    va: np.ndarray,
    start: tuple[float, float],
    target: tuple[float, float],
    n: int = 12,
    *,
    cache: dict | None = None,
    grid_min: int = JOURNEY_GRID_MIN,
) -> tuple[np.ndarray, np.ndarray]:
    """A path of ``n`` tracks from the ``start`` mood to the ``target`` mood (the iso principle).

    ``va`` [shape=(N, 2)] holds each track's mean valence/arousal. Waypoints are ``n`` evenly spaced
    points on the segment start -> target; step ``i`` takes the track nearest to waypoint ``i``
    among those allowed (ties: the one nearer the target, then by row). Tracks are ranked by distance
    to the target (ties by row); a step may only take a track ranked strictly closer to the target
    than the previous one, and only if enough closer tracks remain for the steps still to come.

    Guarantees: the result has exactly ``min(n, N)`` distinct rows; their distances to the target are
    non-increasing (each step moves toward the target or stays as close); the last track is the
    library's track nearest to the target (for ``n >= 2``). Returns (rows, waypoints [shape=(n, 2)]).

    Only the ``4 n`` (at least 1,024) tracks nearest the target are ranked; from ``grid_min`` tracks
    on, a step looks at the tracks ranked between its bounds when both are known, else at those of the
    grid cells nearest its waypoint (until no cell left can hold a nearer track), rather than at every
    track. ``cache`` (``Profiles.cache``: it must belong to this ``va``) keeps the float64 copy and the
    grid between calls.
    """
    cache = {} if cache is None else cache
    if "journey_va" not in cache:
        cache["journey_va"] = np.ascontiguousarray(np.asarray(va, dtype=np.float64).reshape(-1, 2))
    va = cache["journey_va"]
    start_p, target_p = np.asarray(start, dtype=np.float64), np.asarray(target, dtype=np.float64)
    count = min(int(n), len(va))
    if count <= 0:
        return np.zeros(0, dtype=np.int64), np.zeros((0, 2))
    steps = np.linspace(0.0, 1.0, count) if count > 1 else np.ones(1)
    waypoints = start_p + steps[:, None] * (target_p - start_p)
    to_target = np.hypot(va[:, 0] - target_p[0], va[:, 1] - target_p[1])
    ranked = _best(to_target, max(4 * count, 1024))  # the tracks nearest the target, nearest first (ties by row)
    rank = np.full(len(va), len(ranked), dtype=np.int64)  # their ranks; len(ranked) for every other track
    rank[ranked] = np.arange(len(ranked))
    grid = None
    if len(va) >= grid_min:
        if "journey_grid" not in cache:
            cache["journey_grid"] = _GridIndex(va)
        grid = cache["journey_grid"]

    def nearest_allowed(rows: np.ndarray, w: np.ndarray, lower: int, prev: int | None) -> tuple[int | None, float]:
        """Among ``rows``, the allowed row nearest to ``w`` and its distance (None, inf: none allowed)."""
        ok = rank[rows] >= lower  # the `lower` tracks nearest the target are kept for the steps to come
        if prev is not None:  # ranked strictly closer to the target than the previous step's track
            d_prev, d = to_target[prev], to_target[rows]
            ok &= (d < d_prev) | ((d == d_prev) & (rows < prev))
        rows = rows[ok]
        if len(rows) == 0:
            return None, np.inf
        d = np.hypot(va[rows, 0] - w[0], va[rows, 1] - w[1])
        tied = rows[d == d.min()]
        if len(tied) > 1:
            tied = tied[np.lexsort((tied, to_target[tied]))]  # the one ranked nearest the target
        return int(tied[0]), float(d.min())

    chosen: list[int] = []
    prev = None
    for i, w in enumerate(waypoints):
        lower = count - 1 - i
        if grid is None:
            row, _ = nearest_allowed(np.arange(len(va)), w, lower, prev)
        elif prev is not None and rank[prev] < len(ranked):  # the allowed ranks are known: lower..rank[prev]
            row, _ = nearest_allowed(ranked[lower : rank[prev]], w, lower, prev)
        else:  # the cells around the waypoint, a few rings wider until no track beyond can be nearer; failing
            # that, every cell nearest the waypoint first, until none left can hold a nearer track
            for reach in (1, 2, 4, 8):
                rows, bound = grid.around(w, reach)
                row, d = nearest_allowed(rows, w, lower, prev)
                if row is not None and d < bound:
                    break
            else:
                best = (np.inf, np.inf, -1)  # distance to the waypoint, to the target, row: the smallest wins
                cells, near = grid.by_distance(w)
                done, batch = 0, 4
                while done < len(cells) and near[done] <= best[0]:
                    upto = min(len(cells), done + batch)
                    found, found_d = nearest_allowed(grid.rows(cells[done:upto]), w, lower, prev)
                    if found is not None:
                        best = min(best, (found_d, to_target[found], found))
                    done, batch = upto, 2 * batch
                row = best[2]
        assert row is not None  # `lower` tracks are always kept for the steps to come
        chosen.append(row)
        prev = row
    return np.asarray(chosen, dtype=np.int64), waypoints


# ---- clusters ------------------------------------------------------------------------------------


def _sq_dist(x: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Squared distances [shape=(n, k)] between rows of ``x`` and ``centres`` (one pass per centre)."""
    out = np.empty((len(x), len(centres)), dtype=x.dtype)
    for j, c in enumerate(centres):
        diff = x - c
        out[:, j] = np.einsum("ij,ij->i", diff, diff)
    return out


def kmeans(
    x: np.ndarray,
    k: int,
    *,
    seed: int = SEED,
    n_init: int = 2,
    max_iter: int = 30,
    fit_sample: int = 4_000,
    return_distances: bool = False,
) -> tuple[np.ndarray, ...]:
    """k-means (k-means++ starts, Lloyd iterations) -> (labels [shape=(N,)], centres [shape=(k, d)]).

    Deterministic for a given ``seed``. On more than ``fit_sample`` rows the centres are fitted on a
    random sample of that size and every row is then assigned to its nearest centre.
    ``return_distances`` adds each row's squared distance to its centre.

    Why not scikit-learn's ``KMeans``: the library must run on the core install, and scikit-learn
    (with scipy and joblib) is only in the ``train`` extra; these 40 lines of numpy cluster 100,000
    profiles in well under a second, and fitting on a fixed-size sample keeps ``clusters`` fast
    however large the library grows.
    """
    x = np.asarray(x)
    x = x if x.dtype in (np.float32, np.float64) else x.astype(np.float64)
    k = max(1, min(int(k), len(x)))
    rng = np.random.default_rng(seed)
    fit = x if len(x) <= fit_sample else x[rng.choice(len(x), fit_sample, replace=False)]
    best: tuple[float, np.ndarray] | None = None
    for _ in range(n_init):
        centres = fit[[rng.integers(len(fit))]]
        for _ in range(1, k):
            d = _sq_dist(fit, centres).min(axis=1)
            total = d.sum()
            pick = rng.choice(len(fit), p=d / total) if total > 0 else rng.integers(len(fit))
            centres = np.vstack([centres, fit[pick]])
        for _ in range(max_iter):
            d = _sq_dist(fit, centres)
            labels = d.argmin(axis=1)
            counts = np.bincount(labels, minlength=k)
            sums = np.stack([np.bincount(labels, weights=col, minlength=k) for col in fit.T], axis=1)
            new = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], centres)
            if np.allclose(new, centres, atol=1e-7):
                centres = new
                break
            centres = new
        inertia = _sq_dist(fit, centres).min(axis=1).sum()
        if best is None or inertia < best[0]:
            best = (inertia, centres)
    assert best is not None  # n_init >= 1
    centres = best[1].astype(x.dtype)
    d = _sq_dist(x, centres)
    labels = d.argmin(axis=1)
    if return_distances:
        return labels, centres, d[np.arange(len(x)), labels]
    return labels, centres


@dataclass
class Cluster:
    """A group of tracks with a similar emotion profile, described in words and figures."""

    index: int
    size: int
    fraction: float  # of the library
    valence: float  # means over the cluster's tracks
    arousal: float
    variability: float  # mean within-track standard deviation of valence and arousal
    quadrant_share: dict[str, float]  # mean share of segments in each quadrant
    description: str
    rows: np.ndarray  # member rows, nearest to the cluster centre first
    examples: list = field(default_factory=list)  # a few Tracks nearest to the centre (filled by MoodLibrary)

    def to_dict(self) -> dict:
        return {
            "cluster": self.index,
            "size": self.size,
            "fraction": round(self.fraction, 4),
            "valence": round(self.valence, 4),
            "arousal": round(self.arousal, 4),
            "variability": round(self.variability, 4),
            "quadrant_share": {q: round(v, 4) for q, v in self.quadrant_share.items()},
            "description": self.description,
            "examples": [getattr(t, "display_name", str(t)) for t in self.examples],
        }


def _level(value: float, high: str, low: str, name: str) -> str:
    """Words for a valence or arousal value, by its distance from the midpoint (the quadrant boundary)."""
    offset = value - VA_MIDPOINT
    if offset >= 0.2:
        return f"{high} {name} ({value:.2f})"
    if offset >= 0.05:
        return f"fairly {high} {name} ({value:.2f})"
    if offset > -0.05:
        return f"neutral {name} ({value:.2f})" if name == "valence" else f"medium {name} ({value:.2f})"
    if offset > -0.2:
        return f"fairly {low} {name} ({value:.2f})"
    return f"{low} {name} ({value:.2f})"


def describe_cluster(valence: float, arousal: float, share: dict[str, float], variability: float) -> str:
    """Words for a cluster: its quadrants, valence and arousal levels, and how steady its tracks are."""
    top = sorted(share, key=lambda q: share[q], reverse=True)
    first, second = top[0], top[1]
    if share[first] >= 0.6:
        moods = f"mostly {QUADRANT_MOODS[first]} ({first} {share[first]:.0%})"
    elif share[first] + share[second] >= 0.6:
        moods = (
            f"{QUADRANT_MOODS[first]} and {QUADRANT_MOODS[second]} "
            f"({first} {share[first]:.0%}, {second} {share[second]:.0%})"
        )
    else:
        moods = "mixed moods (" + ", ".join(f"{q} {share[q]:.0%}" for q in top) + ")"
    words = [
        moods,
        _level(valence, "positive", "negative", "valence"),
        _level(arousal, "high", "low", "arousal"),
    ]
    if variability >= 0.15:
        words.append("moods change a lot within tracks")
    elif variability < 0.05:
        words.append("steady within tracks")
    return ", ".join(words)


def clusters(profiles: Profiles, k: int = 6, *, seed: int = SEED, include_uncertain: bool = False) -> list[Cluster]:
    """Group tracks by emotion profile with k-means on standardised (valence, arousal, quadrant
    shares, within-track variability); clusters are returned largest first. Uncertain tracks (mostly
    silence, noise or speech: they have no mood) are left out unless ``include_uncertain``; a cluster's
    ``fraction`` is of the tracks clustered.

    The clustering is deterministic, so it is kept in ``profiles.cache`` (which lives as long as the
    library does not change): asking again for the same ``k`` costs nothing. Each call returns new
    :class:`Cluster` objects (sharing their read-only ``rows``).
    """
    if k < 1:
        raise LibraryError(f"--k must be at least 1 (got {k})")
    key = ("clusters", int(k), int(seed), bool(include_uncertain))
    if key not in profiles.cache:
        profiles.cache[key] = _clusters(profiles, int(k), seed, bool(include_uncertain))
    return [replace(c, examples=[]) for c in profiles.cache[key]]


def _clusters(profiles: Profiles, k: int, seed: int, include_uncertain: bool) -> list[Cluster]:
    members = np.arange(len(profiles)) if include_uncertain else np.flatnonzero(~profiles.uncertain)
    n = len(members)
    if n == 0:
        return []
    m = profiles.matrix[members]
    cache_key = ("cluster_features", include_uncertain)
    if cache_key not in profiles.cache:
        features = np.concatenate([m[:, VA], m[:, SHARE], m[:, STD]], axis=1)  # float32
        scale = features.std(axis=0)
        z = (features - features.mean(axis=0)) / np.where(scale > 1e-9, scale, 1.0)
        profiles.cache[cache_key] = (features, z)
    features, z = profiles.cache[cache_key]
    labels, centres, to_centre = kmeans(z, k, seed=seed, return_distances=True)
    k = len(centres)
    within = to_centre.astype(np.float64) / (float(to_centre.max()) * (1 + 1e-9) + 1e-12)  # in [0, 1)
    order = np.argsort(labels + within, kind="stable")  # by cluster, then nearest to its centre (ties by row)
    bounds = np.searchsorted(labels[order], np.arange(k + 1))
    counts = np.bincount(labels, minlength=k)
    sums = np.stack([np.bincount(labels, weights=col, minlength=k) for col in features.T], axis=1)
    means = sums / np.maximum(counts, 1)[:, None]  # (k, 8): valence, arousal, 4 shares, 2 stds
    out = []
    for c in range(k):
        if counts[c] == 0:
            continue
        valence, arousal = float(means[c, 0]), float(means[c, 1])
        share = {q: float(s) for q, s in zip(QUADRANTS, means[c, 2:6])}
        variability = float(means[c, 6:8].mean())
        out.append(
            Cluster(
                index=0,
                size=int(counts[c]),
                fraction=int(counts[c]) / n,
                valence=valence,
                arousal=arousal,
                variability=variability,
                quadrant_share=share,
                description=describe_cluster(valence, arousal, share, variability),
                rows=members[order[bounds[c] : bounds[c + 1]]],
            )
        )
    out.sort(key=lambda c: (-c.size, c.rows[0]))
    for i, cluster in enumerate(out, start=1):
        cluster.index = i
    return out


__all__ = [
    "JOURNEY_GRID_MIN",
    "MOOD_WORDS",
    "SIMILARITY_WEIGHTS",
    "Cluster",
    "Mood",
    "clusters",
    "describe_cluster",
    "fill_playlist",
    "journey",
    "kmeans",
    "parse_mood",
    "rank_for_mood",
    "similar",
]
