/*
 * 311 pages (see docs/live.md for the live layer):
 *
 * - The case page follows "case:<tracking number>" (its data-live-topic, which alerts/live.js
 *   subscribes to); the case panel of a thread page hears the same events on the thread's own
 *   "thread:<id>" topic, which the thread page subscribes to already. Both update the status
 *   badge, the supporters and the public timeline, and tell screen readers (#live-announcer).
 * - Lists of requests (the tracker and "my requests" follow "cases", every case in the city; a
 *   neighborhood page's panel hears its "neighborhood:<slug>" topic): each listed row's status
 *   and supporters change in place; the tracker counts newly filed requests with a link to them.
 * - Maps: the tracker's requests, a request's pin.
 * - The report and escalation forms: the questions of a newly chosen type, and open requests of
 *   the same type near the pin (with "Me too" instead of filing again).
 *
 * Every form works without this script; everything from the server goes in as text.
 */
(function () {
  "use strict";

  if (window.engagementCases) return;
  window.engagementCases = { version: 1 };

  var STATUS_COLORS = {
    open: "#b42318", acknowledged: "#a15c00", in_progress: "#1d4ed8", scheduled: "#6d28d9", closed: "#4b5563"
  };

  /* ---------- helpers ---------- */

  function announce(text) {
    var region = document.getElementById("live-announcer");
    if (!region) return;
    region.textContent = "";
    window.setTimeout(function () { region.textContent = text; }, 50);
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text != null) node.textContent = String(text);
    return node;
  }

  function link(href, text, className) {
    var a = el("a", className, text);
    a.href = href;
    return a;
  }

  /* The content of a json_script element; a JSON string inside is parsed once more. */
  function readJson(id) {
    var node = id && document.getElementById(id);
    if (!node) return null;
    try {
      var value = JSON.parse(node.textContent);
      return typeof value === "string" ? JSON.parse(value) : value;
    } catch (err) {
      return null;
    }
  }

  var statusLabels = readJson("case-status-labels") || {};

  function statusLabel(code) {
    return statusLabels[code] || code || "";
  }

  function when(iso) {
    if (!iso) return "";
    var date = new Date(iso);
    if (isNaN(date.getTime())) return "";
    return date.toLocaleString(undefined, { month: "short", day: "numeric", year: "numeric", hour: "numeric", minute: "2-digit" });
  }

  function day(iso) {
    if (!iso) return "";
    var date = new Date(iso);
    if (isNaN(date.getTime())) return "";
    return date.toLocaleDateString(undefined, { month: "short", day: "numeric", year: "numeric" });
  }

  function time(iso, text) {
    var node = el("time", null, text);
    node.setAttribute("datetime", iso || "");
    return node;
  }

  function escapeHtml(text) {
    return String(text == null ? "" : text)
      .replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;").replace(/'/g, "&#39;");
  }

  /* ---------- a case, shown on its page or in a thread's panel ---------- */

  /* The same markup as engagement/includes/status_badge.html. */
  function fillLabels(node, data) {
    if (!node) return;
    node.textContent = "";
    var badge = el("span", "badge case-status status-" + data.status, data.status_label || statusLabel(data.status));
    badge.setAttribute("data-case-status", "");
    node.appendChild(badge);
    if (data.status === "closed" && data.resolution_label) {
      node.appendChild(document.createTextNode(" "));
      node.appendChild(el("span", "badge case-resolution", data.resolution_label));
    }
    if (data.is_overdue) {
      node.appendChild(document.createTextNode(" "));
      node.appendChild(el("span", "badge warning", "Overdue"));
    }
  }

  /* The same markup as engagement/includes/timeline.html. */
  function noteNode(note) {
    var li = el("li", "timeline-item kind-" + note.kind + " is-new");
    li.setAttribute("data-note-id", String(note.id));
    var head = el("p", "timeline-head");
    var title = note.kind === "status" ? statusLabel(note.status_to)
      : note.kind === "created" ? "Filed" : note.kind_label;
    head.appendChild(el("strong", null, title));
    head.appendChild(document.createTextNode(" · "));
    head.appendChild(time(note.created_at, note.created_label || when(note.created_at)));
    if (note.by_staff) {
      head.appendChild(document.createTextNode(" "));
      head.appendChild(el("span", "badge official", "City"));
    }
    li.appendChild(head);
    if (note.text) {
      var text = el("p", "timeline-text");
      note.text.split("\n").forEach(function (line, index) {
        if (index) text.appendChild(el("br"));
        text.appendChild(document.createTextNode(line));
      });
      li.appendChild(text);
    }
    return li;
  }

  function addNote(root, note) {
    var list = root.querySelector("[data-case-timeline]");
    if (!list || !note || !note.is_public) return false;
    if (list.querySelector('[data-note-id="' + note.id + '"]')) return false;
    list.appendChild(noteNode(note));
    return true;
  }

  function setSupporters(root, count) {
    var nodes = root.querySelectorAll("[data-case-supporters]");
    for (var i = 0; i < nodes.length; i++) nodes[i].textContent = String(count);
    var plurals = root.querySelectorAll("[data-case-supporters-plural]");
    for (var j = 0; j < plurals.length; j++) plurals[j].textContent = count === 1 ? "" : "s";
  }

  function describe(data) {
    var text = "Request " + data.tracking_number + " is now " + (data.status_label || statusLabel(data.status)).toLowerCase();
    if (data.status === "closed" && data.resolution_label) text += ": " + data.resolution_label.toLowerCase();
    return text + ".";
  }

  function updateCase(root, type, data, isPage) {
    var before = root.getAttribute("data-status");
    root.setAttribute("data-status", data.status);
    fillLabels(root.querySelector("[data-case-labels]"), data);
    var statusText = root.querySelector("[data-case-status-text]");
    if (statusText) statusText.textContent = data.status_label || statusLabel(data.status);
    setSupporters(root, data.supporter_count);
    var added = addNote(root, data.note);
    if (type === "case.updated" && before !== data.status) {
      var message = describe(data);
      var notice = root.querySelector("[data-case-notice]");
      if (notice) {
        notice.textContent = message + " ";
        if (isPage) notice.appendChild(link(window.location.pathname, "Reload the page for the full picture"));
        notice.hidden = false;
      }
      announce(message);
    } else if (added && data.note) {
      announce("New update on request " + data.tracking_number + ".");
    }
  }

  /* A thread's panel that had no case yet: the case just filed from it. */
  function fillPanel(panel, data) {
    panel.setAttribute("data-tracking-number", data.tracking_number);
    panel.hidden = false;
    var placeholder = panel.querySelector("[data-case-placeholder]");
    if (placeholder) placeholder.parentNode.removeChild(placeholder);
    var heading = panel.querySelector("h2");
    if (heading) {
      heading.textContent = "311 request ";
      heading.appendChild(link(data.url, data.tracking_number, "tracking-number"));
    }
    var labels = el("p", "case-labels");
    labels.setAttribute("data-case-labels", "");
    panel.appendChild(labels);
    var summary = el("p", "small");
    summary.appendChild(document.createTextNode(data.service_name + " · " + data.department));
    if (data.expected_at) {
      summary.appendChild(document.createTextNode(" · expected by "));
      summary.appendChild(time(data.expected_at, day(data.expected_at)));
    }
    summary.appendChild(document.createTextNode(" · "));
    var count = el("span", null, String(data.supporter_count));
    count.setAttribute("data-case-supporters", "");
    summary.appendChild(count);
    summary.appendChild(document.createTextNode(" supporter"));
    var plural = el("span", null, data.supporter_count === 1 ? "" : "s");
    plural.setAttribute("data-case-supporters-plural", "");
    summary.appendChild(plural);
    panel.appendChild(summary);
    var details = el("details", "case-timeline");
    details.open = true;
    details.appendChild(el("summary", null, "Timeline"));
    var list = el("ol", "timeline");
    list.setAttribute("data-case-timeline", "");
    details.appendChild(list);
    panel.appendChild(details);
    var more = el("p", "small");
    more.appendChild(link(data.url, "Follow the request"));
    panel.appendChild(more);
    fillLabels(labels, data);
    addNote(panel, data.note);
    announce("This discussion is now 311 request " + data.tracking_number + ".");
  }

  /* ---------- lists of cases: the tracker, "my requests", a neighborhood's panel ---------- */

  /* Every listed row of the case, wherever the event came from ("cases", a neighborhood). */
  function updateRows(data) {
    var rows = document.querySelectorAll(".case-row[data-tracking-number]");
    var changed = false;
    for (var i = 0; i < rows.length; i++) {
      var row = rows[i];
      if (row.getAttribute("data-tracking-number") !== data.tracking_number) continue;
      var before = row.className.match(/status-(\S+)/);
      if (before && before[1] !== data.status) changed = true;
      row.className = row.className.replace(/status-\S+/, "status-" + data.status)
        .replace(/\s*is-overdue/, "") + (data.is_overdue ? " is-overdue" : "");
      fillLabels(row.querySelector("[data-case-labels]"), data);
      var supporters = row.querySelector("[data-case-supporters]");
      if (supporters) supporters.textContent = String(data.supporter_count);
    }
    return changed;
  }

  /* New requests are counted, not inserted: they may not match the tracker's filters or page. */
  var tracker = document.querySelector("[data-case-tracker]");
  var filedSince = {};
  function countFiled(data) {
    var notice = document.querySelector("[data-tracker-notice]");
    if (!tracker || !notice || filedSince[data.tracking_number]) return;
    if (document.querySelector('.case-row[data-tracking-number="' + data.tracking_number + '"]')) return;
    filedSince[data.tracking_number] = true;
    var count = Object.keys(filedSince).length;
    notice.textContent = (count === 1 ? "A new request was" : count + " new requests were") +
      " filed since this page opened. ";
    notice.appendChild(link(window.location.pathname + window.location.search, "Show the latest"));
    notice.hidden = false;
    announce(count === 1 ? "A new request was filed." : count + " new requests were filed.");
  }

  if (document.querySelector(".case-row[data-tracking-number]") || tracker) {
    document.addEventListener("engagement:live", function (event) {
      var message = event.detail || {};
      if (!message.type || message.type.indexOf("case.") !== 0) return;
      var data = message.data || {};
      if (!data.tracking_number) return;
      if (message.type === "case.created") countFiled(data);
      else if (updateRows(data) && tracker) announce(describe(data));
    });
  }

  var casePage = document.querySelector("[data-case-page]");
  var panel = document.querySelector("[data-case-panel]");

  if (casePage || panel) {
    document.addEventListener("engagement:live", function (event) {
      var message = event.detail || {};
      if (!message.type || message.type.indexOf("case.") !== 0) return;
      var data = message.data || {};
      var topic = message.topic || "";
      if (casePage && topic === "case:" + casePage.getAttribute("data-case-page")) {
        updateCase(casePage, message.type, data, true);
      }
      if (panel && topic === "thread:" + panel.getAttribute("data-thread")) {
        var number = panel.getAttribute("data-tracking-number");
        if (!number && message.type === "case.created") fillPanel(panel, data);
        else if (number === data.tracking_number) updateCase(panel, message.type, data, false);
      }
    });
  }

  /* ---------- maps ---------- */

  function prepare(map, label) {
    var container = map.getContainer();
    var frame = (container.closest && container.closest("[data-map]")) || container.parentNode;
    container.setAttribute("role", "region");
    container.setAttribute("aria-roledescription", "map");
    container.setAttribute("aria-label", frame.getAttribute("data-label") || label);
    if (container.tabIndex < 0) container.tabIndex = 0;
    map.options.zoomSnap = 0.5;
    return frame;
  }

  /* The neighborhoods' outlines (neighborhoods/maps.js draws them); fitted when no pin is shown. */
  function outlines(map, frame, fitIfEmpty) {
    var url = frame.getAttribute("data-geojson-url");
    if (!url || !window.engagementOutlines) return;
    window.engagementOutlines(map, url)
      .then(function (layer) {
        if (fitIfEmpty && layer.getBounds().isValid()) map.fitBounds(layer.getBounds(), { padding: [8, 8] });
      })
      .catch(function () { /* the pins alone are enough */ });
  }

  /* The tracker and "my requests": a dot per request, coloured by status. */
  window.engagementCaseMap = function (map) {
    var frame = prepare(map, "Map of requests");
    var status = document.getElementById(frame.getAttribute("data-status"));
    var cases = readJson(frame.getAttribute("data-cases")) || [];
    var group = L.featureGroup().addTo(map);
    cases.forEach(function (item) {
      var marker = L.circleMarker([item.lat, item.lon], {
        radius: 7, weight: 2, color: "#111827", fillOpacity: 0.85,
        fillColor: STATUS_COLORS[item.status] || "#4b5563"
      });
      marker.bindPopup('<strong><a href="' + escapeHtml(item.url) + '">' + escapeHtml(item.tracking_number) +
        "</a></strong><br>" + escapeHtml(item.service_name) + " · " + escapeHtml(item.status_label) +
        (item.is_overdue ? " · overdue" : ""));
      marker.bindTooltip(escapeHtml(item.tracking_number + " · " + item.service_name));
      marker.addTo(group);
    });
    var bounds = group.getBounds();
    if (bounds.isValid()) map.fitBounds(bounds, { padding: [16, 16], maxZoom: 16 });
    outlines(map, frame, !bounds.isValid());
    if (status) {
      status.textContent = cases.length
        ? cases.length + " request" + (cases.length === 1 ? "" : "s") + " of this page on the map."
        : "No request of this page has a pin.";
    }
  };

  /* A request's pin on its page, in its neighborhood's outline. */
  window.engagementCasePin = function (map) {
    var frame = prepare(map, "Map of the request");
    var lat = parseFloat(frame.getAttribute("data-pin-lat"));
    var lon = parseFloat(frame.getAttribute("data-pin-lon"));
    var boundary = readJson(frame.getAttribute("data-boundary"));
    if (boundary) {
      L.geoJSON(boundary, {
        interactive: false,
        style: { color: "#1d4ed8", weight: 2, fillOpacity: 0.08 }
      }).addTo(map);
    }
    if (isFinite(lat) && isFinite(lon)) {
      L.marker([lat, lon], { keyboard: false, title: "Where it is", alt: "Where it is" }).addTo(map);
      map.setView([lat, lon], 16);
    }
  };

  /* ---------- the report and escalation forms ---------- */

  function setupForm(form) {
    var typeSelect = form.querySelector("select[name=service_type]");
    var questionsUrl = form.getAttribute("data-questions-url");
    var refresh = form.querySelector("[data-questions-refresh]");
    if (refresh) refresh.hidden = true;

    if (typeSelect && questionsUrl) {
      typeSelect.addEventListener("change", function () {
        var code = typeSelect.value;
        var block = form.querySelector("[data-questions]");
        if (!block) return;
        if (!code) {
          block.textContent = "";
          return;
        }
        fetch(questionsUrl + "?service_type=" + encodeURIComponent(code), { credentials: "same-origin" })
          .then(function (response) { return response.text(); })
          .then(function (html) {
            var doc = new DOMParser().parseFromString(html, "text/html");
            var fresh = doc.querySelector("[data-questions]");
            if (!fresh) return;
            var current = form.querySelector("[data-questions]");
            current.parentNode.replaceChild(document.importNode(fresh, true), current);
            var name = typeSelect.options[typeSelect.selectedIndex].text;
            announce("The questions about " + name + " are shown below the type.");
            checkNearby(true);
          })
          .catch(function () { if (refresh) refresh.hidden = false; });
      });
    }

    var nearbyUrl = form.getAttribute("data-nearby-url");
    var list = form.querySelector("[data-nearby-list]");
    var status = form.querySelector("[data-nearby-status]");
    var check = form.querySelector("[data-nearby-check]");
    var latInput = form.querySelector("input[name=lat]");
    var lonInput = form.querySelector("input[name=lon]");
    var channel = form.getAttribute("data-channel");
    var lastKey = "";
    var timer = null;

    function render(results) {
      list.textContent = "";
      results.forEach(function (item) {
        var data = item.case || item;
        var li = el("li", "nearby-item");
        li.setAttribute("data-tracking-number", data.tracking_number);
        var span = el("span");
        var a = link(data.url, "");
        a.appendChild(el("span", "tracking-number", data.tracking_number));
        a.appendChild(document.createTextNode(" · " + data.service_name));
        span.appendChild(a);
        span.appendChild(document.createTextNode(" "));
        var labels = el("span");
        fillLabels(labels, data);
        span.appendChild(labels);
        var metres = item.distance_m != null ? item.distance_m : data.distance_m;
        var facts = " · " + (metres >= 1000 ? (metres / 1000).toFixed(1) + " km" : Math.round(metres) + " m") +
          " away · filed " + day(data.created_at) + " · " + data.supporter_count + " supporter" + (data.supporter_count === 1 ? "" : "s");
        span.appendChild(el("span", "small muted", facts));
        li.appendChild(span);
        var you = item.you || {};
        if (channel === "web" && (you.reported || you.supported)) {
          li.appendChild(el("span", "small badge info", you.reported ? "You reported this one" : "You said “me too” already"));
        } else if (channel === "web") {
          var button = el("button", "small secondary", "Me too");
          button.type = "submit";
          button.setAttribute("formaction", data.url + "support/");
          button.setAttribute("formmethod", "post");
          button.setAttribute("formenctype", "application/x-www-form-urlencoded");
          button.formNoValidate = true;
          button.appendChild(el("span", "visually-hidden", ": add my support to " + data.tracking_number + " instead of filing"));
          li.appendChild(button);
        } else {
          li.appendChild(el("span", "small", "Tell them it is already reported as " + data.tracking_number + "."));
        }
        list.appendChild(li);
      });
      var n = results.length;
      status.textContent = n
        ? n + " open request" + (n === 1 ? "" : "s") + " of this type nearby. If " + (n === 1 ? "it is" : "one is") +
          " the same problem, " + (channel === "web" ? "say “me too” instead of filing again: it counts just as much." : "there is no need to file it again.")
        : "No open request of this type nearby. Go ahead!";
    }

    function checkNearby(force) {
      if (!nearbyUrl || !list || !status || !typeSelect || !latInput || !lonInput) return;
      var code = typeSelect.value;
      var lat = parseFloat(String(latInput.value).replace(",", "."));
      var lon = parseFloat(String(lonInput.value).replace(",", "."));
      if (!code || !isFinite(lat) || !isFinite(lon)) return;
      var key = code + "|" + lat.toFixed(6) + "|" + lon.toFixed(6);
      if (key === lastKey && !force) return;
      lastKey = key;
      var url = nearbyUrl + "?type=" + encodeURIComponent(code) + "&lat=" + lat + "&lon=" + lon;
      ask(url, key, 1);
    }

    /* One more try after a second when the server was busy or the network hiccuped. */
    function ask(url, key, retries) {
      function again() {
        if (retries > 0 && key === lastKey) setTimeout(function () { ask(url, key, retries - 1); }, 1000);
      }
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          if (response.ok) return response.json();
          if (response.status === 429 || response.status >= 500) again();
          return null;
        })
        .then(function (data) {
          if (!data || key !== lastKey) return;
          render(Array.isArray(data) ? data : (data.results || []));
        })
        .catch(again); /* the button still works meanwhile */
    }

    function later() {
      clearTimeout(timer);
      timer = setTimeout(function () { checkNearby(false); }, 400);
    }

    if (check) {
      check.addEventListener("click", function (event) {
        if (!typeSelect || !typeSelect.value || !latInput.value || !lonInput.value) return;
        event.preventDefault();
        checkNearby(true);
      });
    }
    [latInput, lonInput].forEach(function (input) {
      if (input) input.addEventListener("change", later);
    });
    var mapFrame = form.querySelector("[data-map]");
    if (mapFrame) {
      ["click", "keyup", "mouseup", "touchend"].forEach(function (name) {
        mapFrame.addEventListener(name, later);
      });
    }
    var locate = form.querySelector("#use-my-location");
    if (locate) locate.addEventListener("click", function () { setTimeout(later, 1500); });
    later();
  }

  var forms = document.querySelectorAll("[data-case-form]");
  for (var i = 0; i < forms.length; i++) setupForm(forms[i]);
})();
