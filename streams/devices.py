"""Device presence: last seen and online state, and the heartbeat timeout per device kind.

Going offline is recorded as a device event labelled ``offline`` so alert rules can act on it
like on any other event.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q

from command import clock
from command.org.models import Device
from streams.adapters.base import CameraEvent
from streams.handoff import DeviceRef, Stored, stored
from streams.models import DeviceEvent

# A camera reports at least on motion and every minute on its heartbeat; sensors every few
# minutes; a gateway keeps a 30 s keepalive. Past these a device counts as offline.
HEARTBEAT_TIMEOUT = {
    Device.Kind.CAMERA: timedelta(minutes=5),
    Device.Kind.SENSOR: timedelta(minutes=15),
    Device.Kind.GATEWAY: timedelta(minutes=2),
}


def presence_event_id(label: str, time: datetime) -> str:
    """One presence change per device and millisecond: a redelivered status changes nothing."""
    return f"{label}:{int(time.timestamp() * 1000)}"


def presence_event(
    *, device_id: int, township_id: int, online: bool, time: datetime, reason: str
) -> DeviceEvent:
    label = "online" if online else "offline"
    return DeviceEvent(
        device_id=device_id,
        township_id=township_id,
        time=time,
        event_id=presence_event_id(label, time),
        label=label,
        payload={"reason": reason},
    )


def devices_mark_stale() -> int:
    """Mark devices offline whose heartbeat timed out; returns how many changed."""
    now = clock.now()
    stale = Q()
    for kind, timeout in HEARTBEAT_TIMEOUT.items():
        stale |= Q(kind=kind, last_seen__lt=now - timeout)
    with transaction.atomic():
        # skip_locked: two workers sweeping at once each take different devices.
        rows = list(
            Device.objects.select_for_update(skip_locked=True)
            .filter(stale, online=True)
            .values_list("id", "township_id", "code", "kind", "grid_id")
        )
        if not rows:
            return 0
        Device.objects.filter(pk__in=[pk for pk, *_ in rows]).update(online=False)
        offline = [
            presence_event(
                device_id=pk,
                township_id=township,
                online=False,
                time=now,
                reason="heartbeat timeout",
            )
            for pk, township, *_ in rows
        ]
        DeviceEvent.objects.bulk_create(offline, ignore_conflicts=True)
        # The alert rules above streams see the sweep's offline events as they see a last will.
        stored(
            Stored(
                events=[
                    (
                        DeviceRef(id=pk, township_id=township, grid_id=grid, kind=kind, code=code),
                        CameraEvent(
                            event_id=event.event_id,
                            time=event.time,
                            label=event.label,
                            score=None,
                            zones=(),
                            payload=event.payload,
                        ),
                        False,
                    )
                    for (pk, township, code, kind, grid), event in zip(rows, offline, strict=True)
                ],
                source="system",
            )
        )
    return len(rows)
