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
    from procrastinate.exceptions import AlreadyEnqueued

    from streams.tasks import mark_stale_devices

    stale = Device.objects.filter(kind=Device.Kind.CAMERA).first()
    fresh = Device.objects.filter(kind=Device.Kind.CAMERA).last()
    Device.objects.filter(pk=stale.pk).update(
        online=True, last_seen=timezone.now() - timedelta(hours=1)
    )
    Device.objects.filter(pk=fresh.pk).update(online=True, last_seen=timezone.now())
    try:
        mark_stale_devices.defer(timestamp=int(timezone.now().timestamp()))
    except AlreadyEnqueued:
        # A worker of an earlier test left its minute's sweep queued (the job table outlives
        # a test): that job is the same sweep, and the worker below must run it all the same.
        pass

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


def test_deadlines_and_deliveries_are_served_by_separate_pools(settings):
    from command.cli import build_parser
    from command.worker import pools_for

    settings.WHISTLE_DELIVERY_CONCURRENCY = 6
    settings.WHISTLE_DEADLINE_POLL_SECONDS = 0.2
    deadlines, deliveries, notifications = pools_for()
    assert "deadlines" in deadlines.queues and "deliveries" not in deadlines.queues
    assert deliveries.queues == ("deliveries", "reports") and deliveries.concurrency == 6
    assert notifications.queues == ("notifications",)
    # Escalation steps are deferred for their moment: the deadline pool looks for them often.
    assert deadlines.polling == 0.2 and deliveries.polling > deadlines.polling
    # Every queue a task is deferred to is served by exactly one of the pools.
    from procrastinate.contrib.django import app

    task_queues = {task.queue for task in app.tasks.values() if task.queue != "builtin"}
    served = [*deadlines.queues, *deliveries.queues, *notifications.queues]
    assert task_queues <= set(served) and len(served) == len(set(served)), task_queues
    (deadline_only,) = pools_for(["deadlines", "default"])
    assert deadline_only.polling == 0.2

    args = build_parser().parse_args(["worker", "--queues", "deliveries", "--concurrency", "8"])
    assert (args.queues, args.concurrency) == ("deliveries", 8)
    (only,) = pools_for(["deliveries"], 8)
    assert (only.queues, only.concurrency) == (("deliveries",), 8)


def test_worker_beats_for_its_healthcheck_while_it_runs(job_worker, tmp_path, monkeypatch):
    from command import health

    monkeypatch.setenv("WHISTLE_HEALTH_DIR", str(tmp_path))
    assert not health.check("worker")[0]
    health._last.clear()
    job_worker.start()
    wait_for(lambda: health.check("worker")[0], timeout=20, what="the worker's heartbeat")
    job_worker.stop()
