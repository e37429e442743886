"""scripts/levers.py (the nested measurement of the accurate model's levers) on a tiny synthetic set:
its va-product heads reproduce the shipped recipe, augmented descriptors reach training songs only, and
every lever runs through the nested protocol."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import load_script
from moodscope.analysis.accurate import SegmentBlocks


@pytest.fixture(scope="module")
def levers():
    return load_script("scripts/levers.py")


def _songs(levers, n_songs: int = 48, seed: int = 0):
    """Songs with 2-4 segments each, descriptors shifted by their quadrant, one artist per 2 songs."""
    rng = np.random.default_rng(seed)
    songs = np.array([f"S{i:03d}" for i in range(n_songs)])
    y = np.arange(n_songs) % 4
    groups = np.array([f"artist{i // 2}" for i in range(n_songs)])
    n_seg = rng.integers(2, 5, n_songs)
    track_ids = np.repeat(songs, n_seg)
    signs = np.array([[1, 1], [-1, 1], [-1, -1], [1, -1]], float)[np.repeat(y, n_seg)]

    def blocks(noise_seed: int) -> SegmentBlocks:
        r = np.random.default_rng(noise_seed)
        out = {}
        for b, d in (("msd_penultimate", 6), ("mtt_penultimate", 5), ("msd_taggram", 3), ("mtt_taggram", 3)):
            x = r.normal(size=(len(track_ids), d))
            x[:, :2] += 2 * signs
            out[b] = x
        return SegmentBlocks(out, track_ids)

    augmented = {"gain+6": blocks(seed + 1), "mask": blocks(seed + 2)}
    # 2-3 mood tags per song out of 8, two per quadrant; each tag is one of its quadrant's with p = 0.7
    moods = tuple(
        tuple(sorted({f"tag{2 * (q if rng.random() < 0.7 else rng.integers(4)) + rng.integers(2)}" for _ in range(3)}))
        for q in y
    )
    return levers.Songs(songs, y, groups, rng.uniform(0.5, 1, n_songs), blocks(seed), augmented, moods)


@pytest.mark.parametrize("heads, atol", [("product_candidates", 1e-6), ("variant_candidates", 1e-5)])
def test_product_heads_reproduce_the_shipped_recipe(levers, heads, atol):
    """This script's va-product heads (and its variants at their defaults) are the shipped recipe."""
    d = _songs(levers)
    train, test = np.arange(0, 36), np.arange(36, 48)
    shipped, mine = levers.shipped_candidates(d), getattr(levers, heads)(d)
    assert list(shipped) == list(mine)
    for name in shipped:
        np.testing.assert_allclose(mine[name](train, test)(0.8), shipped[name](train, test)(0.8), atol=atol)


def test_augmented_test_songs_are_never_used_without_tta(levers):
    d = _songs(levers)
    train, test = np.arange(0, 36), np.arange(36, 48)
    before = levers.product_candidates(d, augs=("gain+6", "mask"))["C=0.1"](train, test)(1.0)
    tta_before = levers.product_candidates(d, augs=("gain+6", "mask"), tta=True)["C=0.1"](train, test)(1.0)
    rows = d.rows(test)
    for sb in d.augmented.values():  # change only the augmented versions of the test songs
        sb.blocks = {b: np.where(rows[:, None], v + 5.0, v) for b, v in sb.blocks.items()}
    d.aug_means = {a: levers.song_means(s, d.songs) for a, s in d.augmented.items()}
    after = levers.product_candidates(d, augs=("gain+6", "mask"))["C=0.1"](train, test)(1.0)
    tta_after = levers.product_candidates(d, augs=("gain+6", "mask"), tta=True)["C=0.1"](train, test)(1.0)
    np.testing.assert_array_equal(before, after)
    assert not np.allclose(tta_before, tta_after)  # test-time averaging does use them
    # augmented copies of training songs do change the fit
    plain = levers.product_candidates(d)["C=0.1"](train, test)(1.0)
    assert not np.allclose(plain, before)


@pytest.mark.parametrize(
    "lever",
    [
        "segments",
        "svm-linear",
        "mlp",
        "tags-product",
        "pquad",
        "aug-gain",
        "conditional",
        "soft-tags",
        "tag-pls",
        "power",
        "product-softmax",
    ],
)
def test_levers_run_nested(levers, lever, monkeypatch):
    d = _songs(levers, n_songs=40)
    monkeypatch.setitem(levers.AUG_SETS, "gain", ("gain+6",))
    cands = levers.LEVERS[lever][1](d) if lever != "aug-gain" else levers.product_candidates(d, augs=("gain+6",))
    from moodscope.training.nested import nested_cv

    summary = nested_cv(dict(list(cands.items())[:2]), d.y, d.groups, seeds=(0,), outer_k=2, inner_k=2).summary()
    assert 0.0 <= summary["macro_f1"]["mean"] <= 1.0
    assert sum(summary["chosen"].values()) == 2
    assert summary["macro_f1"]["mean"] > 0.35  # above chance (0.25): the quadrant signal is learnt


