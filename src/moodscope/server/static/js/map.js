// The library on the valence/arousal plane: one dot per track, coloured by the quadrant its position
// falls in (boundaries at the middle of va_range), so that colour and position always agree.
// Hover shows the track, a click selects it; the quadrant boxes and the search box filter the dots;
// the wheel, the +/- buttons or a drag zoom and pan. Axes come from the server's va_range.
//
// Two ways to draw the dots, one behaviour: up to SVG_MAX tracks each dot is an SVG <circle> (its
// own hover title, keyboard focus for small libraries); beyond that the dots are painted on a
// <canvas> under the SVG axes, and the dot under the pointer is found in a grid index of the dots'
// positions (hover, click and tap go through the same code as in SVG mode). `?map=svg|canvas` in
// the page's address chooses one whatever the size.

import { clear, svgEl, svgText, svgTitle, ticks } from "./svg.js";

const SIZE = 600;
const PLOT = { x0: 48, y0: 12, size: 528 };
const CENTRE = [PLOT.x0 + PLOT.size / 2, PLOT.y0 + PLOT.size / 2];
const RADIUS = 6;
const MAX_ZOOM = 40;
const FOCUSABLE = 300; // up to this many dots can be reached with the Tab key
export const SVG_MAX = 3000; // more tracks than this: canvas
const HIT_SLOP = 3; // viewBox units around a dot that still hover or click it
const CELL = 8; // side of a cell of the hit-test grid, in plot units
const COLS = Math.ceil(PLOT.size / CELL);

export class MoodMap {
  /**
   * @param svg the <svg> to draw the axes (and, in SVG mode, the dots) into
   * @param canvas a <canvas> laid under the svg, for the dots of large libraries
   * @param tooltip an element positioned over the map for hover text
   * @param config the server's /health (va_range, quadrants)
   * @param onSelect called with a track id when a dot is clicked
   * @param mode "svg" or "canvas" whatever the number of tracks; null: by the number of tracks
   */
  constructor(svg, canvas, tooltip, config, onSelect, mode = null) {
    this.svg = svg;
    this.canvas = canvas;
    this.tooltip = tooltip;
    this.config = config;
    this.onSelect = onSelect;
    this.forcedMode = mode === "svg" || mode === "canvas" ? mode : null;
    [this.lo, this.hi] = config.va_range;
    this.mid = (this.lo + this.hi) / 2;
    this.quadrantNames = Object.keys(config.quadrants);
    this.sides = this.quadrantNames.map((q) => [config.quadrants[q].centre[0] > this.mid, config.quadrants[q].centre[1] > this.mid]);
    this.view = { z: 1, cx: CENTRE[0], cy: CENTRE[1] };
    this.hidden = new Set();
    this.text = "";
    this.n = 0;
    this.mode = "svg";
    this.selected = -1;
    this.hovered = -1;
    this.frame = 0;
    this.build();
    this.listen();
    new ResizeObserver(() => this.requestDraw()).observe(svg);
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
    // canvas mode: rings around the hovered and the selected dot (the dots themselves are painted)
    this.hoverMark = svgEl("circle", { class: "mark hover", r: 0, visibility: "hidden" }, this.world);
    this.selectMark = svgEl("circle", { class: "mark selected", r: 0, visibility: "hidden" }, this.world);
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
    const n = points.id.length;
    this.points = points;
    this.n = n;
    this.quadrant = new Array(n); // the quadrant each dot lies in: its colour and its quadrant box
    this.order = new Int8Array(n); // that quadrant's place in config.quadrants (painting order)
    this.x = new Float64Array(n); // plot coordinates at zoom 1
    this.y = new Float64Array(n);
    this.byId = new Map();
    for (let i = 0; i < n; i++) {
      this.order[i] = this.quadrantAt(points.valence[i], points.arousal[i]);
      this.quadrant[i] = this.quadrantNames[this.order[i]];
      this.x[i] = this.bx(points.valence[i]);
      this.y[i] = this.by(points.arousal[i]);
      this.byId.set(points.id[i], i);
    }
    this.names = null; // lower-case "title artist", made for the first search
    this.visible = new Uint8Array(n).fill(1);
    this.selected = -1;
    this.hovered = -1;
    this.mode = this.forcedMode || (n > SVG_MAX ? "canvas" : "svg");
    this.svg.dataset.mode = this.mode;
    this.svg.classList.toggle("canvas-mode", this.mode === "canvas");
    this.canvas.hidden = this.mode !== "canvas";
    clear(this.dots);
    if (this.mode === "svg") this.buildDots();
    else this.buildIndex();
    this.apply();
    this.filter();
  }

