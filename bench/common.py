"""What every benchmark needs: its own database on the server DATABASE_URL points at, Django
started on it and migrated, free ports, and a SIGTERM that unwinds like Ctrl-C."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

DATABASE = "whistle_bench"
DEFAULT_SERVER_URL = "postgres://postgres@127.0.0.1:5432/postgres"
REPO_ROOT = Path(__file__).resolve().parent.parent


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
