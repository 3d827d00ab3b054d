// The graph's card. The drawing is measured into its viewport (.graph-port) and shown
// at a view, as a CSS transform of the <svg>, so a 5,000-node drawing moves as one layer
// instead of being laid out again. A graph re-rendered live (dag_mutated) keeps the view
// the person chose. Zoom and pan (zoom.js), the minimap (minimap.js) and the node
// tooltip (tooltip.js) act on the graph shown here.
//
// The view it opens at ("home"): the whole drawing when it fits at a readable size;
// otherwise a readable zoom on the part that is active (running or waiting nodes, else
// failed ones, else the next to run, else the start), which follows the run while the
// person has not moved the view. Fit (the button, or 0) shows the whole drawing.

import { activeBox } from "./drawing.js";
import { createMinimap } from "./minimap.js";
import { createTooltip } from "./tooltip.js";
import { listenZoom } from "./zoom.js";

// The smallest scale at which labels read well: 14 px labels (dagstream.css) show at
// 10.5 px, about 12 px high on screen.
export const READABLE = 0.75;
const FAR = 0.3; // below this scale, text is too small to read: boxes only
const MIN_H = 160; // px: the viewport's least height, and its most: a share of the window
const MAX_H_SHARE = 0.7;
const MARGIN = 24; // drawing units between the active part and the viewport's edge
const SETTLE_MS = 250;
const RESIZE_MS = 100;

/** The graph on the page: its card, viewport and drawing, or null when there is none. */
function parts() {
  const root = document.getElementById("graph");
  const port = root && root.querySelector(".graph-port");
  const svg = port && port.querySelector("svg.graph-svg");
  if (!svg) return null;
  return { root, port, svg, W: +svg.dataset.width, H: +svg.dataset.height };
}

// The viewport's room: the card's width, and a height that takes the drawing at the
// scale it opens at, up to most of the window. The svg's box is the drawing at the fit
// scale; zoom and pan transform it.
function measure(p) {
  const cw = p.port.clientWidth || 1; // read before the drawing is shown: no layout of it
  const fitW = Math.min(1, cw / p.W);
  const opening = fitW >= READABLE ? fitW : Math.min(1, READABLE);
  const maxH = Math.max(MIN_H, Math.round(window.innerHeight * MAX_H_SHARE));
  const ch = Math.max(MIN_H, Math.min(maxH, Math.ceil(p.H * opening)));
  p.port.style.height = `${ch}px`;
  p.cw = cw;
  p.ch = ch;
  p.fit = Math.min(1, cw / p.W, ch / p.H);
  p.readable = p.fit >= READABLE - 0.005; // the whole drawing reads well: home is Fit
  p.svg.style.width = `${p.W * p.fit}px`;
  p.svg.style.height = `${p.H * p.fit}px`;
  p.root.classList.add("is-zoomable");
}

/** The view with the whole drawing, centred. */
const fitView = (p) => ({
  scale: p.fit,
  x: (p.W - p.cw / p.fit) / 2,
  y: (p.H - p.ch / p.fit) / 2,
});

// Along one axis: the view's start for a part [lo, hi] of a drawing `size` long, in a
// window `room` long: the part centred, or its start in view if it is longer than the
// window; and the view kept on the drawing.
function place(lo, hi, room, size) {
  const start = hi - lo + 2 * MARGIN <= room ? (lo + hi - room) / 2 : lo - MARGIN;
  return size <= room ? (size - room) / 2 : Math.min(size - room, Math.max(0, start));
}

/** The readable view on the active part of the drawing. */
function homeView(p) {
  const scale = Math.min(1, READABLE);
  const part = activeBox(p.svg) || { x0: 0, y0: 0, x1: 0, y1: p.H };
  return {
    scale,
    x: place(part.x0, part.x1, p.cw / scale, p.W),
    y: place(part.y0, part.y1, p.ch / scale, p.H),
  };
}

/** True if the view shows all of the active part (or there is none). */
function showsActive(p) {
  const part = activeBox(p.svg);
  if (!part) return true;
  const w = p.cw / p.scale;
  const h = p.ch / p.scale;
  return part.x0 >= p.x && part.x1 <= p.x + w && part.y0 >= p.y && part.y1 <= p.y + h;
}

/** @returns {{setup: () => void, refresh: () => void, fit: () => void}} */
export function createGraphView() {
  let view = null; // {x, y, scale} once the person zooms or pans; null: home or fit
  let fitted = false; // the person asked for Fit
  let current = null; // parts() of the graph shown, measured, with its x, y, scale
  let settle = null;
  const shown = () => current;
  const minimap = createMinimap(shown, show);
  const tooltip = createTooltip(shown);
  const zoom = listenZoom({ current: shown, show, fit, onDragStart: tooltip.hide });

  // While it moves, the drawing is its own compositor layer. Inline on the svg: a
  // class on the card would restyle every one of its thousands of elements.
  function moving(p) {
    p.svg.style.willChange = "transform";
    window.clearTimeout(settle);
    settle = window.setTimeout(() => {
      p.svg.style.willChange = "";
    }, SETTLE_MS);
  }

  function apply() {
    const p = current;
    if (!p) return;
    const isFit = view === null && (fitted || p.readable);
    ({ x: p.x, y: p.y, scale: p.scale } = view || (isFit ? fitView(p) : homeView(p)));
    const dx = (-p.x * p.scale).toFixed(1);
    const dy = (-p.y * p.scale).toFixed(1);
    p.svg.style.transform = `translate(${dx}px,${dy}px) scale(${(p.scale / p.fit).toFixed(4)})`;
    p.root.dataset.view = [p.x, p.y, p.scale].map((v) => v.toFixed(2)).join(" ");
    p.root.dataset.zoom = Math.round(p.scale * 100);
    p.root.classList.toggle("is-far", p.scale < FAR);
    p.root.dataset.fit = isFit ? "true" : "false";
    p.root.dataset.home = view === null && !fitted ? "true" : "false";
    const label = p.root.querySelector(".graph-zoom");
    if (label) label.textContent = `${Math.round(p.scale * 100)}%`;
    minimap.draw();
  }

  /** Show `next` (a view zoom.js or the minimap worked out). */
  function show(next) {
    view = next;
    fitted = false;
    moving(current);
    apply();
  }

  function fit() {
    view = null;
    fitted = true;
    apply();
  }

  // The graph element is new (first load, or re-rendered live): measure, restore the view.
  function attach() {
    const p = parts();
    if (!p) return;
    if (current && current.svg === p.svg) return;
    current = p;
    minimap.stale();
    measure(p);
    zoom.attach(p.svg);
    apply();
  }

  function setup() {
    attach();
    tooltip.listen(zoom.dragging);
    minimap.listen();
    let resizing = null;
    window.addEventListener("resize", () => {
      window.clearTimeout(resizing);
      resizing = window.setTimeout(() => {
        if (!current) return;
        measure(current);
        apply();
      }, RESIZE_MS);
    });
    document.addEventListener("htmx:afterSwap", attach);
  }

  // After a live message: the graph may be new; node colours may have changed; at the
  // home view, the active part may have moved out of view: follow it.
  function refresh() {
    attach();
    const p = current;
    if (p && view === null && !fitted && !p.readable && !showsActive(p)) apply();
    minimap.redrawSoon();
  }

  return { setup, refresh, fit };
}
