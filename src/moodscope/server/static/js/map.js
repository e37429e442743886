// The library on the valence/arousal plane: one dot per track, coloured by its quadrant.
// Hover shows the track, a click selects it; the quadrant boxes and the search box filter the dots;
// the wheel, the +/- buttons or a drag zoom and pan. Axes come from the server's va_range.

import { clear, signed, svgEl, svgText, svgTitle, ticks } from "./svg.js";

const SIZE = 600;
const PLOT = { x0: 48, y0: 12, size: 528 };
const RADIUS = 6;
const MAX_ZOOM = 40;
const FOCUSABLE = 300; // up to this many dots can be reached with the Tab key

export class MoodMap {
  /**
   * @param svg the <svg> to draw into
   * @param tooltip an element positioned over the map for hover text
   * @param config the server's /health (va_range, quadrants)
   * @param onSelect called with a track id when a dot is clicked
   */
  constructor(svg, tooltip, config, onSelect) {
    this.svg = svg;
    this.tooltip = tooltip;
    this.config = config;
    this.onSelect = onSelect;
    [this.lo, this.hi] = config.va_range;
    this.mid = (this.lo + this.hi) / 2;
    this.view = { z: 1, cx: PLOT.x0 + PLOT.size / 2, cy: PLOT.y0 + PLOT.size / 2 };
    this.hidden = new Set();
    this.text = "";
    this.byId = new Map();
    this.build();
    this.listen();
  }

  bx(v) {
    return PLOT.x0 + ((v - this.lo) / (this.hi - this.lo)) * PLOT.size;
  }

  by(a) {
    return PLOT.y0 + ((this.hi - a) / (this.hi - this.lo)) * PLOT.size;
  }

  build() {
    const svg = this.svg;
    clear(svg);
    svg.setAttribute("viewBox", `0 0 ${SIZE} ${SIZE}`);
    const defs = svgEl("defs", {}, svg);
    const clip = svgEl("clipPath", { id: "plot-clip" }, defs);
    svgEl("rect", { x: PLOT.x0, y: PLOT.y0, width: PLOT.size, height: PLOT.size }, clip);
    svgEl("rect", { x: PLOT.x0, y: PLOT.y0, width: PLOT.size, height: PLOT.size, class: "plot-bg" }, svg);
    this.axes = svgEl("g", { class: "axes" }, svg);
    const clipped = svgEl("g", { "clip-path": "url(#plot-clip)" }, svg);
    this.world = svgEl("g", { class: "world" }, clipped);
    svgEl("line", { x1: this.bx(this.mid), x2: this.bx(this.mid), y1: PLOT.y0, y2: PLOT.y0 + PLOT.size, class: "midline" },
      this.world);
    svgEl("line", { x1: PLOT.x0, x2: PLOT.x0 + PLOT.size, y1: this.by(this.mid), y2: this.by(this.mid), class: "midline" },
      this.world);
    this.dots = svgEl("g", { class: "dots" }, this.world);
    this.labels = svgEl("g", { class: "quadrant-labels" }, svg);
    for (const [q, info] of Object.entries(this.config.quadrants)) {
      const right = info.centre[0] > this.mid;
      const top = info.centre[1] > this.mid;
      svgText(this.labels, right ? PLOT.x0 + PLOT.size - 8 : PLOT.x0 + 8, top ? PLOT.y0 + 20 : PLOT.y0 + PLOT.size - 10,
        `${q} ${info.mood}`, { "text-anchor": right ? "end" : "start", fill: info.colour, class: "quadrant-label" });
    }
    svgText(svg, PLOT.x0 + PLOT.size / 2, SIZE - 4, "valence →", { class: "axis-title", "text-anchor": "middle" });
    svgText(svg, 12, PLOT.y0 + PLOT.size / 2, "arousal →", {
      class: "axis-title", "text-anchor": "middle", transform: `rotate(-90 12 ${PLOT.y0 + PLOT.size / 2})`,
    });
    this.apply();
  }

