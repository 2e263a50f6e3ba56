"""`whistle worker` runs real jobs from the PostgreSQL queue."""

import threading
from datetime import timedelta

import pytest
from django.utils import timezone

from command.org.models import Device
from command.worker import run_worker
from tests.conftest import wait_for


@pytest.mark.django_db(transaction=True)
def test_worker_runs_the_stale_device_sweep_and_stops_cleanly(demo_committed):
    from streams.tasks import mark_stale_devices

    stale = Device.objects.filter(kind=Device.Kind.CAMERA).first()
    fresh = Device.objects.filter(kind=Device.Kind.CAMERA).last()
    Device.objects.filter(pk=stale.pk).update(
        online=True, last_seen=timezone.now() - timedelta(hours=1)
    )
    Device.objects.filter(pk=fresh.pk).update(online=True, last_seen=timezone.now())
    mark_stale_devices.defer(timestamp=int(timezone.now().timestamp()))

    stop = threading.Event()
    errors: list[BaseException] = []

    def work() -> None:
        try:
            run_worker(stop)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    try:
        wait_for(
            lambda: not Device.objects.get(pk=stale.pk).online, timeout=20, what="the sweep job"
        )
    finally:
        stop.set()
        thread.join(15)
    assert not thread.is_alive(), "worker did not stop"
    assert not errors, errors
    assert Device.objects.get(pk=fresh.pk).online
    from streams.models import DeviceEvent

    offline = DeviceEvent.objects.get(device=stale, label="offline")
    assert offline.payload == {"reason": "heartbeat timeout"}
    assert not DeviceEvent.objects.filter(device=fresh, label="offline").exists()
