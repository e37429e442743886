"""Decoding, mix-down, resampling, segmenting and bad input (moodscope.audio)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from moodscope.audio import (
    audio_from_array,
    find_audio_files,
    load_audio,
    resample,
    segment_audio,
    stream_audio,
)
from moodscope.constants import MAX_SAMPLE_MAGNITUDE, PAPER_CLIP_SECONDS, SAMPLE_RATE, SEGMENT_SAMPLES
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


def test_a_file_of_one_block_is_resampled_in_one_call_with_the_streams_samples(tmp_path, monkeypatch):
    """A file shorter than a decoding block (any clip under a minute) skips soxr's stream and its
    buffers (8-13 % of the decoding time of a 30-s MP3), and gets the very samples the stream gives."""
    import soxr

    path = tmp_path / "clip.flac"
    sf.write(path, tone(6.0, 44_100, channels=2), 44_100)
    stream = soxr.ResampleStream(44_100, SAMPLE_RATE, 1, dtype="float32", quality="VHQ")
    mono = sf.read(path, dtype="float32")[0].mean(axis=1, dtype=np.float32)
    expected = np.concatenate([stream.resample_chunk(mono), stream.resample_chunk(mono[:0], last=True)])

    def no_stream(*args, **kwargs):
        raise AssertionError("a one-block file went through soxr.ResampleStream")

    monkeypatch.setattr(soxr, "ResampleStream", no_stream)
    np.testing.assert_array_equal(load_audio(path), expected)
    with pytest.raises(AudioError, match="ResampleStream"):  # longer files still stream
        list(stream_audio(path, block_seconds=2.0))


def test_load_audio_duration_keeps_the_start(tmp_path):
    """A tone whose loudness rises over the file: any 3 s but the first would differ (a steady tone would
    not tell the start from the end, which are whole periods apart)."""
    path = tmp_path / "long.wav"
    y = tone(12.0, 44_100) * np.linspace(0.05, 1.0, 12 * 44_100, dtype=np.float32)
    sf.write(path, y, 44_100)
    head, full = load_audio(path, duration=3.0), load_audio(path)
    assert len(head) == 3 * SAMPLE_RATE
    np.testing.assert_allclose(head, full[: len(head)], atol=1e-6)
    assert np.abs(head - full[-len(head) :]).max() > 0.1  # the end is another signal


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


# --- damaged samples: an error naming the file, never a result (policy in moodscope.audio) ----------

DAMAGE = {"nan": (np.nan, r"not numbers \(NaN\)"), "inf": (np.inf, "infinite"), "1e20": (1e20, r"1e\+20")}


def damaged(kind: str, seconds: float = 8.0, sr: int = 44_100) -> np.ndarray:
    """Stereo float audio [shape=(n, 2)] with 0.1 s of damage starting at 3 s."""
    y = tone(seconds, sr, channels=2)
    y[3 * sr : 3 * sr + sr // 10] = DAMAGE[kind][0]
    return y


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_damaged_samples_in_a_file_are_an_error_naming_it(tmp_path, kind):
    path = tmp_path / f"{kind}.wav"
    sf.write(path, damaged(kind), 44_100, subtype="FLOAT")
    with pytest.raises(AudioError, match=rf"{kind}\.wav: the audio is damaged: .*{DAMAGE[kind][1]}.* from 3\.00 s"):
        load_audio(path)


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_damaged_samples_in_an_array_get_the_same_error(kind):
    with pytest.raises(AudioError, match=rf"audio array: the audio is damaged: .*{DAMAGE[kind][1]}.* from 3\.00 s"):
        audio_from_array(damaged(kind), 44_100)


def test_samples_just_inside_the_limit_are_analysed():
    y = tone(6.0, 44_100)
    y[100] = MAX_SAMPLE_MAGNITUDE
    assert np.isfinite(audio_from_array(y, 44_100)).all()


# --- arrays: what people pass ---------------------------------------------------------------------


def test_array_layouts_and_dtypes_give_the_same_audio():
    sr = 44_100
    stereo = tone(6.0, sr, channels=2)  # (n, 2): what soundfile.read returns
    expected = audio_from_array(stereo[:, 0], sr)
    assert len(expected) == 6 * SAMPLE_RATE
    for name, y in {
        "(n, 2)": stereo,
        "(2, n)": stereo.T,
        "(n, 1)": stereo[:, :1],
        "(1, n)": stereo[:, :1].T,
        "float64": stereo.astype(np.float64),
        "list": stereo[:, 0].tolist(),
    }.items():
        np.testing.assert_allclose(audio_from_array(y, sr), expected, atol=1e-6, err_msg=name)


@pytest.mark.parametrize(("dtype", "full"), [(np.int16, 2**15), (np.int32, 2**31), (np.int8, 2**7)])
def test_integer_pcm_is_scaled_by_its_full_range(dtype, full):
    y = tone(6.0, 44_100)
    pcm = np.round(y * (full - 1)).astype(dtype)
    np.testing.assert_allclose(audio_from_array(pcm, 44_100), audio_from_array(y, 44_100), atol=2 / full + 1e-6)


def test_unsigned_8_bit_pcm_is_centred():
    y = tone(6.0, 44_100)
    pcm = np.round(y * 127 + 128).astype(np.uint8)  # 8-bit WAV convention: silence is 128
    np.testing.assert_allclose(audio_from_array(pcm, 44_100), audio_from_array(y, 44_100), atol=0.01)


@pytest.mark.parametrize(
    ("y", "sr", "words"),
    [
        (np.zeros(0, np.float32), 44_100, "the array is empty"),
        (np.zeros((2, 0), np.float32), 44_100, "the array is empty"),
        (tone(6.0, 44_100), 0, "sample rate must be positive"),
        (tone(6.0, 44_100), -44_100, "sample rate must be positive"),
        (tone(6.0, 44_100), float("nan"), "sample rate must be positive"),
        (tone(6.0, 44_100), "fast", "sample rate must be a number"),
        (np.array(["a"] * 1000), 44_100, "expected numbers"),
        (np.array([1 + 2j] * 1000), 44_100, "expected numbers"),
        (np.zeros((2, 3, 1000), np.float32), 44_100, r"expected \(samples,\)"),
        (np.zeros((500, 500), np.float32), 44_100, "cannot tell samples from channels"),
        (np.zeros(1000, np.int64), 44_100, "not PCM"),
    ],
)
def test_unusable_arrays_are_an_audio_error(y, sr, words):
    with pytest.raises(AudioError, match=f"audio array: .*{words}"):
        audio_from_array(y, sr)


# --- damaged files decode as far as their data goes; decoders keep quiet ---------------------------


def cut(path: Path, fraction: float, name: str) -> Path:
    data = path.read_bytes()
    out = path.with_name(name)
    out.write_bytes(data[: int(len(data) * fraction)])
    return out


def test_truncated_flac_decodes_what_is_there(tmp_path, capfd):
    full = tmp_path / "full.flac"
    sf.write(full, tone(12.0, 44_100, channels=2), 44_100)
    half = cut(full, 0.5, "half.flac")
    y = load_audio(half)
    assert 4.0 < len(y) / SAMPLE_RATE < 8.0
    inner = len(y) - SAMPLE_RATE // 10  # the resampler's end effects aside, lossless: the same samples
    np.testing.assert_allclose(y[:inner], load_audio(full)[:inner], atol=1e-5)
    assert capfd.readouterr().err == ""


def test_garbage_inside_an_mp3_is_skipped_quietly(tmp_path, capfd):
    full = tmp_path / "full.mp3"
    sf.write(full, tone(12.0, 44_100, channels=2), 44_100, format="MP3")
    data = bytearray(full.read_bytes())
    third = len(data) // 3
    data[third : third + 4000] = np.random.default_rng(0).bytes(4000)
    garbled = tmp_path / "garbled.mp3"
    garbled.write_bytes(bytes(data))
    y = load_audio(garbled)
    assert len(y) / SAMPLE_RATE > 10.0  # the frames after the garbage are there too
    assert dominant_frequency(y[-3 * SAMPLE_RATE :]) == pytest.approx(FREQ, abs=5)
    assert capfd.readouterr().err == ""  # no "Note: Illegal Audio-MPEG-Header" on the terminal


def test_truncated_mp3_prints_no_decoder_warnings(tmp_path, capfd):
    full = tmp_path / "full.mp3"
    sf.write(full, tone(12.0, 44_100, channels=2), 44_100, format="MP3")
    load_audio(cut(full, 0.5, "half.mp3"))
    assert capfd.readouterr().err == ""  # no "Warning: Xing stream size off by more than 1%"


def test_an_undecodable_file_is_named_once_without_decoder_noise(tmp_path, capfd):
    path = tmp_path / "junk.mp3"
    path.write_bytes(np.random.default_rng(0).bytes(50_000))
    with pytest.raises(AudioError) as info:
        load_audio(path)
    message = str(info.value)
    assert message.startswith(f"{path}: cannot decode as audio")
    assert message.count("junk.mp3") == 1
    assert "possibly a pipe" not in message and "\n" not in message
    assert capfd.readouterr().err == ""


def test_other_output_on_stderr_during_decoding_is_not_lost(tmp_path, capfd):
    """Only decoder chatter is held back: another thread's stderr line during a decode comes through."""
    import threading

    from moodscope import audio

    path = tmp_path / "a.wav"
    sf.write(path, tone(1.0, 44_100), 44_100)
    with audio._quiet_decoder():
        thread = threading.Thread(target=lambda: __import__("os").write(2, b"server log line\n"))
        thread.start()
        thread.join()
        load_audio(path)
    assert capfd.readouterr().err == "server log line\n"
