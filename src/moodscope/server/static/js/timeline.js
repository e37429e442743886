// The emotion timeline of one track: a band per 5-s segment coloured by its quadrant, with the
// valence and arousal curves over it. With an <audio> element, a playhead follows the music and a
// click on the plot seeks there.

import { clear, svgEl, svgText, svgTitle, ticks } from "./svg.js";

/** Colour of segments out of distribution (silence, noise, speech): no mood is claimed for them. */
const UNCERTAIN_COLOUR = "#9a9a9a";

const W = 640;
const H = 240;
const M = { left: 44, right: 12, top: 12, bottom: 40 };

function clock(seconds) {
  const s = Math.round(seconds);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

/**
 * Draw `segments` (as the API returns them: start, end, quadrant, mood, valence, arousal) into
 * `container`. `config` is the server's /health: va_range and quadrants (colour, mood).
 */
export function renderTimeline(container, segments, config, audio = null) {
  clear(container);
  const [lo, hi] = config.va_range;
  const end = segments.length ? segments[segments.length - 1].end : 1;
  const x = (t) => M.left + (t / end) * (W - M.left - M.right);
  const y = (v) => M.top + ((hi - v) / (hi - lo)) * (H - M.top - M.bottom);
  const svg = svgEl("svg", {
    viewBox: `0 0 ${W} ${H}`,
    class: "timeline-plot",
    role: "img",
    "aria-label": `valence and arousal over ${segments.length} segments of ${config.segment_seconds} s`,
  }, container);

  const bands = svgEl("g", { class: "bands" }, svg);
  for (const s of segments) {
    const band = svgEl("rect", {
      x: x(s.start), y: M.top, width: Math.max(0.5, x(s.end) - x(s.start)), height: H - M.top - M.bottom,
      fill: s.ood ? UNCERTAIN_COLOUR : config.quadrants[s.quadrant].colour,
      class: s.ood ? "segment ood" : "segment", "data-quadrant": s.quadrant,
    }, bands);
    svgTitle(band, `${clock(s.start)}–${clock(s.end)}: ${s.quadrant} ${s.mood}, valence ${s.valence.toFixed(2)}, ` +
      `arousal ${s.arousal.toFixed(2)}` + (s.ood ? ` (out of distribution: ${s.ood_reason})` : ""));
  }

  const axes = svgEl("g", { class: "axes" }, svg);
  for (const v of ticks(lo, hi, 4)) {
    svgEl("line", { x1: M.left, x2: W - M.right, y1: y(v), y2: y(v), class: "grid" }, axes);
    svgText(axes, M.left - 6, y(v) + 4, v.toFixed(1), { class: "tick", "text-anchor": "end" });
  }
  svgEl("line", { x1: M.left, x2: W - M.right, y1: y((lo + hi) / 2), y2: y((lo + hi) / 2), class: "midline" }, axes);
  for (const t of ticks(0, end, 6)) {
    svgText(axes, x(t), H - M.bottom + 16, clock(t), { class: "tick", "text-anchor": "middle" });
  }

  const centre = (s) => x((s.start + s.end) / 2);
  for (const [key, cls] of [["valence", "valence"], ["arousal", "arousal"]]) {
    const points = segments.map((s) => `${centre(s).toFixed(1)},${y(s[key]).toFixed(1)}`).join(" ");
    svgEl("polyline", { points, class: `curve ${cls}` }, svg);
    for (const s of segments) svgEl("circle", { cx: centre(s), cy: y(s[key]), r: 2.5, class: `dot ${cls}` }, svg);
  }

  const legend = svgEl("g", { class: "legend" }, svg);
  svgEl("line", { x1: M.left, x2: M.left + 22, y1: H - 8, y2: H - 8, class: "curve valence" }, legend);
  svgText(legend, M.left + 28, H - 4, "valence", { class: "tick" });
  svgEl("line", { x1: M.left + 100, x2: M.left + 122, y1: H - 8, y2: H - 8, class: "curve arousal" }, legend);
  svgText(legend, M.left + 128, H - 4, "arousal", { class: "tick" });

  if (audio) {
    const head = svgEl("line", { x1: x(0), x2: x(0), y1: M.top, y2: H - M.bottom, class: "playhead" }, svg);
    const follow = () => {
      const t = Math.min(audio.currentTime || 0, end);
      head.setAttribute("x1", x(t));
      head.setAttribute("x2", x(t));
    };
    audio.addEventListener("timeupdate", follow);
    svg.addEventListener("click", (event) => {
      const box = svg.getBoundingClientRect();
      const px = ((event.clientX - box.left) / box.width) * W;
      const t = ((px - M.left) / (W - M.left - M.right)) * end;
      if (t >= 0 && t <= end) {
        audio.currentTime = t;
        follow();
      }
    });
  }
  return svg;
}

/** One line of words for a summary (the analysis's or a track's). */
export function summaryText(summary, config) {
  const share = Object.entries(summary.quadrant_share || {})
    .filter(([, v]) => v > 0)
    .map(([q, v]) => `${q} ${Math.round(v * 100)}%`)
    .join(", ");
  const mood = summary.uncertain
    ? `uncertain: ${Math.round((summary.ood_fraction || 0) * 100)}% of the segments are unlike music ` +
      `(silence, noise, speech…); best guess ${summary.quadrant} ${config.quadrants[summary.quadrant].mood}`
    : `${summary.quadrant} ${config.quadrants[summary.quadrant].mood}`;
  return `${mood} (confidence ${summary.confidence.toFixed(2)}), ` +
    `valence ${summary.valence.toFixed(2)}, arousal ${summary.arousal.toFixed(2)}` + (share ? `; segments: ${share}` : "");
}
