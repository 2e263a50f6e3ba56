"""What every benchmark needs: its own database on the server DATABASE_URL points at (or on a
TimescaleDB cluster of the benchmark's own, :func:`database_server`), Django started on it and
migrated, free ports, and a SIGTERM that unwinds like Ctrl-C."""

from __future__ import annotations

import os
import pwd
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


def _pg_bins() -> list[Path]:
    """The bin directories of the PostgreSQL servers installed from Debian's packages, newest
    first (a client-only major, without ``postgres``, is no server)."""
    root = Path("/usr/lib/postgresql")
    majors = sorted((p for p in root.glob("*") if p.name.isdigit()), key=lambda p: -int(p.name))
    return [p / "bin" for p in majors if (p / "bin" / "postgres").exists()]


def _timescaledb_installed(pg_bin: Path) -> bool:
    """Is TimescaleDB's library in this server's lib directory (its own pg_config's answer)?"""
    try:
        libdir = subprocess.run(
            [str(pg_bin / "pg_config"), "--pkglibdir"], capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        libdir = ""
    libdir = libdir or str(pg_bin.parent / "lib")
    return any(Path(libdir).glob("timescaledb*.so"))


def _timescaledb_bin() -> Path:
    """The newest installed server that has TimescaleDB; a clear exit when there is none."""
    bins = _pg_bins()
    if not bins:
        raise SystemExit("PostgreSQL's server binaries are not installed (Debian's postgresql)")
    for pg_bin in bins:
        if _timescaledb_installed(pg_bin):
            return pg_bin
    raise SystemExit(
        "TimescaleDB is not installed in this machine's PostgreSQL: run the install.sh "
        "that comes with its source (docs/operations.md, TimescaleDB), then run again"
    )


def _as_postgres(argv: list[str]) -> list[str]:
    # initdb and the server refuse to run as root.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *argv]
    return argv


def _run_as_server(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    # From "/": as root the command runs as postgres, who may not be allowed into the current
    # directory (initdb and pg_ctl then warn, or fail to find themselves).
    return subprocess.run(_as_postgres(argv), cwd="/", text=True, **kwargs)


def _cluster_dir() -> Path:
    return Path(
        os.environ.get(TIMESCALEDB_DIR_ENV)
        or Path(tempfile.gettempdir()) / "whistle-bench-timescaledb"
    ).absolute()


def _own_cluster_dir(data: Path) -> None:
    """The cluster's directory owned by the user its server runs as: postgres when this runs as
    root (a directory a root run made, or one left by a copy, is handed over), else this user
    (whose server could not read a directory of another's)."""
    data.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        if data.stat().st_uid != pwd.getpwnam("postgres").pw_uid:
            subprocess.run(["chown", "-R", "postgres:postgres", str(data)], check=True)
        # The server's user must reach the directory through its parents.
        reach = _run_as_server(["test", "-w", str(data)], check=False)
        if reach.returncode != 0:
            raise SystemExit(
                f"the user postgres cannot reach {data}: set {TIMESCALEDB_DIR_ENV} to a directory "
                "it can reach (its parents searchable by all)"
            )
    elif data.stat().st_uid != os.geteuid():
        raise SystemExit(
            f"{data} belongs to another user (a run as root leaves it to postgres): set "
            f"{TIMESCALEDB_DIR_ENV} to a directory of yours, or run as that user"
        )
    data.chmod(0o700)  # the server refuses a data directory others can read


def _process_in(pid: int, directory: Path, program: bytes) -> bool:
    """Is ``pid`` a live process of ``program`` whose working directory is ``directory``?

    A postmaster works in its data directory, so this tells the cluster's own server from an
    unrelated process that got its number after a crash or a reboot (which pg_ctl would signal,
    and the server would take for a running postmaster)."""
    try:
        cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0]
    except (OSError, ValueError):
        return False  # gone, or another user's
    return cwd == directory.resolve() and program in argv0


def _initdb(pg_bin: Path, data: Path) -> None:
    """A new cluster in ``data``, made beside it and moved in when complete: an initdb that is
    killed leaves no half cluster behind to be taken for a whole one."""
    if data.exists() and any(data.iterdir()):
        raise SystemExit(
            f"{data} is not empty and holds no PostgreSQL cluster: remove it, or set "
            f"{TIMESCALEDB_DIR_ENV} to another directory"
        )
    staging = data.with_name(data.name + ".initdb")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    if os.geteuid() == 0:
        shutil.chown(staging, "postgres", "postgres")
    progress(f"initdb of a TimescaleDB cluster in {data} (kept for later runs)")
    _run_as_server(
        [str(pg_bin / "initdb"), "-D", str(staging), "-U", "postgres", "--auth=trust",
         "-E", "UTF8", "--locale=C.UTF-8"],
        check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    if data.exists():
        data.rmdir()
    staging.rename(data)


def _claim(data: Path) -> Path:
    """Mark the cluster as this run's; refuse when another live benchmark holds it (its
    server would be stopped under it below)."""
    mark = data / "whistle-bench.owner"
    try:
        holder = int(mark.read_text().strip())
    except (OSError, ValueError):
        holder = 0
    if holder and holder != os.getpid():
        try:
            alive = b"bench" in Path(f"/proc/{holder}/cmdline").read_bytes()
        except OSError:
            alive = False
        if alive:
            raise SystemExit(
                f"another benchmark (pid {holder}) is using the TimescaleDB cluster in {data}: "
                "run benchmarks one at a time"
            )
    mark.write_text(f"{os.getpid()}\n")
    return mark


def _stop_leftover(pg_bin: Path, data: Path) -> None:
    """A server a killed run left: stop it if it is still running, else remove its stale
    postmaster.pid (whose number may belong to another process by now)."""
    pidfile = data / "postmaster.pid"
    try:
        pid = int(pidfile.read_text().split("\n", 1)[0])
    except FileNotFoundError:
        return
    except (OSError, ValueError):
        pid = 0
    if pid and _process_in(pid, data, b"postgres"):
        progress(f"stopping the TimescaleDB server a killed run left (pid {pid})")
        _run_as_server(
            [str(pg_bin / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
            check=True,
            capture_output=True,
        )
    else:
        progress(f"removing a stale postmaster.pid (pid {pid} is not this cluster's server)")
        pidfile.unlink(missing_ok=True)


# Settings of the cluster. Memory and durability are PostgreSQL's defaults, as on the machine's
# own server, so that the two engines differ by TimescaleDB and not by their configuration; the
# worker processes are raised for TimescaleDB's background jobs (its launcher, a scheduler per
# database and the policies' jobs) to leave parallel query what it has on a plain server.
TIMESCALEDB_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    # TCP only: a socket in the data directory would fail for a long path (108 bytes at most)
    # and nothing here connects through one.
    "unix_socket_directories": "''",
    "shared_preload_libraries": "timescaledb",
    "timescaledb.telemetry_level": "off",
    "max_worker_processes": "16",
    "max_connections": "400",
}


@contextmanager
def database_server(name: str = "bench", log_dir: Path | None = None) -> Iterator[str]:
    """The server this benchmark runs on, as DATABASE_URL (also set in the environment, for
    :func:`database_url` and the processes a benchmark starts).

    With ``WHISTLE_BENCH_DB=timescaledb``: a PostgreSQL cluster that preloads TimescaleDB,
    initdb'd once into ``WHISTLE_BENCH_TIMESCALEDB_DIR`` (default: whistle-bench-timescaledb in
    the system's temporary directory) and kept there, so a generated data set (bench-replay's
    year) is made once, as on the plain server; started on a free port for the run and stopped
    at its end, its log then copied to ``<log_dir>/<name>-timescaledb-server.log`` (default
    log_dir: test-artifacts). The machine's own server is left as it is. Otherwise
    DATABASE_URL's server."""
    if bench_db() == "postgresql":
        yield os.environ.get("DATABASE_URL") or DEFAULT_SERVER_URL
        return
    pg_bin = _timescaledb_bin()
    data = _cluster_dir()
    if not (data / "PG_VERSION").exists():
        _initdb(pg_bin, data)
    _own_cluster_dir(data)
    mark = _claim(data)
    _stop_leftover(pg_bin, data)
    # The server writes its log where its user may write (the data directory); it is copied to
    # the artifacts when the server stops, so a run's log is there whoever ran it.
    server_log = data / "whistle-bench-server.log"
    server_log.unlink(missing_ok=True)
    log = (log_dir or REPO_ROOT / "test-artifacts") / f"{name}-timescaledb-server.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    port = free_port()
    options = " ".join(
        f"-c {key}={value}" for key, value in {"port": port, **TIMESCALEDB_SETTINGS}.items()
    )
    began = time.monotonic()
    started = _run_as_server(
        [str(pg_bin / "pg_ctl"), "-D", str(data), "-l", str(server_log), "-w", "-t", "120",
         "-o", options, "start"],
        check=False, capture_output=True,
    )  # fmt: skip
    if started.returncode != 0:
        _keep_log(server_log, log)
        mark.unlink(missing_ok=True)
        raise SystemExit(
            f"the TimescaleDB server did not start ({started.stderr.strip() or started.stdout})"
            f"; its log: {log}"
        )
    url = f"postgres://postgres@127.0.0.1:{port}/postgres"
    progress(
        f"TimescaleDB cluster on 127.0.0.1:{port}, up in {time.monotonic() - began:.1f} s"
        f" (its log: {log})"
    )
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
        _run_as_server(
            [str(pg_bin / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
            check=False,
            stdout=subprocess.DEVNULL,
        )
        _keep_log(server_log, log)
        mark.unlink(missing_ok=True)
        progress(f"stopped the TimescaleDB cluster ({time.monotonic() - began:.1f} s); log {log}")


def _keep_log(source: Path, target: Path) -> None:
    try:
        shutil.copyfile(source, target)
    except OSError as problem:
        progress(f"could not keep the server's log: {problem}")


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


def describe_database(connection: Any) -> str:
    """Which engine this run measures, for the header of its output: TimescaleDB with its
    version and the time-series tables that are hypertables (chunks, compressed chunks), or
    plain PostgreSQL; then the settings that weigh on the figures.

    Asked of the benchmark's database itself, not taken from WHISTLE_BENCH_DB: DATABASE_URL's
    server may preload TimescaleDB too, and a database migrated before its server did has plain
    tables for good. With WHISTLE_BENCH_DB=timescaledb a readings table that is not a
    hypertable ends the run: its figures would be recorded as TimescaleDB's."""
    from streams.timeseries import CHUNK_INTERVALS

    tables = list(CHUNK_INTERVALS)
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('server_version')")
        server = f"PostgreSQL {cursor.fetchone()[0].split()[0]}"
        cursor.execute(
            "SELECT name, setting, unit FROM pg_settings WHERE name IN"
            " ('shared_buffers', 'work_mem', 'synchronous_commit') ORDER BY name"
        )
        settings = ", ".join(f"{n} {_setting(v, u)}" for n, v, u in cursor.fetchall())
        cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")
        row = cursor.fetchone()
        hypertables: dict[str, tuple[int, int]] = {}
        if row is not None:
            cursor.execute(
                "SELECT h.hypertable_name, count(c.chunk_name),"
                " count(c.chunk_name) FILTER (WHERE c.is_compressed)"
                " FROM timescaledb_information.hypertables AS h"
                " LEFT JOIN timescaledb_information.chunks AS c"
                " USING (hypertable_schema, hypertable_name)"
                " WHERE h.hypertable_name = ANY(%s) GROUP BY h.hypertable_name",
                [tables],
            )
            hypertables = {name: (chunks, packed) for name, chunks, packed in cursor.fetchall()}
    if row is not None and "streams_reading" in hypertables:
        listed = ", ".join(
            f"{t} {chunks} chunks" + (f" ({packed} compressed)" if packed else "")
            for t in tables
            if t in hypertables
            for chunks, packed in [hypertables[t]]
        )
        return f"TimescaleDB {row[0]} on {server} (hypertables: {listed}); {settings}"
    if bench_db() == "timescaledb":
        raise SystemExit(
            f"{BENCH_DB_ENV}=timescaledb but streams_reading is a plain table in this database "
            f"(TimescaleDB {'not created' if row is None else row[0] + ', no hypertable'}): "
            "drop the database so that it is made again on the TimescaleDB server"
        )
    what = "no TimescaleDB" if row is None else f"TimescaleDB {row[0]} created, tables plain"
    return f"plain {server} ({what}: tables with a BRIN index on time); {settings}"


def _setting(value: str, unit: str | None) -> str:
    # pg_settings gives memory in units of its own (8kB pages, kB): as PostgreSQL shows it.
    if unit in ("8kB", "kB"):
        kb = int(value) * (8 if unit == "8kB" else 1)
        return f"{kb // 1024}MB" if kb % 1024 == 0 else f"{kb}kB"
    return value


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
