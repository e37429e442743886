"""Every fixed number of the pipeline, in one place. Derived values are computed, never retyped."""

from __future__ import annotations

SAMPLE_RATE = 22_050
"""Analysis sample rate (Hz): every file is mixed to mono and resampled to it."""

MAX_SAMPLE_MAGNITUDE = 100.0
"""Largest sample magnitude moodscope analyses (full scale is ±1; this is 40 dB above it). Float audio
beyond it, infinite or NaN is damaged (or unscaled integers stored as floats) and is refused."""

SEGMENT_SECONDS = 5.0
SEGMENT_SAMPLES = int(SAMPLE_RATE * SEGMENT_SECONDS)  # 110_250

N_FFT = 2048
HOP_LENGTH = 512
N_MFCC = 13
N_MELS = 128
DELTA_WIDTH = 9
N_FRAMES = 1 + SEGMENT_SAMPLES // HOP_LENGTH  # 216, centred frames

SERIES_NAMES = (
    "amplitude_envelope",
    "rms",
    "zero_crossing_rate",
    "spectral_centroid",
    "spectral_spread",
)
"""The five frame-level time series of the paper's Table 2, in the order they are stored."""

STATIC_NAMES = tuple(f"{name}_{stat}" for name in SERIES_NAMES for stat in ("mean", "std"))
"""The ten static features: mean and standard deviation over frames of each series."""

N_SERIES = len(SERIES_NAMES)  # 5
N_STATIC = len(STATIC_NAMES)  # 10

PAPER_CLIP_SECONDS = 45.0
"""The paper's clip policy for DEAM/MTurk: 45 s clips cut into 5-s segments, last one dropped."""

NEAR_AXIS_THRESHOLD = 0.025
"""The paper's filter: segments with |valence| or |arousal| below this are ambiguous."""

DYNAMIC_RATE_HZ = 2.0
"""DEAM, emoMusic and PMEmo continuous annotations are sampled at 2 Hz."""

MIN_DYNAMIC_COVERAGE = 0.5
"""A segment gets a dynamic valence/arousal target (``train --task va --targets dynamic``) when at least
this fraction of its DYNAMIC_RATE_HZ * SEGMENT_SECONDS annotation samples is present."""

QUADRANTS = ("Q1", "Q2", "Q3", "Q4")
"""Russell's quadrants, standard numbering (the 4Q dataset's and most of the field's):
Q1 = +valence +arousal, Q2 = -valence +arousal, Q3 = -valence -arousal, Q4 = +valence -arousal.
The paper numbers Q2 and Q4 the other way round."""

N_QUADRANTS = len(QUADRANTS)  # 4, the classes every classifier predicts

QUADRANT_MOODS = {
    "Q1": "happy/excited",
    "Q2": "tense/angry",
    "Q3": "sad/depressed",
    "Q4": "calm/relaxed",
}

VA_RANGE = (0.0, 1.0)
"""The range of the valence and arousal values moodscope reports (the scale of the retired streaming
audio-features API): ``valence`` is the model's probability that listeners rate the music positive,
``arousal`` that they rate it high (for a quadrant classifier the marginals of its quadrant probabilities,
p(Q1) + p(Q4) and p(Q1) + p(Q2); see docs/models.md). Plots, maps and the web page take their axes from it;
the quadrant boundaries lie at its midpoint, :data:`VA_MIDPOINT`."""

VA_MIDPOINT = (VA_RANGE[0] + VA_RANGE[1]) / 2  # 0.5: as likely positive as negative (high as low)

QUADRANT_SIGNS = {"Q1": (1, 1), "Q2": (-1, 1), "Q3": (-1, -1), "Q4": (1, -1)}
"""The side of each axis a quadrant lies on: (sign of valence, sign of arousal) about the midpoint."""

QUADRANT_CENTRES = {
    q: (VA_MIDPOINT + sv * (VA_RANGE[1] - VA_RANGE[0]) / 4, VA_MIDPOINT + sa * (VA_RANGE[1] - VA_RANGE[0]) / 4)
    for q, (sv, sa) in QUADRANT_SIGNS.items()
}
"""The centre of each quadrant on the reported plane (``VA_RANGE``): Q1 (0.75, 0.75), Q2 (0.25, 0.75),
Q3 (0.25, 0.25), Q4 (0.75, 0.25); the point a mood word stands for in library queries."""

