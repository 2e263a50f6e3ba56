"""The ceiling of the ingest benchmark: a bare paho client that only counts and acknowledges.

It receives the way ``whistle ingest`` does (paho-mqtt 2, QoS 1, persistent session, manual
acknowledgement) and does nothing else with a message, so its drain rate is what the broker,
paho and one Python process allow before ingest does any work.

``bench.ingest`` prepares and ends the sessions in its own process (:func:`create_session`,
:func:`end_session`) and runs the drain itself as a child process, ``python -m bench.mqtt_drain``,
one per worker: two clients in one process would share one GIL, so two workers' ceiling would be
capped by one core while two ``whistle ingest`` processes get two.

Child protocol (lines on stdout, times from ``time.monotonic()``, which on Linux is
CLOCK_MONOTONIC and so comparable between processes on one machine)::

    connecting <t>                    just before CONNECT
    count <n>                         every COUNT_EVERY seconds while the count changes
    done <n> <t_first> <t_last>       after the parent closed our stdin
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

# The broker keeps the session (and its queue) while the publisher fills it; a day is plenty.
SESSION_EXPIRY = 24 * 3600
COUNT_EVERY = 0.1  # seconds; the parent's view of progress, not part of the timing
SETUP_TIMEOUT = 10.0  # seconds for CONNACK, SUBACK and a clean disconnect


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    username: str | None
    password: str | None
    protocol: int

    @classmethod
    def parse(cls, url: str, protocol: str) -> Endpoint:
        parts = urlsplit(url)
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 1883,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            protocol=mqtt.MQTTv311 if protocol in ("3", "3.1.1", "311") else mqtt.MQTTv5,
        )


def new_client(
    endpoint: Endpoint, client_id: str, *, persistent: bool, manual_ack: bool = True
) -> mqtt.Client:
    kwargs: dict[str, object] = {}
    if endpoint.protocol == mqtt.MQTTv311:
        kwargs["clean_session"] = not persistent
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=endpoint.protocol,
        manual_ack=manual_ack,
        **kwargs,
    )
    if endpoint.username:
        client.username_pw_set(endpoint.username, endpoint.password)
    return client


def connect(
    client: mqtt.Client, endpoint: Endpoint, *, persistent: bool, clean: bool = False
) -> None:
    """CONNECT resuming (or, with ``clean``, replacing) a persistent session."""
    if endpoint.protocol == mqtt.MQTTv5:
        properties = Properties(PacketTypes.CONNECT)
        # MQTT 5 keeps a session only with a non-zero expiry; zero means it ends at disconnect.
        properties.SessionExpiryInterval = SESSION_EXPIRY if persistent else 0
        client.connect(
            endpoint.host,
            endpoint.port,
            keepalive=30,
            clean_start=clean or not persistent,
            properties=properties,
        )
    else:
        # MQTT 3.1.1 has no clean start: clean_session (set in new_client) both replaces the old
        # session and ends the new one at disconnect.
        client.connect(endpoint.host, endpoint.port, keepalive=30)


def _wait(event: threading.Event, what: str) -> None:
    if not event.wait(SETUP_TIMEOUT):
        raise RuntimeError(f"MQTT: no {what} within {SETUP_TIMEOUT:.0f} s")


def _session(endpoint: Endpoint, client_id: str, topic: str | None, *, persistent: bool) -> None:
    """Connect (clean), optionally subscribe at QoS 1, and disconnect: the session is left behind
    with its subscription when ``persistent``, and removed otherwise."""
    client = new_client(endpoint, client_id, persistent=persistent)
    connected, subscribed, disconnected = threading.Event(), threading.Event(), threading.Event()
    failure: list[str] = []

    def on_connect(client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            failure.append(f"CONNECT refused: {reason_code}")
        connected.set()

    def on_subscribe(client, userdata, mid, reason_codes, properties) -> None:
        refused = [str(code) for code in reason_codes if code.is_failure]
        if refused:
            failure.append(f"SUBSCRIBE {topic} refused: {', '.join(refused)}")
        subscribed.set()

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_disconnect = lambda *_: disconnected.set()
    # A clean start on creation: a stale session of an earlier run must not add its backlog.
    # (MQTT 3.1.1 cannot both start clean and keep the session; bench.ingest starts a fresh
    # broker for each scenario, so there is no stale session to find.)
    connect(client, endpoint, persistent=persistent, clean=True)
    client.loop_start()
    try:
        _wait(connected, "CONNACK")
        if not failure and topic is not None:
            client.subscribe(topic, qos=1)
            _wait(subscribed, "SUBACK")
        client.disconnect()
        _wait(disconnected, "disconnect")
    finally:
        client.loop_stop()
    if failure:
        raise RuntimeError(f"MQTT {client_id}: {'; '.join(failure)}")


def create_session(url: str, protocol: str, client_id: str, topic: str) -> None:
    """Leave a persistent session subscribed to ``topic`` for the publisher to fill."""
    _session(Endpoint.parse(url, protocol), client_id, topic, persistent=True)


def end_session(url: str, protocol: str, client_id: str) -> None:
    """Remove the session, so that later publishes are no longer queued for it."""
    _session(Endpoint.parse(url, protocol), client_id, None, persistent=False)


class Counter:
    """Counts and acknowledges on paho's network thread; nothing else."""

    def __init__(self) -> None:
        self.received = 0
        self.first = 0.0
        self.last = 0.0

    def on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        now = time.monotonic()
        if not self.received:
            self.first = now
        self.received += 1
        self.last = now
        client.ack(message.mid, message.qos)


def drain(url: str, protocol: str, client_id: str) -> int:
    """Resume the session and count until the parent closes stdin (it sums all workers)."""
    endpoint = Endpoint.parse(url, protocol)
    client = new_client(endpoint, client_id, persistent=True)
    counter = Counter()
    client.on_message = counter.on_message
    stop = threading.Event()

    def watch_stdin() -> None:
        sys.stdin.read()  # returns at EOF: the parent closed the pipe (or exited)
        stop.set()

    threading.Thread(target=watch_stdin, name="stdin", daemon=True).start()
    print(f"connecting {time.monotonic():.6f}", flush=True)
    connect(client, endpoint, persistent=True)
    client.loop_start()
    try:
        reported = -1
        while not stop.wait(COUNT_EVERY):
            if counter.received != reported:
                reported = counter.received
                print(f"count {reported}", flush=True)
    finally:
        client.disconnect()
        client.loop_stop()
    print(f"done {counter.received} {counter.first:.6f} {counter.last:.6f}", flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    # The URL carries a password, so it comes from the environment rather than the command line.
    parser.add_argument("--url", default=os.environ.get("MQTT_URL"), help="default: $MQTT_URL")
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--protocol", default="5", choices=["5", "3.1.1"])
    args = parser.parse_args(argv)
    if not args.url:
        parser.error("MQTT_URL is not set")
    return drain(args.url, args.protocol, args.client_id)


if __name__ == "__main__":
    sys.exit(main())
