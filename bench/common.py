"""What every benchmark needs: its own database on the server DATABASE_URL points at (or on a
TimescaleDB cluster of the benchmark's own, :func:`database_server`), Django started on it and
migrated, free ports, and a SIGTERM that unwinds like Ctrl-C."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

DATABASE = "whistle_bench"
DEFAULT_SERVER_URL = "postgres://postgres@127.0.0.1:5432/postgres"
REPO_ROOT = Path(__file__).resolve().parent.parent


# Which server a benchmark runs on: "postgresql" (DATABASE_URL's, default the local one) or
# "timescaledb" (a cluster of the benchmark's own that preloads TimescaleDB, see
# database_server). `WHISTLE_BENCH_DB=timescaledb make bench-ingest`.
BENCH_DB_ENV = "WHISTLE_BENCH_DB"
TIMESCALEDB_DIR_ENV = "WHISTLE_BENCH_TIMESCALEDB_DIR"


def bench_db() -> str:
    kind = (os.environ.get(BENCH_DB_ENV) or "postgresql").strip().lower()
    if kind not in ("postgresql", "timescaledb"):
        raise SystemExit(f"{BENCH_DB_ENV} must be postgresql or timescaledb, not {kind!r}")
    return kind


def progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def _pg_bin() -> Path:
    """The bin directory of the newest PostgreSQL installed from Debian's packages."""
    root = Path("/usr/lib/postgresql")
    majors = sorted((p for p in root.glob("*") if p.name.isdigit()), key=lambda p: int(p.name))
    if not majors:
        raise SystemExit("PostgreSQL's server binaries are not installed (Debian's postgresql)")
    return majors[-1] / "bin"


def _timescaledb_installed(pg_bin: Path) -> bool:
    libdir = (
        subprocess.run(
            [str(pg_bin / "pg_config"), "--pkglibdir"], capture_output=True, text=True, check=False
        ).stdout.strip()
        or subprocess.run(
            ["pg_config", "--pkglibdir"], capture_output=True, text=True, check=False
        ).stdout.strip()
    )
    return bool(libdir) and any(Path(libdir).glob("timescaledb*.so"))


def _as_postgres(argv: list[str]) -> list[str]:
    # initdb and the server refuse to run as root.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *argv]
    return argv


