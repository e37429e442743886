"""How often the out-of-distribution check (``moodscope.analysis.ood``) flags real music, and how often it
catches what is not music, for the shipped ``accurate`` and ``fast`` models.

1. **Real music the models were not trained on** (the shipped models and their OOD statistics as they
   are, ``moodscope.analyze(path, model=...)``): the unlabelled music of ``../shared/data/music`` (one
   file is the bundled demo clip), the DEAM clips (``deam/MEMD_audio``), the emoMusic clips (the same
   songs as the DEAM ones, another encoding: reported, left out of the pooled total) and the PMEmo
   choruses. Per file: segments, flagged segments (and why), whether the track is uncertain.
2. **The 540 4Q clips, out of fold** (``--skip-4q`` leaves it out): the shipped statistics were fitted
   on these clips, so applying them is in-sample (reported too, optimistic). Out of fold, the
   statistics are refitted as ``train`` fits them (``fit_model_ood``: artist-disjoint calibration)
   on 4 of 5 artist-disjoint folds and score the fifth, which is what music by new artists meets.
   The descriptors of every segment (musicnn's, the paper block, the signal measurements) are
   computed once and cached in ``--cache``.
3. **Detection on signals that are not music** (``tests/nonmusic.py``): silence, white, pink and brown
   noise, a synthetic speech-like signal, a sine tone and clicks, ``--seconds`` long, ``--variants``
   variants each (seeds; for the tone, frequencies), analysed as arrays: the fraction of segments
   flagged and of signals found uncertain.

Prints a table and writes JSON (``--json``, default ``docs/benchmarks/ood.json``).

    python benchmarks/ood.py                         # everything (the 4Q descriptors: ~15-30 min the first time)
    python benchmarks/ood.py --skip-4q --models fast  # quick
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
from common import save_report

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from nonmusic import brown_noise, clicks, pink_noise, silence, sine_tone, speech_like, white_noise  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "data"
DEFAULT_CACHE = Path.home() / ".cache" / "moodscope" / "benchmarks"
REAL_SOURCES = {  # name -> (folder under the data root, pooled with the others)
    "music": ("music", True),
    "DEAM": ("deam/MEMD_audio", True),
    "emoMusic (same songs as DEAM)": ("emomusic/clips_45seconds", False),
    "PMEmo": ("pmemo/PMEmo2019/chorus", True),
}
AUDIO_EXTENSIONS = (".mp3", ".ogg", ".wav", ".flac")
DEFAULT_SPEECH_ROOT = Path("/usr/share")
REAL_SPEECH = {  # name -> (folder under the speech root, glob, Debian package): real recorded voices
    "Asterisk prompts (Allison Smith, 8 kHz)": (
        "asterisk/sounds/en_US_f_Allison",
        "**/*.wav",
        "asterisk-core-sounds-en-wav",
    ),
    "ALSA speaker test (48 kHz)": ("sounds/alsa", "[FRS]*_*.wav", "alsa-utils"),
}
"""Real speech, if installed (or unpacked under ``--speech-root`` with ``apt-get download PACKAGE &&
dpkg-deb -x PACKAGE_*.deb DIR``, then ``--speech-root DIR/usr/share``): each source's files in name order,
concatenated and cut into 5-s segments (the prompts are short; the Asterisk ``silence/`` files are left out)."""
SINE_FREQUENCIES = (440.0, 110.0, 1000.0, 220.0, 3000.0)
SIGNALS = {
    "silence": lambda s, i: silence(s),
    "white noise": lambda s, i: white_noise(s, seed=i),
    "pink noise": lambda s, i: pink_noise(s, seed=i),
    "brown noise": lambda s, i: brown_noise(s, seed=i),
    "speech-like": lambda s, i: speech_like(s, seed=i),
    "sine tone": lambda s, i: sine_tone(s, frequency=SINE_FREQUENCIES[i % len(SINE_FREQUENCIES)]),
    "clicks": lambda s, i: clicks(s, seed=i),
}


def _verdicts(flags: np.ndarray, reasons: list[str], track_ids: np.ndarray) -> dict:
    """Segment and track figures of a set of verdicts: flagged segments, reasons, uncertain tracks."""
    from moodscope.analysis.ood import track_uncertain

    tracks = np.unique(track_ids)
    uncertain = [t for t in tracks if track_uncertain(flags[track_ids == t])]
    anyflag = [t for t in tracks if flags[track_ids == t].any()]
    return {
        "segments": len(flags),
        "segments_flagged": int(flags.sum()),
        "segments_flagged_fraction": float(flags.mean()) if len(flags) else 0.0,
        "reasons": dict(Counter(r for r in reasons if r)),
        "tracks": len(tracks),
        "tracks_uncertain": len(uncertain),
        "tracks_uncertain_fraction": len(uncertain) / max(len(tracks), 1),
        "tracks_any_flagged": len(anyflag),
        "uncertain": [str(t) for t in uncertain],
    }


def real_music(data: Path, model, name: str) -> dict:
    """The shipped model on every real file of REAL_SOURCES: per file and pooled figures."""
    from moodscope import analyze

    files, pooled = [], {"flags": [], "reasons": [], "ids": []}
    for source, (folder, pool) in REAL_SOURCES.items():
        paths = sorted(p for p in (data / folder).glob("*") if p.suffix.lower() in AUDIO_EXTENSIONS)
        for path in paths:
            a = analyze(path, model=model)
            flags = a.ood_flags
            files.append({
                "source": source,
                "file": path.name,
                "seconds": round(a.duration, 1),
                "segments": len(flags),
                "flagged": int(flags.sum()),
                "reasons": dict(Counter(r for r in a.ood_reasons if r)),
                "median_score": float(np.nanmedian(a.ood_scores)) if np.isfinite(a.ood_scores).any() else None,
                "max_score": float(np.nanmax(a.ood_scores)) if np.isfinite(a.ood_scores).any() else None,
                "uncertain": bool(a.summary.uncertain),
                "mood": a.summary.mood,
            })  # fmt: skip
            if pool:
                pooled["flags"] += list(flags)
                pooled["reasons"] += list(a.ood_reasons)
                pooled["ids"] += [f"{source}/{path.name}"] * len(flags)
            print(f"  {name:8s} {source[:12]:12s} {path.name[:34]:34s} {len(flags):4d} seg  "
                  f"{int(flags.sum()):3d} flagged  {a.summary.mood}", flush=True)  # fmt: skip
    total = _verdicts(np.array(pooled["flags"], bool), pooled["reasons"], np.array(pooled["ids"]))
    return {"files": files, "pooled": total}


def _clip_segments(items: list[tuple[str, Path]]):
    """(track id, segments [shape=(n, SEGMENT_SAMPLES)]) of each 4Q clip that decodes, with progress."""
    from moodscope.audio import load_audio, segment_audio
    from moodscope.errors import MoodscopeError

    start = time.perf_counter()
    for i, (tid, path) in enumerate(items):
        try:
            yield tid, segment_audio(load_audio(path), source=str(path))
        except MoodscopeError as exc:
            print(f"  skipped: {exc}", file=sys.stderr)
        if (i + 1) % 100 == 0:
            print(f"  4Q clips: {i + 1}/{len(items)}, {time.perf_counter() - start:.0f} s", flush=True)


def _cached_segments(
    cache: Path, items: list, names: tuple[str, ...], compute, version: str = ""
) -> dict[str, np.ndarray]:
    """Per-segment arrays ``names`` (and ``track_ids``) of the 4Q clips, from ``cache`` (an NPZ) when it holds
    them for the same clips (and ``version`` of the code computing them), else ``compute(segments)`` ->
    {name: [shape=(n, ...)]} over every clip, cached."""
    from moodscope.features.cache import atomic_write_npz

    wanted = np.array([tid for tid, _ in items] + ["|", *names] + ([version] if version else []))
    if cache.exists():
        with np.load(cache, allow_pickle=False) as data:
            if np.array_equal(data["requested"], wanted):
                return {k: data[k] for k in (*names, "track_ids")}
    parts: dict[str, list[np.ndarray]] = {k: [] for k in names}
    ids: list[str] = []
    for tid, segments in _clip_segments(items):
        for k, v in compute(segments).items():
            parts[k].append(v)
        ids += [tid] * len(segments)
    arrays = {k: np.concatenate(v) for k, v in parts.items()} | {"track_ids": np.array(ids)}
    atomic_write_npz(cache, arrays | {"requested": wanted})
    return arrays


def fourq_descriptors(root: Path, cache: Path) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], np.ndarray, dict]:
    """Descriptor blocks (``accurate``'s and ``fast``'s OOD blocks), signal measurements and track id of every
    segment of the 4Q clips, and each track's artist. Cached in ``cache`` (the descriptors: most of the
    time, musicnn's forward pass; keyed by the musicnn graphs' SHA-256) and beside it with the suffix
    ``-signal`` (the signal measurements, a minute: recomputed alone when the signal checks change)."""
    from moodscope.analysis.accurate import FAST_OOD_BLOCKS, OOD_BLOCKS, block_inputs, blocks_from_inputs
    from moodscope.analysis.embeddings import embedder_provenance
    from moodscope.analysis.ood import SIGNAL_INPUTS, signal_inputs
    from moodscope.datasets import load_dataset

    dataset = load_dataset("4q", root)
    artist_of = {tid: (t.artist or tid).strip().lower() for tid, t in dataset.tracks().items()}
    items = dataset.audio_items()
    names = (*OOD_BLOCKS, *FAST_OOD_BLOCKS)
    graphs = embedder_provenance(names)["model_hash"]  # descriptors of other musicnn graphs are never reused
    blocks = _cached_segments(cache, items, names, lambda s: blocks_from_inputs(block_inputs(s, names), names), graphs)
    signal_cache = cache.with_name(f"{cache.stem}-signal{cache.suffix}")
    import hashlib

    import moodscope.analysis.ood
    import moodscope.constants

    modules = (moodscope.analysis.ood, moodscope.constants)  # the signal checks' code: recomputed when it changes
    version = hashlib.sha256(b"".join(Path(m.__file__).read_bytes() for m in modules)).hexdigest()[:16]
    signal = _cached_segments(signal_cache, items, SIGNAL_INPUTS, signal_inputs, version)
    if not np.array_equal(blocks["track_ids"], signal["track_ids"]):
        sys.exit(f"{cache} and {signal_cache} disagree on the 4Q segments: delete both and run again")
    track_ids = blocks.pop("track_ids")
    signal.pop("track_ids")
    return blocks, signal, track_ids, artist_of


def fourq(root: Path, cache: Path, models: dict) -> dict:
    """Out-of-fold and in-sample (shipped statistics) verdicts on the 4Q clips for each model."""
    from moodscope.analysis.accurate import FAST_OOD_BLOCKS, OOD_BLOCKS, SegmentBlocks, fit_model_ood
    from moodscope.analysis.ood import segment_ood
    from moodscope.constants import OOD_FOLDS
    from moodscope.training.protocols import stratified_group_folds

    blocks, signal, track_ids, artist_of = fourq_descriptors(root, cache)
    groups = np.array([artist_of.get(t) or t for t in track_ids])
    fold_of = stratified_group_folds(np.zeros(len(track_ids), int), groups, OOD_FOLDS, np.random.default_rng(0))
    out = {}
    for name, model in models.items():
        names = OOD_BLOCKS if name == "accurate" else FAST_OOD_BLOCKS
        sb = SegmentBlocks({b: blocks[b] for b in names}, track_ids)
        scores = np.zeros(len(track_ids))
        for fold in range(OOD_FOLDS):
            test = fold_of == fold
            stats = fit_model_ood(sb.select(np.flatnonzero(~test)), artist_of, names)
            scores[test] = stats.scores({b: blocks[b][test] for b in names})
        oof = segment_ood(signal, scores)
        shipped = segment_ood(signal, model.ood.scores({b: blocks[b] for b in names}))
        embedding_only = scores > 1.0
        out[name] = {
            "out_of_fold": _verdicts(oof.flag, oof.reason, track_ids),
            "out_of_fold_embedding_score_alone": _verdicts(embedding_only, [""] * len(scores), track_ids),
            "shipped_statistics_in_sample": _verdicts(shipped.flag, shipped.reason, track_ids),
            "out_of_fold_median_score": float(np.median(scores)),
        }
    signal_only = segment_ood(signal)
    out["signal checks alone"] = {"out_of_fold": _verdicts(signal_only.flag, signal_only.reason, track_ids)}
    return out, signal_calibration(signal)


def signal_calibration(signal: dict[str, np.ndarray]) -> dict:
    """How the signal checks' thresholds sit against the 4Q training segments' measurements, i.e. how they were
    chosen (docs/models.md): steady noise at three quarters of the segments' lowest fluctuation and ripple;
    fluent speech at the 99th percentiles of their level spread and valleys, rounded up; clicks below the
    shortest mean burst of any segment the speech checks flag."""
    from moodscope.analysis.ood import segment_ood
    from moodscope.constants import (
        CLICK_BURST_SECONDS,
        NOISE_FLUCTUATION_DB,
        NOISE_RIPPLE_DB,
        SPEECH_SPREAD_DB,
        SPEECH_VALLEY_FRACTION,
    )

    reasons = np.array(segment_ood(signal).reason)
    intermittent = (reasons == "speech-like") | (reasons == "clicks")
    burst = signal["ood_burst"][intermittent]
    return {
        "segments": len(reasons),
        "noise_fluctuation_db": {"threshold": NOISE_FLUCTUATION_DB, "4q_min": float(signal["ood_fluctuation"].min())},
        "noise_ripple_db": {"threshold": NOISE_RIPPLE_DB, "4q_min": float(signal["ood_ripple"].min())},
        "speech_spread_db": {"threshold": SPEECH_SPREAD_DB, "4q_p99": float(np.percentile(signal["ood_spread"], 99))},
        "speech_valleys": {
            "threshold": SPEECH_VALLEY_FRACTION,
            "4q_p99": float(np.percentile(signal["ood_valleys"], 99)),
        },
        "click_burst_seconds": {
            "threshold": CLICK_BURST_SECONDS,
            "4q_min_of_intermittent": float(burst.min()) if len(burst) else None,
        },
    }


def synthetic(model, seconds: float, variants: int) -> dict:
    """Detection on signals that are not music: fraction of segments flagged and of signals uncertain."""
    from moodscope import analyze
    from moodscope.constants import SAMPLE_RATE

    out = {}
    for signal, make in SIGNALS.items():
        flags, reasons, scores, uncertain = [], [], [], 0
        for i in range(variants):
            a = analyze(make(seconds, i), sr=SAMPLE_RATE, model=model)
            flags += list(a.ood_flags)
            reasons += [r for r in a.ood_reasons if r]
            scores += list(a.ood_scores)
            uncertain += bool(a.summary.uncertain)
        out[signal] = {
            "signals": variants,
            "segments": len(flags),
            "segments_flagged_fraction": float(np.mean(flags)),
            "signals_uncertain_fraction": uncertain / variants,
            "reasons": dict(Counter(reasons)),
            "median_score": float(np.nanmedian(scores)) if np.isfinite(scores).any() else None,
        }
    return out


def real_speech(root: Path, model, name: str) -> dict:
    """The shipped model on each REAL_SPEECH source found under ``root``: segments flagged and why."""
    from moodscope import analyze
    from moodscope.audio import load_audio
    from moodscope.constants import SAMPLE_RATE

    out = {}
    for source, (folder, pattern, package) in REAL_SPEECH.items():
        paths = sorted(p for p in (root / folder).glob(pattern) if "silence" not in p.relative_to(root / folder).parts)
        if not paths:
            print(f"  {name:8s} {source}: not found under {root / folder} (Debian package {package}): skipped")
            continue
        audio = np.concatenate([load_audio(p) for p in paths])
        a = analyze(audio, sr=SAMPLE_RATE, model=model)
        out[source] = {
            "files": len(paths),
            "seconds": round(a.duration, 1),
            "segments": len(a.ood_flags),
            "segments_flagged_fraction": float(a.ood_flags.mean()),
            "reasons": dict(Counter(r for r in a.ood_reasons if r)),
            "uncertain": bool(a.summary.uncertain),
        }
        flagged = f"{a.ood_flags.mean():.1%} flagged {out[source]['reasons']}"
        print(f"  {name:8s} {source}: {len(a.ood_flags)} segments, {flagged}", flush=True)
    return out


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def print_tables(report: dict) -> None:
    print("\nReal music not used for training (shipped statistics):")
    print(f"{'model':9s} {'segments flagged':>24s} {'tracks uncertain':>18s} {'tracks with a flag':>19s}")
    for name, r in report["real_music"].items():
        p = r["pooled"]
        segments = f"{_pct(p['segments_flagged_fraction'])} ({p['segments_flagged']}/{p['segments']})"
        print(f"{name:9s} {segments:>24s} {p['tracks_uncertain']:>9d}/{p['tracks']:<8d} "
              f"{p['tracks_any_flagged']:>10d}/{p['tracks']}")  # fmt: skip
    if "4q" in report:
        print("\n4Q clips (540 songs):")
        for name, r in report["4q"].items():
            for key, v in r.items():
                if isinstance(v, dict):
                    print(f"{name:20s} {key:34s} segments {_pct(v['segments_flagged_fraction']):>7s} "
                          f"({v['segments_flagged']}/{v['segments']}), songs uncertain {v['tracks_uncertain']}/"
                          f"{v['tracks']}, songs with a flag {v['tracks_any_flagged']}  {v['reasons']}")  # fmt: skip
    if "4q_signal_calibration" in report:
        print("\nThe signal checks' thresholds against the 4Q segments' measurements:")
        for key, value in report["4q_signal_calibration"].items():
            print(f"  {key}: {value}")
    if any(report.get("real_speech", {}).values()):
        print("\nReal recorded speech (segments flagged; reasons):")
        for name, sources in report["real_speech"].items():
            for source, r in sources.items():
                flagged = f"{_pct(r['segments_flagged_fraction']):>8s}  {r['reasons']}"
                print(f"{name:9s} {source:42s} {r['segments']:4d} segments {flagged}")
    print("\nDetection on signals that are not music (segments flagged / signals uncertain):")
    models = list(report["synthetic"])
    print(f"{'signal':14s}" + "".join(f"{m:>28s}" for m in models))
    for signal in SIGNALS:
        row = f"{signal:14s}"
        for m in models:
            s = report["synthetic"][m][signal]
            row += f"{_pct(s['segments_flagged_fraction']):>16s} / {_pct(s['signals_uncertain_fraction']):>8s}"
        print(row)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["accurate", "fast"])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared data folder")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="where the 4Q descriptors are cached")
    parser.add_argument("--skip-4q", action="store_true", help="leave out the out-of-fold figures on the 4Q clips")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each synthetic signal")
    parser.add_argument("--variants", type=int, default=5, help="synthetic signals of each kind (seeds)")
    parser.add_argument("--speech-root", type=Path, default=DEFAULT_SPEECH_ROOT, help="where REAL_SPEECH is found")
    parser.add_argument("--json", type=Path, default=REPO / "docs" / "benchmarks" / "ood.json")
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        sys.exit(f"{args.data}: no shared data folder (give --data PATH)")
    from moodscope import load_model

    start = time.perf_counter()
    models = {name: load_model(name) for name in args.models}
    report: dict = {"load_average_start": os.getloadavg()[0], "real_music": {}, "real_speech": {}, "synthetic": {}}
    for name, model in models.items():
        report["real_music"][name] = real_music(args.data, model, name)
        report["real_speech"][name] = real_speech(args.speech_root, model, name)
        report["synthetic"][name] = synthetic(model, args.seconds, args.variants)
    if not args.skip_4q:
        cache = args.cache / "ood-4q-descriptors.npz"
        report["4q"], report["4q_signal_calibration"] = fourq(
            args.data / "4q" / "MER_audio_taffc_dataset", cache, models
        )
    report["load_average_end"] = os.getloadavg()[0]
    report["wall_seconds"] = round(time.perf_counter() - start, 1)
    print_tables(report)
    print(f"\n{report['wall_seconds']} s, load average {report['load_average_start']:.1f} -> "
          f"{report['load_average_end']:.1f}; written to {args.json}")  # fmt: skip
    save_report(args.json, report, argv)


if __name__ == "__main__":
    main()
