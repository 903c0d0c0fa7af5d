
// ---- Web Push: live pages learn of a change at once ----
// Any push about a request (the requester's status, a board change) tells the open
// windows, whose live parts refresh now rather than at their next poll. The
// notification is the alert handler's business above, except a board push's.
self.addEventListener("push", (event) => {
  let data = {};
  try { data = event.data ? event.data.json() : {}; } catch (err) { data = {}; }
  if (!data.request_id && data.kind !== "board") return;
  const told = self.clients.matchAll({ type: "window" }).then((windows) => {
    windows.forEach((client) => client.postMessage({ type: "live-changed", request_id: data.request_id || null }));
  });
  // A board push replaces the last one, without sound or vibration: never a storm.
  const shown = data.kind !== "board" ? Promise.resolve() : self.registration.showNotification(data.title || "CIT board updated", {
    body: data.body || "", tag: data.topic || "fieldapp-board", silent: true, renotify: false, data: { url: data.url || HOME_URL },
  });
  event.waitUntil(Promise.all([told, shown]));
});