  buildDots() {
    const n = this.n;
    for (let i = 0; i < n; i++) {
      const q = this.quadrant[i];
      const dot = svgEl("circle", {
        cx: this.x[i].toFixed(2), cy: this.y[i].toFixed(2), r: this.radius(),
        fill: this.config.quadrants[q].colour, class: `pt ${q}`, "data-id": this.points.id[i], "data-index": i,
      }, this.dots);
      if (n <= FOCUSABLE) {
        dot.setAttribute("tabindex", "0");
        dot.setAttribute("role", "button");
      }
      svgTitle(dot, this.describe(i));
    }
  }

  /** The hit-test grid: the dots sorted by the cell of the plot they fall in (a counting sort). */
  buildIndex() {
    const n = this.n;
    const cell = new Int32Array(n);
    this.cellStart = new Int32Array(COLS * COLS + 1);
    for (let i = 0; i < n; i++) {
      cell[i] = this.cellOf(this.x[i], this.y[i]);
      this.cellStart[cell[i] + 1]++;
    }
    for (let c = 0; c < COLS * COLS; c++) this.cellStart[c + 1] += this.cellStart[c];
    const next = this.cellStart.slice(0, COLS * COLS);
    this.cellRows = new Int32Array(n);
    for (let i = 0; i < n; i++) this.cellRows[next[cell[i]]++] = i;
    // the dots of each quadrant, painted one colour at a time
    this.byQuadrant = Object.keys(this.config.quadrants).map((q) => {
      const rows = [];
      for (let i = 0; i < n; i++) if (this.quadrant[i] === q) rows.push(i);
      return { colour: this.config.quadrants[q].colour, rows: Int32Array.from(rows) };
    });
  }

  cellIndex(u) {
    return Math.min(COLS - 1, Math.max(0, Math.floor(u / CELL)));
  }

  cellOf(x, y) {
    return this.cellIndex(y - PLOT.y0) * COLS + this.cellIndex(x - PLOT.x0);
  }

  title(i) {
    return this.points.title[i];
  }

  artist(i) {
    const a = this.points.artist[i];
    return a >= 0 ? this.points.artists[a] : null;
  }

  /** The index (in config.quadrants) of the quadrant a valence/arousal point lies in: the one whose
   * centre is on the same side of the midpoint on both axes (a point on a boundary: the high side). */
  quadrantAt(v, a) {
    return this.sides.findIndex(([right, top]) => (v >= this.mid) === right && (a >= this.mid) === top);
  }

  describe(i) {
    const p = this.points;
    const q = p.quadrants[p.quadrant[i]]; // the track's mood (its dominant quadrant)
    const who = this.artist(i) ? `${this.artist(i)} – ${this.title(i)}` : this.title(i);
    return `${who}\n${q} ${this.config.quadrants[q].mood} ` +
      `(confidence ${p.confidence[i].toFixed(2)}), valence ${p.valence[i].toFixed(2)}, arousal ${p.arousal[i].toFixed(2)}`;
  }

  /** Show only the quadrants not in `hidden` and the tracks whose title/artist contain `text`. */
  filter(hidden = this.hidden, text = this.text) {
    this.hidden = hidden;
    this.text = text.trim().toLowerCase();
    for (const q of Object.keys(this.config.quadrants)) this.svg.classList.toggle(`hide-${q}`, hidden.has(q));
    if (!this.points) return 0;
    if (this.text && !this.names) {
      this.names = Array.from({ length: this.n }, (_, i) => `${this.title(i)} ${this.artist(i) || ""}`.toLowerCase());
    }
    let shown = 0;
    for (let i = 0; i < this.n; i++) {
      const match = !this.text || this.names[i].includes(this.text);
      this.visible[i] = match && !hidden.has(this.quadrant[i]) ? 1 : 0;
      shown += this.visible[i];
    }
    if (this.mode === "svg") {
      for (const dot of this.dots.children) {
        const i = Number(dot.dataset.index);
        dot.classList.toggle("nomatch", !(!this.text || this.names[i].includes(this.text)));
      }
    } else {
      if (this.hovered >= 0 && !this.visible[this.hovered]) this.hover(null);
      this.requestDraw();
    }
    this.shown = shown;
    return shown;
  }

