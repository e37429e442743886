"""The library on the valence/arousal plane: a PNG (matplotlib) or a standalone interactive HTML page.

The HTML page is one self-contained file — inline SVG, CSS and a few lines of JavaScript, no CDN,
no network — so it opens offline. Both draw the whole reported plane (``VA_RANGE``, 0..1 on both
axes) with the quadrant boundaries at its midpoint, and colour each track by the quadrant its position
falls in (:func:`map_quadrants`), so that colour and position always agree; hovering a dot shows its
title, artist, mood and valence/arousal (an SVG ``<title>`` gives the same text even with JavaScript off).
"""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from moodscope.constants import QUADRANT_COLOURS, QUADRANT_MOODS, QUADRANT_SIGNS, QUADRANTS, VA_MIDPOINT, VA_RANGE
from moodscope.errors import LibraryError
from moodscope.fileio import atomic_write
from moodscope.library.db import Track


def map_quadrants(valence: Sequence[float] | np.ndarray, arousal: Sequence[float] | np.ndarray) -> list[str]:
    """The quadrant each map point is drawn in and coloured by: the one its position (valence, arousal on
    ``VA_RANGE``) falls in (boundaries at the midpoint, points on them on the positive side)."""
    from moodscope.datasets.labels import reported_quadrant_index

    index = reported_quadrant_index(np.asarray(valence, dtype=float), np.asarray(arousal, dtype=float))
    return [QUADRANTS[int(i)] for i in np.atleast_1d(index)]


def map_figure(tracks: Sequence[Track], *, title: str = "Music library by mood"):
    """A matplotlib Figure: every track on the valence/arousal plane (axes ``VA_RANGE``, boundaries at its
    midpoint), one scatter per quadrant holding the tracks whose position lies in it, in its colour."""
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, safe in threads and servers

    low, high = VA_RANGE
    fig = Figure(figsize=(7, 7), dpi=110)
    ax = fig.add_subplot()
    v = np.array([t.valence for t in tracks], dtype=float)
    a = np.array([t.arousal for t in tracks], dtype=float)
    q = np.array(map_quadrants(v, a))
    size = 30 if len(tracks) < 500 else max(2, 30 * (500 / len(tracks)) ** 0.5)
    for quadrant in QUADRANTS:
        sel = q == quadrant
        ax.scatter(
            v[sel],
            a[sel],
            s=size,
            c=QUADRANT_COLOURS[quadrant],
            alpha=0.75,
            linewidths=0,
            label=f"{quadrant} {QUADRANT_MOODS[quadrant]} ({int(sel.sum())})",
        )
    ax.axhline(VA_MIDPOINT, color="0.6", lw=0.8)
    ax.axvline(VA_MIDPOINT, color="0.6", lw=0.8)
    ax.set(
        xlim=(low, high),
        ylim=(low, high),
        xlabel="valence: probability of a positive rating",
        ylabel="arousal: probability of a high rating",
        aspect="equal",
    )
    ax.set_title(f"{title} — {len(tracks)} tracks")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2, frameon=False, fontsize=8)
    fig.tight_layout()
    return fig


