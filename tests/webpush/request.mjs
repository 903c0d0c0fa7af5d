// Prints the push request npm web-push (the reference Web Push sender) would make:
// reads {subscription, payload, options} as JSON on stdin, writes {endpoint, headers, body} on stdout,
// the body base64url. tests/test_push_reference.py compares it with fieldapp's own request.
import webpush from "web-push";

let input = "";
for await (const chunk of process.stdin) input += chunk;
const { subscription, payload, options } = JSON.parse(input);
const details = webpush.generateRequestDetails(subscription, payload, options);
const headers = Object.fromEntries(Object.entries(details.headers).map(([k, v]) => [k, String(v)]));
process.stdout.write(JSON.stringify({
  endpoint: details.endpoint,
  headers,
  body: details.body ? Buffer.from(details.body).toString("base64url") : "",
}));
