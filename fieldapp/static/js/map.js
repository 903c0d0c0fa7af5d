/* The map: Leaflet with protomaps-leaflet drawing our own vector tiles on a 2D canvas.
   No WebGL (it draws with the GPU off, on weak MDTs), no web worker, no eval, no host but ours:
   it needs nothing the CSP does not already allow. Loaded only by pages that show a map. */
(function () {
  "use strict";
  var P = window.protomapsL;

  // Colours for day and night; at night the map stays dark so it does not dazzle in a car.
  var THEMES = {
    light: {
      land: "#f2efe9", water: "#aad3df", park: "#cdebb0", wood: "#add19e", residential: "#e8e4de",
      commercial: "#f2dad9", industrial: "#ebdbe8", cemetery: "#aacbaf", hospital: "#f5e6e6", school: "#f0f0d8",
      pitch: "#aae0cb", building: "#d9d0c9", buildingLine: "#c4b6ab", casing: "#b8b0a6", major: "#f8c58c",
      medium: "#fde9a4", minor: "#ffffff", path: "#9a8f84", rail: "#8a8a8a", text: "#2b2b2b", halo: "#ffffff",
      number: "#6b5f55", scene: "#c62828", you: "#1565c0"
    },
    dark: {
      land: "#17191d", water: "#1d3444", park: "#1c2a20", wood: "#1a281d", residential: "#1d1f24",
      commercial: "#241f22", industrial: "#221f26", cemetery: "#1c2a22", hospital: "#261e20", school: "#24241c",
      pitch: "#1c2a26", building: "#2b2d33", buildingLine: "#33363d", casing: "#0e0f12", major: "#6b5437",
      medium: "#55503a", minor: "#40434a", path: "#4a4d55", rail: "#5a5a5a", text: "#d6dae0", halo: "#111317",
      number: "#9aa1ab", scene: "#ff6b6b", you: "#64b5f6"
    }
  };
  var LANDUSE = ["park", "wood", "residential", "commercial", "industrial", "cemetery", "hospital", "school", "pitch"];

  function is(kind) { return function (z, f) { return f.props.kind === kind; }; }

  function width(base, stops) { return P.exp(base, stops); }

  function paintRules(c) {
    var rules = [];
    LANDUSE.forEach(function (kind) {
      rules.push({ dataLayer: "landuse", filter: is(kind), symbolizer: new P.PolygonSymbolizer({ fill: c[kind] }) });
    });
    rules.push(
      { dataLayer: "water", filter: is("water"), symbolizer: new P.PolygonSymbolizer({ fill: c.water }) },
      { dataLayer: "water", filter: is("waterway"), symbolizer: new P.LineSymbolizer({ color: c.water, width: width(1.4, [[11, 1], [18, 8]]) }) },
      { dataLayer: "buildings", minzoom: 15, symbolizer: new P.PolygonSymbolizer({ fill: c.building, stroke: c.buildingLine, width: 0.6 }) },
      { dataLayer: "roads", filter: is("path"), minzoom: 15, symbolizer: new P.LineSymbolizer({ color: c.path, width: 1, dash: [2, 2] }) },
      { dataLayer: "roads", filter: is("rail"), symbolizer: new P.LineSymbolizer({ color: c.rail, width: width(1.3, [[12, 0.8], [18, 2.5]]) }) }
    );
    // Casings first, then fills, so crossings join cleanly.
    var roads = [["service", "minor", [[14, 1], [18, 8]]], ["pedestrian", "minor", [[13, 1], [18, 10]]],
                 ["minor", "minor", [[12, 0.8], [18, 14]]], ["medium", "medium", [[11, 1], [18, 18]]],
                 ["major", "major", [[10, 1.2], [18, 22]]]];
    roads.forEach(function (r) {
      var stops = r[2].map(function (s) { return [s[0], s[1] + 1.5]; });
      rules.push({ dataLayer: "roads", filter: is(r[0]), symbolizer: new P.LineSymbolizer({ color: c.casing, width: width(1.6, stops), lineCap: "round" }) });
    });
    roads.forEach(function (r) {
      rules.push({ dataLayer: "roads", filter: is(r[0]), symbolizer: new P.LineSymbolizer({ color: c[r[1]], width: width(1.6, r[2]), lineCap: "round" }) });
    });
    return rules;
  }

  function labelRules(c) {
    var font = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";
    return [
      { dataLayer: "places", symbolizer: new P.CenteredTextSymbolizer({ labelProps: ["name"], fill: c.text, stroke: c.halo, width: 3,
        fontFamily: font, fontWeight: 600, fontSize: function (z, f) { return f && f.props.kind === "city" ? 16 : 14; } }) },
      { dataLayer: "roads", minzoom: 14, filter: function (z, f) { return !!f.props.name; },
        symbolizer: new P.LineLabelSymbolizer({ labelProps: ["name"], fill: c.text, stroke: c.halo, width: 3, fontFamily: font, fontSize: 13 }) },
      { dataLayer: "addresses", minzoom: 17, symbolizer: new P.CenteredTextSymbolizer({ labelProps: ["n"], fill: c.number, stroke: c.halo, width: 2,
        fontFamily: font, fontSize: 12 }) }
    ];
  }

  function theme() {
    var chosen = document.documentElement.dataset.theme;
    if (chosen === "dark" || chosen === "light") return THEMES[chosen];
    return window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches ? THEMES.dark : THEMES.light;
  }

  // Ask the service worker to keep the agency's basemap (and this code) for offline use.
  function keepForOffline(areaUrl) {
    if (!areaUrl || !("serviceWorker" in navigator)) return;
    navigator.serviceWorker.ready.then(function (reg) {
      if (reg.active) reg.active.postMessage({ type: "keep-map", url: areaUrl });
    }).catch(function () {});
  }

  function draw(el) {
    if (el.dataset.drawn) return;
    el.dataset.drawn = "1";
    var d = el.dataset, c = theme();
    var south = +d.south, west = +d.west, north = +d.north, east = +d.east;
    var area = L.latLngBounds([south, west], [north, east]);
    var map = L.map(el, {
      minZoom: +d.minZoom, maxZoom: +d.maxZoom, maxBounds: area.pad(0.5), maxBoundsViscosity: 0.8,
      zoomSnap: 1, attributionControl: true
    });
    map.attributionControl.setPrefix(false);
    P.leafletLayer({
      url: d.tiles, maxDataZoom: +d.maxDataZoom, paintRules: paintRules(c), labelRules: labelRules(c),
      backgroundColor: c.land, attribution: d.attribution
    }).addTo(map);
    var scene = d.lat ? L.latLng(+d.lat, +d.lon) : null;
    var you = d.youLat ? L.latLng(+d.youLat, +d.youLon) : null;
    if (scene && you && scene.distanceTo(you) < 30000) {
      map.fitBounds(L.latLngBounds([scene, you]), { padding: [32, 32], maxZoom: +d.zoom || 16 });
    } else if (scene) {
      map.setView(scene, +d.zoom || 16);
    } else {
      map.fitBounds(area);
    }
    if (you) L.circleMarker(you, { radius: 7, color: c.halo, weight: 2, fillColor: c.you, fillOpacity: 1 }).addTo(map);
    if (scene) {
      L.circleMarker(scene, { radius: 11, color: c.scene, weight: 4, fillColor: c.scene, fillOpacity: 0.25 }).addTo(map);
      L.circleMarker(scene, { radius: 3, color: c.scene, weight: 0, fillColor: c.scene, fillOpacity: 1 }).addTo(map);
    }
    el.fieldappMap = map;
    keepForOffline(d.area);
  }

  function drawAll(root) {
    if (!window.L || !P) return;
    (root.querySelectorAll ? root : document).querySelectorAll("[data-map]").forEach(draw);
  }

  drawAll(document);
  // A map that arrives in an htmx swap is drawn when it lands.
  document.addEventListener("htmx:load", function (event) { drawAll(event.detail.elt); });
})();