# --- the tonal and rhythm lever family -----------------------------------------------------------


def _with_tonal(levers, d, seed: int = 5):
    """``d`` plus a :data:`TONAL` block whose first column carries the valence sign (noisily)."""
    r = np.random.default_rng(seed)
    valence = np.where(levers.POSITIVE_VALENCE[d.y], 1.0, -1.0)[d.song_of_row]
    x = r.normal(size=(len(d.sb.track_ids), 7))
    x[:, 0] += 1.5 * valence
    blocks = {**d.sb.blocks, levers.TONAL: x, levers.TONALITY: x[:, :4]}
    return levers.Songs(d.songs, d.y, d.groups, d.pquad, SegmentBlocks(blocks, d.sb.track_ids), {})


def _triad(root_hz: float, third: int, sr: int, seconds: float = 5.0) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return sum(np.sin(2 * np.pi * root_hz * 2 ** (st / 12) * t) for st in (0, third, 7)) / 3


def test_tonal_features_tell_major_from_minor_triads(levers):
    from moodscope.constants import SAMPLE_RATE

    names = list(levers.TONAL_NAMES)
    x = np.stack([_triad(f, third, SAMPLE_RATE) for f in (261.63, 220.0, 329.63) for third in (4, 3)])
    f = levers.tonal_features(x)
    assert f.shape == (6, len(names)) and np.isfinite(f).all()
    mode, share = f[:, names.index("mode")], f[:, names.index("frame_major_share")]
    np.testing.assert_array_equal(np.sign(mode), [1, -1] * 3)
    np.testing.assert_array_equal(share, [1, 0] * 3)
    # rotated to the tonic of a major key, the major third (4 semitones) dominates the minor third (3)
    major = f[0::2]
    assert (major[:, names.index("key_chroma_4")] > 5 * major[:, names.index("key_chroma_3")]).all()


def test_tonal_features_find_the_pulse_of_a_click_track(levers):
    from moodscope.constants import SAMPLE_RATE

    names = list(levers.TONAL_NAMES)
    n = int(5 * SAMPLE_RATE)
    clicks = np.zeros(n)
    for bpm_start in np.arange(0, n, int(0.5 * SAMPLE_RATE)):  # 120 BPM
        clicks[bpm_start : bpm_start + 200] = np.hanning(200) * np.sin(np.arange(200) * 0.8)
    noise = np.random.default_rng(0).normal(scale=0.1, size=n)
    f = levers.tonal_features(np.stack([clicks, noise]))
    assert abs(2 ** f[0, names.index("log2_tempo")] - 120) < 6
    assert abs(f[0, names.index("onset_rate")] - 2.0) < 0.5
    assert f[0, names.index("pulse_clarity")] > f[1, names.index("pulse_clarity")] + 0.3


def test_roughness_of_close_partials_exceeds_an_octave(levers):
    freqs = np.linspace(0, 11025, 2049)
    spectrum = np.zeros((len(freqs), 2))
    for col, (f1, f2) in enumerate(((440.0, 466.16), (440.0, 880.0))):  # minor second, octave
        spectrum[np.abs(freqs - f1).argmin(), col] = spectrum[np.abs(freqs - f2).argmin(), col] = 1.0
    rough = levers._roughness(spectrum, freqs)
    assert rough[0] > 10 * rough[1] and rough[1] >= 0


@pytest.mark.parametrize(
    "lever",
    ["tonal", "pen-tonal", "pen-tonal-scaled", "valence-tonal", "valence-tonality", "stacked-tonal", "pquad-tonal"],
)
def test_tonal_levers_run_nested(levers, lever):
    from moodscope.training.nested import nested_cv

    d = _with_tonal(levers, _songs(levers, n_songs=40))
    cands = levers.LEVERS[lever][1](d)
    summary = nested_cv(dict(list(cands.items())[:2]), d.y, d.groups, seeds=(0,), outer_k=2, inner_k=2).summary()
    assert sum(summary["chosen"].values()) == 2
    assert summary["macro_f1"]["mean"] > 0.35


