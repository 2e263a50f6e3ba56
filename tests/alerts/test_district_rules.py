"""A district's ingest batch holds readings of many townships: their rules' states are read and
written with one query each, not two per township (ingest fell behind 3,000 readings a second
with thirty townships), and a threshold rule's state is written only when it changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from alerts.models import RuleState
from alerts.rules import rulebook, threshold_outcomes
from command.org.models import Device, Township
from demo.district import seed_district

pytestmark = pytest.mark.django_db


def test_rule_states_of_every_township_in_one_read_and_one_write() -> None:
    summary = seed_district(townships=6, sensors=16, cameras=1)
    rulebook.forget()
    moment = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)
    readings: dict[int, list] = {}
    for township in Township.objects.filter(code__in=summary.townships):
        sensors = Device.objects.filter(township=township, sensor_type="water_level")
        readings[township.pk] = [
            (d.pk, d.code, d.grid_id, "water_level", moment + timedelta(seconds=n), 2.0)
            for n, d in enumerate(sensors)
        ]
    assert all(readings.values())
    for township_id in readings:  # the rule books are read once a TTL, not per batch
        rulebook.for_township(township_id)

    def touching(batch: dict[int, list]) -> list[str]:
        with CaptureQueriesContext(connection) as queries:
            assert threshold_outcomes(batch) == []
        return [q["sql"] for q in queries.captured_queries if "alerts_rulestate" in q["sql"]]

    # Every value inside its threshold: the states are read, and nothing is written.
    assert len(touching(readings)) == 1
    assert not RuleState.objects.exists()

    # Every device past it (timing the duration): one read and one write for all townships.
    breach = moment + timedelta(minutes=1)
    breaching = {
        township_id: [(*row[:4], breach, 3.5) for row in rows]
        for township_id, rows in readings.items()
    }
    assert [s.split()[0] for s in touching(breaching)] == ["SELECT", "INSERT"]
    assert RuleState.objects.count() == sum(len(rows) for rows in readings.values())
    assert not RuleState.objects.filter(breached_since=None).exists()

    # Still past it, not yet held long enough: nothing changed, nothing written.
    later_still = {
        township_id: [(*row[:4], breach + timedelta(seconds=5), 3.6) for row in rows]
        for township_id, rows in breaching.items()
    }
    assert len(touching(later_still)) == 1
    assert set(RuleState.objects.values_list("last_value", flat=True)) == {3.5}
    RuleState.objects.all().delete()

    # A value past the threshold, held past its duration, raises in its own township only.
    first = min(readings)
    device_id, code, grid_id, *_ = readings[first][0]
    later = moment + timedelta(hours=1)
    outcomes = threshold_outcomes(
        {
            first: [
                (device_id, code, grid_id, "water_level", t, 3.5)
                for t in (later, later + timedelta(minutes=3))
            ]
        }
    )
    assert [(o.township_id, o.device_id) for o in outcomes] == [(first, device_id)]
