// The graph's card. The server draws the graph to fit it (viewBox); here the drawing
// is measured into the card and shown at the view the person chose, as a CSS transform
// of the <svg>, so a 5,000-node drawing moves as one layer instead of being laid out
// again. A graph re-rendered live (dag_mutated) keeps that view. Zoom and pan
// (zoom.js), the minimap (minimap.js) and the node tooltip (tooltip.js) act on the
// graph shown here.

import { createMinimap } from "./minimap.js";
import { createTooltip } from "./tooltip.js";
import { listenZoom } from "./zoom.js";

const FAR = 0.3; // below this scale, text is too small to read: boxes only
const SETTLE_MS = 250;
const RESIZE_MS = 100;

/** The graph on the page: its card and drawing, or null when there is none. */
function parts() {
  const root = document.getElementById("graph");
  const svg = root && root.querySelector("svg.graph-svg");
  if (!svg) return null;
  return { root, svg, W: +svg.dataset.width, H: +svg.dataset.height };
}

// The card's room: its width, and a height that fits the drawing at the fit scale.
// The svg's box is the drawing at that scale; zoom and pan transform it.
function measure(p) {
  const cw = p.root.clientWidth || 1; // read before the drawing is shown: no layout of it
  const fitW = Math.min(1, cw / p.W);
  const maxH = Math.max(160, window.innerHeight * 0.68);
  const ch = Math.max(160, Math.min(maxH, Math.ceil(p.H * fitW)));
  p.root.style.height = `${ch}px`;
  p.cw = cw;
  p.ch = ch;
  p.fit = Math.min(1, cw / p.W, ch / p.H);
  p.svg.style.width = `${p.W * p.fit}px`;
  p.svg.style.height = `${p.H * p.fit}px`;
  p.root.classList.add("is-zoomable");
}

/** @returns {{setup: () => void, refresh: () => void, fit: () => void}} */
export function createGraphView() {
  let view = null; // {x, y, scale} once the person zooms or pans; null: fit
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
    if (view === null) {
      p.scale = p.fit;
      p.x = (p.W - p.cw / p.scale) / 2;
      p.y = (p.H - p.ch / p.scale) / 2;
    } else {
      ({ x: p.x, y: p.y, scale: p.scale } = view);
    }
    const dx = (-p.x * p.scale).toFixed(1);
    const dy = (-p.y * p.scale).toFixed(1);
    p.svg.style.transform = `translate(${dx}px,${dy}px) scale(${(p.scale / p.fit).toFixed(4)})`;
    p.root.dataset.view = [p.x, p.y, p.scale].map((v) => v.toFixed(2)).join(" ");
    p.root.dataset.zoom = Math.round(p.scale * 100);
    p.root.classList.toggle("is-far", p.scale < FAR);
    p.root.dataset.fit = view === null ? "true" : "false";
    const label = p.root.querySelector(".graph-zoom");
    if (label) label.textContent = `${Math.round(p.scale * 100)}%`;
    minimap.draw();
  }

  /** Show `next` (a view zoom.js or the minimap worked out). */
  function show(next) {
    view = next;
    moving(current);
    apply();
  }

  function fit() {
    view = null;
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

  // After a live message: the graph may be new; node colours may have changed.
  function refresh() {
    attach();
    minimap.redrawSoon();
  }

  return { setup, refresh, fit };
}