def plot_map_png(tracks: Sequence[Track], path: str | os.PathLike, *, title: str = "Music library by mood") -> Path:
    """Scatter every track on the valence/arousal plane (:func:`map_figure`); saved as PNG."""
    path = Path(path)
    with atomic_write(path, "wb") as fh:
        map_figure(tracks, title=title).savefig(fh, format="png")
    return path


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }}
svg {{ max-width: 760px; width: 100%; height: auto; border: 1px solid #ddd; background: #fff; }}
circle {{ fill-opacity: 0.75; cursor: pointer; }}
circle:hover {{ stroke: #000; stroke-width: 2; fill-opacity: 1; }}
#tip {{ position: fixed; pointer-events: none; background: rgba(20,20,20,.9); color: #fff; padding: 6px 9px;
  border-radius: 4px; font-size: 13px; display: none; white-space: pre; }}
.legend span {{ display: inline-block; margin-right: 1.2em; }}
.legend i {{ display: inline-block; width: 11px; height: 11px; border-radius: 50%; margin-right: 4px; }}
</style>
</head>
<body>
<h1>{title}</h1>
<p>{count} tracks on the valence/arousal plane (0-1: the probabilities that listeners rate a track positive and
high), coloured by the quadrant each lies in. Hover a dot for the track.</p>
<p class="legend">{legend}</p>
<svg id="map" viewBox="0 0 {size} {size}" xmlns="http://www.w3.org/2000/svg" role="img">
{axes}
{dots}
</svg>
<div id="tip"></div>
<script>
const tip = document.getElementById("tip");
document.getElementById("map").addEventListener("mousemove", (e) => {{
  const d = e.target.dataset;
  if (e.target.tagName !== "circle") {{ tip.style.display = "none"; return; }}
  tip.textContent = d.title + (d.artist ? "\\n" + d.artist : "") + "\\n" + d.mood +
    "\\nvalence " + d.v + ", arousal " + d.a;
  tip.style.left = (e.clientX + 14) + "px";
  tip.style.top = (e.clientY + 14) + "px";
  tip.style.display = "block";
}});
document.getElementById("map").addEventListener("mouseleave", () => {{ tip.style.display = "none"; }});
</script>
</body>
</html>
"""


def map_html(tracks: Sequence[Track], *, title: str = "Music library by mood", size: int = 720) -> str:
    """A standalone HTML page with every track as an SVG dot (hover: title, artist, mood, v/a)."""
    low, high = VA_RANGE
    pad = 40
    scale = (size - 2 * pad) / (high - low)

    def x(v: float) -> float:
        return pad + (v - low) * scale

    def y(a: float) -> float:
        return size - pad - (a - low) * scale

    esc = html.escape
    mid = VA_MIDPOINT
    axes = [
        f'<rect x="{pad}" y="{pad}" width="{size - 2 * pad}" height="{size - 2 * pad}" fill="none" stroke="#ddd"/>',
        f'<line x1="{pad}" y1="{y(mid):.1f}" x2="{size - pad}" y2="{y(mid):.1f}" stroke="#999"/>',
        f'<line x1="{x(mid):.1f}" y1="{pad}" x2="{x(mid):.1f}" y2="{size - pad}" stroke="#999"/>',
        f'<text x="{size - pad}" y="{size - pad + 28}" text-anchor="end" font-size="13">valence {high:g} →</text>',
        f'<text x="{pad}" y="{size - pad + 28}" font-size="13">{low:g}</text>',
        f'<text x="{pad}" y="{pad - 10}" font-size="13">↑ arousal {high:g}</text>',
    ]
    half = (high - low) / 2
    for q, (sv, sa) in QUADRANT_SIGNS.items():
        anchor = "end" if sv > 0 else "start"
        axes.append(
            f'<text x="{x(mid + sv * half * 0.97):.1f}" y="{y(mid + sa * half * 0.93):.1f}" text-anchor="{anchor}" '
            f'font-size="12" fill="{QUADRANT_COLOURS[q]}">{q} {esc(QUADRANT_MOODS[q])}</text>'
        )
    radius = 5 if len(tracks) < 1000 else 3 if len(tracks) < 10_000 else 1.5
    drawn = map_quadrants([t.valence for t in tracks], [t.arousal for t in tracks]) if tracks else []
    dots = []
    for t, q in zip(tracks, drawn):
        label = f"{t.display_title} — {t.artist}" if t.artist else t.display_title
        dots.append(
            f'<circle cx="{x(t.valence):.1f}" cy="{y(t.arousal):.1f}" r="{radius}" '
            f'fill="{QUADRANT_COLOURS[q]}" data-quadrant="{q}" '
            f'data-title="{esc(t.display_title)}" data-artist="{esc(t.artist or "")}" '
            f'data-mood="{esc(t.quadrant + " " + t.mood)}" data-v="{t.valence:.2f}" data-a="{t.arousal:.2f}">'
            f"<title>{esc(label)}</title></circle>"
        )
    counts = {q: drawn.count(q) for q in QUADRANTS}
    legend = "".join(
        f'<span><i style="background:{QUADRANT_COLOURS[q]}"></i>{q} {esc(QUADRANT_MOODS[q])} ({counts[q]})</span>'
        for q in QUADRANTS
    )
    return _PAGE.format(
        title=esc(title),
        count=len(tracks),
        legend=legend,
        size=size,
        axes="\n".join(axes),
        dots="\n".join(dots),
    )


def check_map_path(path: str | os.PathLike) -> str:
    """The map's format ('png' or 'html') from the suffix of ``path``; :class:`LibraryError` for any other."""
    suffix = Path(path).suffix.lower()
    if suffix == ".png":
        return "png"
    if suffix in (".html", ".htm"):
        return "html"
    raise LibraryError(f"{path}: the map is written as .png or .html; give --out map.png or --out map.html")


def write_map(tracks: Sequence[Track], path: str | os.PathLike, *, title: str = "Music library by mood") -> Path:
    """Write the map as PNG or HTML, chosen by the file extension."""
    path = Path(path)
    if check_map_path(path) == "png":
        return plot_map_png(tracks, path, title=title)
    with atomic_write(path, "w", encoding="utf-8") as fh:
        fh.write(map_html(tracks, title=title))
    return path
