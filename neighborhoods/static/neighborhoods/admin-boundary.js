/* Draws the GeoJSON typed into a boundary field on a Leaflet map, and redraws it on change. */
(function () {
  "use strict";

  function setup(container) {
    var textarea = container.querySelector("textarea");
    var mapEl = container.querySelector(".engagement-boundary__map");
    var status = container.querySelector(".engagement-boundary__status");
    if (!textarea || !mapEl || typeof L === "undefined" || mapEl.dataset.ready) return;
    mapEl.dataset.ready = "1";
    var map = L.map(mapEl, { keyboard: true }).setView([39.9526, -75.1652], 11);
    var tileUrl = container.dataset.tileUrl;
    if (tileUrl) {
      L.tileLayer(tileUrl, { attribution: container.dataset.tileAttribution || "" }).addTo(map);
    }
    var layer = null;

    function draw() {
      var text = textarea.value.trim();
      if (layer) { map.removeLayer(layer); layer = null; }
      status.classList.remove("is-error");
      if (!text) { status.textContent = "No boundary yet: paste a GeoJSON Polygon or MultiPolygon."; return; }
      try {
        var geometry = JSON.parse(text);
        layer = L.geoJSON(geometry, { style: { color: "#1d4ed8", weight: 2, fillOpacity: 0.2 } }).addTo(map);
        var bounds = layer.getBounds();
        if (bounds.isValid()) map.fitBounds(bounds, { padding: [12, 12] });
        status.textContent = "Boundary drawn on the map.";
      } catch (err) {
        status.classList.add("is-error");
        status.textContent = "The text is not valid GeoJSON yet: " + err.message;
      }
    }

    var timer = null;
    textarea.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(draw, 300);
    });
    draw();
  }

  function init() {
    document.querySelectorAll("[data-boundary-preview]").forEach(setup);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
