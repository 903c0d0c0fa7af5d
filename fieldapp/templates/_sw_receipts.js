
// ---- Delivery receipts: tell the server an alert reached this phone, and when it was opened ----
// Separate listeners from the one that shows the notification, so either can change alone.
// No cookies: the push's single-use token is the only credential, so a receipt goes
// with every page closed and after the sign-in has timed out.
const RECEIPTS_URL = {{ receipts_url|tojson }};
const RECEIPT_RETRY_MS = [0, 1000, 3000];

async function sendReceipt(data, stage) {
  if (!data || !data.receipt) return;
  const body = JSON.stringify({ token: data.receipt, stage, request_id: data.request_id ?? null });
  for (const wait of RECEIPT_RETRY_MS) {
    if (wait) await new Promise((resolve) => setTimeout(resolve, wait));
    try {
      const response = await fetch(RECEIPTS_URL, {
        method: "POST", credentials: "omit", cache: "no-store", keepalive: true,
        headers: { "Content-Type": "application/json" }, body,
      });
      // A 4xx will not change by asking again (expired, already recorded); only a lost connection or a 5xx is retried.
      if (response.status < 500) return;
    } catch (err) { /* one bar of signal: try again */ }
  }
}

self.addEventListener("push", (event) => {
  let data = null;
  try { data = event.data ? event.data.json() : null; } catch (err) { data = null; }
  event.waitUntil(sendReceipt(data, "delivered"));
});

self.addEventListener("notificationclick", (event) => {
  event.waitUntil(sendReceipt(event.notification.data, "seen"));
});