@contextmanager
def database_server(log_dir: Path | None = None) -> Iterator[str]:
    """The server this benchmark runs on, as DATABASE_URL (also set in the environment, for
    :func:`database_url` and the processes a benchmark starts).

    With ``WHISTLE_BENCH_DB=timescaledb``: a PostgreSQL cluster that preloads TimescaleDB,
    initdb'd once into ``WHISTLE_BENCH_TIMESCALEDB_DIR`` (default: whistle-bench-timescaledb in
    the system's temporary directory) and kept there, so a generated data set (bench-replay's
    year) is made once, as on the plain server; started on a free port for the run and stopped
    at its end. The machine's own server is left as it is. Otherwise DATABASE_URL's server."""
    if bench_db() == "postgresql":
        yield os.environ.get("DATABASE_URL") or DEFAULT_SERVER_URL
        return
    pg_bin = _pg_bin()
    if not _timescaledb_installed(pg_bin):
        raise SystemExit(
            "TimescaleDB is not installed in this machine's PostgreSQL: run the install.sh "
            "that comes with its source (docs/operations.md, TimescaleDB), then run again"
        )
    data = Path(
        os.environ.get(TIMESCALEDB_DIR_ENV)
        or Path(tempfile.gettempdir()) / "whistle-bench-timescaledb"
    )
    log_dir = log_dir or REPO_ROOT / "test-artifacts"
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / "bench-timescaledb-server.log"
    if not (data / "PG_VERSION").exists():
        shutil.rmtree(data, ignore_errors=True)
        data.mkdir(parents=True)
        if os.geteuid() == 0:
            shutil.chown(data, "postgres")
            data.chmod(0o700)
        progress(f"initdb of a TimescaleDB cluster in {data} (kept for later runs)")
        subprocess.run(
            _as_postgres(
                [str(pg_bin / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                 "-E", "UTF8", "--locale=C.UTF-8"]
            ),
            check=True,
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
    port = free_port()
    socket_dir = data  # owned by postgres, so the server may put its socket there
    options = (
        f"-c port={port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={socket_dir} "
        "-c shared_preload_libraries=timescaledb -c timescaledb.telemetry_level=off "
        "-c max_connections=400 -c shared_buffers=1GB -c synchronous_commit=on"
    )
    if (data / "postmaster.pid").exists():  # a run killed before it could stop its server
        subprocess.run(
            _as_postgres([str(pg_bin / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            check=False,
            capture_output=True,
        )
    if os.geteuid() == 0:
        log.touch()
        shutil.chown(log, "postgres")
    subprocess.run(
        _as_postgres(
            [str(pg_bin / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60", "-o",
             options, "start"]
        ),
        check=True,
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"postgres://postgres@127.0.0.1:{port}/postgres"
    progress(f"TimescaleDB cluster on 127.0.0.1:{port} (its log: {log})")
    previous = os.environ.get("DATABASE_URL")
    os.environ["DATABASE_URL"] = url
    try:
        yield url
    finally:
        if previous is None:
            os.environ.pop("DATABASE_URL", None)
        else:
            os.environ["DATABASE_URL"] = previous
        began = time.monotonic()
        subprocess.run(
            _as_postgres([str(pg_bin / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
            check=False,
            stdout=subprocess.DEVNULL,
        )
        progress(f"stopped the TimescaleDB cluster ({time.monotonic() - began:.1f} s)")


def database_url(name: str = DATABASE) -> str:
    """Database ``name`` on the server DATABASE_URL points at (default: local PostgreSQL)."""
    parts = urlsplit(os.environ.get("DATABASE_URL") or DEFAULT_SERVER_URL)
    return urlunsplit(parts._replace(path=f"/{name}"))


def prepare_database(url: str) -> None:
    """Create the database ``url`` names if missing, then start Django on it and migrate."""
    import psycopg
    from psycopg import sql

    name = urlsplit(url).path.lstrip("/")
    maintenance = urlunsplit(urlsplit(url)._replace(path="/postgres"))
    with psycopg.connect(maintenance, autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        if not found.fetchone():
            print(f"[bench] creating database {name}", file=sys.stderr, flush=True)
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    # Settings read DATABASE_URL once, at django.setup().
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "command.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)


def drop_database(url: str) -> None:
    """Drop the database ``url`` names, if there is one: a benchmark that measures what it
    writes starts from nothing, so a second run measures the same thing as the first."""
    import psycopg
    from psycopg import sql

    name = urlsplit(url).path.lstrip("/")
    maintenance = urlunsplit(urlsplit(url)._replace(path="/postgres"))
    with psycopg.connect(maintenance, autocommit=True) as conn:
        # FORCE: a server of a run that was killed may still hold a connection.
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
    print(f"[bench] dropped database {name} (a fresh one per run)", file=sys.stderr, flush=True)


def prepare_demo(url: str) -> None:
    """The bench database with the demo township seeded (idempotent)."""
    prepare_database(url)
    from demo.seed import seed_demo

    seed_demo()


def empty_time_series() -> None:
    """Empty the readings, device events and dead letters earlier runs left (millions of rows
    after a few runs of a load): each run then writes into the same empty tables."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE streams_reading, streams_deviceevent, streams_deadletter")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def terminate_on_sigterm() -> None:
    # SIGTERM (from make or CI) unwinds like Ctrl-C, so every finally stops its children.
    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def code_state(measured: list[str]) -> str:
    """The commit measured, and which of the ``measured`` paths had uncommitted changes."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10, check=True
        ).stdout

    try:
        head = git("rev-parse", "--short", "HEAD").strip()
        dirty = git("status", "--porcelain", "--", *measured).splitlines()
    except (OSError, subprocess.SubprocessError):
        return "unknown (no git)"
    changed = sorted({line[3:] for line in dirty if line.strip()})
    return head + (f" with uncommitted changes in {', '.join(changed)}" if changed else "")
