"""Delivery: what leaves fieldapp for a phone, a person's channel or the agency's systems.

- `push`: Web Push through pywebpush, and the VAPID keys;
- `outbox`: messages queued for the worker, and their attempts (owns `outbox`, `push_attempts`);
- `worker`: the background worker that sends the outbox, takes due escalations and sends webhooks;
- `backup_channel`: Apprise, the backup channel: the agency's APPRISE_URLS, and each
  person's own channel (owns `fallback_channels`);
- `webhooks`: one signed delivery per request state change, queued and sent (owns `webhook_deliveries`);
- `webhook_endpoints`: where a webhook may go, and the coordinators' endpoints (owns `webhook_endpoints`);
- `webhook_pages`: the coordinators' webhook pages (the "webhooks" blueprint).
"""
