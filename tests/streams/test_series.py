from datetime import UTC, datetime, timedelta

import pytest

from command.org.models import Device
from streams.models import Reading
from streams.selectors import device_series, fitting_resolution

pytestmark = pytest.mark.django_db

START = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)


@pytest.fixture
def water_level(demo):
    device = Device.objects.get(code="wl-01")
    # Three hours of a reading every 10 s: value = minute of the day, so buckets are checkable.
    Reading.objects.bulk_create(
        Reading(
            device=device,
            metric="water_level",
            time=START + timedelta(seconds=10 * i),
            value=float(i // 6),
        )
        for i in range(3 * 360)
    )
    return device


def test_raw_series_returns_each_reading_in_the_window(water_level):
    points = device_series(
        device_id=water_level.pk,
        metric="water_level",
        start=START,
        end=START + timedelta(minutes=2),
        resolution="raw",
    )
    assert len(points) == 12
    assert points[0].time == START
    assert [p.avg for p in points] == [0.0] * 6 + [1.0] * 6


def test_minute_and_hour_buckets(water_level):
    minutes = device_series(
        device_id=water_level.pk,
        metric="water_level",
        start=START,
        end=START + timedelta(hours=3),
        resolution="minute",
    )
    assert len(minutes) == 180
    assert [(p.avg, p.count) for p in minutes[:2]] == [(0.0, 6), (1.0, 6)]
    hours = device_series(
        device_id=water_level.pk,
        metric="water_level",
        start=START,
        end=START + timedelta(hours=3),
        resolution="hour",
    )
    assert [(p.time, p.min, p.max, p.count) for p in hours] == [
        (START + timedelta(hours=h), 60.0 * h, 60.0 * h + 59, 360) for h in range(3)
    ]


def test_resolution_fits_the_window():
    assert fitting_resolution(START, START + timedelta(hours=1)) == "raw"
    assert fitting_resolution(START, START + timedelta(days=1)) == "minute"
    assert fitting_resolution(START, START + timedelta(days=30)) == "hour"


def test_naive_times_are_refused(water_level):
    with pytest.raises(ValueError, match="timezone-aware"):
        device_series(
            device_id=water_level.pk,
            metric="water_level",
            start=datetime(2026, 11, 23),
            end=datetime(2026, 11, 24),
        )
