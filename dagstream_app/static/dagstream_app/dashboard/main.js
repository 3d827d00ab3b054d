// The dashboard's script: scripts.html loads it as a module, after htmx and its ws
// extension (module scripts are deferred, and deferred scripts run in order), so it
// runs before htmx processes the page on DOMContentLoaded and its hooks are in place
// for the first connect. It reads the numbers Python hands it (#ds-config), starts each
// job's module, and after every live message tells each what may have changed.
//
//   live.js        the socket: resume by seq, reconnects, the connection indicator
//   timers.js      running clocks and durations
//   graph-view.js  the graph's card (drawing.js, zoom.js, minimap.js, tooltip.js)
//   node-panel.js  a node's side panel
//   swaps.js       after a live message: focus, the timeline's length, edge flashes
//   history.js     the history page's slider
//   refusals.js    refused actions stay in their card with DEBUG on
//   presence.js    who else is looking at the run, who is writing feedback
//   assigned.js    gate cards that wait for others are read-only to the rest
//   words.js       the words the scripts show, in the page's language

import { keepGatesForOthersReadOnly } from "./assigned.js";
import { createGraphView } from "./graph-view.js";
import { listenHistory } from "./history.js";
import { startLive } from "./live.js";
import { createNodePanel } from "./node-panel.js";
import { startPresence } from "./presence.js";
import { keepRefusalsInTheirCard } from "./refusals.js";
import { edgeFlasher, keepFocusAcrossSwaps, trimTimeline } from "./swaps.js";
import { createTimers } from "./timers.js";
import { useWords } from "./words.js";

const config = JSON.parse(document.getElementById("ds-config").textContent);
useWords(config.text);

keepRefusalsInTheirCard();
keepGatesForOthersReadOnly(config.viewerNames);
const timers = createTimers(() => live.state() === "open");
const live = startLive(config.closeCodes, timers.tick);
const restoreFocus = keepFocusAcrossSwaps();
const flashEdge = edgeFlasher();
const panel = createNodePanel();
panel.listen();
listenHistory();
const graph = createGraphView();

document.addEventListener("htmx:wsAfterMessage", () => {
  graph.refresh();
  restoreFocus();
  trimTimeline(config.timelineLength);
  flashEdge();
  panel.refresh();
  timers.tick();
});

document.addEventListener("DOMContentLoaded", () => {
  if (!document.getElementById("ds-socket")) live.markStatic();
  startPresence();
  timers.start();
  graph.setup();
});
