"""Consistency checks of a dataset: swapped valence/arousal columns, static labels that contradict
their own continuous annotations, and audio files missing or without annotation."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from moodscope.datasets.base import DatasetTrack, Issue
from moodscope.datasets.tables import corrected

SWAP_MARGIN = 0.3
"""A block of songs is declared valence/arousal-swapped when the summed static–dynamic correlation
is higher by at least this much with the columns exchanged than as labelled."""

MIN_BLOCK_SONGS = 20
"""Fewest songs with both static and dynamic labels needed to test a block for swapped columns."""

CONTRADICTION_LEVEL = 0.25
"""A static label and the mean of its dynamic series contradict each other when they have opposite
signs on one axis and both lie at least this far from zero (on the [-1, 1] scale)."""

MAX_LISTED = 20
"""Beyond this many files of one kind (missing or extra audio), issues are summarised in one line."""


def _corr(x: pd.Series, y: pd.Series) -> float:
    return float(np.corrcoef(x, y)[0, 1]) if x.std() > 0 and y.std() > 0 else 0.0


def swap_evidence(static: pd.DataFrame, dynamic_mean: pd.DataFrame) -> tuple[float, float, int]:
    """(as labelled, swapped, n): summed correlations of static with dynamic means, both ways round."""
    both = static.join(dynamic_mean, rsuffix="_dyn", how="inner").dropna()
    if len(both) < MIN_BLOCK_SONGS:
        return float("nan"), float("nan"), len(both)
    direct = _corr(both.valence, both.valence_dyn) + _corr(both.arousal, both.arousal_dyn)
    swapped = _corr(both.valence, both.arousal_dyn) + _corr(both.arousal, both.valence_dyn)
    return direct, swapped, len(both)


def correct_swapped_blocks(
    static: pd.DataFrame, dynamic_mean: pd.DataFrame, blocks: pd.Series, source: str
) -> tuple[pd.DataFrame, list[Issue]]:
    """Exchange valence and arousal of every block whose static labels fit the dynamic ones only swapped.

    ``blocks`` maps each track id to the block (e.g. annotation campaign) it was labelled in; a block
    is tested as a whole because one song's static label and its dynamic mean can disagree by chance.
    Blocks where neither orientation fits are reported (rows may be shifted), not changed.
    """
    static = static.copy()
    issues = []
    for block, ids in blocks.groupby(blocks).groups.items():
        ids = static.index.intersection(ids)
        direct, swapped, n = swap_evidence(static.loc[ids], dynamic_mean)
        if n < MIN_BLOCK_SONGS:
            continue
        if swapped - direct >= SWAP_MARGIN:
            static.loc[ids, ["valence", "arousal"]] = static.loc[ids, ["arousal", "valence"]].to_numpy()
            issues.append(
                corrected(
                    "swapped-columns",
                    f"{source}, {block} ({len(ids)} songs): static valence and arousal are swapped — they correlate "
                    f"{swapped:.2f} (summed r) with the dynamic annotations when exchanged against {direct:.2f} as "
                    f"labelled; exchanged back",
                )
            )
        elif max(direct, swapped) < 1.0:
            issues.append(
                Issue(
                    "error",
                    "inconsistent",
                    f"{source}, {block} ({n} songs): static labels barely match the dynamic annotations either way "
                    f"(summed r {direct:.2f} as labelled, {swapped:.2f} swapped); rows may be shifted",
                )
            )
    return static, issues


def _nanmean(x: np.ndarray) -> float:
    finite = x[np.isfinite(x)]
    return float(finite.mean()) if finite.size else float("nan")


def static_dynamic_issues(tracks: Iterable[DatasetTrack]) -> list[Issue]:
    """Songs whose static label contradicts the mean of their own dynamic annotations.

    Contradiction: opposite signs on an axis with both values at least ``CONTRADICTION_LEVEL`` from
    zero. When the label fits the dynamic mean with valence and arousal exchanged, the message says so.
    """
    issues = []
    for track in tracks:
        if track.dynamic is None or track.valence is None or track.arousal is None:
            continue
        dv, da = _nanmean(track.dynamic.valence), _nanmean(track.dynamic.arousal)
        if not (np.isfinite(dv) and np.isfinite(da)):
            continue
        static = np.array([track.valence, track.arousal])
        dyn = np.array([dv, da])
        clash = (np.sign(static) != np.sign(dyn)) & (np.abs(static) >= CONTRADICTION_LEVEL)
        clash &= np.abs(dyn) >= CONTRADICTION_LEVEL
        if not clash.any():
            continue
        axes = " and ".join(name for name, c in zip(("valence", "arousal"), clash) if c)
        message = (
            f"static label (v={track.valence:+.2f}, a={track.arousal:+.2f}) contradicts the mean of its dynamic "
            f"annotations (v={dv:+.2f}, a={da:+.2f}) on {axes}"
        )
        if np.abs(static[::-1] - dyn).max() < 0.5 * np.abs(static - dyn).max():
            message += "; it fits with valence and arousal swapped"
        issues.append(Issue("warning", "inconsistent", message, track.track_id))
    return issues


def missing_audio_issues(tracks: Iterable[DatasetTrack], *, separate_download: str | None) -> list[Issue]:
    """Annotated tracks without their audio file.

    With ``separate_download`` (where the full audio comes from), the absence is expected on a partial
    copy: one summary warning. Otherwise each missing file is an error (summarised beyond
    ``MAX_LISTED``).
    """
    missing = [t for t in tracks if t.audio_path is None or not t.audio_path.exists()]
    if not missing:
        return []
    if separate_download is not None:
        examples = ", ".join(t.track_id for t in missing[:5])
        return [
            Issue(
                "warning",
                "missing-audio",
                f"{len(missing)} annotated tracks have no audio file (e.g. {examples}); the full audio is a "
                f"separate download: {separate_download}",
            )
        ]
    issues = [
        Issue("error", "missing-audio", f"audio file not found: {t.audio_path}", t.track_id)
        for t in missing[:MAX_LISTED]
    ]
    if len(missing) > MAX_LISTED:
        issues.append(Issue("error", "missing-audio", f"… and {len(missing) - MAX_LISTED} more tracks without audio"))
    return issues


def extra_audio_issues(found: Iterable[Path], annotated: Iterable[Path | None]) -> list[Issue]:
    """Audio files on disk that no annotation refers to (summarised beyond ``MAX_LISTED``)."""
    known = {p.resolve() for p in annotated if p is not None}
    extra = sorted(p for p in found if p.resolve() not in known)
    issues = [Issue("warning", "extra-audio", f"audio file without annotation: {p}") for p in extra[:MAX_LISTED]]
    if len(extra) > MAX_LISTED:
        issues.append(Issue("warning", "extra-audio", f"… and {len(extra) - MAX_LISTED} more files without annotation"))
    return issues
