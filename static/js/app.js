/* Switchboard: small, dependency-free behaviours. No inline scripts anywhere (CSP script-src 'self').
 * Every behaviour is declared in markup with a class or data-attribute; see docs/ui.md.
 *   .copy[data-copy]          copy text to the clipboard, show "Copied"
 *   [data-countdown=unix s]   "in 42 s" / "now", updated every second
 *   time.ago[datetime]        "3 min ago", updated every second
 *   [data-poll=N] + hx-get    htmx.trigger(el, "poll") every N s while the tab is visible (pair with hx-trigger="poll")
 *   form[data-confirm]        window.confirm before submitting (also on a submit button)
 *   htmx errors               5xx/403/404/network failures shown in #messages instead of failing silently
 *   [data-health-of=name]     a health badge that follows the "connection-health" event (HX-Trigger of a Test)
 *   focus                     the control that sent an htmx request keeps the keyboard focus afterwards
 *   table.table td[data-label] each cell labelled with its column header (cards on phones; app.css)
 */
(function () {
  "use strict";

  var TICK_MS = 1000;

  /* ---------- Copy to clipboard ---------- */
  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    return new Promise(function (resolve, reject) {
      var area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.style.position = "fixed";
      area.style.top = "-1000px";
      document.body.appendChild(area);
      area.select();
      var ok = false;
      try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
      document.body.removeChild(area);
      if (ok) { resolve(); } else { reject(new Error("copy failed")); }
    });
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest(".copy[data-copy]") : null;
    if (!button) { return; }
    event.preventDefault();
    if (!button.dataset.label) { button.dataset.label = button.textContent; }
    copyText(button.dataset.copy).then(function () {
      button.textContent = "Copied";
      button.classList.add("copied");
      button.classList.remove("copy-failed");
    }, function () {
      button.textContent = "Press Ctrl+C";
      button.classList.add("copy-failed");
    }).then(function () {
      clearTimeout(button._sbCopyTimer);
      button._sbCopyTimer = setTimeout(function () {
        button.textContent = button.dataset.label;
        button.classList.remove("copied", "copy-failed");
      }, 1500);
    });
  });

  /* ---------- Durations, countdowns, relative times ---------- */
  function span(seconds) {
    seconds = Math.round(seconds);
    if (seconds < 60) { return seconds + " s"; }
    var minutes = Math.floor(seconds / 60);
    if (minutes < 10) { return minutes + " min " + (seconds % 60) + " s"; }
    if (minutes < 60) { return minutes + " min"; }
    var hours = Math.floor(minutes / 60);
    if (hours < 48) { return hours + " h " + (minutes % 60) + " min"; }
    return Math.floor(hours / 24) + " d";
  }

  function absolute(date) {
    return date.toLocaleString(undefined, {
      year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit",
    });
  }

  function updateCountdowns(now) {
    var nodes = document.querySelectorAll("[data-countdown]");
    for (var i = 0; i < nodes.length; i++) {
      var el = nodes[i];
      var at = parseFloat(el.dataset.countdown);
      if (!isFinite(at)) { continue; }
      var left = at - now / 1000;
      var text = left >= 1 ? "in " + span(left) : "now";
      if (el.textContent !== text) { el.textContent = text; }
      el.classList.toggle("is-due", left < 1);
      if (!el.title) { el.title = absolute(new Date(at * 1000)); }
    }
  }

  function ago(seconds) {
    if (seconds < 0) { return "in " + span(-seconds); }
    if (seconds < 5) { return "just now"; }
    if (seconds < 60) { return Math.floor(seconds) + " s ago"; }
    var minutes = Math.floor(seconds / 60);
    if (minutes < 60) { return minutes + " min ago"; }
    var hours = Math.floor(minutes / 60);
    if (hours < 24) { return hours + " h ago"; }
    var days = Math.floor(hours / 24);
    if (days < 30) { return days + (days === 1 ? " day ago" : " days ago"); }
    return null;  // older: an absolute date reads better than "400 days ago"
  }

  function updateAgo(now) {
    var nodes = document.querySelectorAll("time.ago[datetime]");
    for (var i = 0; i < nodes.length; i++) {
      var el = nodes[i];
      var date = new Date(el.getAttribute("datetime"));
      if (isNaN(date.getTime())) { continue; }
      var text = ago((now - date.getTime()) / 1000) ||
        date.toLocaleDateString(undefined, { year: "numeric", month: "short", day: "numeric" });
      if (el.textContent !== text) { el.textContent = text; }
      if (!el.title) { el.title = absolute(date); }
    }
  }

  /* ---------- Visibility-paused polling (replaces hx-trigger="every Ns [filter]", which needs eval) ---------- */
  var lastPoll = new WeakMap();
  var inFlight = new WeakSet();

  function poll(now) {
    if (!window.htmx || document.visibilityState !== "visible") { return; }
    var nodes = document.querySelectorAll("[data-poll]");
    for (var i = 0; i < nodes.length; i++) {
      var el = nodes[i];
      var every = Math.max(1, parseFloat(el.dataset.poll) || 0) * 1000;
      if (!lastPoll.has(el)) { lastPoll.set(el, now); continue; }  // first seen: its content is fresh
      if (inFlight.has(el) || now - lastPoll.get(el) < every) { continue; }
      lastPoll.set(el, now);
      window.htmx.trigger(el, "poll");
    }
  }

  // Background polls are not user activity: the server's idle timeout ignores them (dashboard/reauth.py).
  document.addEventListener("htmx:configRequest", function (event) {
    var trigger = event.detail.triggeringEvent;
    if (trigger && trigger.type === "poll") { event.detail.headers["X-Switchboard-Poll"] = "1"; }
  });
  document.addEventListener("htmx:beforeRequest", function (event) {
    if (event.target.matches && event.target.matches("[data-poll]")) { inFlight.add(event.target); }
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    inFlight.delete(event.target);
    if (event.detail && event.detail.successful) { clearHtmxError("network"); }
  });

  function tick() {
    var now = Date.now();
    updateCountdowns(now);
    updateAgo(now);
    poll(now);
  }

  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") { tick(); }  // catch up at once when the operator comes back
  });
  document.addEventListener("htmx:afterSettle", function () {
    var now = Date.now();
    updateCountdowns(now);
    updateAgo(now);
  });

  /* ---------- Confirmation before submitting ---------- */
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var submitter = event.submitter;
    var message = (submitter && submitter.dataset && submitter.dataset.confirm) || (form.dataset && form.dataset.confirm);
    if (message && !window.confirm(message)) {
      event.preventDefault();
      event.stopImmediatePropagation();  // capture phase on document: htmx's own submit handler never sees it
    }
  }, true);

  /* ---------- htmx failures are visible, never silent ---------- */
  function messagesBox() {
    var box = document.getElementById("messages");
    if (!box) {
      box = document.createElement("div");
      box.id = "messages";
      box.className = "messages";
      box.setAttribute("aria-live", "polite");
      var main = document.querySelector("main") || document.body;
      main.insertBefore(box, main.firstChild);
    }
    return box;
  }

  function showHtmxError(kind, text) {
    var box = messagesBox();
    var el = box.querySelector("[data-htmx-error]");
    if (!el) {
      el = document.createElement("div");
      el.className = "message message-error";
      el.setAttribute("role", "alert");
      box.appendChild(el);
    }
    el.setAttribute("data-htmx-error", kind);
    el.textContent = text;
  }

  function clearHtmxError(kind) {
    var el = document.querySelector('#messages [data-htmx-error="' + kind + '"]');
    if (el) { el.remove(); }
  }

  function describe(xhr) {
    var status = xhr.status;
    /* A view that answers a button with a sentence (text/plain) has said what to do: "Too many tests: at
     * most 10 per minute per user. Wait a minute and try again." Show that, not a status code. */
    var said = (xhr.responseText || "").trim();
    if ((xhr.getResponseHeader("Content-Type") || "").indexOf("text/plain") === 0 && said && said.length <= 400) {
      return said;
    }
    if (status === 403) { return "You do not have permission for that action (403). Ask an admin if you need it."; }
    if (status === 404) { return "That item no longer exists (404). It may have been deleted: reload the page."; }
    if (status === 429) { return "Too many requests (429). Wait a moment and try again."; }
    if (status >= 500) {
      return "Switchboard hit a server error (" + status + "). Nothing on this page changed. " +
        "Try again; if it keeps failing, reload the page and check the server logs.";
    }
    return "The request failed (" + status + " " + (xhr.statusText || "") + "). Reload the page and try again.";
  }

  document.addEventListener("htmx:responseError", function (event) {
    showHtmxError("response", describe(event.detail.xhr));
  });
  document.addEventListener("htmx:sendError", function () {
    showHtmxError("network", "Cannot reach Switchboard: the network or the server is down. " +
      "Live panels will refresh by themselves when it is back.");
  });
  document.addEventListener("htmx:timeout", function () {
    showHtmxError("network", "Switchboard did not answer in time. Try again in a moment.");
  });

  /* A fragment request whose session expired is redirected to the sign-in page: load that page whole
   * (with ?next= back here) instead of swapping a login form into a table cell. */
  document.addEventListener("htmx:beforeSwap", function (event) {
    var login = document.body.dataset.loginUrl;
    var xhr = event.detail.xhr;
    if (!login || !xhr || !xhr.responseURL) { return; }
    var landed;
    try { landed = new URL(xhr.responseURL, window.location.href); } catch (e) { return; }
    if (landed.pathname === login && window.location.pathname !== login) {
      event.detail.shouldSwap = false;
      window.location.assign(login + "?next=" + encodeURIComponent(window.location.pathname + window.location.search));
    }
  });

  /* ---------- A Test's verdict reaches every badge of that connection's health on the page ---------- */
  document.addEventListener("connection-health", function (event) {
    var d = event.detail || {};
    if (!d.name || !d.health) { return; }
    var nodes = document.querySelectorAll("[data-health-of]");
    for (var i = 0; i < nodes.length; i++) {
      if (nodes[i].dataset.healthOf !== d.name) { continue; }
      nodes[i].className = "badge badge-" + d.health;
      nodes[i].textContent = d.label || d.health;
    }
  });

  /* ---------- Keyboard focus survives a request ----------
   * hx-disabled-elt disables the pressed button while its request runs, and a disabled element drops the
   * focus to <body>; a poll that re-renders a table (outerHTML) removes the focused control altogether.
   * Either way a keyboard user would have to tab back from the top: give the focus back afterwards, to the
   * same control or to its twin in the new markup (same id, same form action, same link). */
  var focusOwner = new WeakMap();

  function twinSelector(el) {
    if (el.id) { return "#" + CSS.escape(el.id); }
    var form = el.form || (el.closest && el.closest("form"));
    if (form && form.getAttribute("action")) {
      return 'form[action="' + CSS.escape(form.getAttribute("action")) + '"] [type="submit"]';
    }
    if (el.tagName === "A" && el.getAttribute("href")) { return 'a[href="' + CSS.escape(el.getAttribute("href")) + '"]'; }
    return null;
  }

  function requester(event) {
    var d = event.detail || {};
    return (d.requestConfig && d.requestConfig.elt) || d.elt || event.target;
  }

  document.addEventListener("htmx:beforeRequest", function (event) {
    var elt = requester(event);
    var active = document.activeElement;
    if (active && active !== document.body && elt.contains && elt.contains(active)) {
      focusOwner.set(elt, { el: active, twin: twinSelector(active) });
    }
  });

  // After the swap (and once hx-disabled-elt is undone). htmx fires it on the requesting element, or on
  // its nearest ancestor still in the page when that element was swapped out (requestConfig.elt is the requester).
  document.addEventListener("htmx:afterRequest", function (event) {
    var elt = requester(event);
    var owner = focusOwner.get(elt);
    if (!owner) { return; }
    focusOwner.delete(elt);
    var active = document.activeElement;
    if (active && active !== document.body && active !== owner.el) { return; }  // the user moved on
    var el = owner.el;
    if (!el.isConnected && owner.twin) { el = document.querySelector(owner.twin); }
    if (!el || !el.isConnected || el.disabled) { return; }
    if (document.activeElement !== el) { el.focus({ preventScroll: true }); }
  });

  /* ---------- Start ---------- */
  tick();
  setInterval(tick, TICK_MS);
})();

