"""Pushes to a department's own system: signed webhooks and MQTT downlink, through the job queue.

:func:`deliveries_enqueue` runs inside the transaction of the state change: the delivery row and
its job commit with it or not at all. The jobs retry with exponential backoff (2, 4, 8 … s, eight
attempts, about eight minutes); every attempt is recorded on the row, which admin shows.

Webhook requests carry ``X-Whistle-Timestamp`` (Unix seconds), ``X-Whistle-Delivery`` (the
delivery's key: the same on every retry, so a receiver can drop repeats) and
``X-Whistle-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" with the secret>``.

A webhook attempt has one total deadline (``WEBHOOK_TIMEOUT``: connect, send, read the answer),
follows no redirect (a 3xx fails the attempt; the next one is retried like any failure), and
reaches only public addresses unless the deployment allows others (``WEBHOOK_ALLOW_PRIVATE``,
``WEBHOOK_ALLOWED_NETWORKS``): the host is resolved, every address checked, and the connection
made to a checked address. What a failed attempt records is the status and its standard reason,
never the body: the error column must not let an admin read internal servers through it.
The same checked, pinned, time-boxed POST (:func:`http_post`) carries the notifications to
people that go over HTTP (SMS gateways, work group robots: ``alerts.delivery.sms``, ``robots``).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import http.client
import ipaddress
import json
import logging
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction

from alerts.models import Delivery
from command import clock, jobs
from command.org.models import Department

log = logging.getLogger("whistle.delivery")

TIMEOUT = 10  # seconds for the MQTT broker to acknowledge a downlink message
MAX_ATTEMPTS = 8
DELIVERY_TASKS = {
    Delivery.Channel.WEBHOOK: "alerts.tasks.deliver_webhook",
    Delivery.Channel.MQTT: "alerts.tasks.deliver_mqtt",
}


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def deliveries_enqueue(*, department: Department, event: str, key: str, payload: dict) -> None:
    """Create the department's deliveries for one state change and defer their jobs."""
    channels = []
    if department.webhook_url:
        channels.append(Delivery.Channel.WEBHOOK)
    if department.mqtt_downlink:
        channels.append(Delivery.Channel.MQTT)
    for channel in channels:
        delivery, created = Delivery.objects.get_or_create(
            key=f"{channel}:{key}",
            defaults={
                "department": department,
                "channel": channel,
                "event": event,
                "payload": json.loads(json.dumps(payload, cls=DjangoJSONEncoder)),
            },
        )
        if created:
            # By name: alerts.tasks imports this module, not the other way round.
            jobs.defer(DELIVERY_TASKS[channel], delivery_id=delivery.pk)


def _attempt(delivery_id: int, attempt: int, send: Any) -> str:
    """Run one attempt of ``send(delivery) -> response status`` and record it.

    A failure is recorded and raised again, so the job queue retries it with backoff; a
    destination refused by policy is recorded as failed at once (retrying cannot help).
    """
    delivery = Delivery.objects.select_related("department__township").get(pk=delivery_id)
    if delivery.status == Delivery.Status.DELIVERED:
        return "already delivered"
    try:
        status = send(delivery)
    except Exception as exc:
        refused = isinstance(exc, DestinationRefused)
        final = refused or attempt + 1 >= MAX_ATTEMPTS
        if isinstance(exc, DeliveryFailed):
            error, code = str(exc), exc.status
        else:  # our own code or the broker client: the type and message, no peer's text
            error, code = f"{type(exc).__name__}: {exc}", None
        with transaction.atomic():
            Delivery.objects.filter(pk=delivery.pk).update(
                attempts=attempt + 1,
                last_error=error[:500],
                response_status=code,
                status=Delivery.Status.FAILED if final else Delivery.Status.PENDING,
            )
        if refused:
            log.warning("delivery %s refused: %s", delivery.key, error)
            return "refused"
        raise
    Delivery.objects.filter(pk=delivery.pk).update(
        attempts=attempt + 1,
        status=Delivery.Status.DELIVERED,
        response_status=status,
        last_error="",
        delivered_at=clock.now(),
    )
    return "delivered"


