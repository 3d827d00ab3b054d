/* dagstream dashboard: resume by seq, connection state, timers, small interactions.
 * Loaded deferred after htmx and its ws extension, so it runs before htmx
 * processes the page (DOMContentLoaded) and its hooks are in place for the
 * first connect. */
(function () {
  "use strict";

  var MAX_DELAY_MS = 8000;
  // Close codes and the timeline's length come from Python (scripts.html).
  var CONFIG = JSON.parse(document.getElementById("ds-config").textContent);
  var CLOSE = CONFIG.closeCodes;
  var skew = 0; // server clock minus client clock, in ms
  var state = "connecting";
  var everOpen = false;
  var lastFlash = null;

  // Reconnect with capped full-jitter backoff (the extension's default grows to 64 s).
  htmx.config.wsReconnectDelay = function (retry) {
    var cap = Math.min(MAX_DELAY_MS, 500 * Math.pow(2, retry));
    return cap / 2 + Math.random() * (cap / 2);
  };

  // The extension's URL is fixed at page load: resume from the seq the page shows.
  htmx.createWebSocket = function (url) {
    var marker = document.getElementById("ds-seq");
    if (marker && marker.dataset.seq) {
      var u = new URL(url, window.location.href);
      u.searchParams.set("last_seq", marker.dataset.seq);
      url = u.toString();
    }
    var socket = new WebSocket(url, []);
    socket.binaryType = htmx.config.wsBinaryType;
    return socket;
  };

  // ------------------------------------------------- refusals stay in their card

  // A decision or control refused (400, 403, 404, 409) answers with its card and
  // the message; head.html's responseHandling swaps 4xx like a success. With
  // DEBUG on, django-htmx's script (a listener on document) would replace the
  // whole page with any 4xx response, and the decision would be lost: on window,
  // in the capture phase, this runs first and keeps the event from reaching it.
  window.addEventListener("htmx:beforeOnLoad", function (e) {
    var xhr = e.detail && e.detail.xhr;
    if (xhr && xhr.getResponseHeader("X-Dagstream-Fragment")) e.stopPropagation();
  }, true);

  // ---------------------------------------------------------------- connection

  var CLOSED_TEXT = {};
  CLOSED_TEXT[CLOSE.unauthenticated] = "Signed out. Sign in again to follow this run.";
  CLOSED_TEXT[CLOSE.forbidden] = "You no longer have access to this run.";
  CLOSED_TEXT[CLOSE.not_found] = "This run no longer exists.";

  function setConnection(next, text, detail) {
    state = next;
    var el = document.getElementById("ds-connection");
    if (el) {
      el.dataset.connection = next;
      el.querySelector(".conn-text").textContent = text;
    }
    document.body.dataset.live = next === "open" ? "open" : "stale";
    var banner = document.getElementById("ds-stale");
    if (banner) {
      var show = next === "closed" || (next === "reconnecting" && everOpen);
      banner.hidden = !show;
      if (show && detail) {
        banner.querySelector("span").textContent = detail;
      }
    }
  }

  document.addEventListener("htmx:wsConnecting", function () {
    setConnection("reconnecting", everOpen ? "Reconnecting…" : "Connecting…",
      "Connection lost. What you see may be out of date; reconnecting…");
  });
  document.addEventListener("htmx:wsOpen", function () {
    everOpen = true;
    ownRetries = 0;
    setConnection("open", "Live");
    tick();
  });
  // The extension retries 1006, 1011, 1012 and 1013 itself. The server closes a
  // client that fell too far behind with 4013 (browsers cannot receive 1013):
  // retry that here, with the same capped backoff; the resume asks for last_seq.
  var ownRetries = 0;
  var TRY_AGAIN_LATER = CLOSE.try_again_later;

  document.addEventListener("htmx:wsClose", function (e) {
    var code = e.detail && e.detail.event ? e.detail.event.code : 0;
    if (code === TRY_AGAIN_LATER && e.detail.socketWrapper) {
      var wrapper = e.detail.socketWrapper;
      window.setTimeout(function () { wrapper.reconnect(); },
        htmx.config.wsReconnectDelay(ownRetries++));
    }
    if ([1006, 1011, 1012, 1013, TRY_AGAIN_LATER].indexOf(code) >= 0) {
      setConnection("reconnecting", "Reconnecting…",
        "Connection lost. What you see may be out of date; reconnecting…");
    } else {
      setConnection("closed", "Disconnected",
        (CLOSED_TEXT[code] || "Disconnected from the server.") + " Reload the page to continue.");
    }
  });

  // ------------------------------------------------------------------ timers

  function formatDuration(seconds) {
    seconds = Math.max(0, seconds);
    if (seconds < 1) return Math.round(seconds * 1000) + " ms";
    if (seconds < 60) return seconds.toFixed(1) + " s";
    var minutes = Math.floor(seconds / 60), secs = Math.floor(seconds % 60);
    if (minutes < 60) return minutes + " m " + (secs < 10 ? "0" : "") + secs + " s";
    var hours = Math.floor(minutes / 60);
    minutes = minutes % 60;
    return hours + " h " + (minutes < 10 ? "0" : "") + minutes + " m";
  }

  function elapsed(startIso) {
    return (Date.now() + skew - Date.parse(startIso)) / 1000;
  }

  // Running clocks tick only while live: a stale view must not look live.
  function tick() {
    if (state !== "open") return;
    var clocks = document.querySelectorAll(".js-elapsed[data-started]:not([data-finished])");
    for (var i = 0; i < clocks.length; i++) {
      clocks[i].textContent = formatDuration(elapsed(clocks[i].dataset.started));
    }
    var nodes = document.querySelectorAll("text.node-meta[data-started]");
    for (var j = 0; j < nodes.length; j++) {
      nodes[j].textContent = "Running · " + formatDuration(elapsed(nodes[j].dataset.started));
    }
  }

  // ----------------------------------------------------------- after a message

  function trimTimeline() {
    var list = document.getElementById("timeline");
    while (list && list.children.length > CONFIG.timelineLength) {
      list.removeChild(list.lastElementChild);
    }
  }

  function flashEdge() {
    var marker = document.getElementById("ds-flash");
    if (!marker || !marker.dataset.seq || marker.dataset.seq === lastFlash) return;
    lastFlash = marker.dataset.seq;
    var edge = document.getElementById(marker.dataset.edge);
    if (!edge) return;
    edge.classList.remove("is-active");
    void edge.getBoundingClientRect(); // restart the transition
    edge.classList.add("is-active");
    window.setTimeout(function () { edge.classList.remove("is-active"); }, 1400);
  }

  // The open node panel follows its node: re-fetched when the node's seq moves.
  // (The seq seen is kept on the stable host, since the panel itself is replaced.)
  function refreshPanel() {
    var host = document.getElementById("node-panel");
    var panel = host && host.querySelector(".node-detail");
    if (!panel) return;
    var node = document.querySelector("#" + panel.dataset.slot + " .node");
    if (!node) return;
    node.classList.add("is-selected");
    if (host.dataset.seen !== node.dataset.seq) {
      host.dataset.seen = node.dataset.seq;
      htmx.ajax("GET", panel.dataset.url, { target: "#node-panel", swap: "innerHTML" });
    }
  }

  // A live swap replaces the focused node's element: keep keyboard focus on it.
  var refocus = null;
  document.addEventListener("htmx:oobBeforeSwap", function (e) {
    var active = document.activeElement;
    var target = e.detail && e.detail.target;
    if (active && target && target.contains(active) && active.matches(".node[data-node-id]")) {
      refocus = active.dataset.nodeId;
    }
  });

  function restoreFocus() {
    if (refocus === null) return;
    var selector = '.node[data-node-id="' + CSS.escape(refocus) + '"]';
    refocus = null;
    var node = document.querySelector(selector);
    if (node) node.focus({ preventScroll: true });
  }

  document.addEventListener("htmx:wsAfterMessage", function () {
    restoreFocus();
    trimTimeline();
    flashEdge();
    refreshPanel();
    tick();
  });

  // -------------------------------------------------------------- node panel

  var opener = null;

  function openNode(node) {
    var selected = document.querySelectorAll(".node.is-selected");
    for (var i = 0; i < selected.length; i++) selected[i].classList.remove("is-selected");
    node.classList.add("is-selected");
    opener = node;
    htmx.ajax("GET", node.dataset.href, { target: "#node-panel", swap: "innerHTML" }).then(function () {
      var host = document.getElementById("node-panel");
      var panel = host.querySelector(".node-detail");
      host.dataset.seen = node.dataset.seq;
      if (panel) {
        panel.setAttribute("tabindex", "-1");
        panel.focus({ preventScroll: true });
      }
    });
  }

  function closePanel() {
    var host = document.getElementById("node-panel");
    if (!host || !host.firstElementChild) return;
    host.innerHTML = "";
    var selected = document.querySelectorAll(".node.is-selected");
    for (var i = 0; i < selected.length; i++) selected[i].classList.remove("is-selected");
    if (opener && document.body.contains(opener)) opener.focus();
  }

  document.addEventListener("click", function (e) {
    var target = e.target;
    if (!(target instanceof Element)) return;
    var node = target.closest(".graph .node[data-href]");
    if (node && !document.getElementById("replay-view")) {
      openNode(node);
      return;
    }
    if (target.closest(".js-close-panel")) {
      closePanel();
      return;
    }
    var step = target.closest(".js-step");
    if (step) {
      var range = document.getElementById("replay-seq");
      var next = Math.min(+range.max, Math.max(+range.min, +range.value + +step.dataset.step));
      if (next !== +range.value) {
        range.value = next;
        range.dispatchEvent(new Event("input", { bubbles: true }));
      }
    }
  });

  document.addEventListener("keydown", function (e) {
    var target = e.target;
    if (e.key === "Escape") {
      closePanel();
      return;
    }
    if ((e.key === "Enter" || e.key === " ") && target instanceof Element &&
        target.matches(".graph .node[data-href]") && !document.getElementById("replay-view")) {
      e.preventDefault();
      openNode(target);
    }
  });

  document.addEventListener("input", function (e) {
    if (e.target && e.target.id === "replay-seq") {
      var out = document.getElementById("replay-n");
      if (out) out.textContent = e.target.value;
    }
  });

  document.addEventListener("DOMContentLoaded", function () {
    var head = document.querySelector("[data-server-now]");
    if (head) skew = Date.parse(head.dataset.serverNow) - Date.now();
    if (!document.getElementById("ds-socket")) {
      state = "static"; // pages without a stream (history) keep their times still
      document.body.dataset.live = "static";
    }
    window.setInterval(tick, 1000);
    revealActive();
  });

  // Wide graphs scroll: start with the first node that needs attention in view.
  function revealActive() {
    var scroller = document.getElementById("graph-wrap");
    var node = scroller && scroller.querySelector(".node.s-waiting, .node.s-failed, .node.s-running");
    if (!node || scroller.scrollWidth <= scroller.clientWidth) return;
    var box = node.getBoundingClientRect(), frame = scroller.getBoundingClientRect();
    scroller.scrollLeft += box.left - frame.left - scroller.clientWidth / 3;
  }
})();
