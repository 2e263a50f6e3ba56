"""Shared fixtures: one helper per seam (publish_mqtt, capture_broadcasts, board_page).

Tests talk to real services. A test that needs a service it cannot find fails when
WHISTLE_REQUIRE_SERVICES=1 (CI) and skips with the reason otherwise.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

REQUIRE_SERVICES = os.environ.get("WHISTLE_REQUIRE_SERVICES") == "1"
ARTIFACTS = Path(os.environ.get("WHISTLE_TEST_ARTIFACTS", "test-artifacts")).resolve()


def need_service(reason: str) -> None:
    """Fail in CI, skip on a laptop."""
    if REQUIRE_SERVICES:
        pytest.fail(f"required service missing: {reason}", pytrace=False)
    pytest.skip(reason)


def raise_alert(
    township_id: int,
    dedupe_key: str,
    *,
    category: str = "parking",
    severity: str = "major",
    source: str = "camera",
    title: str = "违停",
    time: Any = None,
    **fields: Any,
) -> int:
    """Raise (or repeat) an alert through the service as ingest does; returns its id. ``fields``
    are the rest of ``AlertSpec`` (grid_id, device_id, detail …)."""
    from django.utils import timezone

    from alerts.rules import AlertSpec
    from alerts.services import alert_raise

    alert_id, _created = alert_raise(
        spec=AlertSpec(
            township_id=township_id,
            category_code=category,
            severity=severity,
            source=source,
            title=title,
            dedupe_key=dedupe_key,
            time=time or timezone.now(),
            **fields,
        )
    )
    return alert_id


def signed_in(username: str) -> Any:
    """A Django test client logged in as a demo user."""
    from django.test import Client

    client = Client()
    assert client.login(username=username, password=DEMO_PASSWORDS[username])
    return client


def wait_for(
    condition: Callable[[], Any], *, timeout: float = 10.0, interval: float = 0.05, what: str = ""
) -> Any:
    """Poll ``condition`` until it returns something truthy, or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}")
        time.sleep(interval)


def database_now() -> Any:
    """The database's clock, for :func:`end_connections_since`."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT now()")
        return cursor.fetchone()[0]


def end_connections_since(started: Any) -> None:
    """End the idle connections opened since ``started`` by this test's threads that outlive
    it: a socket's renders run on the worker threads of the event loop async_to_sync made for
    the test; that loop and its threads are gone, their connections are not, and the test
    database could not be dropped while they last."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname ="
            " current_database() AND pid <> pg_backend_pid() AND state = 'idle'"
            " AND backend_start >= %s",
            [started],
        )


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """REDIS_URL when it answers; else a Redis the tests start (like Mosquitto), so that a fresh
    clone's `make test` runs the browser tests too. The channel layer of this process, and of
    the web server it forks later, is switched to it."""
    url = os.environ.get("REDIS_URL", "")
    if url:
        parts = urlsplit(url)
        if _reachable(parts.hostname or "127.0.0.1", parts.port or 6379):
            yield url
            return
    from tests.brokers import redis_installed, redis_server

    if not redis_installed():
        why = f"Redis at {url} is not reachable" if url else "REDIS_URL is not set"
        need_service(f"{why} and redis-server is not installed (apt-get install redis-server)")
    from django.test import override_settings

    from command.settings import redis_channel_layers

    with redis_server(tmp_path_factory.mktemp("redis")) as own_url:
        # override_settings signals the change, so channels drops a layer it already built.
        with override_settings(REDIS_URL=own_url, CHANNEL_LAYERS=redis_channel_layers(own_url)):
            yield own_url


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: None, django_db_blocker: Any) -> None:
    """On TimescaleDB, pause the test database's background jobs (the aggregate's refresh,
    compression, retention). They act on the wall clock: a refresh that ran while one test's
    committed readings existed would move the minute aggregate's watermark, and a later test's
    readings from before that moment would then be left out of the real-time aggregate until the
    next refresh. Tests that concern the jobs run them explicitly."""
    from django.db import connection

    from streams.timeseries import timescaledb_enabled

    with django_db_blocker.unblock():
        if timescaledb_enabled(connection):
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT alter_job(job_id, scheduled => false)"
                    " FROM timescaledb_information.jobs WHERE hypertable_name IS NOT NULL"
                )


