// The minimap: big graphs (40 nodes or more, or too big to read whole) get a canvas
// in the bar under the drawing (never over a node) with every node in its status
// colour and a frame around the part in view; a click there centres the view on that
// point.

import { NODE_H, NODE_W, slotBoxes } from "./drawing.js";
import { placeView } from "./zoom.js";

const MINIMAP_NODES = 40;
const MINIMAP_W = 220; // px at most, and at most this share of the card's width:
const MINIMAP_SHARE = 0.5;
const MINIMAP_H = 72;
const REDRAW_MS = 500;

/** The nodes in their colours, at the minimap's scale `k`, on a canvas of their own. */
function drawNodes(p, k, width, height, ratio) {
  const base = document.createElement("canvas");
  base.width = width;
  base.height = height;
  const pen = base.getContext("2d");
  const style = getComputedStyle(p.root);
  const colours = {};
  const nodeW = Math.max(1, NODE_W * k * ratio);
  const nodeH = Math.max(1, NODE_H * k * ratio);
  for (const box of slotBoxes(p.svg)) {
    const s = box.status;
    if (!(s in colours)) colours[s] = style.getPropertyValue(`--ds-${s}`).trim() || "#888";
    pen.fillStyle = colours[s];
    pen.fillRect(box.x * k * ratio, box.y * k * ratio, nodeW, nodeH);
  }
  return base;
}

/**
 * @param {() => any} current the graph shown (graph-view.js), or null.
 * @param {(view: object) => void} show moves the view.
 * @returns {{draw: () => void, stale: () => void, redrawSoon: () => void, listen: () => void}}
 */
export function createMinimap(current, show) {
  let dirty = true; // the nodes' colours must be read again
  let timer = null;

  function draw() {
    const p = current();
    if (!p) return;
    let canvas = p.root.querySelector("canvas.graph-minimap");
    const big = +p.root.dataset.nodes >= MINIMAP_NODES || !p.readable;
    const bar = p.root.querySelector(".graph-bar");
    if (!big || !bar) {
      if (canvas) canvas.remove();
      return;
    }
    const ratio = window.devicePixelRatio || 1;
    const most = Math.min(MINIMAP_W, p.cw * MINIMAP_SHARE);
    const k = Math.min(most / p.W, MINIMAP_H / p.H);
    if (!canvas) {
      canvas = document.createElement("canvas");
      canvas.className = "graph-minimap";
      canvas.setAttribute("aria-hidden", "true");
      bar.appendChild(canvas);
      dirty = true;
    }
    const cssW = Math.ceil(p.W * k);
    const cssH = Math.ceil(p.H * k);
    if (canvas.width !== cssW * ratio) {
      canvas.width = cssW * ratio;
      canvas.height = cssH * ratio;
      canvas.style.width = `${cssW}px`;
      canvas.style.height = `${cssH}px`;
      dirty = true;
    }
    if (dirty || !p.base) {
      p.base = drawNodes(p, k, canvas.width, canvas.height, ratio);
      dirty = false;
    }
    const pen = canvas.getContext("2d");
    pen.clearRect(0, 0, canvas.width, canvas.height);
    pen.drawImage(p.base, 0, 0);
    pen.strokeStyle = getComputedStyle(p.root).getPropertyValue("--ds-accent").trim() || "#4f46e5";
    pen.lineWidth = 2 * ratio;
    const inView = [p.x, p.y, p.cw / p.scale, p.ch / p.scale].map((v) => v * k * ratio);
    pen.strokeRect(...inView);
    p.mapScale = k;
  }

  function centreOn(e) {
    const p = current();
    const box = e.target.getBoundingClientRect();
    const sx = (e.clientX - box.left) / p.mapScale;
    const sy = (e.clientY - box.top) / p.mapScale;
    show(placeView(p, sx - p.cw / p.scale / 2, sy - p.ch / p.scale / 2, p.scale));
  }

  return {
    draw,
    /** A new drawing: read its nodes again at the next draw. */
    stale() {
      dirty = true;
    },
    /** Node colours may have changed: redraw at most twice a second, however fast events come. */
    redrawSoon() {
      const p = current();
      if (timer !== null || !p || !p.root.querySelector("canvas.graph-minimap")) return;
      timer = window.setTimeout(() => {
        timer = null;
        dirty = true;
        draw();
      }, REDRAW_MS);
    },
    listen() {
      document.addEventListener("pointerdown", (e) => {
        if (e.target instanceof Element && e.target.matches("canvas.graph-minimap")) {
          centreOn(e);
          e.preventDefault();
        }
      });
    },
  };
}
