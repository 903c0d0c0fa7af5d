// ---- The map (fieldapp/maps): tiles and the map's code, kept for offline use ----
// Tiles live in a cache of their own, named by the basemap's version, not the worker's: a new
// worker (any change to content or code) keeps them, and a new map replaces them.
const MAP_CACHE_PREFIX = "fieldmap-";
const MAP_TILES_PATH = {{ (url_for("maps.index") ~ "tiles/")|tojson }};
const MAP_PAGE = {{ url_for("maps.index")|tojson }};
const MAP_KEEP_AT_ONCE = 6;

async function keepMap(areaUrl) {
  const listing = await fetch(areaUrl, { credentials: "same-origin", cache: "no-store" });
  if (!listing.ok) return;
  const area = await listing.json();
  if (!area.version) return;
  const name = MAP_CACHE_PREFIX + area.version;
  const names = await caches.keys();
  await Promise.all(names.filter((n) => n.startsWith(MAP_CACHE_PREFIX) && n !== name).map((n) => caches.delete(n)));
  const cache = await caches.open(name);
  // The map page itself, as an offline copy with nothing personal on it (kept with the reference pages).
  keepOfflineCopy(MAP_PAGE).catch(() => {});
  const urls = area.assets.concat(area.tiles.map(([z, x, y]) => area.template.replace("{z}", z).replace("{x}", x).replace("{y}", y)));
  let next = 0;
  async function keepSome() {
    while (next < urls.length) {
      const url = urls[next++];
      if (await cache.match(url)) continue;
      const response = await fetch(url, { credentials: "same-origin" });
      // A 401 or 404 (signed out, or a new map meanwhile) stops the copy; the next map page starts it again.
      if (!response.ok) { next = urls.length; return; }
      await cache.put(url, response);
    }
  }
  await Promise.all(Array.from({ length: MAP_KEEP_AT_ONCE }, keepSome));
}

async function mapTile(request) {
  const hit = await caches.match(request);
  if (hit) return hit;
  const response = await fetch(request);
  if (response.ok) {
    const version = new URL(request.url).pathname.slice(MAP_TILES_PATH.length).split("/")[0];
    const copy = response.clone();
    caches.open(MAP_CACHE_PREFIX + version).then((cache) => cache.put(request, copy)).catch(() => {});
  }
  return response;
}

self.addEventListener("message", (event) => {
  const data = event.data || {};
  if (data.type === "keep-map") event.waitUntil(keepMap(data.url).catch(() => {}));
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method === "GET" && url.origin === self.location.origin && url.pathname.startsWith(MAP_TILES_PATH)) {
    event.respondWith(mapTile(event.request));
  }
});
