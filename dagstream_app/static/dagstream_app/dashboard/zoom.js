// Zoom and pan: the view's arithmetic (the drawing point under the pointer stays put;
// the view may pass the drawing's edge but its centre stays on the drawing) and the
// inputs that move it: the wheel, a drag, a two-finger pinch, the keys (+ - 0 and the
// arrows, with the graph or a node focused) and the toolbar's − / + / Fit.
//
// A view is {x, y, scale}: the drawing point at the card's top left, and the scale.
// `p` is the graph shown (graph-view.js): {root, port, svg, W, H, cw, ch, fit, x, y, scale}.

const MIN_SCALE = 0.02;
const MAX_SCALE = 3;
const STEP = 1.25;
const PAN_PX = 80;

const clampScale = (scale) => Math.min(MAX_SCALE, Math.max(MIN_SCALE, scale));

/** The view at (x, y, scale), kept within bounds. */
export function placeView(p, x, y, scale) {
  scale = clampScale(scale);
  const w = p.cw / scale;
  const h = p.ch / scale;
  return {
    x: Math.min(p.W - w / 2, Math.max(-w / 2, x)),
    y: Math.min(p.H - h / 2, Math.max(-h / 2, y)),
    scale,
  };
}

/** The view zoomed by `factor`, keeping the drawing point under (px, py) (pixels in the card) still. */
export function zoomedView(p, factor, px, py) {
  const scale = clampScale(p.scale * factor);
  const sx = p.x + px / p.scale;
  const sy = p.y + py / p.scale;
  return placeView(p, sx - px / scale, sy - py / scale, scale);
}

/** The view moved by (dx, dy) pixels. */
const pannedView = (p, dx, dy) => placeView(p, p.x - dx / p.scale, p.y - dy / p.scale, p.scale);

/**
 * Listen to the inputs that zoom and pan the graph.
 * @param {{current: () => any, show: (view: object) => void, fit: () => void,
 *   onDragStart: () => void}} graph the graph shown, and how to change its view.
 * @returns {{attach: (svg: SVGSVGElement) => void, dragging: () => boolean}}
 */
export function listenZoom(graph) {
  const pointers = new Map();
  let drag = null;
  let pinch = null;
  let suppressClick = false;

  function zoomAt(factor, px, py) {
    const p = graph.current();
    if (p) graph.show(zoomedView(p, factor, px, py));
  }

  function zoomCentre(factor) {
    const p = graph.current();
    if (p) zoomAt(factor, p.cw / 2, p.ch / 2);
  }

  function panBy(dx, dy) {
    const p = graph.current();
    if (p) graph.show(pannedView(p, dx, dy));
  }

  // A pointer's position in the viewport (the svg itself is transformed).
  function local(e) {
    const box = graph.current().port.getBoundingClientRect();
    return { x: e.clientX - box.left, y: e.clientY - box.top };
  }

  function onWheel(e) {
    e.preventDefault();
    const at = local(e);
    const delta = e.deltaMode === 1 ? e.deltaY * 16 : e.deltaY;
    zoomAt(Math.exp(-delta * 0.0015), at.x, at.y);
  }

  function onPointerDown(e) {
    if (e.button !== 0 && e.pointerType === "mouse") return;
    suppressClick = false;
    pointers.set(e.pointerId, local(e));
    const [a, b] = pointers.values();
    if (pointers.size === 1) {
      drag = { x: a.x, y: a.y, moved: false };
    } else if (pointers.size === 2) {
      pinch = { d: Math.hypot(a.x - b.x, a.y - b.y) || 1 };
      drag = null;
    }
  }

  function onPointerMove(e) {
    if (!pointers.has(e.pointerId)) return;
    const at = local(e);
    pointers.set(e.pointerId, at);
    if (pinch && pointers.size === 2) {
      const [a, b] = pointers.values();
      const d = Math.hypot(a.x - b.x, a.y - b.y) || 1;
      zoomAt(d / pinch.d, (a.x + b.x) / 2, (a.y + b.y) / 2);
      pinch.d = d;
      suppressClick = true;
      return;
    }
    if (!drag) return;
    const dx = at.x - drag.x;
    const dy = at.y - drag.y;
    if (!drag.moved && Math.abs(dx) + Math.abs(dy) < 4) return;
    if (!drag.moved) {
      drag.moved = true;
      graph.current().svg.setPointerCapture(e.pointerId);
      graph.onDragStart();
    }
    drag.x = at.x;
    drag.y = at.y;
    panBy(dx, dy);
  }

  function onPointerUp(e) {
    if (drag && drag.moved) suppressClick = true;
    pointers.delete(e.pointerId);
    if (pointers.size < 2) pinch = null;
    if (!pointers.size) drag = null;
  }

  // A drag that ends on a node is not a click on it.
  function onClickCapture(e) {
    if (suppressClick && e.target instanceof Element && e.target.closest("#graph svg")) {
      e.stopPropagation();
      e.preventDefault();
    }
    suppressClick = false;
  }

  function onKey(e) {
    if (!(e.target instanceof Element) || !e.target.closest("#graph")) return;
    if (e.altKey || e.ctrlKey || e.metaKey) return;
    let handled = true;
    switch (e.key) {
      case "+":
      case "=":
        zoomCentre(STEP);
        break;
      case "-":
      case "_":
        zoomCentre(1 / STEP);
        break;
      case "0":
        graph.fit();
        break;
      case "ArrowLeft":
        panBy(PAN_PX, 0);
        break;
      case "ArrowRight":
        panBy(-PAN_PX, 0);
        break;
      case "ArrowUp":
        panBy(0, PAN_PX);
        break;
      case "ArrowDown":
        panBy(0, -PAN_PX);
        break;
      default:
        handled = false;
    }
    if (handled) e.preventDefault();
  }

  function onToolbar(e) {
    const button = e.target instanceof Element && e.target.closest("#graph [data-zoom]");
    if (!button) return;
    const what = button.dataset.zoom;
    if (what === "fit") graph.fit();
    else zoomCentre(what === "in" ? STEP : 1 / STEP);
  }

  document.addEventListener("click", onClickCapture, true);
  document.addEventListener("click", onToolbar);
  document.addEventListener("keydown", onKey);

  return {
    /** A new drawing (first load, or re-rendered live): listen to its pointers. */
    attach(svg) {
      svg.addEventListener("wheel", onWheel, { passive: false });
      svg.addEventListener("pointerdown", onPointerDown);
      svg.addEventListener("pointermove", onPointerMove);
      svg.addEventListener("pointerup", onPointerUp);
      svg.addEventListener("pointercancel", onPointerUp);
    },
    dragging: () => drag !== null,
  };
}
