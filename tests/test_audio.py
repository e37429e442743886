"""Decoding, mix-down, resampling, segmenting and bad input (moodscope.audio)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from moodscope.audio import find_audio_files, load_audio, resample, segment_audio, stream_audio
from moodscope.constants import PAPER_CLIP_SECONDS, SAMPLE_RATE, SEGMENT_SAMPLES
from moodscope.errors import AudioError

FREQ = 440.0
AMP = 0.3


def tone(seconds: float, sr: int, channels: int = 1) -> np.ndarray:
    """A 440 Hz sine of amplitude 0.3, identical in every channel: [shape=(n,) or (n, channels)]."""
    t = np.arange(round(seconds * sr)) / sr
    y = (AMP * np.sin(2 * np.pi * FREQ * t)).astype(np.float32)
    return np.repeat(y[:, None], channels, axis=1) if channels > 1 else y


def write_m4a(path: Path, y: np.ndarray, sr: int) -> Path:
    """Encode [shape=(n, 2)] float32 as AAC in an M4A container with PyAV."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=sr, layout="stereo")
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(y.T), format="fltp", layout="stereo")
        frame.rate = sr
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def dominant_frequency(y: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    return float(np.fft.rfftfreq(len(y), 1 / SAMPLE_RATE)[spectrum.argmax()])


def interior_rms(y: np.ndarray) -> float:
    """RMS away from the first and last second (codec priming and tails)."""
    return float(np.sqrt(np.mean(y[SAMPLE_RATE:-SAMPLE_RATE] ** 2)))


@pytest.mark.parametrize(
    ("suffix", "kwargs", "sr", "seconds_tolerance"),
    [
        (".wav", {}, 44_100, 0.0),
        (".flac", {}, 48_000, 0.0),
        (".ogg", {"format": "OGG", "subtype": "VORBIS"}, 44_100, 0.0),
        (".opus", {"format": "OGG", "subtype": "OPUS"}, 48_000, 0.0),
        (".mp3", {"format": "MP3"}, 44_100, 0.1),  # encoder delay/padding
    ],
)
def test_soundfile_formats_decode(tmp_path, suffix, kwargs, sr, seconds_tolerance):
    path = tmp_path / f"tone{suffix}"
    sf.write(path, tone(6.0, sr, channels=2), sr, **kwargs)
    y = load_audio(path)
    assert y.dtype == np.float32 and y.ndim == 1
    assert abs(len(y) / SAMPLE_RATE - 6.0) <= seconds_tolerance + 1 / SAMPLE_RATE
    assert dominant_frequency(y) == pytest.approx(FREQ, abs=5)
    # mono mix-down is the mean of the channels: a sine of amplitude 0.3 has RMS 0.3 / sqrt(2)
    assert interior_rms(y) == pytest.approx(AMP / np.sqrt(2), rel=0.03)


def test_m4a_aac_decodes_through_pyav_with_the_same_loudness(tmp_path):
    path = write_m4a(tmp_path / "tone.m4a", tone(6.0, 44_100, channels=2), 44_100)
    y = load_audio(path)
    assert abs(len(y) / SAMPLE_RATE - 6.0) < 0.1
    assert dominant_frequency(y) == pytest.approx(FREQ, abs=5)
    # channels are averaged exactly like the libsndfile path (not FFmpeg's (L + R) / sqrt(2) downmix)
    assert interior_rms(y) == pytest.approx(AMP / np.sqrt(2), rel=0.03)


@pytest.mark.parametrize("sr", [8_000, 22_050, 44_100, 48_000, 96_000])
def test_any_sample_rate_is_resampled_to_22050(tmp_path, sr):
    path = tmp_path / f"tone{sr}.wav"
    sf.write(path, tone(5.5, sr), sr)
    y = load_audio(path)
    assert abs(len(y) - round(5.5 * SAMPLE_RATE)) <= 1
    assert dominant_frequency(y) == pytest.approx(FREQ, abs=5)
    assert interior_rms(y) == pytest.approx(AMP / np.sqrt(2), rel=0.01)


def test_six_channels_at_96k_mix_down_to_the_channel_mean(tmp_path):
    sr = 96_000
    t = np.arange(6 * sr) / sr
    gains = np.array([1.0, 0.5, 0.0, -0.5, 0.25, 0.75])  # mean gain 1/3
    y6 = (AMP * np.sin(2 * np.pi * FREQ * t))[:, None] * gains[None, :]
    path = tmp_path / "surround.wav"
    sf.write(path, y6.astype(np.float32), sr, subtype="FLOAT")
    assert sf.info(path).channels == 6
    y = load_audio(path)
    assert abs(len(y) - 6 * SAMPLE_RATE) <= 1
    expected = resample(y6.mean(axis=1), sr)
    np.testing.assert_allclose(y, expected, atol=1e-5)
    assert interior_rms(y) == pytest.approx(AMP * gains.mean() / np.sqrt(2), rel=0.01)


def test_resample_mixes_channels_first_rows():
    y = np.stack([np.ones(44_100), np.zeros(44_100)]).astype(np.float32)  # (channels, n)
    out = resample(y, 44_100)
    assert len(out) == 22_050
    assert np.allclose(out[1000:-1000], 0.5, atol=1e-4)
    np.testing.assert_array_equal(resample(y[0], SAMPLE_RATE), y[0])  # no-op at the target rate


@pytest.mark.parametrize("sr", [22_050, 44_100])
def test_stream_audio_blocks_concatenate_to_load_audio(tmp_path, sr):
    path = tmp_path / "long.flac"
    sf.write(path, tone(12.0, sr, channels=2), sr)
    blocks = list(stream_audio(path, block_seconds=1.7))
    assert len(blocks) > 5
    streamed = np.concatenate(blocks)
    whole = load_audio(path)
    assert len(streamed) == len(whole)
    np.testing.assert_allclose(streamed, whole, atol=1e-6)


def test_load_audio_duration_keeps_the_start(tmp_path):
    path = tmp_path / "long.wav"
    sf.write(path, tone(12.0, 44_100), 44_100)
    head = load_audio(path, duration=3.0)
    assert len(head) == 3 * SAMPLE_RATE
    np.testing.assert_allclose(head, load_audio(path)[: len(head)], atol=1e-6)


# --- segmenting -------------------------------------------------------------------------------


def test_segments_are_whole_and_non_overlapping():
    y = np.arange(int(12.3 * SAMPLE_RATE), dtype=np.float32)
    seg = segment_audio(y)
    assert seg.shape == (2, SEGMENT_SAMPLES)  # 12.3 s -> two whole 5-s segments, remainder dropped
    np.testing.assert_array_equal(seg.ravel(), y[: 2 * SEGMENT_SAMPLES])


def test_paper_clip_policy_gives_8_segments_of_a_45s_clip():
    y = np.zeros(int(60 * SAMPLE_RATE), dtype=np.float32)
    assert len(segment_audio(y)) == 12
    assert len(segment_audio(y, clip_seconds=PAPER_CLIP_SECONDS)) == 9
    assert len(segment_audio(y, clip_seconds=PAPER_CLIP_SECONDS, drop_last=True)) == 8
    assert len(segment_audio(y[: 30 * SAMPLE_RATE], clip_seconds=PAPER_CLIP_SECONDS, drop_last=True)) == 5


def test_drop_last_keeps_a_single_segment():
    assert len(segment_audio(np.zeros(SEGMENT_SAMPLES + 5, np.float32), drop_last=True)) == 1


def test_segment_audio_replaces_nan():
    y = np.zeros(SEGMENT_SAMPLES, np.float32)
    y[10] = np.nan
    assert np.isfinite(segment_audio(y)).all()


def test_too_short_names_the_source():
    with pytest.raises(AudioError, match=r"song\.wav: too short \(4\.99 s\)"):
        segment_audio(np.zeros(SEGMENT_SAMPLES - 100, np.float32), source="song.wav")


# --- find_audio_files -------------------------------------------------------------------------


def test_find_audio_files_recurses_sorted_and_keeps_named_files(tmp_path):
    for rel in ["b/2.mp3", "a/1.WAV", "a/notes.txt", "a/.hidden.mp3", "c/3.m4a", "c/d/4.flac"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    found = find_audio_files(tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in found] == ["a/1.WAV", "b/2.mp3", "c/3.m4a", "c/d/4.flac"]
    named = tmp_path / "a" / "notes.txt"
    assert find_audio_files([named, tmp_path / "b"]) == [named, tmp_path / "b" / "2.mp3"]
    assert find_audio_files(str(named)) == [named]


# --- bad input: a clear AudioError naming the file --------------------------------------------


def test_empty_file(tmp_path):
    path = tmp_path / "empty.mp3"
    path.write_bytes(b"")
    with pytest.raises(AudioError, match=r"empty\.mp3: the file is empty"):
        load_audio(path)


def test_text_file_named_mp3(tmp_path):
    path = tmp_path / "lyrics.mp3"
    path.write_text("not audio at all\n" * 50)
    with pytest.raises(AudioError, match=r"lyrics\.mp3: cannot decode as audio"):
        load_audio(path)


def test_random_bytes_with_an_audio_extension(tmp_path):
    path = tmp_path / "noise.m4a"
    path.write_bytes(np.random.default_rng(0).bytes(4000))
    with pytest.raises(AudioError, match=r"noise\.m4a"):
        load_audio(path)


def test_nonexistent_path(tmp_path):
    with pytest.raises(AudioError, match=r"missing\.wav: no such file"):
        load_audio(tmp_path / "missing.wav")


def test_folder(tmp_path):
    folder = tmp_path / "album.mp3"
    folder.mkdir()
    with pytest.raises(AudioError, match=r"album\.mp3: is a folder"):
        load_audio(folder)


def test_half_second_file_is_too_short(tmp_path):
    path = tmp_path / "blip.wav"
    sf.write(path, tone(0.5, 44_100), 44_100)
    y = load_audio(path)  # decoding works ...
    assert len(y) == SAMPLE_RATE // 2
    with pytest.raises(AudioError, match=r"blip\.wav: too short \(0\.50 s\)"):  # ... segmenting refuses
        segment_audio(y, source=str(path))


def test_silence_is_valid_audio(tmp_path):
    path = tmp_path / "silence.flac"
    sf.write(path, np.zeros((6 * 44_100, 2), np.float32), 44_100)
    y = load_audio(path)
    assert np.all(y == 0)
    assert segment_audio(y).shape == (1, SEGMENT_SAMPLES)


def test_truncated_mp3_decodes_what_is_there(tmp_path):
    """Policy (documented in moodscope.audio): a cut-off file decodes as far as its data goes."""
    full = tmp_path / "full.mp3"
    sf.write(full, tone(12.0, 44_100, channels=2), 44_100, format="MP3")
    data = full.read_bytes()
    half = tmp_path / "half.mp3"
    half.write_bytes(data[: len(data) // 2])
    y = load_audio(half)
    assert 4.0 < len(y) / SAMPLE_RATE < 8.0
    assert np.isfinite(y).all()
    assert dominant_frequency(y) == pytest.approx(FREQ, abs=5)
    np.testing.assert_allclose(y[: 3 * SAMPLE_RATE], load_audio(full)[: 3 * SAMPLE_RATE], atol=1e-4)

    tiny = tmp_path / "tiny.mp3"  # cut so short that no whole segment is left
    tiny.write_bytes(data[: len(data) // 5])
    with pytest.raises(AudioError, match=r"tiny\.mp3: too short"):
        segment_audio(load_audio(tiny), source=str(tiny))


def test_real_4q_clip_decodes_like_librosa():
    """Golden check on real MP3s: same length as librosa.load(sr=22050, mono=True), same samples up to
    the resampler's quality setting (moodscope uses soxr VHQ, librosa soxr HQ)."""
    import librosa

    from conftest import shared_data

    folder = shared_data("4q", "MER_audio_taffc_dataset")
    clips = sorted(folder.glob("Q*/*.mp3"))
    if not clips:
        pytest.skip(f"no 4Q clips in {folder}")
    for clip in (clips[0], clips[len(clips) // 2]):
        ours = load_audio(clip)
        theirs, _ = librosa.load(clip, sr=SAMPLE_RATE, mono=True)
        assert len(ours) == len(theirs)
        assert np.abs(ours - theirs).max() < 5e-3 * np.abs(theirs).max()
        assert segment_audio(ours, source=str(clip)).shape[0] == len(theirs) // SEGMENT_SAMPLES
