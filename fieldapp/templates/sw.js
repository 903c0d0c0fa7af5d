/* fieldapp service worker. Version {{ version }} — a hash of the content and static files. */
"use strict";
const VERSION = {{ version|tojson }};
const PUBLIC_CACHE = "fieldapp-public-" + VERSION;
const PAGES_CACHE = "fieldapp-pages-" + VERSION;
const PUBLIC_URLS = {{ public_urls|tojson }};
const OFFLINE_URL = {{ offline_url|tojson }};
const TITLES_URL = {{ titles_url|tojson }};
const SEARCH_URL = {{ search_url|tojson }};
const REQUESTS_URL = {{ requests_url|tojson }};
const HOME_URL = {{ home_url|tojson }};
const REFERENCE_URL = {{ reference_url|tojson }};
const STATIC_URL = {{ static_url|tojson }};
const LOGIN_QUEUED_URL = {{ login_queued_url|tojson }};
// _card_link.html with a token (__title__…) for each of a topic's fields.
const CARD_LINK = {{ card_link|tojson }};
const OFFLINE_COPY = {{ offline_copy_header|tojson }};
importScripts({{ queue_url|tojson }});

self.addEventListener("install", (event) => {
  // Only public files here: signed-in pages are cached once the app tells us someone signed in.
  event.waitUntil(caches.open(PUBLIC_CACHE).then((cache) => cache.addAll(PUBLIC_URLS)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys().then((keys) => Promise.all(
      keys.filter((k) => k.startsWith("fieldapp-") && !k.endsWith(VERSION)).map((k) => caches.delete(k))
    )).then(() => self.clients.claim())
  );
});

async function precachePages(listUrl) {
  const listing = await fetch(listUrl, { credentials: "same-origin", cache: "no-store" });
  if (!listing.ok) return;
  const { urls } = await listing.json();
  const cache = await caches.open(PAGES_CACHE);
  await Promise.all(urls.map(async (url) => {
    if (await cache.match(url)) return;
    await keepOfflineCopy(url);
  }));
}

// Shared car computers: what is kept here is shown to whoever uses the device next,
// so the server is asked for a copy with no name, CSRF token or user id, and only a
// response it marked as such is kept (a redirect to the sign-in page never is).
async function keepOfflineCopy(url) {
  const response = await fetch(url, { credentials: "same-origin", cache: "no-store", headers: { [OFFLINE_COPY]: "1" } });
  if (response.ok && !response.redirected && response.headers.get(OFFLINE_COPY) === "1") {
    await (await caches.open(PAGES_CACHE)).put(url, response);
  }
}

self.addEventListener("message", (event) => {
  const data = event.data || {};
  if (data.type === "precache-pages") event.waitUntil(precachePages(data.url).catch(() => {}));
  if (data.type === "forget-pages") event.waitUntil(caches.delete(PAGES_CACHE));
  // A page that loaded while this worker was installing can miss the claim made on
  // activation, and would stay uncontrolled (no offline search, no queue) until the
  // next navigation: it asks, and is claimed now.
  if (data.type === "claim") event.waitUntil(self.clients.claim());
});

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

function cardLink(topic) {
  return CARD_LINK.replace(/__(\w+?)__/g, (token, field) => escapeHtml(topic[field] === undefined ? "" : topic[field]));
}

// Offline, search the cached title index so an officer can still find a card.
async function offlineSearch(request) {
  const url = new URL(request.url);
  const words = (url.searchParams.get("q") || "").toLowerCase().split(/\s+/).filter(Boolean);
  const cached = await caches.match(TITLES_URL);
  const topics = cached ? (await cached.json()).topics : [];
  const hits = topics.filter((t) => words.length && words.every((w) => (t.title + " " + t.summary).toLowerCase().includes(w)));
  const items = hits.map((t) => cardLink({ slug: t.slug, title: t.title, summary: t.summary, kind: t.kind_key })).join("");
  const results = `<div id="search-results" aria-live="polite"><p class="hint">Offline: searching titles only.</p>` +
    (hits.length ? `<ul class="cards">${items}</ul>` : (words.length ? "<p>No saved topic matches.</p>" : "")) + "</div>";
  const body = request.headers.get("HX-Request") ? results :
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Search · fieldapp</title>` +
    `<link rel="stylesheet" href="${PUBLIC_URLS[0]}"></head><body><main id="main"><h1>Search</h1>${results}<p><a href="${REFERENCE_URL}">All topics</a></p></main></body></html>`;
  return new Response(body, { headers: { "Content-Type": "text/html; charset=utf-8" } });
}

async function cacheFirst(request) {
  const hit = await caches.match(request);
  return hit || fetch(request);
}

async function networkFirst(request) {
  try {
    return await fetch(request);
  } catch (err) {
    const hit = await caches.match(request, { ignoreVary: true });
    if (hit) return hit;
    if (request.mode === "navigate") return caches.match(OFFLINE_URL);
    throw err;
  }
}

// A CIT request posted with no network is queued on the device, not lost; so is
// one posted after the idle lock signed the officer out, and it goes after sign-in.
async function postOrQueue(request) {
  const copy = request.clone();
  async function queue() {
    await fieldappQueue.enqueue(REQUESTS_URL, Object.fromEntries((await copy.formData()).entries()));
  }
  let response;
  try {
    response = await Promise.race([
      fetch(request),
      new Promise((resolve, reject) => setTimeout(() => reject(new Error("timeout")), fieldappQueue.POST_TIMEOUT_MS)),
    ]);
  } catch (err) {
    await queue();
    if (self.registration.sync) await self.registration.sync.register("cit-requests").catch(() => {});
    return Response.redirect(HOME_URL, 303);
  }
  if (response.status === 401) {
    await queue();
    return Response.redirect(LOGIN_QUEUED_URL, 303);
  }
  return response;
}

async function sendQueued() {
  const sent = await fieldappQueue.sendAll();
  const windows = await self.clients.matchAll({ type: "window" });
  for (const result of sent) windows.forEach((client) => client.postMessage({ type: "request-sent", url: result.url }));
}

self.addEventListener("sync", (event) => {
  if (event.tag === "cit-requests") event.waitUntil(sendQueued());
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.method === "POST" && url.pathname === REQUESTS_URL && request.mode === "navigate") {
    event.respondWith(postOrQueue(request));
    return;
  }
  if (request.method !== "GET") return;
  if (url.pathname.startsWith(STATIC_URL)) { event.respondWith(cacheFirst(request)); return; }
  if (url.pathname === SEARCH_URL) {
    event.respondWith(fetch(request).catch(() => offlineSearch(request)));
    return;
  }
  if (url.pathname.startsWith(REFERENCE_URL) && !request.headers.get("HX-Request")) {
    // Reference pages only change with a new worker version: serve the saved copy at once,
    // which matters on one bar of signal.
    event.respondWith(caches.open(PAGES_CACHE).then((cache) => cache.match(request)).then((hit) => {
      if (hit) return hit;
      event.waitUntil(keepOfflineCopy(url.pathname).catch(() => {}));
      return networkFirst(request);
    }));
    return;
  }
  if (request.mode === "navigate") {
    // The home screen's offline copy (precached) opens the app offline; other pages fall back to the offline page.
    event.respondWith(networkFirst(request));
  }
});
{% include "_sw_push.js" %}
{% include "_sw_receipts.js" %}
{% include "_sw_live.js" %}
{% include "_sw_maps.js" %}
