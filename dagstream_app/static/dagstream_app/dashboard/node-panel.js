// The node panel: a click on a node (or Enter or Space on a focused one) opens its
// panel (under the graph, beside the Gantt), which follows the node live (fetched
// again when the node's seq moves); Escape or the panel's close button closes it and
// gives focus back to the node.
// History pages (#replay-view) have no panel.

// A node of the graph, a group's row in the Gantt view (it opens the group's panel), or
// a group's row in the timeline (it opens the group's events).
const NODE = ".graph .node[data-href], .gantt-row[data-href], #timeline .tl-group[data-href]";

function unselectAll() {
  for (const node of document.querySelectorAll(".node.is-selected")) {
    node.classList.remove("is-selected");
  }
}

const panelsAllowed = () => !document.getElementById("replay-view");

/** @returns {{listen: () => void, refresh: () => void}} */
export function createNodePanel() {
  let opener = null;

  function open(node) {
    unselectAll();
    node.classList.add("is-selected");
    opener = node;
    htmx.ajax("GET", node.dataset.href, { target: "#node-panel", swap: "innerHTML" }).then(() => {
      const host = document.getElementById("node-panel");
      const panel = host.querySelector(".node-detail");
      host.dataset.seen = node.dataset.seq;
      if (panel) {
        panel.setAttribute("tabindex", "-1");
        panel.focus({ preventScroll: true });
        // The panel is below the graph, which takes the page's width: bring it into
        // view if it opened off screen (Escape gives the focus back to the node).
        const box = panel.getBoundingClientRect();
        if (box.top > window.innerHeight - 80) panel.scrollIntoView({ block: "nearest" });
      }
    });
  }

  function close() {
    const host = document.getElementById("node-panel");
    if (!host || !host.firstElementChild) return;
    host.innerHTML = "";
    unselectAll();
    if (opener && document.body.contains(opener)) opener.focus();
  }

  // The open panel follows its node: fetched again when the node's seq moves.
  // (The seq seen is kept on the stable host, since the panel itself is replaced.)
  function refresh() {
    const host = document.getElementById("node-panel");
    const panel = host && host.querySelector(".node-detail");
    if (!panel || !panel.dataset.slot) return; // a search's list follows nothing
    const node = document.querySelector(`#${panel.dataset.slot} .node`);
    if (!node) return;
    node.classList.add("is-selected");
    if (host.dataset.seen !== node.dataset.seq) {
      host.dataset.seen = node.dataset.seq;
      htmx.ajax("GET", panel.dataset.url, { target: "#node-panel", swap: "innerHTML" });
    }
  }

  function listen() {
    document.addEventListener("click", (e) => {
      if (!(e.target instanceof Element)) return;
      const node = e.target.closest(NODE);
      if (node && panelsAllowed()) open(node);
      else if (e.target.closest(".js-close-panel")) close();
    });
    document.addEventListener("keydown", (e) => {
      if (e.key === "Escape") {
        close();
        return;
      }
      const onNode = e.target instanceof Element && e.target.matches(NODE);
      if ((e.key === "Enter" || e.key === " ") && onNode && panelsAllowed()) {
        e.preventDefault();
        open(e.target);
      }
    });
  }

  return { listen, refresh };
}
