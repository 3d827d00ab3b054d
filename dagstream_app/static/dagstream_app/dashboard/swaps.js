// What a live message's out-of-band swaps leave to do: keep keyboard focus on a node
// whose element was replaced, keep the timeline to its length (a group's row once), and
// light the edge an `edge_active` event names (#ds-flash) for a moment.

const FLASH_MS = 1400;

// What keeps keyboard focus across a swap: a node of the graph, a group's timeline row.
const FOCUSABLE = [".node[data-node-id]", "#timeline .tl-group[data-node-id]"];

/** @returns {() => void} puts focus back on the node (or group row) that had it. */
export function keepFocusAcrossSwaps() {
  let refocus = null;
  document.addEventListener("htmx:oobBeforeSwap", (e) => {
    const active = document.activeElement;
    const target = e.detail && e.detail.target;
    if (!active || !target || !target.contains(active)) return;
    const kind = FOCUSABLE.find((selector) => active.matches(selector));
    if (kind) refocus = { kind, id: active.dataset.nodeId };
  });
  return () => {
    if (refocus === null) return;
    // The first match: a group's row moved to the top comes before the one it replaces.
    const selector = refocus.kind.replace(
      "[data-node-id]",
      `[data-node-id="${CSS.escape(refocus.id)}"]`,
    );
    refocus = null;
    const node = document.querySelector(selector);
    if (node && node !== document.activeElement) node.focus({ preventScroll: true });
  };
}

/**
 * Keeps the timeline to its length, and each group's row once: a member's event puts
 * its group's row at the top, and the row it had further down goes.
 * @param {number} length the entries the page keeps (render.TIMELINE_LENGTH).
 */
export function trimTimeline(length) {
  const list = document.getElementById("timeline");
  if (!list) return;
  const seen = new Set();
  for (const row of list.querySelectorAll(":scope > li.tl-group")) {
    if (seen.has(row.id)) row.remove();
    else seen.add(row.id);
  }
  while (list.children.length > length) list.removeChild(list.lastElementChild);
}

/** @returns {() => void} lights the edge the last `edge_active` names, once per event. */
export function edgeFlasher() {
  let lastFlash = null;
  return () => {
    const marker = document.getElementById("ds-flash");
    if (!marker || !marker.dataset.seq || marker.dataset.seq === lastFlash) return;
    lastFlash = marker.dataset.seq;
    const edge = document.getElementById(marker.dataset.edge);
    if (!edge) return;
    edge.classList.remove("is-active");
    void edge.getBoundingClientRect(); // restart the transition
    edge.classList.add("is-active");
    window.setTimeout(() => edge.classList.remove("is-active"), FLASH_MS);
  };
}
