"""Plot of an analysis: valence and arousal over time (on ``VA_RANGE``, 0..1, with the quadrant boundary at
its midpoint), segments shaded by their quadrant."""

from __future__ import annotations

import os

from moodscope.analysis.analyzer import Analysis
from moodscope.constants import (
    MAX_TRACKS_PER_PLOT,
    QUADRANT_COLOURS,
    QUADRANT_MOODS,
    QUADRANTS,
    SEGMENT_SECONDS,
    VA_MIDPOINT,
    VA_RANGE,
)


def plot_timeline(analyses: list[Analysis], path: str | os.PathLike) -> None:
    """Draw one panel per track (at most 12) and save it as PNG (or any format matplotlib knows)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    from moodscope.fileio import save_figure

    shown = analyses[:MAX_TRACKS_PER_PLOT]
    fig, axes = plt.subplots(len(shown), 1, figsize=(10, 2.6 * len(shown)), squeeze=False)
    for ax, a in zip(axes[:, 0], shown):
        for start, quad in zip(a.starts, a.quadrants):
            ax.axvspan(start, start + SEGMENT_SECONDS, color=QUADRANT_COLOURS[quad], alpha=0.25, lw=0)
        mid = a.starts + SEGMENT_SECONDS / 2
        ax.plot(mid, a.va[:, 0], "-o", color="#222222", ms=3, label="valence")
        ax.plot(mid, a.va[:, 1], "--s", color="#7a3fbf", ms=3, label="arousal")
        ax.axhline(VA_MIDPOINT, color="grey", lw=0.6)
        ax.set_ylim(*VA_RANGE)
        ax.set_xlim(0, a.starts[-1] + SEGMENT_SECONDS)
        s = a.summary
        ax.set_title(f"{os.path.basename(a.source)} — {s.quadrant} {s.mood} ({s.confidence:.0%})", fontsize=10)
        ax.set_ylabel("valence, arousal")
    axes[-1, 0].set_xlabel("time (s)")
    handles = [Patch(color=QUADRANT_COLOURS[q], alpha=0.4, label=f"{q} {QUADRANT_MOODS[q]}") for q in QUADRANTS]
    handles += axes[0, 0].get_legend_handles_labels()[0]
    fig.legend(handles=handles, loc="lower center", ncol=6, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.06 if len(shown) < 3 else 0.03, 1, 1))
    save_figure(fig, path, dpi=110)
    plt.close(fig)
