// The node tooltip: hovering or focusing a node shows its full label (boxes show two
// lines of it at most), its id when it differs, and its status.

/**
 * @param {() => any} current the graph shown (graph-view.js), or null.
 * @returns {{hide: () => void, listen: (dragging: () => boolean) => void}}
 */
export function createTooltip(current) {
  function show(node) {
    const p = current();
    if (!p || !node) return;
    let tip = p.root.querySelector(".graph-tip");
    if (!tip) {
      tip = document.createElement("div");
      tip.className = "graph-tip";
      tip.setAttribute("role", "tooltip");
      tip.id = "ds-graph-tip";
      p.root.appendChild(tip);
    }
    const label = node.getAttribute("aria-label") || "";
    const name = label.slice(0, label.lastIndexOf(":"));
    const meta = node.querySelector(".node-meta");
    tip.textContent = "";
    const title = document.createElement("strong");
    title.textContent = name;
    tip.appendChild(title);
    if (node.dataset.nodeId !== name) {
      const id = document.createElement("div");
      id.className = "tip-id";
      id.textContent = node.dataset.nodeId;
      tip.appendChild(id);
    }
    const status = document.createElement("div");
    status.textContent = meta ? meta.textContent : node.dataset.status;
    tip.appendChild(status);
    tip.hidden = false;
    const rootBox = p.root.getBoundingClientRect();
    const box = node.getBoundingClientRect();
    const left = Math.max(
      4,
      Math.min(box.left - rootBox.left, rootBox.width - tip.offsetWidth - 4),
    );
    let top = box.top - rootBox.top - tip.offsetHeight - 6;
    if (top < 4) top = box.bottom - rootBox.top + 6;
    tip.style.left = `${left}px`;
    tip.style.top = `${top}px`;
    node.setAttribute("aria-describedby", tip.id);
  }

  function hide() {
    const p = current();
    const tip = p && p.root.querySelector(".graph-tip");
    if (tip) tip.hidden = true;
  }

  const nodeOf = (target) => target instanceof Element && target.closest("#graph .node");

  return {
    hide,
    listen(dragging) {
      document.addEventListener("pointerover", (e) => {
        const node = nodeOf(e.target);
        if (node && !dragging()) show(node);
      });
      document.addEventListener("pointerout", (e) => {
        const node = nodeOf(e.target);
        if (node && !(e.relatedTarget instanceof Element && node.contains(e.relatedTarget))) hide();
      });
      document.addEventListener("focusin", (e) => {
        const node = nodeOf(e.target);
        if (node) show(node);
        else hide();
      });
    },
  };
}
