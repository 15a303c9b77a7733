/*
 * Maps of the case desk in the Wagtail admin, drawn on django-leaflet's bundled Leaflet.
 *
 * Templates render {% engagement_map "name" "engagementDeskMap" %} inside a wrapper element
 * carrying data-map and these attributes:
 *   data-src        URL of a GeoJSON FeatureCollection of cases (the desk's filtered list);
 *                   the page's query string is added, so the map follows the list's filters
 *   data-point      id of a json_script element holding {lat, lon, label} (one case's page)
 *   data-status     id of a live region for loading messages and counts
 *   data-label      aria-label of the map
 *
 * The list's filters refresh the results without a page load (Wagtail's "w-swap" controller,
 * which also updates the address); the map reloads its points after each refresh.
 */
(function () {
  "use strict";

  var COLORS = { open: "#b91c1c", acknowledged: "#c2410c", in_progress: "#1d4ed8", scheduled: "#6d28d9", closed: "#4b5563" };
  var OVERDUE = "#7f1d1d";

  function escapeHtml(text) {
    return String(text == null ? "" : text)
      .replace(/&/g, "&amp;")
      .replace(/</g, "&lt;")
      .replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;")
      .replace(/'/g, "&#39;");
  }

  function readJsonScript(id) {
    var el = id && document.getElementById(id);
    if (!el) return null;
    try {
      return JSON.parse(el.textContent);
    } catch (err) {
      return null;
    }
  }

  function frameOf(map) {
    var container = map.getContainer();
    return (container.closest && container.closest("[data-map]")) || container.parentNode;
  }

  function setStatus(frame, text, isError) {
    var id = frame.getAttribute("data-status");
    var el = id && document.getElementById(id);
    if (!el) return;
    el.textContent = text || "";
    el.classList.toggle("is-error", !!isError);
  }

  function prepare(map, frame) {
    var container = map.getContainer();
    container.setAttribute("role", "region");
    container.setAttribute("aria-roledescription", "map");
    container.setAttribute("aria-label", frame.getAttribute("data-label") || "Map of cases");
    if (map.keyboard) map.keyboard.enable();
    if (container.tabIndex < 0) container.tabIndex = 0;
  }

  function marker(feature, latlng) {
    var props = feature.properties || {};
    var color = props.overdue ? OVERDUE : (COLORS[props.status] || COLORS.open);
    return L.circleMarker(latlng, {
      radius: props.overdue ? 8 : 6,
      color: color,
      weight: props.overdue ? 3 : 1.5,
      fillColor: color,
      fillOpacity: 0.6
    });
  }

  function popup(feature, layer) {
    var props = feature.properties || {};
    layer.bindPopup(
      '<a href="' + escapeHtml(props.url) + '"><strong>' + escapeHtml(props.tracking_number) + "</strong></a><br>" +
      escapeHtml(props.service) + " · " + escapeHtml(props.status_label) + (props.overdue ? " · overdue" : "")
    );
  }

  function loadCases(map, frame, layerHolder) {
    var src = frame.getAttribute("data-src");
    var query = window.location.search.replace(/^\?/, "");
    var url = src + (query ? (src.indexOf("?") >= 0 ? "&" : "?") + query : "");
    setStatus(frame, "Loading the cases on the map…");
    fetch(url, { headers: { Accept: "application/geo+json, application/json" }, credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (data) {
        if (layerHolder.layer) map.removeLayer(layerHolder.layer);
        layerHolder.layer = L.geoJSON(data, { pointToLayer: marker, onEachFeature: popup }).addTo(map);
        var bounds = layerHolder.layer.getBounds();
        if (bounds.isValid()) map.fitBounds(bounds, { padding: [12, 12], maxZoom: 16 });
        var count = (data.features || []).length;
        var text = count === 1 ? "1 case on the map." : count + " cases on the map.";
        if (data.truncated) text += " Only the first " + count + " are shown: narrow the filters to see the rest.";
        setStatus(frame, text);
      })
      .catch(function () {
        setStatus(frame, "The map could not load the cases; the list has them all.", true);
      });
  }

  /* The neighborhoods' outlines, drawn by neighborhoods/maps.js. */
  function outlines(map, frame) {
    var url = frame.getAttribute("data-geojson-url");
    if (!url || !window.engagementOutlines) return;
    window.engagementOutlines(map, url).catch(function () { /* the cases alone still show */ });
  }

  window.engagementDeskMap = function (map) {
    var frame = frameOf(map);
    prepare(map, frame);
    outlines(map, frame);
    var point = readJsonScript(frame.getAttribute("data-point"));
    if (point && isFinite(point.lat) && isFinite(point.lon)) {
      var latlng = L.latLng(point.lat, point.lon);
      L.marker(latlng, { title: point.label || "", alt: point.label || "", keyboard: false }).addTo(map);
      map.setView(latlng, 16);
      return;
    }
    if (!frame.getAttribute("data-src")) return;
    var holder = { layer: null };
    loadCases(map, frame, holder);
    document.addEventListener("w-swap:success", function () {
      loadCases(map, frame, holder);
    });
  };
})();
