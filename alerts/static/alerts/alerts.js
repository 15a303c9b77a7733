/*
 * Alert maps (on django-leaflet's bundled Leaflet): the live alert layer of feeds and of the
 * neighborhood page, one alert's area on its page, and the area drawer of the staff form.
 * Data comes from json_script elements named by data-* attributes on the map's wrapper.
 */
(function () {
  "use strict";

  var COLORS = { info: "#1d4ed8", advisory: "#a15c00", warning: "#c2410c", emergency: "#b42318" };

  function esc(text) {
    return String(text == null ? "" : text)
      .replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;").replace(/'/g, "&#39;");
  }

  function readJson(id) {
    var el = id && document.getElementById(id);
    if (!el) return null;
    try {
      var value = JSON.parse(el.textContent);
      return typeof value === "string" ? JSON.parse(value) : value;
    } catch (err) {
      return null;
    }
  }

  function frameOf(map) {
    var container = map.getContainer();
    return (container.closest && container.closest("[data-map]")) || container.parentNode;
  }

  function prepare(map, label) {
    var container = map.getContainer();
    var frame = frameOf(map);
    container.setAttribute("role", "region");
    container.setAttribute("aria-roledescription", "map");
    container.setAttribute("aria-label", frame.getAttribute("data-label") || label);
    if (container.tabIndex < 0) container.tabIndex = 0;
    map.options.zoomSnap = 0.5;
    return frame;
  }

  function style(alert) {
    var color = COLORS[alert.severity] || COLORS.info;
    return {
      color: color, weight: alert.severity === "emergency" ? 3 : 2, opacity: 0.95,
      fillColor: color, fillOpacity: alert.kind === "official" ? 0.22 : 0.14,
      dashArray: alert.kind === "official" ? null : "5 4"
    };
  }

  function popup(alert) {
    return '<strong><a href="' + esc(alert.url) + '">' + esc(alert.title) + "</a></strong><br>" +
      esc(alert.provenance) + " · " + esc(alert.category && alert.category.name);
  }

  /* Feeds and the neighborhood page: the active alerts, kept up to date live. */
  window.engagementAlertMap = function (map) {
    var frame = prepare(map, "Map of active alerts");
    var status = document.getElementById(frame.getAttribute("data-status"));
    var topics = (frame.getAttribute("data-live-topic") || "").split(/\s+/);
    var layers = {};
    var group = L.featureGroup().addTo(map);
    var boundary = readJson(frame.getAttribute("data-boundary"));
    var boundaryLayer = null;
    if (boundary) {
      boundaryLayer = L.geoJSON(boundary, {
        interactive: false,
        style: { color: "#4b5563", weight: 1.5, fillOpacity: 0.04, fillColor: "#9ca3af" }
      }).addTo(map);
    }

    function put(alert) {
      remove(alert.id);
      var layer = L.geoJSON(alert.area, { style: function () { return style(alert); } });
      layer.bindPopup(popup(alert));
      layer.bindTooltip(esc(alert.title), { sticky: true });
      layer.addTo(group);
      layers[alert.id] = layer;
    }

    function remove(id) {
      if (layers[id]) {
        group.removeLayer(layers[id]);
        delete layers[id];
      }
    }

    function say() {
      if (!status) return;
      var n = Object.keys(layers).length;
      status.textContent = n ? n + " active alert" + (n === 1 ? "" : "s") + " on the map." : "No active alerts on the map.";
    }

    (readJson(frame.getAttribute("data-alerts")) || []).forEach(put);
    var bounds = group.getBounds();
    if (bounds.isValid()) {
      if (boundaryLayer) bounds.extend(boundaryLayer.getBounds());
      map.fitBounds(bounds, { padding: [10, 10], maxZoom: 16 });
    } else if (boundaryLayer) {
      map.fitBounds(boundaryLayer.getBounds(), { padding: [10, 10] });
    }
    say();

    document.addEventListener("engagement:live", function (event) {
      var message = event.detail || {};
      if (!message.type || message.type.indexOf("alert.") !== 0) return;
      if (topics.indexOf(message.topic) === -1) return;
      var alert = message.data || {};
      if (alert.is_active === false && alert.status !== "retracted") remove(alert.id);
      else put(alert);
      say();
    });
  };

  /* One alert's area on its page. */
  window.engagementAlertArea = function (map) {
    var frame = prepare(map, "Map of the alert's area");
    var alert = readJson(frame.getAttribute("data-alert"));
    if (!alert) return;
    var layer = L.geoJSON(alert.area, { interactive: false, style: function () { return style(alert); } }).addTo(map);
    if (alert.point) L.circleMarker([alert.point.lat, alert.point.lon], { radius: 5, color: "#111827", interactive: false }).addTo(map);
    map.fitBounds(layer.getBounds(), { padding: [12, 12], maxZoom: 17 });
  };

  /* The staff form: draw a polygon (fills the GeoJSON input) or a circle (fills centre and radius). */
  window.engagementAreaDrawer = function (map) {
    var frame = prepare(map, "Map for drawing the notice's area");
    var area = document.getElementById(frame.getAttribute("data-area-input"));
    var lat = document.getElementById(frame.getAttribute("data-lat-input"));
    var lon = document.getElementById(frame.getAttribute("data-lon-input"));
    var radius = document.getElementById(frame.getAttribute("data-radius-input"));
    var status = document.getElementById(frame.getAttribute("data-status"));
    var outlines = frame.getAttribute("data-geojson-url");
    map.setView([39.9526, -75.1652], 11);
    if (outlines) {
      fetch(outlines, { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (data) {
        L.geoJSON(data, {
          style: { color: "#4b5563", weight: 1, fillOpacity: 0.04 },
          onEachFeature: function (feature, path) {
            path.bindTooltip(esc(feature.properties && feature.properties.name), { sticky: true });
          }
        }).addTo(map).bringToBack();
      }).catch(function () {});
    }
    if (!L.Control || !L.Control.Draw) {
      if (status) status.textContent = "Drawing is not available; paste GeoJSON or use the neighborhood list.";
      return;
    }
    var drawn = new L.FeatureGroup().addTo(map);
    map.addControl(new L.Control.Draw({
      draw: { polyline: false, rectangle: true, marker: false, circlemarker: false, polygon: { allowIntersection: false }, circle: true },
      edit: { featureGroup: drawn }
    }));

    function clearInputs() {
      if (area) area.value = "";
      if (lat) lat.value = "";
      if (lon) lon.value = "";
      if (radius) radius.value = "";
    }

    function fill(layer) {
      clearInputs();
      if (layer instanceof L.Circle) {
        var c = layer.getLatLng();
        if (lat) lat.value = c.lat.toFixed(6);
        if (lon) lon.value = c.lng.toFixed(6);
        if (radius) radius.value = String(Math.round(layer.getRadius()));
        if (status) status.textContent = "Circle of " + Math.round(layer.getRadius()) + " m drawn; its centre and radius are filled in.";
      } else {
        if (area) area.value = JSON.stringify(layer.toGeoJSON().geometry);
        if (status) status.textContent = "Area drawn; the GeoJSON field is filled in.";
      }
    }

    map.on(L.Draw.Event.CREATED, function (event) {
      drawn.clearLayers();
      drawn.addLayer(event.layer);
      fill(event.layer);
    });
    map.on(L.Draw.Event.EDITED, function (event) { event.layers.eachLayer(fill); });
    map.on(L.Draw.Event.DELETED, function () {
      clearInputs();
      if (status) status.textContent = "Area removed.";
    });
  };
})();
