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
    graphView.refresh();
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
    graphView.setup();
  });

  // -------------------------------------------------------------- graph view
  // The server draws the graph to fit its card (viewBox). Here: zoom and pan by
  // changing the viewBox (wheel, drag, pinch, keys, the toolbar), a minimap for
  // big graphs, and a tooltip with each node's full label. A graph re-rendered
  // live (dag_mutated) keeps the view the person chose.

  var graphView = (function () {
    var MIN_SCALE = 0.02, MAX_SCALE = 3, STEP = 1.25, PAN_PX = 80, FAR = 0.3;
    var MINIMAP_NODES = 40, MINIMAP_W = 180, MINIMAP_H = 110;
    var view = null; // {x, y, scale} once the person zooms or pans; null: fit
    var current = null; // {root, svg, W, H, cw, ch, x, y, scale, ...} of the graph shown
    var pointers = {}, drag = null, pinch = null, suppressClick = false, mapDirty = true;

    function parts() {
      var root = document.getElementById("graph");
      var svg = root && root.querySelector("svg.graph-svg");
      if (!svg) return null;
      return { root: root, svg: svg, W: +svg.dataset.width, H: +svg.dataset.height };
    }

    // The card's room: its width, and a height that fits the drawing at the fit scale.
    // The svg's box is the drawing at that scale; zoom and pan are a CSS transform of
    // it, so a 5,000-node drawing moves as one layer instead of being laid out again.
    function measure(p) {
      var cw = p.root.clientWidth || 1; // read before the drawing is shown: no layout of it
      var fitW = Math.min(1, cw / p.W);
      var maxH = Math.max(160, window.innerHeight * 0.68);
      var ch = Math.max(160, Math.min(maxH, Math.ceil(p.H * fitW)));
      p.root.style.height = ch + "px";
      p.cw = cw;
      p.ch = ch;
      p.fit = Math.min(1, cw / p.W, ch / p.H);
      p.svg.style.width = p.W * p.fit + "px";
      p.svg.style.height = p.H * p.fit + "px";
      p.root.classList.add("is-zoomable");
    }

    // While it moves, the drawing is its own compositor layer. Inline on the svg: a
    // class on the card would restyle every one of its thousands of elements.
    var settle = null;
    function moving(p) {
      p.svg.style.willChange = "transform";
      window.clearTimeout(settle);
      settle = window.setTimeout(function () { p.svg.style.willChange = ""; }, 250);
    }

    function clampScale(scale) { return Math.min(MAX_SCALE, Math.max(MIN_SCALE, scale)); }

    function apply() {
      var p = current;
      if (!p) return;
      if (view === null) {
        p.scale = p.fit;
        p.x = (p.W - p.cw / p.scale) / 2;
        p.y = (p.H - p.ch / p.scale) / 2;
      } else {
        p.scale = view.scale;
        p.x = view.x;
        p.y = view.y;
      }
      p.svg.style.transform = "translate(" + (-p.x * p.scale).toFixed(1) + "px," +
        (-p.y * p.scale).toFixed(1) + "px) scale(" + (p.scale / p.fit).toFixed(4) + ")";
      p.root.dataset.view = [p.x, p.y, p.scale].map(function (v) { return v.toFixed(2); }).join(" ");
      p.root.dataset.zoom = Math.round(p.scale * 100);
      // Far out, text is too small to read: boxes only, which paint many times faster.
      p.root.classList.toggle("is-far", p.scale < FAR);
      p.root.dataset.fit = view === null ? "true" : "false";
      var label = p.root.querySelector(".graph-zoom");
      if (label) label.textContent = Math.round(p.scale * 100) + "%";
      drawMinimap();
    }

    // The view may move past the drawing's edge, but its centre stays on the drawing.
    function setView(x, y, scale) {
      var p = current;
      scale = clampScale(scale);
      var w = p.cw / scale, h = p.ch / scale;
      x = Math.min(p.W - w / 2, Math.max(-w / 2, x));
      y = Math.min(p.H - h / 2, Math.max(-h / 2, y));
      view = { x: x, y: y, scale: scale };
      moving(p);
      apply();
    }

    // Zoom by `factor` keeping the drawing point under (px, py) (pixels in the svg) still.
    function zoomAt(factor, px, py) {
      var p = current;
      if (!p) return;
      var scale = clampScale(p.scale * factor);
      var sx = p.x + px / p.scale, sy = p.y + py / p.scale;
      setView(sx - px / scale, sy - py / scale, scale);
    }

    function zoomCentre(factor) {
      if (current) zoomAt(factor, current.cw / 2, current.ch / 2);
    }

    function panBy(dx, dy) {
      var p = current;
      if (p) setView(p.x - dx / p.scale, p.y - dy / p.scale, p.scale);
    }

    function fit() {
      view = null;
      apply();
    }

    // A pointer's position in the card (the svg itself is transformed).
    function local(e) {
      var box = current.root.getBoundingClientRect();
      return { x: e.clientX - box.left, y: e.clientY - box.top };
    }

    // ----------------------------------------------------------- minimap

    function slotBoxes() {
      var slots = current.svg.querySelectorAll(".nodes > .slot");
      var out = [];
      for (var i = 0; i < slots.length; i++) {
        var m = /translate\(([-\d.]+)[ ,]+([-\d.]+)\)/.exec(slots[i].getAttribute("transform") || "");
        var node = slots[i].firstElementChild;
        if (m && node) out.push({ x: +m[1], y: +m[2], status: node.dataset.status });
      }
      return out;
    }

    function drawMinimap() {
      var p = current;
      if (!p) return;
      var canvas = p.root.querySelector("canvas.graph-minimap");
      var big = +p.root.dataset.nodes >= MINIMAP_NODES || p.fit < 0.5;
      if (!big) {
        if (canvas) canvas.remove();
        return;
      }
      var ratio = window.devicePixelRatio || 1;
      var k = Math.min(MINIMAP_W / p.W, MINIMAP_H / p.H);
      if (!canvas) {
        canvas = document.createElement("canvas");
        canvas.className = "graph-minimap";
        canvas.setAttribute("aria-hidden", "true");
        p.root.appendChild(canvas);
        mapDirty = true;
      }
      var cssW = Math.ceil(p.W * k), cssH = Math.ceil(p.H * k);
      if (canvas.width !== cssW * ratio) {
        canvas.width = cssW * ratio;
        canvas.height = cssH * ratio;
        canvas.style.width = cssW + "px";
        canvas.style.height = cssH + "px";
        mapDirty = true;
      }
      if (mapDirty || !p.base) {
        p.base = document.createElement("canvas");
        p.base.width = canvas.width;
        p.base.height = canvas.height;
        var b = p.base.getContext("2d");
        var style = getComputedStyle(p.root);
        var colours = {};
        var boxes = slotBoxes();
        var nodeW = Math.max(1, 196 * k * ratio), nodeH = Math.max(1, 52 * k * ratio);
        for (var i = 0; i < boxes.length; i++) {
          var s = boxes[i].status;
          if (!(s in colours)) colours[s] = style.getPropertyValue("--ds-" + s).trim() || "#888";
          b.fillStyle = colours[s];
          b.fillRect(boxes[i].x * k * ratio, boxes[i].y * k * ratio, nodeW, nodeH);
        }
        mapDirty = false;
      }
      var c = canvas.getContext("2d");
      c.clearRect(0, 0, canvas.width, canvas.height);
      c.drawImage(p.base, 0, 0);
      c.strokeStyle = getComputedStyle(p.root).getPropertyValue("--ds-accent").trim() || "#4f46e5";
      c.lineWidth = 2 * ratio;
      c.strokeRect(p.x * k * ratio, p.y * k * ratio, (p.cw / p.scale) * k * ratio, (p.ch / p.scale) * k * ratio);
      p.mapScale = k;
    }

    function centreOnMinimap(e) {
      var p = current;
      var box = e.target.getBoundingClientRect();
      var sx = (e.clientX - box.left) / p.mapScale, sy = (e.clientY - box.top) / p.mapScale;
      setView(sx - p.cw / p.scale / 2, sy - p.ch / p.scale / 2, p.scale);
    }

    // ----------------------------------------------------------- tooltip

    function showTip(node) {
      var p = current;
      if (!p || !node) return;
      var tip = p.root.querySelector(".graph-tip");
      if (!tip) {
        tip = document.createElement("div");
        tip.className = "graph-tip";
        tip.setAttribute("role", "tooltip");
        tip.id = "ds-graph-tip";
        p.root.appendChild(tip);
      }
      var label = node.getAttribute("aria-label") || "";
      var name = label.slice(0, label.lastIndexOf(":"));
      var meta = node.querySelector(".node-meta");
      tip.textContent = "";
      var title = document.createElement("strong");
      title.textContent = name;
      tip.appendChild(title);
      if (node.dataset.nodeId !== name) {
        var id = document.createElement("div");
        id.className = "tip-id";
        id.textContent = node.dataset.nodeId;
        tip.appendChild(id);
      }
      var status = document.createElement("div");
      status.textContent = meta ? meta.textContent : node.dataset.status;
      tip.appendChild(status);
      tip.hidden = false;
      var rootBox = p.root.getBoundingClientRect(), box = node.getBoundingClientRect();
      var left = Math.max(4, Math.min(box.left - rootBox.left, rootBox.width - tip.offsetWidth - 4));
      var top = box.top - rootBox.top - tip.offsetHeight - 6;
      if (top < 4) top = box.bottom - rootBox.top + 6;
      tip.style.left = left + "px";
      tip.style.top = top + "px";
      node.setAttribute("aria-describedby", tip.id);
    }

    function hideTip() {
      var tip = current && current.root.querySelector(".graph-tip");
      if (tip) tip.hidden = true;
    }

    // ------------------------------------------------------------ events

    function onWheel(e) {
      e.preventDefault();
      var at = local(e);
      var delta = e.deltaMode === 1 ? e.deltaY * 16 : e.deltaY;
      zoomAt(Math.exp(-delta * 0.0015), at.x, at.y);
    }

    function onPointerDown(e) {
      if (e.button !== 0 && e.pointerType === "mouse") return;
      suppressClick = false;
      pointers[e.pointerId] = local(e);
      var ids = Object.keys(pointers);
      if (ids.length === 1) {
        drag = { x: pointers[ids[0]].x, y: pointers[ids[0]].y, moved: false };
      } else if (ids.length === 2) {
        var a = pointers[ids[0]], b = pointers[ids[1]];
        pinch = { d: Math.hypot(a.x - b.x, a.y - b.y) || 1 };
        drag = null;
      }
    }

    function onPointerMove(e) {
      if (!(e.pointerId in pointers)) return;
      pointers[e.pointerId] = local(e);
      var ids = Object.keys(pointers);
      if (pinch && ids.length === 2) {
        var a = pointers[ids[0]], b = pointers[ids[1]];
        var d = Math.hypot(a.x - b.x, a.y - b.y) || 1;
        zoomAt(d / pinch.d, (a.x + b.x) / 2, (a.y + b.y) / 2);
        pinch.d = d;
        suppressClick = true;
        return;
      }
      if (!drag) return;
      var at = pointers[e.pointerId];
      var dx = at.x - drag.x, dy = at.y - drag.y;
      if (!drag.moved && Math.abs(dx) + Math.abs(dy) < 4) return;
      if (!drag.moved) {
        drag.moved = true;
        current.svg.setPointerCapture(e.pointerId);
        hideTip();
      }
      drag.x = at.x;
      drag.y = at.y;
      panBy(dx, dy);
    }

    function onPointerUp(e) {
      if (drag && drag.moved) suppressClick = true;
      delete pointers[e.pointerId];
      if (Object.keys(pointers).length < 2) pinch = null;
      if (!Object.keys(pointers).length) drag = null;
    }

    // A drag that ends on a node is not a click on it.
    function onClickCapture(e) {
      if (suppressClick && e.target instanceof Element && e.target.closest("#graph svg")) {
        e.stopPropagation();
        e.preventDefault();
      }
      suppressClick = false;
    }

    function onKey(e) {
      if (!(e.target instanceof Element) || !e.target.closest("#graph")) return;
      if (e.altKey || e.ctrlKey || e.metaKey) return;
      var handled = true;
      switch (e.key) {
        case "+": case "=": zoomCentre(STEP); break;
        case "-": case "_": zoomCentre(1 / STEP); break;
        case "0": fit(); break;
        case "ArrowLeft": panBy(PAN_PX, 0); break;
        case "ArrowRight": panBy(-PAN_PX, 0); break;
        case "ArrowUp": panBy(0, PAN_PX); break;
        case "ArrowDown": panBy(0, -PAN_PX); break;
        default: handled = false;
      }
      if (handled) e.preventDefault();
    }

    function onToolbar(e) {
      var button = e.target instanceof Element && e.target.closest("#graph [data-zoom]");
      if (!button) return;
      var what = button.dataset.zoom;
      if (what === "fit") fit();
      else zoomCentre(what === "in" ? STEP : 1 / STEP);
    }

    // The graph element is new (first load, or re-rendered live): measure, restore the view.
    function attach() {
      var p = parts();
      if (!p) return;
      if (current && current.svg === p.svg) return;
      current = p;
      mapDirty = true;
      measure(p);
      p.svg.addEventListener("wheel", onWheel, { passive: false });
      p.svg.addEventListener("pointerdown", onPointerDown);
      p.svg.addEventListener("pointermove", onPointerMove);
      p.svg.addEventListener("pointerup", onPointerUp);
      p.svg.addEventListener("pointercancel", onPointerUp);
      apply();
    }

    function setup() {
      attach();
      document.addEventListener("click", onClickCapture, true);
      document.addEventListener("click", onToolbar);
      document.addEventListener("keydown", onKey);
      document.addEventListener("pointerover", function (e) {
        var node = e.target instanceof Element && e.target.closest("#graph .node");
        if (node && !drag) showTip(node);
      });
      document.addEventListener("pointerout", function (e) {
        var node = e.target instanceof Element && e.target.closest("#graph .node");
        if (node && !(e.relatedTarget instanceof Element && node.contains(e.relatedTarget))) hideTip();
      });
      document.addEventListener("focusin", function (e) {
        var node = e.target instanceof Element && e.target.closest("#graph .node");
        if (node) showTip(node); else hideTip();
      });
      document.addEventListener("pointerdown", function (e) {
        if (e.target instanceof Element && e.target.matches("canvas.graph-minimap")) {
          centreOnMinimap(e);
          e.preventDefault();
        }
      });
      var resizing = null;
      window.addEventListener("resize", function () {
        window.clearTimeout(resizing);
        resizing = window.setTimeout(function () {
          if (!current) return;
          measure(current);
          apply();
        }, 100);
      });
      document.addEventListener("htmx:afterSwap", attach);
    }

    // After a live message: the graph may be new; node colours may have changed
    // (the minimap is redrawn at most twice a second, however fast events come).
    var mapTimer = null;
    function refresh() {
      attach();
      if (mapTimer !== null || !current || !current.root.querySelector("canvas.graph-minimap")) return;
      mapTimer = window.setTimeout(function () {
        mapTimer = null;
        mapDirty = true;
        drawMinimap();
      }, 500);
    }

    return { setup: setup, refresh: refresh, fit: fit };
  })();
})();
