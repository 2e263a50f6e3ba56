"""paho-mqtt wrapper: broker settings from MQTT_URL, and the ingest worker's receive loop.

The paho callback only hands the message over (Home Assistant's rule); a batcher thread stores
batches and acknowledges each message after its batch has committed (paho ``manual_ack``).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from django.conf import settings
from django.db import connection

from command import health
from streams import ingest, metrics
from streams.adapters.registry import FORMATS

log = logging.getLogger("whistle.mqtt")

# A batch is stored when BATCH_WAIT has passed since its first message and nothing more is
# waiting on the socket; under a backlog it keeps filling up to BATCH_MAX or BATCH_AGE_MAX, since
# a large batch costs far less per message (one commit, a long COPY).
BATCH_MAX = 4000
BATCH_WAIT = 0.02  # seconds: a board should not wait longer than this for an alert when quiet
BATCH_AGE_MAX = 0.25
# How many unacknowledged QoS 1 messages we let the broker send (MQTT 5 Receive Maximum). Acking
# only after commit keeps up to about two batches outstanding; the window must exceed that or
# the broker stalls while we commit.
RECEIVE_MAXIMUM = 2 * BATCH_MAX
BROKER_STORE_TOPIC = "$SYS/broker/store/messages/count"


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
    # paho looks every message's topic up among per-topic callbacks, building a
    # self-referencing closure each time; we register none, so at 20,000 messages a second
    # that garbage alone made the collector stop ingest for half a second every ~40 s.
    client._on_message_filtered = _NoTopicCallbacks()  # type: ignore[attr-defined]
    return client, config


class _NoTopicCallbacks:
    """Stands in for paho's topic matcher on clients that use only ``on_message``."""

    def iter_match(self, topic: str) -> Iterator[object]:
        return iter(())

    def __setitem__(self, key: str, value: object) -> None:
        raise RuntimeError("Whistle's MQTT clients use on_message only")


def connect(client: mqtt.Client, config: BrokerConfig, *, persistent: bool = False) -> None:
    if config.protocol == mqtt.MQTTv5:
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        properties = Properties(PacketTypes.CONNECT)
        properties.ReceiveMaximum = RECEIVE_MAXIMUM
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


