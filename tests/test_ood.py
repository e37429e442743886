"""Knowing when not to answer: silence, noise and speech are flagged, real music is not."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import shared_data
from moodscope.analysis.analyzer import analyze, summarize
from moodscope.analysis.ood import (
    REASONS,
    OodStats,
    fit_ood,
    noise_inputs,
    segment_ood,
    signal_inputs,
    track_uncertain,
)
from moodscope.constants import (
    HOP_LENGTH,
    NOISE_FLUCTUATION_DB,
    NOISE_RIPPLE_DB,
    QUADRANTS,
    SAMPLE_RATE,
    SEGMENT_SAMPLES,
    SPEECH_LEVEL_CV,
    SPEECH_PAUSE_FRACTION,
    SPEECH_SPREAD_DB,
    UNCERTAIN,
)
from moodscope.paths import DEMO_CLIP
from nonmusic import brown_noise, clicks, pink_noise, silence, sine_tone, speech_like, white_noise

SPEECH_CLIP = Path(__file__).parent / "data" / "speech_allison.flac"
INSTALLED_SPEECH = {  # Debian package -> (folder, files): real recorded voices, used when installed
    "asterisk-core-sounds-en-wav": (Path("/usr/share/asterisk/sounds/en_US_f_Allison"), "**/*.wav"),
    "alsa-utils": (Path("/usr/share/sounds/alsa"), "[FRS]*_*.wav"),
}
REASON_OF = {
    "silence": "silence",
    "white noise": "noise",
    "pink noise": "noise",
    "brown noise": "noise",
    "speech-like": "speech-like",
    "sine tone": "unlike training music",
    "clicks": "clicks",
}
"""What each kind of signal is flagged as, by either model (the first check that fires names it)."""
NOT_MUSIC = {
    "silence": silence,
    "white noise": white_noise,
    "pink noise": pink_noise,
    "brown noise": brown_noise,
    "speech-like": speech_like,
    "sine tone": sine_tone,
    "clicks": clicks,
}


# --- the score and the signal check, on synthetic data with known answers -------------------------


def test_fit_ood_flags_about_the_percentile_and_far_points():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4000, 20)) @ rng.standard_normal((20, 20))  # correlated Gaussian
    stats = fit_ood(x, percentile=99.0, shrinkage=0.0, components=20)
    assert stats.threshold > 0
    inside = stats.scores({"embedding": x}) > 1
    assert 0.005 < inside.mean() < 0.02  # the 99th percentile of the training distances
    far = x[:50] + 10 * x.std(axis=0)
    assert (stats.scores({"embedding": far}) > 1).all()


def test_low_rank_distance_is_exact_with_all_components_and_close_with_fewer():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((500, 12)) * np.linspace(3, 0.1, 12)
    full = fit_ood(x, components=12, shrinkage=0.1)
    z = (x - x.mean(0)) / (x.std(0) + 1e-6)
    cov = np.cov(z, rowvar=False)
    cov = 0.9 * cov + 0.1 * np.eye(12) * np.trace(cov) / 12
    exact = np.sqrt(np.einsum("ij,jk,ik->i", z, np.linalg.inv(cov), z) / 12)
    assert np.allclose(full.distances(x), exact, rtol=1e-6)
    few = fit_ood(x, components=6, shrinkage=0.1)
    assert np.corrcoef(few.distances(x), exact)[0, 1] > 0.9


def test_out_of_fold_threshold_is_above_the_in_sample_one():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((600, 40))
    groups = np.repeat(np.arange(60), 10)
    assert fit_ood(x, groups=groups).threshold > fit_ood(x).threshold
    assert "out-of-fold" in fit_ood(x, groups=groups).calibration


def test_signal_inputs_known_answers():
    t = np.arange(SEGMENT_SAMPLES) / SAMPLE_RATE
    sine = 0.5 * np.sin(2 * np.pi * 440 * t)
    gated = sine * (np.sin(2 * np.pi * 2 * t) > 0)  # on half the time, silent in between
    out = signal_inputs(np.stack([np.zeros(SEGMENT_SAMPLES), sine, gated]))
    assert out["ood_level"][0] == -np.inf
    assert out["ood_level"][1] == pytest.approx(20 * np.log10(0.5 / np.sqrt(2)), abs=0.01)
    assert out["ood_pauses"][1] == 0 and out["ood_level_cv"][1] < 0.05
    assert 0.4 < out["ood_pauses"][2] < 0.6 and out["ood_level_cv"][2] > 0.9
    verdict = segment_ood(out)
    assert verdict.reason[:2] == ["silence", ""]
    assert np.isnan(verdict.score).all()


def test_noise_measurements_known_answers():
    """Whitened, stationary noise fluctuates only by chance (about 0.4 dB whatever its colour and level) and its
    average spectrum is smooth; a steady tone has a peak, a gated tone fluctuates."""
    t = np.arange(SEGMENT_SAMPLES) / SAMPLE_RATE
    sine = 0.5 * np.sin(2 * np.pi * 440 * t)
    gated = sine * (np.sin(2 * np.pi * 2 * t) > 0)
    noises = [white_noise(5.0), white_noise(5.0, level=0.003), pink_noise(5.0), brown_noise(5.0)]
    out = noise_inputs(np.stack([*noises, sine, gated]))
    fluctuation, ripple = out["ood_fluctuation"], out["ood_ripple"]
    assert np.allclose(fluctuation[:4], fluctuation[0], atol=0.02)  # colour and level do not matter
    assert (fluctuation[:4] > 0.3).all() and (fluctuation[:4] < 0.5).all()
    assert (ripple[:4] < 0.5).all()
    assert ripple[4] > 2 * NOISE_RIPPLE_DB  # a peak
    tones = noise_inputs(np.stack([sine_tone(5.0, frequency=f) for f in (110.0, 3000.0)]))
    assert (tones["ood_ripple"] > 2 * NOISE_RIPPLE_DB).all()  # at the band's lower edge (100 Hz) too
    assert fluctuation[5] > 10 * NOISE_FLUCTUATION_DB  # on and off
    verdict = segment_ood(signal_inputs(np.stack([*noises, sine, gated])))
    assert verdict.reason == ["noise"] * 4 + ["", "speech-like"]  # the gated tone comes and goes like words


def test_clicks_are_told_from_speech_by_the_length_of_their_bursts():
    t = np.arange(SEGMENT_SAMPLES) / SAMPLE_RATE
    syllables = np.sin(2 * np.pi * 200 * t) * (np.sin(2 * np.pi * 2 * t) > 0.5)  # bursts of 1/6 s, 2 a second
    taps = np.zeros(SEGMENT_SAMPLES)
    taps[:: SAMPLE_RATE // 4] = 1.0  # single-sample clicks, 4 a second
    out = signal_inputs(np.stack([syllables, taps]))
    burst = (0.5 - np.arcsin(0.5) / np.pi) / 2  # the time sin(2 pi 2 t) spends above 0.5 each half-second
    assert out["ood_burst"][0] == pytest.approx(burst, abs=2 * HOP_LENGTH / SAMPLE_RATE)
    assert out["ood_burst"][1] < 2 * HOP_LENGTH / SAMPLE_RATE  # one frame (two when a click straddles frames)
    assert segment_ood(out).reason == ["speech-like", "clicks"]


def test_fluent_speech_is_flagged_by_its_valleys_though_it_hardly_pauses():
    """Syllables of 150 ms with 60-ms dips 35 dB down: too few pauses for the pause check, but the level spreads
    widely and dips into valleys between loud frames. A passage that turns 28 dB quieter halfway (as music
    can between sections) spreads as widely and has no valley."""
    t = np.arange(SEGMENT_SAMPLES) / SAMPLE_RATE
    dips = (t % 0.21) >= 0.15
    syllables = 0.3 * np.sin(2 * np.pi * 200 * t) * np.where(dips, 10 ** (-35 / 20), 1.0)
    drop = 0.3 * np.sin(2 * np.pi * 200 * t) * np.where(t < t[-1] / 2, 1.0, 10 ** (-28 / 20))
    out = signal_inputs(np.stack([syllables, drop]))
    assert out["ood_pauses"][0] < SPEECH_PAUSE_FRACTION and out["ood_level_cv"][0] < SPEECH_LEVEL_CV
    frame = HOP_LENGTH / SAMPLE_RATE
    assert out["ood_valleys"][0] == pytest.approx((0.06 - frame) / 0.21, abs=0.05)  # frames wholly in a dip
    assert out["ood_spread"][0] > SPEECH_SPREAD_DB
    assert out["ood_spread"][1] == pytest.approx(28 / 2, abs=0.5)  # two levels, half the time each
    assert out["ood_spread"][1] > SPEECH_SPREAD_DB and out["ood_valleys"][1] == 0
    assert segment_ood(out).reason == ["speech-like", ""]


def test_real_recorded_speech_is_flagged():
    """10 s of a real voice (Asterisk prompts, tests/data/COPYING.speech): fluent speech that the pause check
    alone missed."""
    a = analyze(SPEECH_CLIP, model="fast")
    assert len(a.ood_flags) == 2 and a.ood_reasons == ["speech-like"] * 2 and a.summary.uncertain
    from moodscope.audio import load_audio, segment_audio

    signal = signal_inputs(segment_audio(load_audio(SPEECH_CLIP)))
    assert not ((signal["ood_pauses"] > SPEECH_PAUSE_FRACTION) & (signal["ood_level_cv"] > SPEECH_LEVEL_CV)).any()


@pytest.mark.parametrize("source", list(INSTALLED_SPEECH))
def test_installed_real_speech_is_mostly_flagged(source):
    """Real voices from Debian packages when they are installed (benchmarks/ood.py measures them all): most
    5-s segments flagged, every track uncertain."""
    folder, pattern = INSTALLED_SPEECH[source]
    paths = sorted(p for p in folder.glob(pattern) if "silence" not in p.relative_to(folder).parts)
    if not paths:
        pytest.skip(f"{folder}: no {pattern} (install Debian's {source} to test on it)")
    from moodscope.audio import load_audio, segment_audio

    segments = segment_audio(np.concatenate([load_audio(p) for p in paths[:60]]))
    verdict = segment_ood(signal_inputs(segments))
    assert verdict.flag.mean() > 0.8 and track_uncertain(verdict.flag), verdict.reason


def test_new_reasons_are_appended_so_stored_libraries_keep_their_meaning():
    assert REASONS[:4] == ("", "silence", "speech-like", "unlike training music")
    assert set(REASONS[4:]) == {"noise", "clicks"}


def test_track_uncertain_when_most_segments_are_flagged():
    assert track_uncertain(np.array([True, True, False]))
    assert not track_uncertain(np.array([True, False, False]))
    assert not track_uncertain(np.zeros(0, bool))
    probs = np.tile([0.1, 0.7, 0.1, 0.1], (3, 1))
    summary = summarize(probs, np.zeros((3, 2)), np.array([True, True, True]))
    assert summary.uncertain and summary.mood == UNCERTAIN and summary.quadrant == "Q2"
    assert summary.ood_fraction == 1.0
    assert summarize(probs, np.zeros((3, 2))).mood == "tense/angry"


def test_statistics_round_trip_through_a_checkpoint(tmp_path):
    from moodscope.analysis.accurate import EmbeddingModel, Head, save_embedding_model
    from moodscope.analysis.ood import with_ood
    from moodscope.models.checkpoint import read_checkpoint

    rng = np.random.default_rng(3)
    d = 8
    head = Head(("msd_penultimate",), np.zeros(d), np.ones(d), rng.standard_normal((4, d)), np.zeros(4))
    path = save_embedding_model(tmp_path / "m.pt", [head], metrics={}, config={})
    assert EmbeddingModel.from_checkpoint(read_checkpoint(path), "m").ood is None  # older checkpoints: no score
    blocks = {"msd_penultimate": rng.standard_normal((200, d))}
    stats = fit_ood(blocks)
    with_ood(path, stats)
    payload = read_checkpoint(path)  # the one reader verifies the new weights_sha256
    model = EmbeddingModel.from_checkpoint(payload, "m")
    assert model.ood is not None and model.ood.blocks == ("msd_penultimate",)
    assert np.allclose(model.ood.scores(blocks), stats.scores(blocks), rtol=1e-4)
    assert payload["meta"]["ood"]["threshold"] == pytest.approx(stats.threshold)
    assert OodStats.from_checkpoint({"meta": {}, "state_dict": {}}) is None


# --- the shipped models on real and synthetic audio ------------------------------------------------


@pytest.mark.parametrize("model", ["accurate", "fast"])
@pytest.mark.parametrize("name", list(NOT_MUSIC))
def test_both_models_flag_what_is_not_music_for_the_right_reason(name, model):
    a = analyze(NOT_MUSIC[name](), sr=SAMPLE_RATE, model=model)
    assert a.ood_flags.all(), f"{name}: {a.ood_reasons} scores {a.ood_scores}"
    assert a.summary.uncertain and a.summary.mood == UNCERTAIN
    assert set(a.ood_reasons) == {REASON_OF[name]}, f"{name}: {a.ood_reasons} scores {a.ood_scores}"
    assert np.isfinite(a.ood_scores).all()  # both models score their descriptors


@pytest.mark.parametrize("model", ["accurate", "fast"])
def test_the_demo_clip_is_music(model):
    a = analyze(DEMO_CLIP, model=model)
    assert not a.summary.uncertain and a.summary.mood != UNCERTAIN
    assert a.ood_flags.mean() <= 0.125  # fast's cruder score flags one of its 8 segments
    if model == "accurate":
        assert not a.ood_flags.any() and (a.ood_scores < 1).all() and (a.ood_scores > 0).all()


def test_real_4q_clips_are_not_flagged():
    root = shared_data("4q", "MER_audio_taffc_dataset")
    clips = [sorted((root / q).glob("*.mp3"))[i] for q in QUADRANTS for i in (0,)]
    flagged = {str(c.name): analyze(c, model="accurate").summary.uncertain for c in clips}
    assert not any(flagged.values()), flagged


def test_the_signal_checks_pass_real_4q_music():
    """The signal checks' thresholds were chosen on the 4Q clips: one clip in ten, from each quadrant, passes
    them (benchmarks/ood.py measures all 540)."""
    from moodscope.audio import load_audio, segment_audio

    root = shared_data("4q", "MER_audio_taffc_dataset")
    clips = [c for q in QUADRANTS for c in sorted((root / q).glob("*.mp3"))[::10]]
    verdicts = {c.name: segment_ood(signal_inputs(segment_audio(load_audio(c)))).reason for c in clips}
    flagged = {name: reasons for name, reasons in verdicts.items() if any(reasons)}
    assert len(clips) > 40 and not flagged, flagged


def test_outputs_carry_the_flag(tmp_path):
    from moodscope.cli import main

    wav = tmp_path / "hum.wav"
    sf.write(wav, white_noise(11.0), SAMPLE_RATE)
    out = tmp_path / "out.json"
    assert main(["analyze", str(wav), str(DEMO_CLIP), "--out", str(out)]) == 0
    noise, demo = json.loads(out.read_text())
    assert noise["summary"]["uncertain"] and noise["summary"]["mood"] == UNCERTAIN
    assert all(s["ood"] and s["mood"] == UNCERTAIN and s["ood_score"] > 1 for s in noise["segments"])
    assert not demo["summary"]["uncertain"] and not any(s["ood"] for s in demo["segments"])
    csv = tmp_path / "tracks.csv"
    assert main(["analyze", str(wav), "--out", str(csv), "--rows", "tracks"]) == 0
    import pandas as pd

    row = pd.read_csv(csv).iloc[0]
    assert bool(row["uncertain"]) and row["mood"] == UNCERTAIN and row["ood_fraction"] == 1.0


def test_library_keeps_uncertain_tracks_out_of_mood_queries(tmp_path):
    import shutil

    from moodscope.constants import QUADRANT_MOODS
    from moodscope.library import MoodLibrary

    music = tmp_path / "music"
    music.mkdir()
    shutil.copy(DEMO_CLIP, music / "demo.ogg")
    sf.write(music / "quiet.wav", silence(11.0), SAMPLE_RATE)
    sf.write(music / "talk.wav", speech_like(11.0), SAMPLE_RATE)
    sf.write(music / "hiss.wav", pink_noise(11.0), SAMPLE_RATE)
    with MoodLibrary(tmp_path / "lib.db") as lib:
        lib.scan(music, model="fast", workers=1)
        everything = {t.path.rsplit("/", 1)[-1]: t for t in lib.tracks()}
        assert set(everything) == {"demo.ogg", "quiet.wav", "talk.wav", "hiss.wav"}  # listed, mood "uncertain"
        assert everything["quiet.wav"].uncertain and everything["quiet.wav"].mood == UNCERTAIN
        assert everything["talk.wav"].to_dict()["uncertain"] and not everything["demo.ogg"].uncertain
        in_moods = [t.path for q in QUADRANTS for t in lib.tracks(QUADRANT_MOODS[q])]
        assert [p.rsplit("/", 1)[-1] for p in in_moods] == ["demo.ogg"]
        assert sum(lib.count(q) for q in QUADRANTS) == 1 and lib.count() == 4
        point = [t.path.rsplit("/", 1)[-1] for t in lib.tracks("0.5,0.5")]
        assert point == ["demo.ogg"] and lib.count("0.5,0.5") == 1
        assert [t.path.rsplit("/", 1)[-1] for t in lib.playlist((0.0, 0.0), n=5)] == ["demo.ogg"]
        assert [t.path.rsplit("/", 1)[-1] for t in lib.journey("Q1", "Q3", n=3)] == ["demo.ogg"]
        stored = lib.analysis(everything["talk.wav"])
        assert stored.summary.uncertain and set(stored.ood_reasons) == {"speech-like"}
        assert (lib.timeline(everything["quiet.wav"].id)["ood"] == REASONS.index("silence")).all()
        assert (lib.timeline(everything["hiss.wav"].id)["ood"] == REASONS.index("noise")).all()


def test_the_ood_benchmark_runs_and_reports(tmp_path):
    """``benchmarks/ood.py`` (the figures of docs/models.md) on the bundled demo clip as the real music."""
    import shutil
    import subprocess
    import sys

    (tmp_path / "data" / "music").mkdir(parents=True)
    shutil.copy(DEMO_CLIP, tmp_path / "data" / "music" / "demo.ogg")
    out = tmp_path / "ood.json"
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "ood.py"
    argv = ["--skip-4q", "--models", "fast", "--variants", "1", "--seconds", "5.5"]
    result = subprocess.run(
        [sys.executable, str(script), *argv, "--data", str(tmp_path / "data"), "--json", str(out)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    pooled = report["real_music"]["fast"]["pooled"]
    assert pooled["tracks"] == 1 and pooled["segments"] == 8 and pooled["tracks_uncertain"] == 0
    synthetic = report["synthetic"]["fast"]
    assert synthetic["silence"]["segments_flagged_fraction"] == 1.0 and synthetic["white noise"]["segments"] == 1
    assert "Detection on signals that are not music" in result.stdout