MAX_TRACKS_PER_PLOT = 12
"""A timeline plot (``analyze --plot``) draws one panel per track for at most this many tracks."""

QUADRANT_COLOURS = {"Q1": "#f2a516", "Q2": "#d7263d", "Q3": "#3066be", "Q4": "#2e9e6b"}

AUDIO_EXTENSIONS = (".mp3", ".wav", ".flac", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".mp4", ".aiff", ".aif")

SEED = 1234

MODEL_NAMES = ("cnn", "cnn-lstm", "hybrid")
"""The paper's three architectures (Model 1, 2, 3), as registered in :mod:`moodscope.models`."""

SILENCE_DBFS = -60.0
"""Signal check of out-of-distribution input: a segment whose RMS level is below this (dB relative to full
scale) is silence or nearly so, and is flagged whatever the model says (:mod:`moodscope.analysis.ood`)."""

OOD_PERCENTILE = 99.5
"""The embedding score's threshold: this percentile of the training segments' out-of-fold distances."""

OOD_SHRINKAGE = 0.1
"""Shrinkage of the training descriptors' covariance towards a multiple of the identity (OOD score)."""

OOD_FOLDS = 5
"""Artist-disjoint folds over which the OOD threshold is calibrated (out-of-fold distances)."""

OOD_TRACK_FRACTION = 0.5
"""A track is "uncertain" when more than this fraction of its segments are out of distribution."""

UNCERTAIN = "uncertain"
"""What a track's summary mood says when the input is not music like the model's training music."""

OOD_COMPONENTS = 256
"""Principal axes of the training descriptors' covariance an OOD score keeps (the rest share one variance)."""

SPEECH_PAUSE_DB = 30.0
SPEECH_PAUSE_FRACTION = 0.25
SPEECH_LEVEL_CV = 1.2
"""Signal check of speech-like input (words and phrases between pauses): a segment with more than
SPEECH_PAUSE_FRACTION of its frames SPEECH_PAUSE_DB below its loud frames (95th percentile) and a frame
RMS whose coefficient of variation exceeds SPEECH_LEVEL_CV is flagged (:mod:`moodscope.analysis.ood`)."""

SPEECH_FLOOR_DB = 40.0
SPEECH_SPREAD_DB = 11.3
SPEECH_VALLEY_DB = 20.0
SPEECH_VALLEY_SECONDS = 0.25
SPEECH_VALLEY_FRACTION = 0.07
"""Second signal check of speech (fluent speech, with few long pauses): frame levels (dB, floored
SPEECH_FLOOR_DB below the loud frames) whose std exceeds SPEECH_SPREAD_DB, and more than
SPEECH_VALLEY_FRACTION of the frames in a valley, i.e. SPEECH_VALLEY_DB below the loudest frame within
SPEECH_VALLEY_SECONDS on each side (the gaps between words and syllables). Both thresholds are the 99th
percentile of the 4Q training segments' values, rounded up (docs/models.md)."""

CLICK_BURST_SECONDS = 0.05
"""Intermittent sound (the speech check above) whose bursts last less than this on average (mean length of
the runs of frames within SPEECH_PAUSE_DB of the loud frames) is clicks, not speech: no syllable is this short."""

NOISE_FFT = N_FFT // 2
NOISE_BAND_HZ = (100.0, 5000.0)
NOISE_RIPPLE_BINS = 31
NOISE_FLUCTUATION_DB = 0.6
NOISE_RIPPLE_DB = 0.9
"""Signal check of steady noise (hiss, white, pink or brown noise), on the power spectrum of non-overlapping
Hann-windowed frames of NOISE_FFT samples between NOISE_BAND_HZ: divided by its own average over the segment
(whitened, so that the noise's colour does not matter), the band's level fluctuates from frame to frame by
less than NOISE_FLUCTUATION_DB (std, dB: stationary noise fluctuates only by chance, about 0.4 dB; music
changes), and the average spectrum has no peaks: the std of its deviation from a running median over
NOISE_RIPPLE_BINS bins (670 Hz, seeing beyond the band) is below NOISE_RIPPLE_DB (noise: about 0.4 dB; tones
stand out). Each threshold is about three quarters of the lowest value any of the 3,013 segments of the 4Q
training clips reaches (0.80 and 1.24 dB), so that none of them comes near (docs/models.md;
benchmarks/ood.py reports these minima)."""
