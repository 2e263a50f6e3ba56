"""The notification channels, registered with ``alerts.delivery.people`` when the app loads.
A new channel is a module here beside the others and one line below (docs/operations.md)."""

from alerts.delivery import email, robots, sms, system  # noqa: F401
