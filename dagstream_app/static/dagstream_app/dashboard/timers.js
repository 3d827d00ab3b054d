// Timers: the running clocks (a run's elapsed time) and running nodes' durations,
// counted on the server's clock and ticking once a second, only while the stream is
// live: a stale view must not look live.

/**
 * A duration for people: `350 ms`, `4.2 s`, `3 m 05 s`, `2 h 07 m`.
 * @param {number} seconds
 * @returns {string}
 */
export function formatDuration(seconds) {
  seconds = Math.max(0, seconds);
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  let minutes = Math.floor(seconds / 60);
  const secs = Math.floor(seconds % 60);
  if (minutes < 60) return `${minutes} m ${secs < 10 ? "0" : ""}${secs} s`;
  const hours = Math.floor(minutes / 60);
  minutes = minutes % 60;
  return `${hours} h ${minutes < 10 ? "0" : ""}${minutes} m`;
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
      meta.textContent = `Running · ${formatDuration(elapsed(meta.dataset.started))}`;
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