class DeliveryFailed(Exception):
    """An attempt that failed; the message is what the delivery row keeps (no response body)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class DestinationRefused(DeliveryFailed):
    """The webhook's host resolves to an address deliveries may not reach: not retried."""


def _allowed_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    from django.conf import settings

    return [ipaddress.ip_network(n, strict=False) for n in settings.WEBHOOK_ALLOWED_NETWORKS]


def _public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is loopback
    return address.is_global and not address.is_multicast


def checked_addresses(host: str, port: int) -> list[str]:
    """Resolve ``host`` and return its addresses if every one may be reached, else refuse.

    Every address is checked, not only the first: a name that resolves to a public and a
    private address would otherwise reach the private one on a retry. The caller connects to
    these very addresses, so a second lookup (DNS rebinding) cannot swap them.
    """
    from django.conf import settings

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise DeliveryFailed(f"cannot resolve {host}: {reason}") from None
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if settings.WEBHOOK_ALLOW_PRIVATE:
        return addresses
    allowed = _allowed_networks()
    for text in addresses:
        address = ipaddress.ip_address(text.split("%", 1)[0])
        if _public(address) or any(address in network for network in allowed):
            continue
        raise DestinationRefused(
            f"destination {host} resolves to {address}, a non-public address; allow it with "
            "WEBHOOK_ALLOWED_NETWORKS or WEBHOOK_ALLOW_PRIVATE"
        )
    return addresses


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to an address checked beforehand; the Host header keeps the URL's name."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """As above over TLS: the certificate is checked against the URL's name (SNI too)."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self.address = address

    def connect(self) -> None:
        sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def _cut(connection: http.client.HTTPConnection, fired: threading.Event) -> None:
    """The attempt's total time is up: wake the blocked read (or write) by shutting the socket
    down, which a per-read timeout cannot do against a server that drips a byte at a time."""
    fired.set()
    sock = connection.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def post_signed(*, url: str, secret: str, headers: dict[str, str], body: bytes) -> int:
    """POST ``body`` signed to ``url``; the status of a 2xx answer, else :class:`DeliveryFailed`.

    The whole attempt (connect, send, read the status line and headers) has one deadline,
    ``WEBHOOK_TIMEOUT``. Redirects are not followed: a 3xx is a failed attempt. Error text
    names the status and its standard reason, never what the server sent in its body.
    """
    from django.conf import settings

    timestamp = str(int(time.time()))
    answer = http_post(
        url=url,
        body=body,
        headers={
            **headers,
            "X-Whistle-Timestamp": timestamp,
            "X-Whistle-Signature": sign(secret, timestamp, body),
        },
        timeout=float(settings.WEBHOOK_TIMEOUT),
    )
    return checked_status(answer.status, answer.location)


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    location: str
    body: bytes


