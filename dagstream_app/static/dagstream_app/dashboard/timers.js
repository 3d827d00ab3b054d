// Timers: the running clocks (a run's elapsed time) and running nodes' durations,
// counted on the server's clock and ticking once a second, only while the stream is
// live: a stale view must not look live. The Gantt grows on the same clock: its open
// bars (a running node, a waiting gate, a pause) reach "now" and, once now passes the
// drawn span, everything is re-scaled and the axis relabelled (render/gantt.py puts the
// times on the SVG as data attributes). Attribute writes only: no layout is read.

import { say } from "./words.js";

/**
 * A duration for people: `350 ms`, `4.2 s`, `3 m 05 s`, `2 h 07 m` (in the page's words).
 * @param {number} seconds
 * @returns {string}
 */
export function formatDuration(seconds) {
  seconds = Math.max(0, seconds);
  if (seconds < 1) return say("ms", { ms: Math.round(seconds * 1000) });
  if (seconds < 60) return say("s", { s: seconds.toFixed(1).replace(".", say("decimal")) });
  let minutes = Math.floor(seconds / 60);
  const secs = Math.floor(seconds % 60);
  if (minutes < 60) return say("m", { m: minutes, s: `${secs < 10 ? "0" : ""}${secs}` });
  const hours = Math.floor(minutes / 60);
  minutes = minutes % 60;
  return say("h", { h: hours, m: `${minutes < 10 ? "0" : ""}${minutes}` });
}

/**
 * Stretch a live Gantt to `now` (ms since the epoch, on the server's clock).
 * @param {SVGSVGElement} svg
 * @param {number} now
 */
export function growGantt(svg, now) {
  const { start, x0, chart, minW } = svg.dataset;
  const left = Number(x0);
  const width = Number(chart);
  const least = Number(minW);
  // Never behind the drawing: the page's estimate of the server's clock may lag it.
  const elapsed = Math.max((now - Date.parse(start)) / 1000, Number(svg.dataset.now));
  const drawn = Number(svg.dataset.span);
  const span = Math.max(drawn, elapsed);
  const at = (seconds) => left + (width * seconds) / span;
  const rescaled = span !== drawn;
  if (rescaled) {
    svg.dataset.span = String(span);
    for (const label of svg.querySelectorAll("text[data-tick]")) {
      label.textContent = formatDuration(span * Number(label.dataset.tick));
    }
  }
  // Ended elements move only when the scale changes; open ones grow every tick.
  const moving = rescaled ? "[data-t0]" : "[data-t0]:not([data-t1])";
  for (const shape of svg.querySelectorAll(moving)) {
    const from = Number(shape.dataset.t0);
    const until = shape.dataset.t1 === undefined ? elapsed : Number(shape.dataset.t1);
    const x = at(from);
    if (shape.tagName === "path") {
      // A decision's diamond: translate(x cy), only x moves.
      const moved = shape.getAttribute("transform").replace(/\(\S+/, `(${x.toFixed(1)}`);
      shape.setAttribute("transform", moved);
      continue;
    }
    shape.setAttribute("x", x.toFixed(1));
    shape.setAttribute("width", Math.max(at(until) - x, least).toFixed(1));
  }
}

/**
 * @param {() => boolean} isLive whether the stream is open now.
 * @returns {{start: () => void, tick: () => void}}
 */
export function createTimers(isLive) {
  let skew = 0; // server clock minus client clock, in ms

  const elapsed = (startIso) => (Date.now() + skew - Date.parse(startIso)) / 1000;

  function tick() {
    if (!isLive()) return;
    for (const clock of document.querySelectorAll(
      ".js-elapsed[data-started]:not([data-finished])",
    )) {
      clock.textContent = formatDuration(elapsed(clock.dataset.started));
    }
    for (const meta of document.querySelectorAll("text.node-meta[data-started]")) {
      meta.textContent = `${say("running")} · ${formatDuration(elapsed(meta.dataset.started))}`;
    }
    for (const gantt of document.querySelectorAll("svg.gantt[data-live]")) {
      growGantt(gantt, Date.now() + skew);
    }
  }

  /** Once the page is parsed: read the server's clock, then tick every second. */
  function start() {
    const head = document.querySelector("[data-server-now]");
    if (head) skew = Date.parse(head.dataset.serverNow) - Date.now();
    window.setInterval(tick, 1000);
  }

  return { start, tick };
}
