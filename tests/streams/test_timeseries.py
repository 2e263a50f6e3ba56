"""Where time series are stored and how the minute aggregate answers, on whichever server the
suite runs against: CI runs it on the machine's PostgreSQL (TimescaleDB installed there but not
preloaded) and on a cluster of its own that preloads TimescaleDB."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from command.org.models import Device
from streams.models import Reading
from streams.selectors import device_series
from streams.timeseries import (
    MINUTE_AGGREGATE,
    create_time_series_table,
    preloaded_libraries,
    timescaledb_enabled,
    timescaledb_preloaded,
)


def server_state() -> str:
    """What this server offers, asked as the superuser the tests connect as."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'")
        if cursor.fetchone() is None:
            return "not installed"
        cursor.execute("SHOW shared_preload_libraries")
        return "preloaded" if "timescaledb" in cursor.fetchone()[0] else "not preloaded"


@pytest.mark.parametrize(
    ("setting", "names"),
    [
        ("", set()),
        ("timescaledb", {"timescaledb"}),
        ("'timescaledb'", {"timescaledb"}),
        ("pg_stat_statements, timescaledb", {"pg_stat_statements", "timescaledb"}),
        ("$libdir/timescaledb.so,auto_explain", {"timescaledb", "auto_explain"}),
        ("timescaledb_toolkit", {"timescaledb_toolkit"}),
    ],
)
def test_preloaded_libraries_are_read_from_the_setting(setting, names):
    assert preloaded_libraries(setting) == names


@pytest.mark.django_db
def test_the_storage_chosen_is_the_one_the_server_can_run(caplog):
    """A server with TimescaleDB installed but not preloaded (the state right after `apt
    install`) gets plain tables and a warning with the fix, not "extension must be preloaded"."""
    state = server_state()
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE scratch_series (time timestamptz NOT NULL, value float)")
    with caplog.at_level(logging.INFO, logger="whistle.timeseries"):
        with connection.schema_editor() as editor:
            kind = create_time_series_table(editor, "scratch_series")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    if state == "preloaded":
        assert kind == "hypertable" and not warnings
    elif state == "not preloaded":
        assert kind == "brin"
        assert len(warnings) == 1, warnings
        assert "not in shared_preload_libraries" in warnings[0]
        assert "shared_preload_libraries = 'timescaledb'" in warnings[0]
    else:
        assert kind == "brin" and not warnings
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'scratch_series'"
            " AND indexdef LIKE '%%USING brin%%'"
        )
        assert (cursor.fetchone() is not None) == (kind == "brin")


@pytest.mark.django_db
def test_a_role_that_cannot_read_the_setting_still_gets_the_right_answer():
    """shared_preload_libraries is hidden from roles without pg_read_all_settings; the loader's
    own settings tell those whether the server preloads TimescaleDB."""
    state = server_state()
    with connection.cursor() as cursor:
        cursor.execute("CREATE ROLE whistle_unprivileged_test NOLOGIN")
        cursor.execute("SET LOCAL ROLE whistle_unprivileged_test")
        cursor.execute("SELECT count(*) FROM pg_settings WHERE name = 'shared_preload_libraries'")
        assert cursor.fetchone()[0] == 0, "the setting is visible to this role after all"
        assert timescaledb_preloaded(cursor) == (state == "preloaded")
        cursor.execute("RESET ROLE")


@pytest.mark.django_db(transaction=True)
def test_minute_series_joins_the_materialized_aggregate_and_the_live_tail(demo_committed):
    """Readings the refresh has materialized and readings it has not yet seen make one series:
    the aggregate is real time. Without that, the last minutes (the refresh runs once a minute,
    up to a minute ago) are missing from the board's device panel and the sensor history."""
    if not timescaledb_enabled(connection):
        pytest.skip("the continuous aggregate exists on TimescaleDB only (plain: date_bin)")
    gauge = Device.objects.get(code="wl-01")
    # Long before any other test's readings: the aggregate's watermark only moves forward, and
    # readings below it show only once refreshed (the tests pause the refresh job).
    start = datetime(2020, 1, 6, tzinfo=UTC)
    Reading.objects.bulk_create(
        Reading(
            device=gauge,
            metric="water_level",
            time=start + timedelta(seconds=10 * i),
            value=float(i // 6),
        )
        for i in range(30 * 6)
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT materialized_only, format('%%I.%%I', materialization_hypertable_schema,"
            " materialization_hypertable_name) FROM timescaledb_information.continuous_aggregates"
            " WHERE view_name = %s",
            [MINUTE_AGGREGATE],
        )
        materialized_only, materialization = cursor.fetchone()
        assert materialized_only is False
        # Materialize the first 20 minutes only, as the policy would have by then.
        cursor.execute(
            "CALL refresh_continuous_aggregate(%s, %s, %s)",
            [MINUTE_AGGREGATE, start, start + timedelta(minutes=20)],
        )
        cursor.execute(f"SELECT count(*) FROM {materialization} WHERE device_id = %s", [gauge.pk])
        assert cursor.fetchone()[0] == 20

    minutes = device_series(
        device_id=gauge.pk,
        metric="water_level",
        start=start,
        end=start + timedelta(minutes=30),
        resolution="minute",
    )
    assert [(p.time, p.avg, p.count) for p in minutes] == [
        (start + timedelta(minutes=m), float(m), 6) for m in range(30)
    ]
    hours = device_series(
        device_id=gauge.pk,
        metric="water_level",
        start=start,
        end=start + timedelta(hours=1),
        resolution="hour",
    )
    assert [(p.time, p.min, p.max, p.count) for p in hours] == [(start, 0.0, 29.0, 180)]
