
// ---- Web Push: live pages learn of a change at once ----
// Any push about a request (the requester's status, a board change) tells the open
// windows, whose live parts refresh now rather than at their next poll. The
// notification itself, if any, is the alert handler's business above.
self.addEventListener("push", (event) => {
  let data = {};
  try { data = event.data ? event.data.json() : {}; } catch (err) { data = {}; }
  if (!data.request_id && data.kind !== "board") return;
  event.waitUntil(self.clients.matchAll({ type: "window" }).then((windows) => {
    windows.forEach((client) => client.postMessage({ type: "live-changed", request_id: data.request_id || null }));
  }));
});
