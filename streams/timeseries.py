"""Time-series storage: TimescaleDB hypertables when the extension is there, plain tables with a
BRIN index on time otherwise. The choice is made here and nowhere else."""

from __future__ import annotations

import logging
from typing import Any

from django.db.backends.base.schema import BaseDatabaseSchemaEditor

log = logging.getLogger("whistle.timeseries")

# Chunk intervals sized for a township: ~1,000 sensors at one reading per 10 s is ~8.6M rows a
# day, one day per chunk keeps a chunk's indexes in memory; events and the timeline are sparse.
CHUNK_INTERVALS = {
    "streams_reading": "1 day",
    "streams_deviceevent": "7 days",
    "incidents_timelineentry": "30 days",
}


def preloaded_libraries(setting: str) -> set[str]:
    """The library names in a ``shared_preload_libraries`` value: ``'timescaledb'``,
    ``pg_stat_statements, timescaledb`` and ``$libdir/timescaledb.so`` all name timescaledb."""
    names = set()
    for item in setting.split(","):
        name = item.strip().strip("'\"").rsplit("/", 1)[-1]
        names.add(name.removesuffix(".so"))
    names.discard("")
    return names


def timescaledb_preloaded(cursor: Any) -> bool:
    """Is TimescaleDB's loader in this server's ``shared_preload_libraries``?

    The setting is visible to superusers and members of pg_read_all_settings. Other roles do not
    see its row, and then the loader's own settings answer: they exist in every session of a
    server that preloads it and in none of a server that does not."""
    cursor.execute("SELECT setting FROM pg_settings WHERE name = 'shared_preload_libraries'")
    row = cursor.fetchone()
    if row is not None:
        return "timescaledb" in preloaded_libraries(row[0] or "")
    cursor.execute("SELECT 1 FROM pg_settings WHERE name = 'timescaledb.max_background_workers'")
    return cursor.fetchone() is not None


def timescaledb_available(schema_editor: BaseDatabaseSchemaEditor) -> bool:
    """Can this database use TimescaleDB? Installed is not enough: ``CREATE EXTENSION`` fails
    with "extension must be preloaded" unless the server loads the library at start-up, the
    state a server is in right after ``apt install`` until its configuration is changed and it
    is restarted. Such a server gets plain tables, with a warning that says how to change it."""
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'")
        if cursor.fetchone() is not None:
            return True  # created already, which only a preloading server allows
        cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'")
        if cursor.fetchone() is None:
            return False
        if timescaledb_preloaded(cursor):
            return True
    log.warning(
        "time-series storage: TimescaleDB is installed on this PostgreSQL server but not in"
        " shared_preload_libraries, so plain PostgreSQL tables are used. To use TimescaleDB, set"
        " shared_preload_libraries = 'timescaledb' in postgresql.conf and restart PostgreSQL"
        " before the first migrate (tables created as plain tables stay plain)."
    )
    return False


def timescaledb_enabled(connection: Any) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'")
        return cursor.fetchone() is not None


def create_time_series_table(
    schema_editor: BaseDatabaseSchemaEditor, table: str, time_column: str = "time"
) -> str:
    """Turn ``table`` into a hypertable or give it a BRIN index; returns which it did."""
    quote = schema_editor.quote_name
    if timescaledb_available(schema_editor):
        schema_editor.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        schema_editor.execute(
            "SELECT create_hypertable(%s, by_range(%s, %s::interval),"
            " if_not_exists => TRUE, migrate_data => TRUE)",
            params=[table, time_column, CHUNK_INTERVALS.get(table, "7 days")],
        )
        kind = "hypertable"
        log.info("time-series storage: %s is a TimescaleDB hypertable", table)
    else:
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {quote(table + '_time_brin')}"
            f" ON {quote(table)} USING brin ({quote(time_column)})"
        )
        kind = "brin"
        log.info(
            "time-series storage: %s is a plain PostgreSQL table with a BRIN index"
            " (TimescaleDB not usable on this server)",
            table,
        )
    return kind


def migration_operation(table: str, time_column: str = "time") -> Any:
    """A RunPython operation for a migration that created ``table``."""
    from django.db import migrations

    def forwards(apps: Any, schema_editor: BaseDatabaseSchemaEditor) -> None:
        create_time_series_table(schema_editor, table, time_column)

    return migrations.RunPython(forwards, migrations.RunPython.noop, elidable=False)