def http_post(
    *, url: str, body: bytes, headers: dict[str, str], timeout: float, read: int = 0
) -> HttpAnswer:
    """POST ``body`` to ``url`` through the destination checks (public addresses only unless
    allowed, the connection made to a checked address) within one total ``timeout``; the
    answer's status, Location and up to ``read`` bytes of its body (for APIs that answer in
    JSON: SMS gateways, work group robots). Any status is returned: the caller judges it.

    Raises :class:`DestinationRefused` for a URL or address that may not be reached and
    :class:`DeliveryFailed` when no complete answer came in time; neither says more than the
    host, the port and the kind of failure.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DestinationRefused(f"not an http(s) URL: {parts.scheme or '?'}://")
    host = parts.hostname
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise DestinationRefused(f"{host}: not a valid port") from None
    deadline = time.monotonic() + timeout
    addresses = checked_addresses(host, port)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    connection_class = _PinnedHTTPSConnection if parts.scheme == "https" else _PinnedHTTPConnection
    errors: list[str] = []
    fired = threading.Event()
    for address in addresses:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        connection = connection_class(host, port, address=address, timeout=remaining)
        fired = threading.Event()
        timer = threading.Timer(remaining, _cut, args=(connection, fired))
        timer.daemon = True
        timer.start()
        try:
            try:
                connection.connect()
            except OSError as exc:
                if fired.is_set() or isinstance(exc, TimeoutError):
                    break
                errors.append(f"cannot connect to {host}:{port}: {exc.strerror or exc}")
                continue  # the next address of the name, if any
            if fired.is_set():
                break
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            status = int(response.status)
            location = response.getheader("Location") or ""
            data = response.read(read) if read else b""
        except (OSError, http.client.HTTPException) as exc:
            if fired.is_set() or isinstance(exc, TimeoutError):
                break
            raise DeliveryFailed(f"{host}:{port}: {type(exc).__name__}") from None
        finally:
            timer.cancel()
            connection.close()
        if fired.is_set():
            break
        return HttpAnswer(status=status, location=location, body=data)
    if errors and not fired.is_set():
        raise DeliveryFailed(errors[-1])
    raise DeliveryFailed(f"{host}:{port} gave no complete answer within {timeout:g} s")


def checked_status(status: int, location: str = "") -> int:
    """The status of a 2xx answer; any other is :class:`DeliveryFailed` naming the status, its
    standard reason and, for a redirect, only the host it pointed at."""
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "non-standard status"
    if 300 <= status < 400:
        target = urlsplit(location).hostname or "(no Location)"
        raise DeliveryFailed(
            f"HTTP {status} {reason}: redirect to {target[:100]} not followed", status=status
        )
    if not 200 <= status < 300:
        raise DeliveryFailed(f"HTTP {status} {reason}", status=status)
    return status


def _post(delivery: Delivery) -> int:
    department = delivery.department
    body = json.dumps(delivery.payload, ensure_ascii=False).encode()
    return post_signed(
        url=department.webhook_url,
        secret=department.webhook_secret,
        body=body,
        headers={
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "Whistle",
            "X-Whistle-Event": delivery.event,
            "X-Whistle-Delivery": delivery.key,
        },
    )


def _publish(delivery: Delivery) -> int:
    return publish_payload(delivery.department, delivery.payload, key=str(delivery.pk))


def publish_payload(department: Department, payload: dict, *, key: str) -> int:
    """Publish ``payload`` on the department's downlink topic (QoS 1, acknowledged)."""
    from django.conf import settings

    from streams.mqtt.client import connect, make_client
    from streams.mqtt.topics import dispatch_topic

    township = (
        (payload.get("incident") or {}).get("township")
        if isinstance(payload.get("incident"), dict)
        else None
    )
    township = township or (department.township.code if department.township else "")
    topic = dispatch_topic(township, department.code, settings.MQTT_TOPIC_PREFIX)
    deadline = time.monotonic() + TIMEOUT
    client, config = make_client(f"whistle-downlink-{key}"[:64])
    client.connect_timeout = TIMEOUT  # one deadline for connect and acknowledgement together
    connect(client, config)
    client.loop_start()
    try:
        info = client.publish(topic, json.dumps(payload, ensure_ascii=False).encode(), qos=1)
        info.wait_for_publish(timeout=max(0.1, deadline - time.monotonic()))
        if not info.is_published():
            raise RuntimeError(f"broker did not acknowledge {topic}")
    finally:
        client.disconnect()
        client.loop_stop()
    return 0


def webhook_attempt(*, delivery_id: int, attempt: int) -> str:
    return _attempt(delivery_id, attempt, _post)


def mqtt_attempt(*, delivery_id: int, attempt: int) -> str:
    return _attempt(delivery_id, attempt, _publish)
