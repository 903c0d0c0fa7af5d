
// ---- Web Push: CIT alerts ----
self.addEventListener("push", (event) => {
  let data = {};
  try { data = event.data ? event.data.json() : {}; } catch (err) { data = {}; }
  if (data.kind === "board") return; // a silent board push: _sw_live.js shows it
  const title = data.title || "CIT requested";
  const options = {
    body: data.body || "Open fieldapp for details.",
    tag: data.topic || "fieldapp",
    // A "closed" push (taken by another officer, cancelled) quietly replaces the alert with the same tag.
    renotify: data.kind !== "closed",
    silent: data.kind === "closed",
    requireInteraction: data.kind !== "closed",
    icon: PUBLIC_URLS.find((u) => u.includes("icon-192")),
    data: { url: data.url || HOME_URL, request_id: data.request_id ?? null, receipt: data.receipt || null },
    // iOS ignores actions; the request page always has the same two buttons.
    actions: data.kind === "alert" ? [{ action: "accept", title: "Accept" }, { action: "decline", title: "Decline" }] : [],
  };
  event.waitUntil(self.registration.showNotification(title, options));
});

async function openOrFocus(url) {
  const target = new URL(url, self.location.origin).href;
  const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
  for (const client of windows) {
    if (client.url === target) return client.focus().catch(() => client);
  }
  if (windows.length) {
    // Reuse an open window of the app: navigating it needs no user gesture.
    const client = await windows[0].navigate(target);
    if (client) return client.focus().catch(() => client);
  }
  return self.clients.openWindow(target);
}

self.addEventListener("notificationclick", (event) => {
  const notification = event.notification;
  notification.close();
  let url = (notification.data && notification.data.url) || HOME_URL;
  if (event.action === "accept" || event.action === "decline") url += "?do=" + event.action;
  event.waitUntil(openOrFocus(url));
});