# --- TimescaleDB policies and the one-minute aggregate ---------------------------------------

READINGS_COMPRESS_AFTER = "7 days"
READINGS_RETAIN = "400 days"  # a year of history for assessment, plus a margin
EVENTS_COMPRESS_AFTER = "30 days"
MINUTE_AGGREGATE = "streams_reading_1m"


def configure_timescaledb(schema_editor: BaseDatabaseSchemaEditor) -> bool:
    """Compression, retention and the continuous aggregate; a no-op on plain PostgreSQL."""
    if not timescaledb_enabled(schema_editor.connection):
        log.info("time-series policies: plain PostgreSQL, none to add (selectors use date_bin)")
        return False
    run = schema_editor.execute
    run(
        "ALTER TABLE streams_reading SET (timescaledb.compress,"
        " timescaledb.compress_segmentby = 'device_id, metric',"
        " timescaledb.compress_orderby = 'time DESC')"
    )
    run(
        f"SELECT add_compression_policy('streams_reading', INTERVAL '{READINGS_COMPRESS_AFTER}',"
        " if_not_exists => TRUE)"
    )
    run(
        f"SELECT add_retention_policy('streams_reading', INTERVAL '{READINGS_RETAIN}',"
        " if_not_exists => TRUE)"
    )
    run(
        "ALTER TABLE streams_deviceevent SET (timescaledb.compress,"
        " timescaledb.compress_segmentby = 'device_id', timescaledb.compress_orderby = 'time DESC')"
    )
    run(
        f"SELECT add_compression_policy('streams_deviceevent', INTERVAL '{EVENTS_COMPRESS_AFTER}',"
        " if_not_exists => TRUE)"
    )
    run(
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {MINUTE_AGGREGATE}"
        " WITH (timescaledb.continuous) AS"
        " SELECT device_id, metric, time_bucket(INTERVAL '1 minute', time) AS bucket,"
        " avg(value) AS avg, min(value) AS min, max(value) AS max, count(*) AS n"
        " FROM streams_reading GROUP BY device_id, metric, bucket WITH NO DATA"
    )
    run(
        f"SELECT add_continuous_aggregate_policy('{MINUTE_AGGREGATE}',"
        " start_offset => INTERVAL '3 days', end_offset => INTERVAL '1 minute',"
        " schedule_interval => INTERVAL '1 minute', if_not_exists => TRUE)"
    )
    log.info("time-series policies: compression, retention and %s added", MINUTE_AGGREGATE)
    return True


def policies_operation() -> Any:
    from django.db import migrations

    def forwards(apps: Any, schema_editor: BaseDatabaseSchemaEditor) -> None:
        configure_timescaledb(schema_editor)

    return migrations.RunPython(forwards, migrations.RunPython.noop, elidable=False)


def enable_realtime_aggregate(schema_editor: BaseDatabaseSchemaEditor) -> bool:
    """Make the minute aggregate answer up to now: materialized buckets below its watermark and,
    above it, buckets computed from the raw readings at query time.

    The aggregate is created WITH NO DATA and its policy materializes up to a minute ago once a
    minute, and since TimescaleDB 2.13 a continuous aggregate is "materialized only" by default,
    so the last minutes (what a duty officer looks at) were missing. With real-time aggregation
    the raw part of a query covers only what is above the watermark (about the last minute or
    two once the policy runs), so charts stay cheap. A reading that arrives late, below the
    watermark, shows once the next refresh (within a minute) has materialized it."""
    if not timescaledb_enabled(schema_editor.connection):
        return False
    schema_editor.execute(
        f"ALTER MATERIALIZED VIEW {MINUTE_AGGREGATE} SET (timescaledb.materialized_only = false)"
    )
    log.info("time-series policies: %s aggregates in real time", MINUTE_AGGREGATE)
    return True


def realtime_aggregate_operation() -> Any:
    from django.db import migrations

    def forwards(apps: Any, schema_editor: BaseDatabaseSchemaEditor) -> None:
        enable_realtime_aggregate(schema_editor)

    return migrations.RunPython(forwards, migrations.RunPython.noop, elidable=False)
