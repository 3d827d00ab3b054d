// The live connection: the htmx ws extension's socket, resumed from the seq the page
// shows, reconnected with the backoff the JavaScript client uses (also on the
// server's 4013, which the extension does not retry), and shown in the connection
// indicator (#ds-connection, the stale banner, body[data-live]); polled regions wait
// while it is not open.

import { backoffDelay } from "../client/backoff.js";
import { say } from "./words.js";

/** The shared policy, capped lower for a page someone is watching (the client's cap is 30 s). */
export const PAGE_BACKOFF = Object.freeze({ maxMs: 8000 });
/** Close codes the ws extension retries by itself. */
const EXTENSION_RETRIES = [1006, 1011, 1012, 1013];

/**
 * The delay before reconnect number `retry` (0 first): `htmx.config.wsReconnectDelay`.
 * @param {number} retry
 * @param {() => number} [random]
 * @returns {number} milliseconds
 */
export function reconnectDelay(retry, random = Math.random) {
  return backoffDelay(retry, random, PAGE_BACKOFF);
}

/**
 * Take over the extension's socket creation and reconnects, and follow its events.
 * @param {{unauthenticated: number, forbidden: number, not_found: number,
 *   try_again_later: number}} closeCodes the server's close codes (from Python).
 * @param {() => void} onOpen called whenever the socket opens.
 * @returns {{state: () => string, markStatic: () => void}}
 */
export function startLive(closeCodes, onOpen) {
  let state = "connecting";
  let everOpen = false;
  let ownRetries = 0;
  const closedText = {
    [closeCodes.unauthenticated]: "signedOut",
    [closeCodes.forbidden]: "forbidden",
    [closeCodes.not_found]: "notFound",
  };

  htmx.config.wsReconnectDelay = (retry) => reconnectDelay(retry);

  // The extension's URL is fixed at page load: resume from the seq the page shows.
  htmx.createWebSocket = (url) => {
    const marker = document.getElementById("ds-seq");
    if (marker && marker.dataset.seq) {
      const resumed = new URL(url, window.location.href);
      resumed.searchParams.set("last_seq", marker.dataset.seq);
      url = resumed.toString();
    }
    const socket = new WebSocket(url, []);
    socket.binaryType = htmx.config.wsBinaryType;
    return socket;
  };

  function setConnection(next, text, detail) {
    state = next;
    const indicator = document.getElementById("ds-connection");
    if (indicator) {
      indicator.dataset.connection = next;
      indicator.querySelector(".conn-text").textContent = text;
    }
    document.body.dataset.live = next === "open" ? "open" : "stale";
    const banner = document.getElementById("ds-stale");
    if (banner) {
      const show = next === "closed" || (next === "reconnecting" && everOpen);
      banner.hidden = !show;
      if (show && detail) banner.querySelector("span").textContent = detail;
    }
  }

  document.addEventListener("htmx:wsConnecting", () => {
    setConnection("reconnecting", say(everOpen ? "reconnecting" : "connecting"), say("lost"));
  });
  document.addEventListener("htmx:wsOpen", () => {
    everOpen = true;
    ownRetries = 0;
    setConnection("open", say("live"));
    onOpen();
  });
  // The server closes a client that fell too far behind with 4013 (browsers cannot
  // receive 1013): retry that here, with the same backoff; the resume asks for last_seq.
  document.addEventListener("htmx:wsClose", (e) => {
    const code = e.detail && e.detail.event ? e.detail.event.code : 0;
    if (code === closeCodes.try_again_later && e.detail.socketWrapper) {
      const wrapper = e.detail.socketWrapper;
      window.setTimeout(() => wrapper.reconnect(), reconnectDelay(ownRetries++));
    }
    if (EXTENSION_RETRIES.includes(code) || code === closeCodes.try_again_later) {
      setConnection("reconnecting", say("reconnecting"), say("lost"));
    } else {
      const why = say(closedText[code] || "closed");
      setConnection("closed", say("disconnected"), say("reload", { why }));
    }
  });

  // Polled regions (hx-trigger="every ...", the engine's liveness) are live too: while
  // the stream is not open they are not asked, like the clocks that stop (a server that
  // is down or a run that is gone has nothing to say; they resume once it is open).
  document.addEventListener("htmx:beforeRequest", (e) => {
    const trigger = e.detail.elt.getAttribute("hx-trigger") || "";
    if (state !== "open" && trigger.trim().startsWith("every ")) e.preventDefault();
  });

  return {
    state: () => state,
    // A page without a stream (history) keeps its times still.
    markStatic() {
      state = "static";
      document.body.dataset.live = "static";
    },
  };
}