# --- web ----------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def daphne_server(django_db_setup: Any, django_db_blocker: Any, redis_url: str) -> Iterator[str]:
    from daphne.testing import DaphneProcess
    from django.conf import settings
    from django.db import connections

    assert settings.CHANNEL_LAYERS["default"]["BACKEND"].startswith("channels_redis"), (
        "the web server runs in another process, so the channel layer must be Redis"
    )

    def get_application() -> Any:
        from command.asgi import application

        return application

    with django_db_blocker.unblock():
        connections.close_all()  # a forked child must not share our sockets

    def allow_database() -> None:
        # The child inherits pytest-django's blocker; the server must reach the test database.
        django_db_blocker.unblock()
        # It also inherits asgiref's one-thread executor for thread-sensitive calls without
        # that thread, if this process had started it (the job worker's tests do): work given
        # to it would wait for ever, so every socket's connect timed out. A fresh one.
        from concurrent.futures import ThreadPoolExecutor

        from asgiref.sync import SyncToAsync

        SyncToAsync.single_thread_executor = ThreadPoolExecutor(max_workers=1)

    process = DaphneProcess("127.0.0.1", get_application, setup=allow_database)
    process.daemon = True
    process.start()
    if not process.ready.wait(20):
        raise RuntimeError("daphne did not start in 20 s")
    yield f"http://127.0.0.1:{process.port.value}"
    process.terminate()
    process.join(10)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One chromium for the session (tests/browser.py), for tests/e2e and tests/scenarios."""
    from tests.browser import launch_browser

    yield from launch_browser()


@pytest.fixture
def board_page(browser: Any, daphne_server: str) -> Iterator[Callable[..., Any]]:
    """board_page(username, viewport=…) → a Playwright page signed in, showing its home."""
    from tests.browser import signed_in_pages

    yield from signed_in_pages(browser, daphne_server)


# --- MQTT ---------------------------------------------------------------------------------------


class MqttBroker:
    def __init__(self, url: str, protocol: str, users: dict[str, str]) -> None:
        self.url = url
        self.protocol = protocol
        self.users = users
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 1883

    def url_for(self, user: str) -> str:
        if user not in self.users:
            return self.url
        return f"mqtt://{user}:{self.users[user]}@{self.host}:{self.port}"


@pytest.fixture(scope="session")
def mqtt_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MqttBroker]:
    """Mosquitto started with the project's own config; the embedded broker where there is none."""
    users = {
        "whistle-ingest": "ingest-test-password",
        "qingshui": "gateway-test-password",
        "frigate": "frigate-test-password",
    }
    if shutil.which("mosquitto") or Path("/usr/sbin/mosquitto").exists():
        from tests.brokers import mosquitto_broker

        with mosquitto_broker(tmp_path_factory.mktemp("mosquitto"), users) as broker:
            yield MqttBroker(broker.url, "5", users)
        return
    if REQUIRE_SERVICES:
        pytest.fail("mosquitto is not installed (apt-get install mosquitto)", pytrace=False)
    from command.embedded import EmbeddedBroker, free_port

    embedded = EmbeddedBroker(port=free_port()).start()
    try:
        yield MqttBroker(embedded.url, "3.1.1", {})
    finally:
        embedded.stop()


@pytest.fixture
def mqtt_settings(settings: Any, mqtt_broker: MqttBroker) -> MqttBroker:
    settings.MQTT_URL = mqtt_broker.url_for("whistle-ingest")
    settings.MQTT_PROTOCOL = mqtt_broker.protocol
    return mqtt_broker