def tune_garbage_collector() -> None:
    """Each message allocates a few dozen objects; with CPython's default thresholds the
    collector runs every few messages and regularly walks Django's whole heap. Freezing what
    start-up allocated and collecting less often roughly doubles the rate (docs/benchmarks.md).
    Nearly everything ingest allocates is freed by reference counting; the collector only has
    cycles to find, so running it every half million allocations keeps memory flat."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(500_000, 20, 100)


class IngestWorker:
    """Subscribe, batch, store, ack. ``run`` blocks until ``stop()``.

    One thread does it all: it runs paho's network loop itself, collects what the callback hands
    over, and stores a batch when it is full or ``BATCH_WAIT`` old. A second thread would have to
    trade the GIL with paho's for every message; measured, that costs a third of the rate
    (docs/benchmarks.md). While a batch is being stored nothing more is read, so memory holds at
    most one batch and the broker keeps the rest in the session's queue.

    With ``MQTT_SHARE_GROUP`` set, subscriptions are shared (``$share/<group>/…``) so several
    workers on one broker split the stream, each message going to one of them.

    ``events``: None, every topic; True, only camera events; False, all but camera events.
    ``whistle ingest`` runs one worker of each, with sessions of their own, so that a camera
    event is never queued at the broker behind a backlog of readings.
    """

    def __init__(
        self,
        client_id: str | None = None,
        *,
        share_group: str | None = None,
        progress: Callable[[str], None] | None = None,
        progress_every: float = 5.0,
        events: bool | None = None,
    ) -> None:
        self.client_id = client_id or settings.MQTT_CLIENT_ID
        self.events = events
        self.share_group = share_group if share_group is not None else settings.MQTT_SHARE_GROUP
        self._pending: list[tuple[int, ingest.InboundMessage]] = []
        self._stop = threading.Event()
        self._subscribed = threading.Event()
        # Why run() stopped by itself (a refused subscription), for the exit status.
        self.failure: str | None = None
        self._progress = progress
        self._progress_every = progress_every
        # Packet ids belong to one connection; a message received before a reconnect must not
        # be acked on the new one (the broker redelivers it, and storing it again is harmless).
        self._generation = 0
        self.totals = ingest.BatchResult()
        self.client, self.config = make_client(self.client_id, persistent=True, manual_ack=True)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message

    def topics(self) -> list[str]:
        own = FORMATS.subscriptions(events=self.events)
        if self.share_group:
            return [f"$share/{self.share_group}/{topic}" for topic in own]
        return own

    # paho callbacks (on this worker's own thread) ----------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("MQTT connect to %s refused: %s", self.config.display, reason_code)
            return
        self._generation += 1
        client.subscribe([(topic, 1) for topic in self.topics()] + [(BROKER_STORE_TOPIC, 0)])

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        refused = [
            f"{topic} ({code})"
            for topic, code in zip(self.topics(), reason_codes[:-1], strict=False)
            if code.is_failure
        ]
        if refused:
            # Running on without them would look healthy and store nothing: stop, say why, and
            # let the supervisor (compose's restart policy) and the operator see it.
            self.failure = f"the broker refused the subscriptions: {', '.join(refused)}"
            log.error("%s; check the ACL of %s", self.failure, self.config.username or "anonymous")
            self._stop.set()
            return
        self._subscribed.set()
        log.info("ingest subscribed on %s as %s", self.config.display, self.client_id)

    def _on_message(self, client, userdata, message: mqtt.MQTTMessage) -> None:
        try:
            topic = message.topic  # a property that decodes on every access: once is enough
        except UnicodeDecodeError:
            # Brokers check topics are UTF-8; one that does not must not stop the loop.
            topic = message._topic.decode("utf-8", "replace")
        if topic == BROKER_STORE_TOPIC:
            with contextlib.suppress(ValueError):
                metrics.BROKER_STORED.set(float(message.payload))
            return
        inbound = ingest.InboundMessage(topic, message.payload, message.mid, message.qos)
        self._pending.append((self._generation, inbound))

    # control -----------------------------------------------------------------------------
    def wait_subscribed(self, timeout: float) -> bool:
        return self._subscribed.wait(timeout)

    def stop(self) -> None:
        """Safe from any thread or a signal handler: the loop sees it within 50 ms."""
        self._stop.set()

    def run(self) -> None:
        connect(self.client, self.config, persistent=True)
        loop = self.client.loop
        last_progress = time.monotonic()
        first_at = 0.0
        backoff = 1.0
        try:
            while not self._stop.is_set():
                if self._pending:
                    timeout = max(0.0, first_at + BATCH_WAIT - time.monotonic())
                else:
                    timeout = 0.05
                before = len(self._pending)
                if loop(timeout=timeout) != mqtt.MQTT_ERR_SUCCESS:
                    # Connection lost: what is pending is stored (not acked: the new session
                    # gets it again), then reconnect with backoff.
                    self._flush()
                    first_at = 0.0
                    if self._stop.wait(backoff):
                        break
                    backoff = min(backoff * 2, 30.0)
                    try:
                        self.client.reconnect()
                    except OSError as exc:
                        log.warning("MQTT reconnect to %s failed: %s", self.config.display, exc)
                    continue
                backoff = 1.0
                if self._pending:
                    now = time.monotonic()
                    if not first_at:
                        first_at = now
                    age = now - first_at
                    # A loop that read nothing means the socket is idle: no backlog to wait for.
                    idle = len(self._pending) == before
                    if len(self._pending) >= BATCH_MAX or (
                        age >= BATCH_WAIT and (idle or age >= BATCH_AGE_MAX)
                    ):
                        self._flush()
                        first_at = 0.0
                # The lane of camera events is idle most of the time and would beat while the
                # other lane hangs on a database that does not answer: only that one beats.
                if self._subscribed.is_set() and self.events is not True:
                    health.beat("ingest")
                if self._progress and time.monotonic() - last_progress >= self._progress_every:
                    last_progress = time.monotonic()
                    self._progress(self.progress_line())
            self._flush()
        finally:
            self.client.disconnect()
            connection.close()

    def progress_line(self, *others: IngestWorker) -> str:
        """What this worker has stored so far, with ``others`` (the other lane) added."""
        workers = (self, *others)

        def total(name: str) -> int:
            return sum(getattr(worker.totals, name) for worker in workers)

        return (
            f"ingest: {total('messages')} messages, {total('events')} events, "
            f"{total('readings')} readings, {total('dead_letters')} dead letters, "
            f"{total('alerts_raised')} alerts raised"
        )

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        if batch:
            metrics.MESSAGES_RECEIVED.inc(len(batch))
            self._store(batch)

    def _store(self, batch: list[tuple[int, ingest.InboundMessage]]) -> None:
        inbound = [message for _, message in batch]
        delay = 0.5
        started = time.perf_counter()
        while True:
            try:
                # The connection is kept across batches (a new one per batch costs more than
                # the batch); a broken one raises here and is replaced below.
                result = ingest.store_batch_isolating(inbound)
                break
            except Exception:
                # Not acked, so nothing is lost: retry until the database is back or we stop.
                metrics.STORE_FAILURES.inc()
                log.exception("storing a batch of %d failed; retrying", len(batch))
                connection.close()
                if self._stop.wait(delay):
                    return
                delay = min(delay * 2, 10)
        generation = self._generation
        ack = self.client.ack
        for received_in, message in batch:
            if message.qos > 0 and received_in == generation:
                ack(message.mid, message.qos)
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)
        metrics.BATCH_SIZE.observe(len(batch))
        metrics.MESSAGES_STORED.inc(len(batch))
        metrics.DEAD_LETTERS.inc(result.dead_letters)
        metrics.READINGS_STORED.inc(result.readings)
        metrics.EVENTS_STORED.inc(result.events)
        metrics.DUPLICATES.inc(result.duplicates)
        metrics.ALERTS_RAISED.inc(result.alerts_raised)
        t = self.totals
        t.messages += result.messages
        t.events += result.events
        t.readings += result.readings
        t.dead_letters += result.dead_letters
        t.alerts_raised += result.alerts_raised
