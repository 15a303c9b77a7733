/*
 * Maps of the public pages, drawn on django-leaflet's bundled Leaflet (no build step).
 *
 * Templates render a container with {% engagement_map "name" "callbackName" %} inside a
 * wrapper element carrying data-map and data-* settings; django-leaflet then calls one of the
 * global callbacks below with (map, options). Data comes from data-attributes and from
 * {{ value|json_script:"id" }} blocks, never from inline JSON.
 *
 * Wrapper attributes (all optional):
 *   data-label            aria-label of the map
 *   data-describedby      id of the element that explains how to use the map
 *   data-attribution      text to add to Leaflet's attribution control (the pages show the
 *                         boundary attribution in the figure caption instead)
 *   data-status           id of a live region for loading and error messages
 *   data-geojson-url      URL of the boundaries FeatureCollection (city map, picker)
 *   data-boundary         id of a json_script element holding one boundary (GeoJSON)
 *   data-lat-input,
 *   data-lon-input        ids of the picker's latitude and longitude inputs
 *   data-locate-button    id of the picker's "Use my location" button (shown only with JS)
 *   data-marker-label     the picker marker's name (default "Your home location")
 */
(function () {
  "use strict";

  var BOUNDARY_STYLE = { color: "#1d4ed8", weight: 2, opacity: 1, fillColor: "#1d4ed8", fillOpacity: 0.18 };
  var CITY_STYLE = { color: "#1e3a8a", weight: 1.5, opacity: 0.9, fillColor: "#3b82f6", fillOpacity: 0.12 };
  var CITY_HOVER = { weight: 3, fillOpacity: 0.35 };
  var OUTLINE_STYLE = { color: "#4b5563", weight: 1, opacity: 0.8, fillColor: "#9ca3af", fillOpacity: 0.06 };
  var PICKED_ZOOM = 16;

  function escapeHtml(text) {
    return String(text == null ? "" : text)
      .replace(/&/g, "&amp;")
      .replace(/</g, "&lt;")
      .replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;")
      .replace(/'/g, "&#39;");
  }

  /* The parsed content of a json_script element; a JSON string inside is parsed once more,
     so both {{ dict|json_script }} and {{ json_text|json_script }} work. */
  function readJsonScript(id) {
    var el = id && document.getElementById(id);
    if (!el) return null;
    try {
      var value = JSON.parse(el.textContent);
      if (typeof value === "string") value = JSON.parse(value);
      return value;
    } catch (err) {
      return null;
    }
  }

  function frameOf(map) {
    var container = map.getContainer();
    return (container.closest && container.closest("[data-map]")) || container.parentNode;
  }

  function statusOf(frame) {
    var id = frame.getAttribute("data-status");
    var el = id ? document.getElementById(id) : frame.querySelector("[data-map-status]");
    return {
      set: function (text, isError) {
        if (!el) return;
        el.textContent = text || "";
        el.classList.toggle("is-error", !!isError);
      }
    };
  }

  /* What every map needs: a name for assistive technology, keyboard focus and attribution. */
  function prepare(map, options, fallbackLabel, role) {
    var container = map.getContainer();
    var frame = frameOf(map);
    container.setAttribute("role", role || "region");
    container.setAttribute("aria-roledescription", "map");
    container.setAttribute("aria-label", frame.getAttribute("data-label") || fallbackLabel);
    var describedBy = frame.getAttribute("data-describedby");
    if (describedBy) container.setAttribute("aria-describedby", describedBy);
    if (map.keyboard) map.keyboard.enable();
    if (container.tabIndex < 0) container.tabIndex = 0;
    // Without background tiles, half zoom levels let boundaries fill the map; with tiles, whole
    // levels keep them sharp.
    var layers = options && options.djoptions && options.djoptions.layers;
    if (!layers || !layers.length) map.options.zoomSnap = 0.5;
    var attribution = frame.getAttribute("data-attribution");
    if (attribution && map.attributionControl) {
      map.attributionControl.addAttribution(escapeHtml(attribution));
    }
    return frame;
  }

  function fit(map, layer, maxZoom) {
    var bounds = layer && layer.getBounds ? layer.getBounds() : null;
    if (bounds && bounds.isValid()) {
      map.fitBounds(bounds, { padding: [8, 8], maxZoom: maxZoom || 17 });
      return true;
    }
    return false;
  }

  function loadBoundaries(url) {
    return fetch(url, { headers: { Accept: "application/geo+json, application/json" }, credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      });
  }

  /* The city map: every neighborhood, each polygon a link to its page. */
  /* Shapes answer the mouse, but the keyboard goes to the map itself and to the list of links:
     159 tab stops inside a map would trap keyboard users. */
  function untabbable(layer) {
    layer.eachLayer(function (shape) {
      var element = shape.getElement && shape.getElement();
      if (element) {
        element.setAttribute("tabindex", "-1");
        element.setAttribute("focusable", "false");
      }
    });
  }

  /* Every neighborhood's outline on ``map``, named on hover, out of the tab order and behind what
     else the map shows (the demo has no background tiles). Resolves to the layer. Other apps'
     maps (the 311 tracker, the case desk) call it too. */
  function addOutlines(map, url) {
    return loadBoundaries(url).then(function (data) {
      var layer = L.geoJSON(data, {
        style: function () { return OUTLINE_STYLE; },
        onEachFeature: function (feature, path) {
          var props = feature.properties || {};
          path.bindTooltip(escapeHtml(props.name), { sticky: true, direction: "top" });
        }
      }).addTo(map);
      untabbable(layer);
      layer.bringToBack();
      return layer;
    });
  }
  window.engagementOutlines = addOutlines;

  window.engagementCityMap = function (map, options) {
    var frame = prepare(map, options, "Map of all neighborhoods");
    var status = statusOf(frame);
    var url = frame.getAttribute("data-geojson-url");
    if (!url) return;
    status.set("Loading the neighborhood boundaries…");
    loadBoundaries(url)
      .then(function (data) {
        var layer = L.geoJSON(data, {
          style: function () { return CITY_STYLE; },
          onEachFeature: function (feature, path) {
            var props = feature.properties || {};
            path.bindTooltip(escapeHtml(props.name), { sticky: true, direction: "top" });
            path.on("mouseover", function () { path.setStyle(CITY_HOVER); });
            path.on("mouseout", function () { layer.resetStyle(path); });
            path.on("click", function () {
              if (props.url) window.location.assign(props.url);
            });
          }
        }).addTo(map);
        untabbable(layer);
        fit(map, layer, 15);
        var count = (data.features || []).length;
        status.set(count + " neighborhoods on the map. Select one to open its page, or use the list below.");
      })
      .catch(function () {
        status.set("The map could not load the boundaries. Use the list of neighborhoods below.", true);
      });
  };

  /* One neighborhood's boundary, from a json_script element. */
  window.engagementBoundaryMap = function (map, options) {
    var frame = prepare(map, options, "Map of the neighborhood boundary");
    var geometry = readJsonScript(frame.getAttribute("data-boundary"));
    if (!geometry) {
      statusOf(frame).set("This neighborhood has no boundary to show.", true);
      return;
    }
    var layer = L.geoJSON(geometry, { style: function () { return BOUNDARY_STYLE; }, interactive: false }).addTo(map);
    fit(map, layer, 17);
  };

  /* The home location picker: clicking, tapping, or Enter on the focused map (at its centre)
     places the marker and fills the latitude and longitude inputs, which stay editable. */
  window.engagementHomePicker = function (map, options) {
    var frame = prepare(map, options, "Map for choosing your home location", "application");
    var status = statusOf(frame);
    var latInput = document.getElementById(frame.getAttribute("data-lat-input"));
    var lonInput = document.getElementById(frame.getAttribute("data-lon-input"));
    var locateButton = document.getElementById(frame.getAttribute("data-locate-button"));
    var container = map.getContainer();
    var marker = null;

    function readInputs() {
      if (!latInput || !lonInput) return null;
      var lat = parseFloat(String(latInput.value).replace(",", "."));
      var lon = parseFloat(String(lonInput.value).replace(",", "."));
      if (!isFinite(lat) || !isFinite(lon) || Math.abs(lat) > 90 || Math.abs(lon) > 180) return null;
      return L.latLng(lat, lon);
    }

    function showMarker(latlng) {
      if (marker) {
        marker.setLatLng(latlng);
        return;
      }
      marker = L.marker(latlng, {
        draggable: true,
        autoPan: true,
        keyboard: false, // the map itself takes the keys; the inputs hold the value
        title: frame.getAttribute("data-marker-label") || "Your home location",
        alt: frame.getAttribute("data-marker-label") || "Your home location"
      }).addTo(map);
      marker.on("dragend", function () { place(marker.getLatLng(), false); });
    }

    function place(latlng, pan) {
      latlng = latlng.wrap();
      showMarker(latlng);
      if (latInput) latInput.value = latlng.lat.toFixed(6);
      if (lonInput) lonInput.value = latlng.lng.toFixed(6);
      if (pan) map.panTo(latlng);
      status.set(
        "Marker placed at latitude " + latlng.lat.toFixed(5) + ", longitude " + latlng.lng.toFixed(5) +
        ". Save to keep it."
      );
    }

    map.on("click", function (event) { place(event.latlng, false); });

    container.addEventListener("keydown", function (event) {
      if (event.key !== "Enter" || event.target !== container) return;
      event.preventDefault();
      place(map.getCenter(), false);
    });

    function fromInputs() {
      var latlng = readInputs();
      if (!latlng) return;
      showMarker(latlng);
      map.panTo(latlng);
    }
    if (latInput) latInput.addEventListener("change", fromInputs);
    if (lonInput) lonInput.addEventListener("change", fromInputs);

    if (locateButton && navigator.geolocation) {
      locateButton.hidden = false;
      locateButton.addEventListener("click", function () {
        locateButton.disabled = true;
        status.set("Finding your location…");
        navigator.geolocation.getCurrentPosition(
          function (position) {
            locateButton.disabled = false;
            var latlng = L.latLng(position.coords.latitude, position.coords.longitude);
            place(latlng, false);
            map.setView(latlng, PICKED_ZOOM);
          },
          function (error) {
            locateButton.disabled = false;
            var why = error && error.code === 1
              ? "Location access was not allowed."
              : "Your location could not be found.";
            status.set(why + " Click the map or type the coordinates instead.", true);
          },
          { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 }
        );
      });
    }

    // The neighborhood the saved home lies in, highlighted.
    var offered = readJsonScript(frame.getAttribute("data-boundary"));
    var offeredLayer = null;
    if (offered) {
      offeredLayer = L.geoJSON(offered, { style: function () { return BOUNDARY_STYLE; }, interactive: false }).addTo(map);
    }

    var start = readInputs();
    if (start) {
      showMarker(start);
      map.setView(start, PICKED_ZOOM - 1);
    } else if (offeredLayer) {
      fit(map, offeredLayer, 16);
    }

    // Every neighborhood's outline, for orientation (the demo has no background tiles).
    var url = frame.getAttribute("data-geojson-url");
    if (url) {
      addOutlines(map, url)
        .then(function (outlines) {
          if (!start && !offeredLayer) fit(map, outlines, 15);
        })
        .catch(function () {
          status.set("The neighborhood outlines could not be loaded; you can still place your home.", true);
        });
    }
  };
})();
