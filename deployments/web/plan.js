// A scene's top-down floor plan as SVG, from its objects' boxes. The scene frame is z-up: x and y of each box
// are the floor plane (ideal/scenes/types.py), so a footprint is the box's x/y extent; SVG's y grows
// downwards, so y is flipped to keep the plan as seen from above.
import { config } from "./api.js";

const SVG = "http://www.w3.org/2000/svg";
const STRUCTURE = new Set(config.structure); // walls, floor, ceiling: drawn as outlines, never labelled
const PAD = 0.15; // metres around the room

function el(name, attrs = {}, text) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** The labels a text names (whole words, a plural "s" allowed); the first named comes first. */
export function mentioned(labels, text) {
  const low = ` ${text.toLowerCase()} `;
  const found = [];
  for (const label of new Set(labels)) {
    if (STRUCTURE.has(label)) continue;
    const m = new RegExp(`\\b${escape(label.toLowerCase())}(s|es)?\\b`).exec(low);
    if (m) found.push([m.index, -label.length, label]);
  }
  found.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  return found.map((f) => f[2]);
}

export function rgb(c) {
  return `rgb(${c.map((x) => Math.round(Math.min(1, Math.max(0, x)) * 255)).join(",")})`;
}

function dark(c) {
  return 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2] < 0.5;
}

/**
 * The plan of `scene` (as GET /v1/scenes/{id} gives it). Objects whose label the query names are outlined:
 * the first named (the described object's class) strongly, the others dashed.
 */
export function floorPlan(scene, query = "", { labels = true, fontScale = 1 / 28 } = {}) {
  const objs = scene.objects;
  const names = mentioned(objs.map((o) => o.label), query);
  const lo = [Infinity, Infinity], hi = [-Infinity, -Infinity];
  for (const o of objs) {
    for (const a of [0, 1]) {
      lo[a] = Math.min(lo[a], o.center[a] - o.size[a] / 2);
      hi[a] = Math.max(hi[a], o.center[a] + o.size[a] / 2);
    }
  }
  if (!objs.length) { lo[0] = lo[1] = 0; hi[0] = hi[1] = 1; }
  const w = hi[0] - lo[0] + 2 * PAD, h = hi[1] - lo[1] + 2 * PAD;
  const x = (o) => o.center[0] - o.size[0] / 2 - lo[0] + PAD;
  const y = (o) => hi[1] - (o.center[1] + o.size[1] / 2) + PAD; // flipped: north up
  const furniture = objs.filter((o) => !STRUCTURE.has(o.label)).map((o) => o.label);
  const svg = el("svg", {
    viewBox: `0 0 ${w.toFixed(3)} ${h.toFixed(3)}`, class: "plan", role: "img",
    "aria-label": `Floor plan of ${scene.scene_id}: ${[...new Set(furniture)].join(", ") || "no objects"}`,
  });
  const font = Math.max(0.1, Math.min(w, h) * fontScale);
  // the shell first, then objects from the lowest top to the highest: what stands on a table is drawn over it
  const top = (o) => o.center[2] + o.size[2] / 2;
  const order = [...objs].sort((a, b) => (STRUCTURE.has(b.label) - STRUCTURE.has(a.label)) || top(a) - top(b));
  const texts = el("g", { class: "labels" });
  for (const o of order) {
    const box = { x: x(o).toFixed(3), y: y(o).toFixed(3), width: o.size[0].toFixed(3), height: o.size[1].toFixed(3) };
    if (STRUCTURE.has(o.label)) {
      svg.append(el("rect", { ...box, class: `shell ${o.label}` }));
      continue;
    }
    const rank = names.indexOf(o.label);
    const cls = rank === 0 ? "obj hit" : rank > 0 ? "obj named" : "obj";
    const rect = el("rect", { ...box, class: cls, fill: rgb(o.color_rgb), "data-label": o.label });
    rect.append(el("title", {}, `${o.label} (${o.size[0].toFixed(2)} × ${o.size[1].toFixed(2)} m)`));
    svg.append(rect);
    if (labels) {
      const half = Math.min(w / 2, 0.3 * font * o.label.length); // about half the label's width: kept inside the plan
      const tx = Math.min(Math.max(x(o) + o.size[0] / 2, half), w - half);
      const ty = Math.min(Math.max(y(o) + o.size[1] / 2, font / 2), h - font / 2);
      const t = el("text", {
        x: tx.toFixed(3), y: ty.toFixed(3),
        "font-size": font.toFixed(3), class: dark(o.color_rgb) ? "on-dark" : "on-light",
      }, o.label);
      if (rank >= 0) t.classList.add("hit-label");
      texts.append(t);
    }
  }
  svg.append(texts); // labels above every box
  return svg;
}
