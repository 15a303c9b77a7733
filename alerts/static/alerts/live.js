/*
 * The live layer in the browser: one WebSocket per page (see docs/live.md), no dependencies.
 *
 * - Subscribes to every topic named by a data-live-topic attribute on the page, and to "user"
 *   (one's own notifications) when signed in.
 * - Resumes with "since": first the event id the page was rendered at, then the last id seen,
 *   so nothing is missed between rendering and connecting, or while reconnecting.
 * - Reconnects with exponential backoff and jitter; answers heartbeats by staying quiet.
 * - Updates in place: alert lists ([data-alert-feed]), alert maps (through the "engagement:live"
 *   DOM event, see alerts.js), the unread badge ([data-unread-badge]) and a polite announcer.
 *
 * Other scripts listen with:
 *   document.addEventListener("engagement:live", function (e) { e.detail  // the event });
 */
(function () {
  "use strict";

  var body = document.body;
  if (!body || !("WebSocket" in window)) return;
  var path = body.getAttribute("data-live-url");
  if (!path) return;

  var lastId = parseInt(body.getAttribute("data-live-since") || "0", 10) || 0;
  var signedIn = body.getAttribute("data-live-user") === "1";
  var socket = null;
  var attempt = 0;
  var timer = null;
  var stopped = false;
  var seen = {};
  var recent = [];        // [time, id] of events received in the last few seconds
  var heartbeatMs = 25000;
  var lastHeard = 0;
  var watchdog = null;
  var RECENT_MS = 3000;

  function topics() {
    var found = {};
    var nodes = document.querySelectorAll("[data-live-topic]");
    for (var i = 0; i < nodes.length; i++) {
      var list = (nodes[i].getAttribute("data-live-topic") || "").split(/\s+/);
      for (var j = 0; j < list.length; j++) if (list[j]) found[list[j]] = true;
    }
    if (signedIn) found.user = true;
    return Object.keys(found);
  }

  function url() {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    return scheme + window.location.host + path;
  }

  function setState(state) {
    body.setAttribute("data-live-state", state);
    var nodes = document.querySelectorAll("[data-live-status]");
    var text = state === "open" ? "Live" : state === "connecting" ? "Connecting…" : "Offline, retrying…";
    for (var i = 0; i < nodes.length; i++) {
      nodes[i].textContent = text;
      nodes[i].setAttribute("data-state", state);
    }
  }

  function send(message) {
    if (socket && socket.readyState === 1) socket.send(JSON.stringify(message));
  }

  function connect() {
    var wanted = topics();
    if (!wanted.length) return;
    setState("connecting");
    try {
      socket = new WebSocket(url());
    } catch (err) {
      schedule();
      return;
    }
    socket.onopen = function () {
      attempt = 0;
      lastHeard = Date.now();
      setState("open");
      var since = resumeFrom();
      for (var i = 0; i < wanted.length; i++) {
        send({ type: "subscribe", topic: wanted[i], since: since });
      }
      clearInterval(watchdog);
      watchdog = setInterval(function () {
        // Nothing heard for two heartbeats: the connection is dead even if no one said so.
        if (socket && Date.now() - lastHeard > 2 * heartbeatMs + 5000) socket.close();
      }, 5000);
    };
    socket.onmessage = function (message) {
      lastHeard = Date.now();
      var data;
      try { data = JSON.parse(message.data); } catch (err) { return; }
      handle(data);
    };
    socket.onclose = function () {
      socket = null;
      clearInterval(watchdog);
      if (!stopped) schedule();
    };
    socket.onerror = function () { /* onclose follows */ };
  }

  function schedule() {
    setState("offline");
    clearTimeout(timer);
    var delay = Math.min(30000, 1000 * Math.pow(2, attempt)) * (0.5 + Math.random() / 2);
    attempt = Math.min(attempt + 1, 6);
    timer = setTimeout(connect, delay);
  }

  /* Resume from just below the oldest event of the last few seconds: two events committed
     by different server processes at nearly the same moment may arrive in either order, and
     one of them could still have been on its way when the socket dropped. Ids already seen
     are dropped, so nothing shows twice. */
  function resumeFrom() {
    var now = Date.now();
    recent = recent.filter(function (entry) { return now - entry[0] < RECENT_MS; });
    var since = lastId;
    for (var i = 0; i < recent.length; i++) since = Math.min(since, recent[i][1] - 1);
    return Math.max(0, since);
  }

  function handle(message) {
    if (message.type === "hello" && typeof message.heartbeat === "number") {
      heartbeatMs = message.heartbeat * 1000;
    }
    if (typeof message.id === "number") {
      if (seen[message.id]) return;
      seen[message.id] = true;
      recent.push([Date.now(), message.id]);
      if (message.id > lastId) lastId = message.id;
    }
    if (message.type === "resync") {
      announce("Some updates were missed; reload the page for the full picture.");
    }
    if (message.type === "notification" || message.type === "notification.read") {
      updateBadge(message.data);
    }
    if (message.type && message.type.indexOf("alert.") === 0) {
      updateAlertLists(message);
    }
    document.dispatchEvent(new CustomEvent("engagement:live", { detail: message }));
  }

  /* ---------- the unread badge ---------- */

  function updateBadge(data) {
    if (!data || typeof data.unread !== "number") return;
    var nodes = document.querySelectorAll("[data-unread-badge]");
    for (var i = 0; i < nodes.length; i++) {
      nodes[i].textContent = String(data.unread);
      nodes[i].hidden = data.unread === 0;
      nodes[i].setAttribute("data-count", String(data.unread));
    }
  }

  /* ---------- announcements for screen readers ---------- */

  function announce(text) {
    var region = document.getElementById("live-announcer");
    if (!region) return;
    region.textContent = "";
    window.setTimeout(function () { region.textContent = text; }, 50);
  }

  /* ---------- alert lists ---------- */

  var SEVERITY_RANK = { info: 1, advisory: 2, warning: 3, emergency: 4 };
  var SEVERITY_LABEL = { info: "Info", advisory: "Advisory", warning: "Warning", emergency: "Emergency" };

  function esc(text) {
    return String(text == null ? "" : text)
      .replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;").replace(/'/g, "&#39;");
  }

  function when(iso) {
    if (!iso) return "";
    var date = new Date(iso);
    if (isNaN(date.getTime())) return "";
    return date.toLocaleString(undefined, { month: "short", day: "numeric", hour: "numeric", minute: "2-digit" });
  }

  /* The same markup as alerts/includes/alert_card.html. body_html is sanitised by the server. */
  function card(alert) {
    var li = document.createElement("li");
    li.className = "alert-card severity-" + alert.severity + " kind-" + alert.kind + " status-" + alert.status;
    li.setAttribute("data-alert-id", String(alert.id));
    li.setAttribute("data-severity", String(SEVERITY_RANK[alert.severity] || 0));
    li.setAttribute("data-starts", alert.starts_at || "");
    var status = alert.status === "retracted"
      ? '<p class="alert-status retracted"><strong>Retracted.</strong> ' + esc(alert.status_note) + "</p>"
      : "";
    li.innerHTML =
      '<article aria-labelledby="alert-' + alert.id + '-title">' +
      '<p class="alert-labels"><span class="badge severity ' + esc(alert.severity) + '">' +
      esc(SEVERITY_LABEL[alert.severity] || alert.severity) + "</span> " +
      '<span class="provenance ' + (alert.kind === "official" ? "official" : "community") + '">' +
      esc(alert.provenance) + "</span> " +
      '<span class="category">' + esc(alert.category && alert.category.name) + "</span></p>" +
      '<h3 class="alert-title" id="alert-' + alert.id + '-title"><a href="' + esc(alert.url) + '">' +
      esc(alert.title) + "</a></h3>" + status +
      '<p class="meta"><time datetime="' + esc(alert.starts_at) + '">' + esc(when(alert.starts_at)) + "</time>" +
      (alert.expires_at ? ' · until <time datetime="' + esc(alert.expires_at) + '">' + esc(when(alert.expires_at)) + "</time>" : "") +
      "</p>" +
      (alert.body_html ? '<div class="alert-body rich-text">' + alert.body_html + "</div>" : "") +
      "</article>";
    return li;
  }

  function listsFor(message) {
    var lists = document.querySelectorAll("[data-alert-feed]");
    var result = [];
    for (var i = 0; i < lists.length; i++) {
      var wanted = (lists[i].getAttribute("data-live-topic") || "").split(/\s+/);
      if (wanted.indexOf(message.topic) !== -1) result.push(lists[i]);
    }
    return result;
  }

  function matchesFilters(list, alert) {
    var kind = list.getAttribute("data-filter-kind");
    var category = list.getAttribute("data-filter-category");
    if (kind && alert.kind !== kind) return false;
    if (category && (!alert.category || alert.category.slug !== category)) return false;
    return true;
  }

  function insertSorted(list, node) {
    var rank = parseInt(node.getAttribute("data-severity"), 10);
    var starts = node.getAttribute("data-starts");
    var items = list.querySelectorAll(":scope > [data-alert-id]");
    for (var i = 0; i < items.length; i++) {
      var otherRank = parseInt(items[i].getAttribute("data-severity"), 10);
      var otherStarts = items[i].getAttribute("data-starts");
      if (rank > otherRank || (rank === otherRank && starts >= otherStarts)) {
        list.insertBefore(node, items[i]);
        return;
      }
    }
    list.appendChild(node);
  }

  function updateAlertLists(message) {
    var alert = message.data || {};
    var lists = listsFor(message);
    for (var i = 0; i < lists.length; i++) {
      var list = lists[i];
      var existing = list.querySelector('[data-alert-id="' + alert.id + '"]');
      var keep = alert.is_active !== false || alert.status === "retracted";
      if (existing) existing.parentNode.removeChild(existing);
      if (keep && matchesFilters(list, alert)) {
        var node = card(alert);
        if (message.type === "alert.created") node.classList.add("is-new");
        insertSorted(list, node);
      }
      var empty = list.parentNode && list.parentNode.querySelector("[data-alert-empty]");
      if (empty) empty.hidden = list.querySelector("[data-alert-id]") !== null;
    }
    if (lists.length && message.type === "alert.created") {
      announce("New " + (SEVERITY_LABEL[alert.severity] || "").toLowerCase() + " alert: " + alert.title + " (" + alert.provenance + ")");
    } else if (lists.length && message.type === "alert.retracted") {
      announce(alert.status === "dismissed" ? "A report was removed by the city." : "Alert retracted: " + alert.title);
    }
    updateAlertPage(message);
  }

  /* The alert page updates its own title, text and status. */
  function updateAlertPage(message) {
    var page = document.querySelector('[data-alert-page="' + (message.data && message.data.id) + '"]');
    if (!page || message.topic.indexOf("alert:") !== 0) return;
    var alert = message.data;
    var notice = page.querySelector("[data-alert-changed]");
    if (alert.status === "dismissed") {
      if (notice) {
        notice.hidden = false;
        notice.textContent = "This report was removed by the city.";
      }
      return;
    }
    var fields = {
      title: alert.title, provenance: alert.provenance, status: alert.status_note || alert.status,
      confirmations: String(alert.confirmations)
    };
    Object.keys(fields).forEach(function (name) {
      var el = page.querySelector('[data-alert-field="' + name + '"]');
      if (el) el.textContent = fields[name];
    });
    var bodyEl = page.querySelector('[data-alert-field="body"]');
    if (bodyEl) bodyEl.innerHTML = alert.body_html || "";
    if (notice) {
      notice.hidden = false;
      notice.textContent = message.type === "alert.retracted"
        ? "This alert was just retracted. Reload the page for the full history."
        : message.type === "alert.expired" ? "This alert has just expired."
        : "This alert was just updated.";
    }
  }

  window.engagementLive = {
    lastId: function () { return lastId; },
    subscribe: function (topic) { send({ type: "subscribe", topic: topic, since: lastId }); },
    reconnect: function () { if (socket) socket.close(); else connect(); },
    /* Close the socket and stay offline until start() (a page may pause live updates). */
    stop: function () {
      stopped = true;
      clearTimeout(timer);
      if (socket) socket.close();
      setState("offline");
    },
    start: function () {
      if (!stopped) return;
      stopped = false;
      connect();
    }
  };

  window.addEventListener("pagehide", function () { stopped = true; if (socket) socket.close(); });
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) { stopped = false; connect(); }
  });
  connect();
})();
