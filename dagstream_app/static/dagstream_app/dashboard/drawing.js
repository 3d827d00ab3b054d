// The server's drawing of the graph, read: where each node's box is (its slot's
// transform, its box's height) and which part of the run is active.

export const NODE_W = 184; // the boxes' width in the drawing (layout.py)
export const NODE_H = 52; // a box's height with a one-line label

// The part of a run worth opening on, first found first: what runs or waits for a
// person, what failed, what runs next (when not too many to read).
const ACTIVE = [["running", "waiting"], ["failed"], ["pending"]];
const MANY = 200;

/** A slot's top-left corner in the drawing, or null. */
function corner(slot) {
  const at = /translate\(([-\d.]+)[ ,]+([-\d.]+)\)/.exec(slot.getAttribute("transform") || "");
  return at ? { x: +at[1], y: +at[2] } : null;
}

/** Each node's position and status, read from its slot's transform. */
export function slotBoxes(svg) {
  const boxes = [];
  for (const slot of svg.querySelectorAll(".nodes > .slot")) {
    const at = corner(slot);
    const node = slot.firstElementChild;
    if (at && node) boxes.push({ x: at.x, y: at.y, status: node.dataset.status });
  }
  return boxes;
}

/** The drawing's box {x0, y0, x1, y1} around the active nodes, or null (none, or too many). */
export function activeBox(svg) {
  for (const statuses of ACTIVE) {
    const nodes = svg.querySelectorAll(
      statuses.map((s) => `.nodes > .slot > .node[data-status="${s}"]`).join(","),
    );
    if (!nodes.length) continue;
    if (nodes.length > MANY) return null;
    let box = null;
    for (const node of nodes) {
      const at = corner(node.parentElement);
      if (!at) continue;
      const rect = node.querySelector(".node-box");
      const h = (rect && +rect.getAttribute("height")) || NODE_H;
      box = box || { x0: at.x, y0: at.y, x1: at.x, y1: at.y };
      box.x0 = Math.min(box.x0, at.x);
      box.y0 = Math.min(box.y0, at.y);
      box.x1 = Math.max(box.x1, at.x + NODE_W);
      box.y1 = Math.max(box.y1, at.y + h);
    }
    return box;
  }
  return null;
}
