"""scripts/pretrained_blocks.py: the melodic features it derives from basic-pitch's posteriors measure
what their names say, on hand-made posteriors (the networks' wheels are not needed)."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import load_script


@pytest.fixture(scope="module")
def blocks():
    return load_script("scripts/pretrained_blocks.py")


def _posteriors(blocks, notes: list[int], frames: int = 430, contour_midi: np.ndarray | None = None):
    """Note, onset and contour posteriors of ``notes`` (MIDI) held for ``frames`` frames, struck once."""
    note = np.zeros((frames, 88))
    onset = np.zeros((frames, 88))
    for n in notes:
        note[:, n - blocks.BP_MIDI0] = 0.9
        onset[5, n - blocks.BP_MIDI0] = 0.9
    contour = np.zeros((frames, 264))
    if contour_midi is not None:
        contour[np.arange(frames), np.round((contour_midi - blocks.BP_MIDI0) * 3).astype(int)] = 0.8
    return note, onset, contour


def _named(blocks, values: np.ndarray) -> dict[str, float]:
    assert values.shape == (len(blocks.MELODIC_NAMES),)
    return dict(zip(blocks.MELODIC_NAMES, values.tolist(), strict=True))


def test_chords_give_polyphony_register_intervals_and_mode(blocks):
    major = _named(blocks, blocks.melodic_features(*_posteriors(blocks, [60, 64, 67])))  # C major triad
    minor = _named(blocks, blocks.melodic_features(*_posteriors(blocks, [60, 63, 67])))  # C minor triad
    assert major["log_polyphony_mean"] == pytest.approx(np.log1p(3))
    assert major["register_mean"] == pytest.approx((60 + 64 + 67) / 3)
    assert major["note_activity"] == 1.0
    # a triad's pairs: a third of each kind and a fifth (interval class 5: fourth or fifth)
    for ic in (3, 4, 5):
        assert major[f"interval_class_{ic}"] == pytest.approx(1 / 3)
    assert major["interval_class_1"] == major["interval_class_6"] == 0.0
    assert major["mode"] > 0 > minor["mode"]
    assert major["log_onset_rate"] == pytest.approx(np.log1p(3 / (430 / blocks.BP_FPS)))


def test_the_melody_measures_range_leaps_and_vibrato(blocks):
    frames = 430
    steady = 67 + np.zeros(frames)
    vibrato = 67 + 0.3 * np.sin(2 * np.pi * 6 * np.arange(frames) / blocks.BP_FPS)  # 6 Hz, ±30 cents
    leaping = np.repeat([60.0, 67.0, 72.0, 64.0, 60.0], frames // 5)
    plain = _named(blocks, blocks.melodic_features(*_posteriors(blocks, [67], frames, steady)))
    sung = _named(blocks, blocks.melodic_features(*_posteriors(blocks, [67], frames, vibrato)))
    tune = _named(blocks, blocks.melodic_features(*_posteriors(blocks, [60], len(leaping), leaping)))
    assert plain["voiced"] == 1.0 and plain["melody_mean"] == pytest.approx(67.0)
    assert plain["melody_range"] == 0.0 and plain["vibrato_cents"] == pytest.approx(0.0, abs=1e-6)
    assert sung["vibrato_cents"] > 10.0
    assert tune["melody_range"] == pytest.approx(12.0) and tune["melody_leaps"] > 0.0


def test_silence_gives_finite_features(blocks):
    values = blocks.melodic_features(*_posteriors(blocks, []))
    assert np.isfinite(values).all()
    assert _named(blocks, values)["voiced"] == 0.0
