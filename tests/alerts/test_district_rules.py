"""A district's ingest batch holds readings of many townships: their rules' states are read and
written with one query each, not two per township (ingest fell behind 3,000 readings a second
with thirty townships)."""

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

    with CaptureQueriesContext(connection) as queries:
        assert threshold_outcomes(readings) == []
    touching = [q["sql"] for q in queries.captured_queries if "alerts_rulestate" in q["sql"]]
    assert len(touching) == 2, touching
    assert RuleState.objects.count() == sum(len(rows) for rows in readings.values())

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
