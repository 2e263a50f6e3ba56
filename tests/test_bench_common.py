"""bench.common's TimescaleDB cluster helpers that can be checked without starting one: a stale
postmaster.pid is told from a running server of the cluster, and the engine line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench import common


def test_a_stale_postmaster_pid_is_removed_without_signalling_its_number(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # After a crash or a reboot the number in postmaster.pid may be any live process: this
    # one, here. It works elsewhere, so it is not the cluster's server and must not be stopped.
    (tmp_path / "postmaster.pid").write_text(f"{os.getpid()}\n{tmp_path}\n")
    calls: list[list[str]] = []
    monkeypatch.setattr(common, "_run_as_server", lambda argv, **kw: calls.append(argv))
    common._stop_leftover(Path("/nonexistent/bin"), tmp_path)
    assert not (tmp_path / "postmaster.pid").exists()
    assert calls == []


def test_a_running_server_of_the_cluster_is_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The number is a live server of this cluster (as _process_in finds it).
    (tmp_path / "postmaster.pid").write_text(f"{os.getpid()}\n{tmp_path}\n")
    calls: list[list[str]] = []
    monkeypatch.setattr(common, "_run_as_server", lambda argv, **kw: calls.append(argv))
    monkeypatch.setattr(common, "_process_in", lambda pid, directory, program: True)
    common._stop_leftover(Path("/usr/lib/postgresql/15/bin"), tmp_path)
    assert calls and calls[0][-3:] == ["immediate", "-w", "stop"]


def test_process_in_checks_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert common._process_in(os.getpid(), tmp_path, b"python")
    assert not common._process_in(os.getpid(), tmp_path / "elsewhere", b"python")
    assert not common._process_in(os.getpid(), tmp_path, b"postgres")


def test_settings_read_as_postgresql_shows_them() -> None:
    assert common._setting("16384", "8kB") == "128MB"
    assert common._setting("4096", "kB") == "4MB"
    assert common._setting("on", None) == "on"


@pytest.mark.django_db
def test_the_engine_line_names_what_the_tables_are(monkeypatch: pytest.MonkeyPatch) -> None:
    from django.db import connection

    from streams.timeseries import timescaledb_enabled

    monkeypatch.delenv(common.BENCH_DB_ENV, raising=False)
    line = common.describe_database(connection)
    if timescaledb_enabled(connection):
        assert line.startswith("TimescaleDB ") and "streams_reading" in line
    else:
        assert line.startswith("plain PostgreSQL ") and "BRIN" in line
        # Asked for TimescaleDB, a run on plain tables stops rather than mislabel its figures.
        monkeypatch.setenv(common.BENCH_DB_ENV, "timescaledb")
        with pytest.raises(SystemExit, match="plain table"):
            common.describe_database(connection)