@pytest.fixture
def publish_mqtt(mqtt_settings: MqttBroker) -> Iterator[Callable[..., None]]:
    """publish_mqtt(topic, payload, user="qingshui") — QoS 1, waits for the broker's PUBACK."""
    from streams.mqtt.client import broker_config, connect, make_client

    clients: dict[str, Any] = {}

    def publish(topic: str, payload: bytes | str, *, user: str = "qingshui", retain=False) -> None:
        if user not in clients:
            config = broker_config(mqtt_settings.url_for(user))
            client, _ = make_client(f"test-pub-{user}", config=config)
            connect(client, config)
            client.loop_start()
            clients[user] = client
        data = payload.encode() if isinstance(payload, str) else payload
        info = clients[user].publish(topic, data, qos=1, retain=retain)
        info.wait_for_publish(timeout=5)
        assert info.is_published(), f"broker did not acknowledge {topic}"

    yield publish
    for client in clients.values():
        client.disconnect()
        client.loop_stop()


@pytest.fixture
def ingest_worker(mqtt_settings: MqttBroker, transactional_db: None) -> Iterator[Any]:
    """A real `whistle ingest` worker in a thread, subscribed before the test publishes."""
    import uuid

    from streams.ingest import directory
    from streams.mqtt.client import IngestWorker

    directory.forget()
    worker = IngestWorker(f"test-ingest-{uuid.uuid4().hex[:6]}")
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    assert worker.wait_subscribed(10), "ingest worker did not subscribe"
    yield worker
    worker.stop()
    thread.join(10)


@pytest.fixture(scope="session", autouse=True)
def fast_password_hasher() -> None:
    """Hashing the demo passwords with PBKDF2 costs ~0.6 s a test; what is tested is the login
    flow, not the hash. Set for the session so the forked web server inherits it."""
    from django.conf import settings

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


class JobWorker:
    """`whistle worker` in a thread; start() and stop() as often as a test likes."""

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.errors: list[BaseException] = []

    def start(self) -> None:
        from command.worker import run_worker

        self._stop = threading.Event()
        stop = self._stop

        def work() -> None:
            try:
                run_worker(stop)
            except BaseException as exc:  # reported by stop(), in the test's thread
                self.errors.append(exc)

        self._thread = threading.Thread(target=work, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(20)
        assert not self._thread.is_alive(), "worker did not stop"
        self._thread = None
        assert not self.errors, self.errors


@pytest.fixture
def job_worker(transactional_db: None) -> Iterator[JobWorker]:
    worker = JobWorker()
    yield worker
    worker.stop()


# --- data ---------------------------------------------------------------------------------------


@pytest.fixture
def demo(db: None) -> Any:
    from demo.seed import seed_demo

    return seed_demo(passwords=DEMO_PASSWORDS)


@pytest.fixture
def demo_committed(transactional_db: None) -> Any:
    from demo.seed import seed_demo

    return seed_demo(passwords=DEMO_PASSWORDS)


DEMO_PASSWORDS = {
    "admin": "admin-test-pass",
    "duty": "duty-test-pass",
    "district": "district-test-pass",
    "supervisor": "supervisor-test-pass",
    "chengguan": "chengguan-test-pass",
    "police": "police-test-pass",
    "grid01": "grid01-test-pass",
}


@pytest.fixture
def capture_broadcasts() -> Iterator[list[tuple[str, dict[str, Any]]]]:
    from command.realtime import capture_broadcasts as capture

    with capture() as captured:
        yield captured


@pytest.fixture(autouse=True, scope="session")
def _media_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Photos the tests upload land in a temporary directory (also for the forked web server,
    which starts later and inherits the setting)."""
    from django.test import override_settings

    with override_settings(MEDIA_ROOT=tmp_path_factory.mktemp("media")):
        yield
