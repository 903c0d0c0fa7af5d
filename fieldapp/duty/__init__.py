"""Duty: specialists going on and off duty, where they are, and whether an alert will reach their devices.

- `status`: on and off duty and the district chosen, who may be alerted now,
  and standing an account down everywhere (the `duty` table's status columns);
- `positions`: positions from the device and from the agency's vehicle-location
  (AVL/MDT) feed, and the feed's `units token` command (the `duty` table's
  position columns);
- `devices`: a person's push subscriptions from subscribing to retirement, and
  vehicle-feed tokens (owns `push_subscriptions`, `retired_devices`,
  `device_tokens`); officers and supervisors have devices too;
- `readiness`: the Duty page's readiness check and test alert, and the
  backup channel's form (its own blueprint, "readiness");
- `pages`: the Duty routes (the "duty" blueprint), thin over the modules above.

The package owns the `duty` table: status.py and positions.py each write only
their own columns of it.
"""
