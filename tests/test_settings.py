"""Configuration comes from the environment; production refuses unsafe defaults."""

import os
import subprocess
import sys

import pytest
from django.db import connection

from streams.timeseries import timescaledb_enabled


def setup_with(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DEBUG", "WHISTLE_ENV"}}
    base.setdefault("DATABASE_URL", "postgres://unused@127.0.0.1:1/unused")
    base.update(env, DJANGO_SETTINGS_MODULE="command.settings")
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); print('started')"],
        env=base,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"WHISTLE_ENV": "production"}, "needs SECRET_KEY"),
        ({"WHISTLE_ENV": "production", "SECRET_KEY": "django-insecure-" + "x" * 40}, "SECRET_KEY"),
        ({"WHISTLE_ENV": "production", "SECRET_KEY": "s" * 50, "DEBUG": "1"}, "DEBUG on"),
    ],
)
def test_production_refuses_unsafe_settings(env, message):
    result = setup_with(env)
    assert result.returncode != 0
    assert message in result.stderr


def test_production_starts_with_a_real_key(tmp_path):
    result = setup_with(
        {"WHISTLE_ENV": "production", "SECRET_KEY": "k" * 50, "WHISTLE_DATA_DIR": str(tmp_path)}
    )
    assert result.returncode == 0, result.stderr
    assert "started" in result.stdout


def test_development_keeps_a_generated_key_in_the_data_dir(tmp_path):
    result = setup_with({"WHISTLE_DATA_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    key = (tmp_path / "secret_key").read_text()
    assert len(key) >= 50
    assert oct((tmp_path / "secret_key").stat().st_mode & 0o777) == "0o600"


@pytest.mark.django_db
def test_time_series_tables_take_the_path_the_database_allows():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'streams_reading'"
            " AND indexdef ILIKE '%%USING brin%%'"
        )
        brin = cursor.fetchall()
    if timescaledb_enabled(connection):
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM timescaledb_information.hypertables"
                " WHERE hypertable_name IN ('streams_reading', 'streams_deviceevent',"
                " 'incidents_timelineentry')"
            )
            assert cursor.fetchone()[0] == 3
    else:
        assert brin == [("streams_reading_time_brin",)]