/* Table cells labelled with their column's header (data-label), so that on phones, where app.css
 * turns each row into a card, every value says what it is. Runs at load and after every htmx swap;
 * a cell that already has a data-label keeps it; colspans are followed. */
(function () {
  function labelTables(root) {
    var tables = (root.matches && root.matches("table.table")) ? [root] : root.querySelectorAll("table.table");
    for (var t = 0; t < tables.length; t++) {
      var table = tables[t];
      var head = table.tHead && table.tHead.rows[0];
      if (!head) { continue; }
      var labels = [];
      for (var h = 0; h < head.cells.length; h++) {
        for (var span = 0; span < (head.cells[h].colSpan || 1); span++) { labels.push(head.cells[h].textContent.trim()); }
      }
      for (var b = 0; b < table.tBodies.length; b++) {
        var rows = table.tBodies[b].rows;
        for (var r = 0; r < rows.length; r++) {
          var column = 0;
          for (var c = 0; c < rows[r].cells.length; c++) {
            var cell = rows[r].cells[c];
            if (!cell.hasAttribute("data-label") && cell.colSpan === 1) { cell.setAttribute("data-label", labels[column] || ""); }
            column += cell.colSpan || 1;
          }
        }
      }
    }
  }
  labelTables(document);
  document.addEventListener("htmx:afterSettle", function (event) {
    var table = event.target.closest ? event.target.closest("table.table") : null;
    labelTables(table || event.target);
  });
})();