  /** Dot radius on screen (viewBox units): smaller when there are many. */
  radius() {
    const n = this.n;
    return n > 20000 ? 2 : n > 2000 ? 3.5 : RADIUS;
  }

  select(id) {
    const i = this.byId ? this.byId.get(id) : undefined;
    this.selected = i === undefined ? -1 : i;
    if (this.mode === "svg") {
      for (const dot of this.dots.querySelectorAll(".selected")) dot.classList.remove("selected");
      const dot = i === undefined ? null : this.dots.children[i];
      if (dot) {
        dot.classList.add("selected");
        this.dots.appendChild(dot); // on top of its neighbours
      }
    }
    this.placeMarks();
  }

  // ---- zoom and pan ----

  zoomBy(factor, at = null) {
    const v = this.view;
    const z = Math.min(MAX_ZOOM, Math.max(1, v.z * factor));
    if (at) {
      // keep the point under the pointer where it is
      const wx = v.cx + (at[0] - CENTRE[0]) / v.z;
      const wy = v.cy + (at[1] - CENTRE[1]) / v.z;
      v.cx = wx - (at[0] - CENTRE[0]) / z;
      v.cy = wy - (at[1] - CENTRE[1]) / z;
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
    this.view = { z: 1, cx: CENTRE[0], cy: CENTRE[1] };
    this.apply();
  }

  apply() {
    const v = this.view;
    const half = PLOT.size / 2 / v.z;
    v.cx = Math.min(PLOT.x0 + PLOT.size - half, Math.max(PLOT.x0 + half, v.cx));
    v.cy = Math.min(PLOT.y0 + PLOT.size - half, Math.max(PLOT.y0 + half, v.cy));
    this.world.setAttribute("transform",
      `translate(${CENTRE[0]} ${CENTRE[1]}) scale(${v.z}) translate(${-v.cx} ${-v.cy})`);
    this.dots.style.setProperty("--r", `${this.radius() / v.z}px`);
    this.svg.classList.toggle("zoomed", v.z > 1);
    this.drawAxes(half);
    this.placeMarks();
    this.requestDraw();
  }

  /** Where dot `i` is on the plot now (viewBox units). */
  screenOf(i) {
    const v = this.view;
    return [CENTRE[0] + v.z * (this.x[i] - v.cx), CENTRE[1] + v.z * (this.y[i] - v.cy)];
  }

  /**
   * Where the dot of track `id` is drawn, in client (CSS pixel) coordinates: where a pointer must go
   * to hover or click it. Null when the track is not on the map.
   */
  clientPosition(id) {
    const i = this.byId ? this.byId.get(id) : undefined;
    if (i === undefined) return null;
    const [sx, sy] = this.screenOf(i);
    const box = this.svg.getBoundingClientRect();
    return { x: box.left + (sx / SIZE) * box.width, y: box.top + (sy / SIZE) * box.height };
  }

  placeMarks() {
    const r = (this.radius() + 2) / this.view.z;
    for (const [mark, i] of [[this.hoverMark, this.hovered], [this.selectMark, this.selected]]) {
      const show = this.mode === "canvas" && i >= 0;
      mark.setAttribute("visibility", show ? "visible" : "hidden");
      if (show) {
        mark.setAttribute("cx", this.x[i].toFixed(2));
        mark.setAttribute("cy", this.y[i].toFixed(2));
        mark.setAttribute("r", r.toFixed(3));
      }
    }
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

  // ---- the canvas ----

  requestDraw() {
    if (this.mode !== "canvas" || this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.draw();
    });
  }

  /** Paint the plot background and every visible dot, one path per quadrant colour. */
  draw() {
    const box = this.svg.getBoundingClientRect();
    const ratio = window.devicePixelRatio || 1;
    const [w, h] = [Math.round(box.width * ratio), Math.round(box.height * ratio)];
    const canvas = this.canvas;
    if (canvas.width !== w || canvas.height !== h) {
      canvas.width = w;
      canvas.height = h;
      canvas.style.width = `${box.width}px`;
      canvas.style.height = `${box.height}px`;
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(w / SIZE, 0, 0, h / SIZE, 0, 0); // viewBox units -> canvas pixels
    ctx.clearRect(0, 0, SIZE, SIZE);
    ctx.fillStyle = getComputedStyle(this.svg).getPropertyValue("--plot-fill").trim() || "#fbfcfe";
    ctx.fillRect(PLOT.x0, PLOT.y0, PLOT.size, PLOT.size);
    if (!this.n) return;
    ctx.save();
    ctx.beginPath();
    ctx.rect(PLOT.x0, PLOT.y0, PLOT.size, PLOT.size);
    ctx.clip();
    const { z, cx, cy } = this.view;
    const r = this.radius();
    const [left, right, top, bottom] = [PLOT.x0 - r, PLOT.x0 + PLOT.size + r, PLOT.y0 - r, PLOT.y0 + PLOT.size + r];
    ctx.globalAlpha = 0.8;
    for (const { colour, rows } of this.byQuadrant) {
      ctx.beginPath();
      for (let k = 0; k < rows.length; k++) {
        const i = rows[k];
        if (!this.visible[i]) continue;
        const x = CENTRE[0] + z * (this.x[i] - cx);
        const y = CENTRE[1] + z * (this.y[i] - cy);
        if (x < left || x > right || y < top || y > bottom) continue;
        ctx.moveTo(x + r, y);
        ctx.arc(x, y, r, 0, 2 * Math.PI);
      }
      ctx.fillStyle = colour;
      ctx.fill();
    }
    ctx.restore();
  }

  /** The visible dot nearest to a point of the plot (viewBox units) within its radius; -1 if none. */
  dotAt(at) {
    if (at[0] < PLOT.x0 || at[0] > PLOT.x0 + PLOT.size || at[1] < PLOT.y0 || at[1] > PLOT.y0 + PLOT.size) return -1;
    const v = this.view;
    const wx = v.cx + (at[0] - CENTRE[0]) / v.z;
    const wy = v.cy + (at[1] - CENTRE[1]) / v.z;
    const reach = (this.radius() + HIT_SLOP) / v.z;
    let best = -1;
    let bestD = reach * reach;
    const [c0, c1] = [this.cellIndex(wx - reach - PLOT.x0), this.cellIndex(wx + reach - PLOT.x0)];
    const [r0, r1] = [this.cellIndex(wy - reach - PLOT.y0), this.cellIndex(wy + reach - PLOT.y0)];
    for (let row = r0; row <= r1; row++) {
      for (let k = this.cellStart[row * COLS + c0]; k < this.cellStart[row * COLS + c1 + 1]; k++) {
        const i = this.cellRows[k];
        if (!this.visible[i]) continue;
        const d = (this.x[i] - wx) ** 2 + (this.y[i] - wy) ** 2;
        if (d < bestD || (d === bestD && (best < 0 || this.paintedAfter(i, best)))) {
          best = i;
          bestD = d;
        }
      }
    }
    return best;
  }

  /** Whether dot `i` is painted over dot `j` (quadrant by quadrant, then in order). */
  paintedAfter(i, j) {
    const [qi, qj] = [this.order[i], this.order[j]];
    return qi > qj || (qi === qj && i > j);
  }

  // ---- pointer and keyboard ----

  /** Client (pixel) coordinates to viewBox coordinates. */
  toViewBox(event) {
    const box = this.svg.getBoundingClientRect();
    return [((event.clientX - box.left) / box.width) * SIZE, ((event.clientY - box.top) / box.height) * SIZE];
  }

  /** The dot under the pointer of `event` (its index), or -1. */
  dotUnder(event) {
    if (this.mode === "canvas") return this.dotAt(this.toViewBox(event));
    const dot = event.target.closest ? event.target.closest("circle.pt") : null;
    return dot ? Number(dot.dataset.index) : -1;
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
      if (!moved) {
        const i = this.dotUnder(event);
        if (i >= 0) this.onSelect(this.points.id[i]);
      }
    });
    svg.addEventListener("pointerleave", () => this.hover(null));
    svg.addEventListener("keydown", (event) => {
      if ((event.key === "Enter" || event.key === " ") && event.target.classList.contains("pt")) {
        event.preventDefault();
        this.onSelect(Number(event.target.dataset.id));
      }
    });
  }

  /** Show the track under the pointer of `event` in the tooltip (null: hide it). */
  hover(event) {
    const i = event ? this.dotUnder(event) : -1;
    if (i !== this.hovered) {
      this.hovered = i;
      this.svg.classList.toggle("over-dot", i >= 0);
      this.placeMarks();
    }
    if (i < 0) {
      this.tooltip.hidden = true;
      return;
    }
    const [who, mood] = this.describe(i).split("\n");
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
