// Who else is looking at this run, and who is writing feedback on a gate: the run
// page's presence socket (consumers/presence.py). It says which gate this person is
// writing on (and when they stop), and shows what the server says of the others.
// Presence is a nicety: a lost socket reconnects, and meanwhile shows nobody.

import { say } from "./words.js";

const IDLE_MS = 4000; // writing stops counting this long after the last keystroke
const RETRY_MS = 2000;

/** Start presence on a run page (it has #ds-presence); elsewhere do nothing. */
export function startPresence() {
  const line = document.getElementById("ds-presence");
  if (!line) return;
  const url = new URL(line.dataset.url, window.location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  let socket = null;
  let typing = "";
  let idle = 0;

  function tell(nodeId) {
    if (nodeId === typing) return;
    typing = nodeId;
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ typing }));
  }

  function show(state) {
    line.hidden = state.here.length === 0;
    line.textContent = state.here.length ? say("alsoHere", { names: state.here.join(", ") }) : "";
    for (const el of document.querySelectorAll(".gate-typing")) {
      const names = state.typing[el.dataset.typingFor] || [];
      el.hidden = names.length === 0;
      const key = names.length > 1 ? "writingMany" : "writing";
      el.textContent = names.length ? say(key, { names: names.join(", ") }) : "";
    }
  }

  let last = { here: [], typing: {} };
  function connect() {
    socket = new WebSocket(url);
    socket.addEventListener("open", () => {
      if (typing) socket.send(JSON.stringify({ typing }));
    });
    socket.addEventListener("message", (event) => {
      last = JSON.parse(event.data);
      show(last);
    });
    socket.addEventListener("close", (event) => {
      show({ here: [], typing: {} });
      if (event.code < 4000) window.setTimeout(connect, RETRY_MS); // 4xxx: refused for good
    });
  }
  connect();

  document.addEventListener("input", (event) => {
    const box = event.target.closest && event.target.closest(".gate-form textarea");
    if (!box) return;
    const gate = box.closest(".gate");
    tell(gate ? gate.dataset.nodeId : "");
    window.clearTimeout(idle);
    idle = window.setTimeout(() => tell(""), IDLE_MS);
  });
  document.addEventListener("focusout", (event) => {
    if (event.target.closest && event.target.closest(".gate-form textarea")) tell("");
  });
  // Gate cards swapped in live get their "is writing" line filled at once.
  document.addEventListener("htmx:wsAfterMessage", () => show(last));
}
