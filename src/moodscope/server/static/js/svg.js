// Small SVG helpers shared by the map and the timeline plot.

const NS = "http://www.w3.org/2000/svg";

/** An SVG element with attributes, appended to `parent` when given. */
export function svgEl(name, attrs = {}, parent = null) {
  const node = document.createElementNS(NS, name);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (parent) parent.appendChild(node);
  return node;
}

/** An SVG <text> with its content. */
export function svgText(parent, x, y, content, attrs = {}) {
  const node = svgEl("text", { x, y, ...attrs }, parent);
  node.textContent = content;
  return node;
}

/** A hover title (shown by the browser, read by screen readers). */
export function svgTitle(parent, content) {
  svgEl("title", {}, parent).textContent = content;
}

/** About `count` round tick values covering [lo, hi]. */
export function ticks(lo, hi, count = 5) {
  const span = hi - lo;
  if (!(span > 0)) return [lo];
  const raw = span / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= raw);
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.round(v / step) * step);
  return out;
}

export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
}
