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


def timescaledb_available(schema_editor: BaseDatabaseSchemaEditor) -> bool:
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'")
        return cursor.fetchone() is not None


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
            " (TimescaleDB not installed)",
            table,
        )
    return kind


def migration_operation(table: str, time_column: str = "time") -> Any:
    """A RunPython operation for a migration that created ``table``."""
    from django.db import migrations

    def forwards(apps: Any, schema_editor: BaseDatabaseSchemaEditor) -> None:
        create_time_series_table(schema_editor, table, time_column)

    return migrations.RunPython(forwards, migrations.RunPython.noop, elidable=False)