  /** Draw the tracks: `points` holds the columns of GET /api/v1/map. */
  setPoints(points) {
    clear(this.dots);
    this.byId.clear();
    this.points = points;
    const n = points.id.length;
    for (let i = 0; i < n; i++) {
      const q = points.quadrant[i];
      const dot = svgEl("circle", {
        cx: this.bx(points.valence[i]).toFixed(2), cy: this.by(points.arousal[i]).toFixed(2), r: this.radius(),
        fill: this.config.quadrants[q].colour, class: `pt ${q}`, "data-id": points.id[i], "data-index": i,
      }, this.dots);
      if (n <= FOCUSABLE) {
        dot.setAttribute("tabindex", "0");
        dot.setAttribute("role", "button");
      }
      svgTitle(dot, this.describe(i));
      this.byId.set(points.id[i], dot);
    }
    this.apply();
    this.filter();
  }

  describe(i) {
    const p = this.points;
    const who = p.artist[i] ? `${p.artist[i]} – ${p.title[i]}` : p.title[i];
    return `${who}\n${p.quadrant[i]} ${this.config.quadrants[p.quadrant[i]].mood} ` +
      `(confidence ${p.confidence[i].toFixed(2)}), valence ${signed(p.valence[i])}, arousal ${signed(p.arousal[i])}`;
  }

  /** Show only the quadrants not in `hidden` and the tracks whose title/artist contain `text`. */
  filter(hidden = this.hidden, text = this.text) {
    this.hidden = hidden;
    this.text = text.trim().toLowerCase();
    for (const q of Object.keys(this.config.quadrants)) this.svg.classList.toggle(`hide-${q}`, hidden.has(q));
    let shown = 0;
    if (!this.points) return 0;
    for (const dot of this.dots.children) {
      const i = Number(dot.dataset.index);
      const name = `${this.points.title[i]} ${this.points.artist[i] || ""}`.toLowerCase();
      const match = !this.text || name.includes(this.text);
      dot.classList.toggle("nomatch", !match);
      if (match && !hidden.has(this.points.quadrant[i])) shown++;
    }
    this.shown = shown;
    return shown;
  }

  /** Dot radius on screen (viewBox units): smaller when there are many. */
  radius() {
    const n = this.points ? this.points.id.length : 0;
    return n > 20000 ? 2 : n > 2000 ? 3.5 : RADIUS;
  }

  select(id) {
    for (const dot of this.dots.querySelectorAll(".selected")) dot.classList.remove("selected");
    const dot = this.byId.get(id);
    if (dot) {
      dot.classList.add("selected");
      this.dots.appendChild(dot); // on top of its neighbours
    }
  }

  // ---- zoom and pan ----

  zoomBy(factor, at = null) {
    const v = this.view;
    const z = Math.min(MAX_ZOOM, Math.max(1, v.z * factor));
    if (at) {
      // keep the point under the pointer where it is
      const wx = v.cx + (at[0] - (PLOT.x0 + PLOT.size / 2)) / v.z;
      const wy = v.cy + (at[1] - (PLOT.y0 + PLOT.size / 2)) / v.z;
      v.cx = wx - (at[0] - (PLOT.x0 + PLOT.size / 2)) / z;
      v.cy = wy - (at[1] - (PLOT.y0 + PLOT.size / 2)) / z;
    }
    v.z = z;
    this.apply();
  }

  panBy(dx, dy) {
    this.view.cx -= dx / this.view.z;
    this.view.cy -= dy / this.view.z;
    this.apply();
  }

  reset() {
    this.view = { z: 1, cx: PLOT.x0 + PLOT.size / 2, cy: PLOT.y0 + PLOT.size / 2 };
    this.apply();
  }

  apply() {
    const v = this.view;
    const half = PLOT.size / 2 / v.z;
    v.cx = Math.min(PLOT.x0 + PLOT.size - half, Math.max(PLOT.x0 + half, v.cx));
    v.cy = Math.min(PLOT.y0 + PLOT.size - half, Math.max(PLOT.y0 + half, v.cy));
    const c = [PLOT.x0 + PLOT.size / 2, PLOT.y0 + PLOT.size / 2];
    this.world.setAttribute("transform", `translate(${c[0]} ${c[1]}) scale(${v.z}) translate(${-v.cx} ${-v.cy})`);
    this.dots.style.setProperty("--r", `${this.radius() / v.z}px`);
    this.svg.classList.toggle("zoomed", v.z > 1);
    this.drawAxes(half);
  }

