"""Device presence: last seen and online state, and the heartbeat timeout per device kind."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Q
from django.utils import timezone

from command.org.models import Device

# A camera reports at least on motion and every minute on its heartbeat; sensors every few
# minutes; a gateway keeps a 30 s keepalive. Past these a device counts as offline.
HEARTBEAT_TIMEOUT = {
    Device.Kind.CAMERA: timedelta(minutes=5),
    Device.Kind.SENSOR: timedelta(minutes=15),
    Device.Kind.GATEWAY: timedelta(minutes=2),
}


def devices_mark_stale(*, now: datetime | None = None) -> int:
    """Mark devices offline whose heartbeat timed out; returns how many changed."""
    now = now or timezone.now()
    stale = Q()
    for kind, timeout in HEARTBEAT_TIMEOUT.items():
        stale |= Q(kind=kind, last_seen__lt=now - timeout)
    return Device.objects.filter(stale, online=True).update(online=False)