@pytest.mark.parametrize("lever", ["pen-tonal-scaled", "valence-tonal", "stacked-tonal"])
def test_tonal_levers_never_learn_from_test_songs(levers, lever):
    """Relabelling the test songs changes nothing (stacking's inner folds use training songs only);
    relabelling a few training songs does."""
    d = _with_tonal(levers, _songs(levers, n_songs=48))
    train, test = np.arange(0, 36), np.arange(36, 48)
    other = levers.Songs(d.songs, d.y.copy(), d.groups, d.pquad, d.sb, {})
    other.y[test] = (other.y[test] + 1) % 4
    mine, theirs = levers.LEVERS[lever][1](d), levers.LEVERS[lever][1](other)
    for name in list(mine)[:3]:
        np.testing.assert_array_equal(mine[name](train, test)(0.9), theirs[name](train, test)(0.9))
    changed = levers.Songs(d.songs, d.y.copy(), d.groups, d.pquad, d.sb, {})
    changed.y[train[:6]] = (changed.y[train[:6]] + 1) % 4
    name = next(iter(mine))
    assert not np.allclose(mine[name](train, test)(0.9), levers.LEVERS[lever][1](changed)[name](train, test)(0.9))


def test_valence_only_tonal_leaves_arousal_alone(levers):
    """Tonal features in the valence head only: each song's arousal marginal, P(Q1) + P(Q2), is the plain
    heads' (the same C), and its valence marginal is not."""
    d = _with_tonal(levers, _songs(levers))
    train, test = np.arange(0, 36), np.arange(36, 48)
    plain = levers.product_candidates(d)["C=0.03"](train, test)(1.0)
    mixed = levers.product_candidates(d, valence_blocks=(levers.TONAL,), scales=(1.0, 2.0))["C=0.03,s=2"](train, test)(
        1.0
    )
    np.testing.assert_allclose(mixed[:, :2].sum(axis=1), plain[:, :2].sum(axis=1), atol=1e-12)
    assert not np.allclose(mixed[:, [0, 3]].sum(axis=1), plain[:, [0, 3]].sum(axis=1))


# --- arousal-conditional valence, soft targets from the mood tags, tag projections ----------------


def test_tag_shares_take_each_tags_majority_quadrant_among_the_given_songs(levers):
    # tags: a (on Q1 songs), b (Q3 twice, Q4 once), c (one song only: ignored)
    tags = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 1, 1], [0, 1, 0]], float)
    y = np.array([0, 0, 2, 2, 3])
    valence, arousal = levers.tag_shares(tags, y)
    # a -> Q1 (+v, +a), b -> Q3 (-v, -a)
    np.testing.assert_allclose(valence, [1.0, 0.5, 0.0, 0.0, 0.0])
    np.testing.assert_allclose(arousal, [1.0, 0.5, 0.0, 0.0, 0.0])
    untagged = levers.tag_shares(np.zeros((2, 3)), np.array([3, 1]))
    np.testing.assert_allclose(untagged, [[1.0, 0.0], [0.0, 1.0]])  # own labels: Q4 = +v -a, Q2 = -v +a


def test_conditional_valence_of_aroused_songs_ignores_calm_and_sad_training_songs(levers):
    """mix = 1: P(Q1) and P(Q2) come from the arousal head and the high-arousal valence head, which never
    see which low-arousal training songs are sad or calm; with mix = 0 they do."""
    d = _songs(levers)
    train, test = np.arange(0, 36), np.arange(36, 48)
    swapped = levers.Songs(d.songs, d.y.copy(), d.groups, d.pquad, d.sb, {}, d.moods)
    low = train[np.isin(d.y[train], (2, 3))]
    swapped.y[low] = 5 - swapped.y[low]  # sad <-> calm

    def p(songs, mix):
        return levers.variant_candidates(songs, mixes=(mix,))["C=0.1"](train, test)(1.0)

    np.testing.assert_allclose(p(d, 1.0)[:, :2], p(swapped, 1.0)[:, :2], atol=1e-9)
    assert not np.allclose(p(d, 0.0)[:, :2], p(swapped, 0.0)[:, :2])


@pytest.mark.parametrize("lever", ["soft-tags-half", "tag-pls", "conditional"])
def test_variant_levers_never_learn_from_test_songs(levers, lever):
    """Relabelling the test songs and changing their mood tags changes nothing; the training songs' tags do."""
    d = _songs(levers)
    train, test = np.arange(0, 36), np.arange(36, 48)
    other = levers.Songs(d.songs, d.y.copy(), d.groups, d.pquad, d.sb, {}, tuple(d.moods))
    other.y[test] = (other.y[test] + 1) % 4
    other.moods = tuple(("tag0",) if i in set(test) else m for i, m in enumerate(d.moods))
    mine, theirs = levers.LEVERS[lever][1](d), levers.LEVERS[lever][1](other)
    for name in list(mine)[:4]:
        np.testing.assert_allclose(mine[name](train, test)(0.9), theirs[name](train, test)(0.9), atol=1e-12)
    if lever != "conditional":
        retagged = levers.Songs(d.songs, d.y, d.groups, d.pquad, d.sb, {}, d.moods[1:] + d.moods[:1])
        name = list(mine)[-1]
        assert not np.allclose(mine[name](train, test)(0.9), levers.LEVERS[lever][1](retagged)[name](train, test)(0.9))
