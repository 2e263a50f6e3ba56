"""paho-mqtt wrapper: broker settings from MQTT_URL, and the ingest worker's receive loop.

The paho callback only hands the message over (Home Assistant's rule); a batcher thread stores
batches and acknowledges each message after its batch has committed (paho ``manual_ack``).
"""

from __future__ import annotations

import logging
import queue
import ssl
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from django.conf import settings
from django.db import close_old_connections, connection

from streams import ingest
from streams.mqtt import topics

log = logging.getLogger("whistle.mqtt")

BATCH_MAX = 500
BATCH_WAIT = 0.05  # seconds: a board should not wait longer than this for an alert
QUEUE_MAX = 20_000  # when the database is slow paho blocks here and the broker holds the rest


@dataclass(frozen=True)
class BrokerConfig:
    host: str
    port: int
    username: str | None
    password: str | None
    tls: bool
    protocol: int

    @property
    def display(self) -> str:
        scheme = "mqtts" if self.tls else "mqtt"
        return f"{scheme}://{self.host}:{self.port}"


def broker_config(url: str | None = None) -> BrokerConfig:
    url = url or settings.MQTT_URL
    if not url:
        raise RuntimeError("MQTT_URL is not set (the whistle CLI starts an embedded broker)")
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
        raise RuntimeError(f"MQTT_URL must start with mqtt:// or mqtts://, not {parts.scheme}://")
    tls = parts.scheme in ("mqtts", "ssl")
    protocol = mqtt.MQTTv311 if settings.MQTT_PROTOCOL in ("3", "3.1.1", "311") else mqtt.MQTTv5
    return BrokerConfig(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or (8883 if tls else 1883),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        tls=tls,
        protocol=protocol,
    )


def make_client(
    client_id: str | None = None,
    *,
    persistent: bool = False,
    manual_ack: bool = False,
    config: BrokerConfig | None = None,
) -> tuple[mqtt.Client, BrokerConfig]:
    """A configured, not yet connected client."""
    config = config or broker_config()
    client_id = client_id or f"whistle-{uuid.uuid4().hex[:10]}"
    kwargs: dict[str, object] = {}
    if config.protocol == mqtt.MQTTv311:
        kwargs["clean_session"] = not persistent
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=config.protocol,
        manual_ack=manual_ack,
        **kwargs,
    )
    if config.username:
        client.username_pw_set(config.username, config.password)
    if config.tls:
        client.tls_set(cert_reqs=ssl.CERT_REQUIRED)
    client.reconnect_delay_set(min_delay=1, max_delay=30)
    return client, config


def connect(client: mqtt.Client, config: BrokerConfig, *, persistent: bool = False) -> None:
    if config.protocol == mqtt.MQTTv5:
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        properties = Properties(PacketTypes.CONNECT)
        if persistent:
            # Keep the session (and the broker's queue for us) for a week of outage.
            properties.SessionExpiryInterval = 7 * 24 * 3600
        client.connect(
            config.host,
            config.port,
            keepalive=30,
            clean_start=not persistent,
            properties=properties,
        )
    else:
        client.connect(config.host, config.port, keepalive=30)


class IngestWorker:
    """Subscribe, batch, store, ack. ``run`` blocks until ``stop()``."""

    def __init__(
        self,
        client_id: str | None = None,
        *,
        progress: Callable[[str], None] | None = None,
        progress_every: float = 5.0,
    ) -> None:
        self.client_id = client_id or settings.MQTT_CLIENT_ID
        self._queue: queue.Queue[mqtt.MQTTMessage] = queue.Queue(maxsize=QUEUE_MAX)
        self._stop = threading.Event()
        self._subscribed = threading.Event()
        self._progress = progress
        self._progress_every = progress_every
        self.totals = ingest.BatchResult()
        self.client, self.config = make_client(self.client_id, persistent=True, manual_ack=True)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message

    # paho thread -------------------------------------------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("MQTT connect to %s refused: %s", self.config.display, reason_code)
            return
        client.subscribe([(topic, 1) for topic in topics.subscriptions(settings.MQTT_TOPIC_PREFIX)])
        self._subscribed.set()
        log.info("ingest subscribed on %s as %s", self.config.display, self.client_id)

    def _on_message(self, client, userdata, message: mqtt.MQTTMessage) -> None:
        self._queue.put(message)

    # batcher thread ----------------------------------------------------------------------
    def wait_subscribed(self, timeout: float) -> bool:
        return self._subscribed.wait(timeout)

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        connect(self.client, self.config, persistent=True)
        self.client.loop_start()
        last_progress = time.monotonic()
        try:
            while not self._stop.is_set():
                batch = self._collect()
                if batch:
                    self._store(batch)
                if self._progress and time.monotonic() - last_progress >= self._progress_every:
                    last_progress = time.monotonic()
                    self._progress(self.progress_line())
        finally:
            self.client.disconnect()
            self.client.loop_stop()
            connection.close()

    def progress_line(self) -> str:
        t = self.totals
        return (
            f"ingest: {t.messages} messages, {t.events} events, {t.readings} readings, "
            f"{t.dead_letters} dead letters, {t.alerts_raised} alerts raised, "
            f"{self._queue.qsize()} queued"
        )

    def _collect(self) -> list[mqtt.MQTTMessage]:
        try:
            first = self._queue.get(timeout=0.2)
        except queue.Empty:
            return []
        batch = [first]
        deadline = time.monotonic() + BATCH_WAIT
        while len(batch) < BATCH_MAX:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                batch.append(self._queue.get(timeout=remaining))
            except queue.Empty:
                break
        return batch

    def _store(self, batch: list[mqtt.MQTTMessage]) -> None:
        inbound = [ingest.InboundMessage(m.topic, bytes(m.payload), m.mid, m.qos) for m in batch]
        delay = 0.5
        while True:
            try:
                close_old_connections()
                result = ingest.store_batch(inbound)
                break
            except Exception:
                # Not acked, so nothing is lost: retry until the database is back or we stop.
                log.exception("storing a batch of %d failed; retrying", len(batch))
                connection.close()
                if self._stop.wait(delay):
                    return
                delay = min(delay * 2, 10)
        for message in batch:
            if message.qos > 0:
                self.client.ack(message.mid, message.qos)
        t = self.totals
        t.messages += result.messages
        t.events += result.events
        t.readings += result.readings
        t.dead_letters += result.dead_letters
        t.alerts_raised += result.alerts_raised
