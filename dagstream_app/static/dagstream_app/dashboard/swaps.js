// What a live message's out-of-band swaps leave to do: keep keyboard focus on a node
// whose element was replaced, keep the timeline to its length (a group's row once), and
// light the edge an `edge_active` event names (#ds-flash) for a moment.

const FLASH_MS = 1400;

/** @returns {() => void} puts focus back on the node that had it before the swap. */
export function keepFocusAcrossSwaps() {
  let refocus = null;
  document.addEventListener("htmx:oobBeforeSwap", (e) => {
    const active = document.activeElement;
    const target = e.detail && e.detail.target;
    if (active && target && target.contains(active) && active.matches(".node[data-node-id]")) {
      refocus = active.dataset.nodeId;
    }
  });
  return () => {
    if (refocus === null) return;
    const selector = `.node[data-node-id="${CSS.escape(refocus)}"]`;
    refocus = null;
    const node = document.querySelector(selector);
    if (node) node.focus({ preventScroll: true });
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