  drawAxes(half) {
    clear(this.axes);
    const span = this.hi - this.lo;
    const toV = (x) => this.lo + ((x - PLOT.x0) / PLOT.size) * span;
    const toA = (y) => this.hi - ((y - PLOT.y0) / PLOT.size) * span;
    const [v0, v1] = [toV(this.view.cx - half), toV(this.view.cx + half)];
    const [a0, a1] = [toA(this.view.cy + half), toA(this.view.cy - half)];
    const sx = (v) => PLOT.x0 + ((v - v0) / (v1 - v0)) * PLOT.size;
    const sy = (a) => PLOT.y0 + ((a1 - a) / (a1 - a0)) * PLOT.size;
    const digits = this.view.z > 8 ? 3 : this.view.z > 1.5 ? 2 : 1;
    for (const v of ticks(v0, v1, 5)) {
      svgEl("line", { x1: sx(v), x2: sx(v), y1: PLOT.y0, y2: PLOT.y0 + PLOT.size, class: "grid" }, this.axes);
      svgText(this.axes, sx(v), PLOT.y0 + PLOT.size + 16, v.toFixed(digits), { class: "tick", "text-anchor": "middle" });
    }
    for (const a of ticks(a0, a1, 5)) {
      svgEl("line", { x1: PLOT.x0, x2: PLOT.x0 + PLOT.size, y1: sy(a), y2: sy(a), class: "grid" }, this.axes);
      svgText(this.axes, PLOT.x0 - 6, sy(a) + 4, a.toFixed(digits), { class: "tick", "text-anchor": "end" });
    }
  }

  /** Client (pixel) coordinates to viewBox coordinates. */
  toViewBox(event) {
    const box = this.svg.getBoundingClientRect();
    return [((event.clientX - box.left) / box.width) * SIZE, ((event.clientY - box.top) / box.height) * SIZE];
  }

  listen() {
    const svg = this.svg;
    svg.addEventListener("wheel", (event) => {
      event.preventDefault();
      this.zoomBy(Math.exp(-event.deltaY * 0.002), this.toViewBox(event));
    }, { passive: false });

    let drag = null;
    svg.addEventListener("pointerdown", (event) => {
      drag = { start: this.toViewBox(event), last: this.toViewBox(event), moved: false };
    });
    svg.addEventListener("pointermove", (event) => {
      if (drag) {
        const at = this.toViewBox(event);
        if (Math.hypot(at[0] - drag.start[0], at[1] - drag.start[1]) > 4) drag.moved = true;
        if (drag.moved && this.view.z > 1) {
          if (!svg.hasPointerCapture(event.pointerId)) svg.setPointerCapture(event.pointerId);
          this.panBy(at[0] - drag.last[0], at[1] - drag.last[1]);
        }
        drag.last = at;
      }
      this.hover(event);
    });
    svg.addEventListener("pointerup", (event) => {
      const moved = drag && drag.moved;
      drag = null;
      if (!moved) this.clickAt(event);
    });
    svg.addEventListener("pointerleave", () => {
      this.tooltip.hidden = true;
    });
    svg.addEventListener("keydown", (event) => {
      if ((event.key === "Enter" || event.key === " ") && event.target.classList.contains("pt")) {
        event.preventDefault();
        this.onSelect(Number(event.target.dataset.id));
      }
    });
  }

  clickAt(event) {
    const dot = event.target.closest ? event.target.closest("circle.pt") : null;
    if (dot) this.onSelect(Number(dot.dataset.id));
  }

  hover(event) {
    const dot = event.target.closest ? event.target.closest("circle.pt") : null;
    if (!dot) {
      this.tooltip.hidden = true;
      return;
    }
    const [who, mood] = this.describe(Number(dot.dataset.index)).split("\n");
    this.tooltip.replaceChildren(Object.assign(document.createElement("strong"), { textContent: who }),
      document.createElement("br"), mood);
    const box = this.svg.parentElement.getBoundingClientRect();
    this.tooltip.hidden = false;
    const x = event.clientX - box.left + 14;
    const left = Math.min(x, box.width - this.tooltip.offsetWidth - 4);
    this.tooltip.style.left = `${Math.max(4, left)}px`;
    this.tooltip.style.top = `${event.clientY - box.top + 14}px`;
  }
}
