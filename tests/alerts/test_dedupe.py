"""One open alert per key, even when ingest workers raise it at the same moment."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from alerts.models import Alert
from alerts.rules import AlertSpec
from alerts.services import alert_raise
from command.org.models import Township

pytestmark = pytest.mark.django_db(transaction=True)


def test_concurrent_raises_of_one_key_make_one_alert_counted_by_all(demo_committed):
    township = Township.objects.get(code="qingshui")
    workers, repeats = 8, 25
    barrier = threading.Barrier(workers)
    errors: list[BaseException] = []
    now = timezone.now()

    def raise_many(n: int) -> None:
        try:
            barrier.wait(10)
            for i in range(repeats):
                alert_raise(
                    spec=AlertSpec(
                        township_id=township.pk,
                        category_code="fire",
                        severity="critical",
                        source="camera",
                        title="smoke @ cam-05",
                        dedupe_key="camera:5:fire",
                        time=now + timedelta(milliseconds=n * repeats + i),
                    )
                )
        except BaseException as exc:  # reported in the test's thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=raise_many, args=(n,)) for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    alert = Alert.objects.get()
    assert alert.count == workers * repeats
    assert alert.last_seen == now + timedelta(milliseconds=workers * repeats - 1)


def test_a_closed_alert_does_not_swallow_the_next_occurrence(demo):
    township = Township.objects.get(code="qingshui")
    spec = AlertSpec(
        township_id=township.pk,
        category_code="fire",
        severity="critical",
        source="camera",
        title="smoke",
        dedupe_key="k",
        time=timezone.now(),
    )
    first, created = alert_raise(spec=spec)
    assert created
    Alert.objects.filter(pk=first).update(status=Alert.Status.DISMISSED)
    second, created = alert_raise(spec=spec)
    assert created and second != first


def test_the_timeline_tells_what_crossed_the_line(demo):
    """A threshold alert's timeline rows carry the reading and the threshold; a repeat of an
    acknowledged alert is recorded as acknowledged."""
    from alerts.services import alert_acknowledge
    from command.timeline.models import TimelineEntry
    from tests.conftest import raise_alert

    township = Township.objects.get(code="qingshui")

    def crossed() -> int:
        return raise_alert(
            township.pk,
            "rule:1:wl-01",
            category="flood",
            severity="critical",
            source="sensor",
            title="积水: water_level 0.82 @ wl-01",
            detail={"metric": "water_level", "value": 0.82, "threshold": 0.5, "rule": 1},
        )

    alert_id = crossed()
    alert_acknowledge(alert_id=alert_id, actor_id=None, township_ids=None)
    crossed()
    raised, _ack, repeated = TimelineEntry.objects.filter(subject_id=alert_id).order_by("time")
    assert raised.after == {
        "status": "new",
        "count": 1,
        "severity": "critical",
        "metric": "water_level",
        "value": 0.82,
        "threshold": 0.5,
    }
    assert (repeated.action, repeated.after["status"], repeated.after["count"]) == (
        "alert.updated",
        "acknowledged",
        2,
    )
