"""The analysis API: streaming, summaries, batches with failures, output formats."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moodscope.analysis.analyzer import BATCH_SEGMENTS, analyze, va_from_probabilities
from moodscope.constants import QUADRANTS, SEGMENT_SAMPLES, SEGMENT_SECONDS
from moodscope.engine.analysis import analyze_files
from moodscope.errors import AudioError


class LoudnessModel:
    """A deterministic stand-in for a trained model: loud segments are Q1, quiet ones Q3."""

    name = "loudness"

    def predict_segments(self, segments: np.ndarray):
        rms = np.sqrt((segments**2).mean(axis=1))
        loud = 1 / (1 + np.exp(-(rms - 0.1) * 50))
        probs = np.stack([loud, np.zeros_like(loud), 1 - loud, np.zeros_like(loud)], axis=1)
        return probs, None


def test_va_from_probabilities_are_the_marginals():
    eye = np.eye(4)  # certain of Q1, Q2, Q3, Q4
    assert np.allclose(va_from_probabilities(eye), [[1, 1], [0, 1], [0, 0], [1, 0]])
    assert np.allclose(va_from_probabilities(np.full((1, 4), 0.25)), 0.5)  # undecided: on the boundary


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=4, max_size=4).filter(lambda x: sum(x) > 1e-6))
def test_va_marginal_sum_rules(weights):
    p = np.array([weights]) / np.sum(weights)
    v, a = va_from_probabilities(p)[0]
    assert 0 <= v <= 1 and 0 <= a <= 1
    assert v == pytest.approx(p[0, 0] + p[0, 3]) and 1 - v == pytest.approx(p[0, 1] + p[0, 2])  # positive / negative
    assert a == pytest.approx(p[0, 0] + p[0, 1]) and 1 - a == pytest.approx(p[0, 2] + p[0, 3])  # high / low


@given(st.floats(0, 1), st.floats(0, 1))
def test_va_of_a_factorised_model_are_its_two_probabilities(pv, pa):
    """A head that is the product of a valence and an arousal probability gets them back exactly."""
    p = np.array([[pv * pa, (1 - pv) * pa, (1 - pv) * (1 - pa), pv * (1 - pa)]])
    assert np.allclose(va_from_probabilities(p), [[pv, pa]])


def test_track_va_are_the_marginals_of_the_song_probabilities():
    from moodscope.analysis.analyzer import summarize
    from moodscope.training.evaluate import song_probabilities

    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(4), size=7)
    s = summarize(probs, va_from_probabilities(probs))
    song = song_probabilities(probs)
    assert s.valence == pytest.approx(song[0] + song[3], abs=1e-4)
    assert s.arousal == pytest.approx(song[0] + song[1], abs=1e-4)
    assert s.valence == pytest.approx(s.probabilities["Q1"] + s.probabilities["Q4"], abs=2e-4)


def test_analyze_file_matches_array_and_streams_in_batches(make_wav):
    seconds = SEGMENT_SECONDS * (BATCH_SEGMENTS + 5) + 2.0  # more than one streaming batch, plus a remainder
    path = make_wav("long.wav", seconds)
    import soundfile as sf

    y, sr = sf.read(path, dtype="float32")
    from_file = analyze(path, model=LoudnessModel())
    from_array = analyze(y, sr=sr, model=LoudnessModel())
    n = int(seconds // SEGMENT_SECONDS)
    assert len(from_file.starts) == len(from_array.starts) == n
    assert np.allclose(from_file.probabilities, from_array.probabilities, atol=1e-5)
    assert from_file.duration == pytest.approx(seconds, abs=0.01)
    assert np.allclose(np.diff(from_file.starts), SEGMENT_SECONDS)


def test_summary_follows_segments():
    quiet = np.zeros(SEGMENT_SAMPLES * 3, dtype=np.float32)
    loud = 0.5 * np.ones(SEGMENT_SAMPLES, dtype=np.float32)
    a = analyze(np.concatenate([quiet, loud]), sr=22_050, model=LoudnessModel())
    assert a.quadrants == ["Q3", "Q3", "Q3", "Q1"]
    assert a.summary.quadrant == "Q3" and a.summary.mood == "sad/depressed"
    assert a.summary.quadrant_share["Q3"] == pytest.approx(0.75)
    assert a.summary.valence < 0.5 and a.summary.arousal < 0.5


def test_short_file_is_a_clear_error(make_wav):
    path = make_wav("short.wav", 0.5)
    with pytest.raises(AudioError, match=r"short\.wav.*too short"):
        analyze(path, model=LoudnessModel())


def test_array_needs_sample_rate():
    from moodscope.errors import MoodscopeError

    with pytest.raises(MoodscopeError, match="sample rate"):
        analyze(np.zeros(SEGMENT_SAMPLES), model=LoudnessModel())


def test_batch_goes_on_after_a_bad_file(make_wav, tmp_path):
    good = make_wav("a.wav", 11.0)
    bad = tmp_path / "b.mp3"
    bad.write_text("this is not audio")
    other = make_wav("c.wav", 6.0)
    result = analyze_files([good, bad, other], model=LoudnessModel(), workers=1)
    assert [a.source for a in result.analyses] == [str(good), str(other)]
    assert list(result.failed) == [str(bad)]
    assert "b.mp3" in result.failed[str(bad)]


def test_output_formats_agree(make_wav, tmp_path):
    from moodscope.cli.analyze import write_output

    analyses = [analyze(make_wav(f"t{i}.wav", 10.0 + 5 * i, seed=i), model=LoudnessModel()) for i in range(2)]
    write_output(analyses, "json", tmp_path / "out.json")
    write_output(analyses, "csv", tmp_path / "out.csv")
    write_output(analyses, "parquet", tmp_path / "out.parquet")
    tracks = json.loads((tmp_path / "out.json").read_text())
    from_json = pd.DataFrame(
        [
            {
                "track": t["track"],
                "start": s["start"],
                "quadrant": s["quadrant"],
                **{f"p_{q}": s["probabilities"][q] for q in QUADRANTS},
            }
            for t in tracks
            for s in t["segments"]
        ]
    )
    from_csv = pd.read_csv(tmp_path / "out.csv")
    from_parquet = pd.read_parquet(tmp_path / "out.parquet")
    assert len(from_json) == len(from_csv) == len(from_parquet) == 2 + 3
    for frame in (from_csv, from_parquet):
        assert list(frame["quadrant"]) == list(from_json["quadrant"])
        assert np.allclose(frame["start"], from_json["start"])
        for q in QUADRANTS:
            assert np.allclose(frame[f"p_{q}"], from_json[f"p_{q}"], atol=1e-4)
    assert tracks[0]["summary"]["quadrant"] in QUADRANTS


def test_arrays_as_people_pass_them_give_the_file_result(make_wav):
    """(n, channels) from soundfile.read once came out "too short (0.00 s)", and int16 PCM unscaled (loud)."""
    import soundfile as sf

    path = make_wav("stereo.wav", 12.0, sr=44_100, channels=2)
    expected = analyze(path, model=LoudnessModel()).probabilities
    y, sr = sf.read(path, dtype="float32")  # (n, 2)
    pcm, _ = sf.read(path, dtype="int16")
    for name, array in {"(n, 2)": y, "(2, n)": y.T, "float64": y.astype(np.float64), "int16": pcm}.items():
        got = analyze(array, sr=sr, model=LoudnessModel())
        assert got.source == "audio array"
        assert np.allclose(got.probabilities, expected, atol=1e-3), name


@pytest.mark.parametrize(
    ("array", "sr", "words"),
    [
        (np.zeros(0, np.float32), 22_050, "empty"),
        (np.zeros(SEGMENT_SAMPLES, np.float32), 0, "sample rate must be positive"),
        (np.array(["x"] * SEGMENT_SAMPLES), 22_050, "expected numbers"),
        (np.full(SEGMENT_SAMPLES, np.nan, np.float32), 22_050, "not numbers"),
    ],
)
def test_unusable_arrays_are_a_moodscope_error(array, sr, words):
    from moodscope.errors import MoodscopeError

    with pytest.raises(MoodscopeError, match=f"audio array: .*{words}"):
        analyze(array, sr=sr, model=LoudnessModel())


def test_outputs_hold_valence_arousal_in_0_1_equal_to_the_marginals():
    quiet = np.zeros(SEGMENT_SAMPLES * 2, dtype=np.float32)
    loud = 0.5 * np.ones(SEGMENT_SAMPLES * 3, dtype=np.float32)
    a = analyze(np.concatenate([quiet, loud]), sr=22_050, model=LoudnessModel())
    d = a.to_dict()
    for seg in d["segments"]:
        p = seg["probabilities"]
        assert 0 <= seg["valence"] <= 1 and 0 <= seg["arousal"] <= 1
        assert seg["valence"] == pytest.approx(p["Q1"] + p["Q4"], abs=2e-4)
        assert seg["arousal"] == pytest.approx(p["Q1"] + p["Q2"], abs=2e-4)
    assert d["summary"]["valence"] == pytest.approx(3 / 5 * a.va[2:, 0].mean() + 2 / 5 * a.va[:2, 0].mean(), abs=1e-4)
    assert "p(Q1) + p(Q4)" in d["va_meaning"]
    frame = a.to_dataframe()
    assert frame[["valence", "arousal"]].to_numpy().min() >= 0 and frame[["valence", "arousal"]].to_numpy().max() <= 1
    assert np.allclose(frame["valence"], frame["p_Q1"] + frame["p_Q4"])
    assert np.allclose(frame["arousal"], frame["p_Q1"] + frame["p_Q2"])
    row = a.summary_row()
    assert row["valence"] == pytest.approx(row["p_Q1"] + row["p_Q4"], abs=2e-4)
