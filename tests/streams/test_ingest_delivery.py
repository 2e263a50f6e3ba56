"""Delivery guarantees of `whistle ingest` as separate processes on a real Mosquitto:
shared subscriptions split the load exactly once, and a worker killed mid-stream loses nothing."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.db import connection

from streams.models import Reading
from tests.conftest import wait_for

pytestmark = [pytest.mark.services, pytest.mark.timeout(180)]


def database_url() -> str:
    """Where this test's database really is (TCP or the embedded server's socket), read off
    the open connection rather than re-derived from settings."""
    from urllib.parse import quote

    connection.ensure_connection()
    info = connection.connection.info
    password = f":{quote(info.password, safe='')}" if info.password else ""
    return (
        f"postgresql://{quote(info.user, safe='')}{password}@/{info.dbname}"
        f"?host={quote(info.host, safe='/')}&port={info.port}"
    )


class IngestProcess:
    def __init__(self, broker, client_id: str, share_group: str = "") -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
        env.update(
            DATABASE_URL=database_url(),
            MQTT_URL=broker.url_for("whistle-ingest"),
            MQTT_PROTOCOL=broker.protocol,
            MQTT_SHARE_GROUP=share_group,
            PYTHONUNBUFFERED="1",
        )
        env.pop("REDIS_URL", None)
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "whistle"),
                "ingest",
                "--client-id",
                client_id,
                "--progress-every",
                "0.5",
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()
        wait_for(
            lambda: "ingest subscribed" in self.output() or self.process.poll() is not None,
            timeout=30,
            what=f"{client_id} to subscribe",
        )
        assert self.process.poll() is None, self.output()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def output(self) -> str:
        return "\n".join(self.lines)

    def stop(self) -> int:
        """SIGTERM, wait, and return how many messages it handled (its last progress line)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(20)
        handled = re.findall(r"ingest: (\d+) messages", self.output())
        return int(handled[-1]) if handled else 0

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(10)


def telemetry(i: int) -> tuple[str, bytes]:
    device = f"wl-{i % 4 + 1:02d}"
    ts = int(time.time() * 1000) - 60_000 + i  # distinct per message: distinct reading keys
    return (
        f"whistle/qingshui/sensor/{device}/telemetry",
        json.dumps({"ts": ts, "values": {"water_level": i / 1000}}).encode(),
    )


@pytest.fixture
def mosquitto_only(mqtt_settings):
    if mqtt_settings.protocol != "5":
        pytest.skip("shared subscriptions need Mosquitto (the embedded broker has none)")
    return mqtt_settings


def test_two_workers_on_a_shared_subscription_store_each_message_exactly_once(
    demo_committed, mosquitto_only, publish_mqtt
):
    workers = [
        IngestProcess(mosquitto_only, f"share-{n}", share_group="whistle-test") for n in (1, 2)
    ]
    try:
        total = 2000
        for i in range(total):
            publish_mqtt(*telemetry(i))
        wait_for(
            lambda: Reading.objects.count() >= total,
            timeout=60,
            what="all readings; workers said:\n" + "\n".join(w.output()[-2000:] for w in workers),
        )
    finally:
        handled = [worker.stop() for worker in workers]
    assert Reading.objects.count() == total
    # Each message went to exactly one worker, and both did real work.
    assert sum(handled) == total, handled
    assert min(handled) > 0, handled


def test_worker_killed_mid_stream_and_restarted_leaves_exactly_the_published_readings(
    demo_committed, mosquitto_only, publish_mqtt
):
    total = 6000
    worker = IngestProcess(mosquitto_only, "crash-test")
    published = threading.Event()

    def publish_all() -> None:
        for i in range(total):
            publish_mqtt(*telemetry(i))
        published.set()

    publisher = threading.Thread(target=publish_all, daemon=True)
    publisher.start()
    wait_for(
        lambda: Reading.objects.count() >= 500,
        timeout=60,
        what=f"ingest to be mid-stream; it said:\n{worker.output()[-2000:]}",
    )
    worker.kill()  # SIGKILL: no chance to ack, flush or say goodbye
    stored_at_crash = Reading.objects.count()
    assert stored_at_crash < total, "the crash should land mid-stream"

    restarted = IngestProcess(mosquitto_only, "crash-test")
    try:
        assert published.wait(120), "publisher did not finish"
        wait_for(lambda: Reading.objects.count() >= total, timeout=90, what="the backlog")
    finally:
        restarted.stop()
    # Messages stored but not acked before the kill were redelivered; they changed nothing.
    assert Reading.objects.count() == total
    values = sorted(Reading.objects.values_list("value", flat=True))
    assert values == [i / 1000 for i in range(total)]


def test_ingest_survives_losing_its_database_connection(
    demo_committed, ingest_worker, publish_mqtt
):
    from streams import metrics

    for i in range(200):
        publish_mqtt(*telemetry(i))
    wait_for(lambda: Reading.objects.count() == 200, what="the first readings")
    failures = metrics.STORE_FAILURES._value.get()
    # What a database restart does to the worker: its session is gone between two batches.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        assert cursor.fetchone()[0] >= 1
    for i in range(200, 400):
        publish_mqtt(*telemetry(i))
    wait_for(lambda: Reading.objects.count() == 400, timeout=30, what="readings after the loss")
    assert metrics.STORE_FAILURES._value.get() > failures
    values = sorted(Reading.objects.values_list("value", flat=True))
    assert values == [i / 1000 for i in range(400)]
