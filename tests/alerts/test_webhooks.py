"""Signed webhooks to a department's own system, retried through the job queue, against real
local HTTP servers: a receiver, a redirecting one, a dripping one. The receivers listen on
loopback, which deliveries refuse by default: the tests allow it explicitly (``loopback``), and
one test shows it refused without."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import transaction

from alerts.delivery import departments
from alerts.models import Delivery
from command.org.models import Category, Department, Township, User
from incidents.models import Whistle
from incidents.services.incidents import incident_open
from incidents.services.whistles import SummonedDepartment, whistle_blow
from tests.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


class Receiver:
    """A department's server: answers ``failure`` (500 by default) to the first ``failures``
    requests, then 204. ``headers`` go with the failures (a redirect's Location)."""

    def __init__(
        self, failures: int = 0, failure: int = 500, headers: dict[str, str] | None = None
    ) -> None:
        self.failures = failures
        self.requests: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body))
                if len(receiver.requests) <= receiver.failures:
                    # A server that says too much: a body and a reason of its own making.
                    secret = b"internal: db=10.0.0.5 password=hunter2"
                    self.send_response(failure, "Leaky Reason hunter2")
                    for name, value in (headers or {}).items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(secret)))
                    self.end_headers()
                    self.wfile.write(secret)
                    return
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/whistle"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


class DrippingServer:
    """A server that accepts, reads the request, then sends its status line one byte every
    ``interval`` seconds, for ever: each read gets a byte well within any per-read timeout."""

    def __init__(self, interval: float = 0.3) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/whistle"
        self.interval = interval
        self.connections = 0
        self.closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._drip, args=(client,), daemon=True).start()

    def _drip(self, client: socket.socket) -> None:
        try:
            client.recv(65536)
            line = b"HTTP/1.1 200 OK\r\nX-Padding: " + b"a" * 100_000
            for byte in line:
                if self.closed.wait(self.interval):
                    break
                client.sendall(bytes([byte]))
        except OSError:
            pass  # the client gave up: what the test wants
        finally:
            client.close()

    def close(self) -> None:
        self.closed.set()
        self.listener.close()


@pytest.fixture
def loopback(settings):
    """Allow deliveries to loopback, explicitly, by network (as a site allows its own LAN)."""
    settings.WEBHOOK_ALLOW_PRIVATE = False
    settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    return settings


@pytest.fixture
def receiver(loopback):
    server = Receiver(failures=1)
    yield server
    server.close()


def summon(department: Department) -> Whistle:
    duty = User.objects.get(username="duty")
    incident = incident_open(
        actor=duty,
        township=Township.objects.get(code="qingshui"),
        category=Category.objects.get(code="parking"),
        severity="major",
        title="违停",
    )
    return whistle_blow(
        actor=duty,
        incident=incident,
        kind=Whistle.Kind.EMERGENCY,
        purpose=Whistle.Purpose.JOINT_ENFORCEMENT,
        departments=[SummonedDepartment(department)],
    )


def test_summons_is_posted_signed_and_retried_until_the_receiver_takes_it(
    demo_committed, receiver, job_worker
):
    department = Department.objects.get(code="chengguan")
    department.webhook_url = receiver.url
    department.save(update_fields=["webhook_url"])
    department.refresh_from_db()
    assert len(department.webhook_secret) >= 32

    summons = summon(department).summonses.get()
    delivery = Delivery.objects.get(event="summons.notified")
    assert delivery.key == f"webhook:summons.notified:{summons.pk}"

    job_worker.start()
    wait_for(
        lambda: Delivery.objects.get(pk=delivery.pk).status == Delivery.Status.DELIVERED,
        timeout=30,
        what="the webhook to be delivered after one retry",
    )
    job_worker.stop()
    delivery.refresh_from_db()
    assert (delivery.attempts, delivery.response_status) == (2, 204)
    assert len(receiver.requests) == 2

    headers, body = receiver.requests[-1]
    expected = hmac.new(
        department.webhook_secret.encode(),
        headers["X-Whistle-Timestamp"].encode() + b"." + body,
        hashlib.sha256,
    ).hexdigest()
    assert headers["X-Whistle-Signature"] == f"sha256={expected}"
    assert headers["X-Whistle-Delivery"] == delivery.key
    assert receiver.requests[0][1] == body  # the retry sends the same delivery
    payload = json.loads(body)
    assert payload["event"] == "summons.notified"
    assert payload["summons"]["id"] == summons.pk
    assert payload["incident"]["township"] == "qingshui"


def webhook_to(url: str) -> Department:
    department = Department.objects.get(code="chengguan")
    department.webhook_url = url
    department.save(update_fields=["webhook_url"])
    return department


def test_redirect_is_a_failed_attempt_naming_status_and_host_and_is_retried(
    demo_committed, loopback, job_worker
):
    # The redirect points at a server that would take the POST: it must never see it.
    target = Receiver()
    redirecting = Receiver(
        failures=99,
        failure=307,
        headers={"Location": f"{target.url.replace('127.0.0.1', 'localhost')}"},
    )
    try:
        webhook_to(redirecting.url)
        summon(Department.objects.get(code="chengguan"))
        delivery = Delivery.objects.get()
        job_worker.start()
        wait_for(
            lambda: Delivery.objects.get(pk=delivery.pk).attempts >= 2,
            timeout=30,
            what="the redirect to fail twice (first attempt and its retry)",
        )
        job_worker.stop()
    finally:
        redirecting.close()
        target.close()
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.PENDING  # retried like any failure
    assert delivery.response_status == 307
    assert delivery.last_error == (
        "HTTP 307 Temporary Redirect: redirect to localhost not followed"
    )
    assert len(redirecting.requests) >= 2 and target.requests == []


def test_stored_error_is_status_and_standard_reason_never_the_body(demo_committed, loopback):
    server = Receiver(failures=1)
    try:
        webhook_to(server.url)
        summon(Department.objects.get(code="chengguan"))
        delivery = Delivery.objects.get()
        with pytest.raises(departments.DeliveryFailed):
            departments.webhook_attempt(delivery_id=delivery.pk, attempt=0)
    finally:
        server.close()
    delivery.refresh_from_db()
    assert delivery.last_error == "HTTP 500 Internal Server Error"
    assert (delivery.response_status, delivery.attempts) == (500, 1)


def test_dripping_server_is_cut_at_the_total_deadline(demo_committed, loopback):
    loopback.WEBHOOK_TIMEOUT = 2
    server = DrippingServer(interval=0.3)
    try:
        webhook_to(server.url)
        summon(Department.objects.get(code="chengguan"))
        delivery = Delivery.objects.get()
        started = time.monotonic()
        with pytest.raises(departments.DeliveryFailed):
            departments.webhook_attempt(delivery_id=delivery.pk, attempt=0)
        elapsed = time.monotonic() - started
    finally:
        server.close()
    # Each byte comes within 0.3 s, so a per-read timeout would wait for all 100 KB (8 hours).
    assert 2 <= elapsed < 3, elapsed
    delivery.refresh_from_db()
    assert delivery.last_error == f"127.0.0.1:{server.port} gave no complete answer within 2 s"
    assert delivery.status == Delivery.Status.PENDING


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("127.0.0.1", []),  # loopback, nothing allowed
        ("localhost", []),  # a name is resolved and every address checked
        ("127.0.0.1", ["10.0.0.0/8"]),  # another network allowed, not this one
    ],
)
def test_private_destination_is_refused_unless_allowed(demo_committed, settings, host, allowed):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    settings.WEBHOOK_ALLOWED_NETWORKS = allowed
    server = Receiver()
    try:
        webhook_to(server.url.replace("127.0.0.1", host))
        summon(Department.objects.get(code="chengguan"))
        delivery = Delivery.objects.get()
        assert departments.webhook_attempt(delivery_id=delivery.pk, attempt=0) == "refused"
    finally:
        server.close()
    assert server.requests == [], "nothing may reach a refused destination"
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.FAILED  # at once: retrying cannot help
    assert delivery.last_error.startswith(f"destination {host} resolves to ")
    assert "a non-public address" in delivery.last_error
    # ... and the same server is reached once the site allows it explicitly.
    settings.WEBHOOK_ALLOW_PRIVATE = True
    assert departments.checked_addresses(host, 80)


def test_public_addresses_pass_and_mapped_private_ones_do_not(settings):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    settings.WEBHOOK_ALLOWED_NETWORKS = []
    refused = ("169.254.169.254", "10.1.2.3", "203.0.113.9", "::1", "::ffff:127.0.0.1", "fe80::1")
    for address in (*refused, "0.0.0.0", "100.64.0.1", "224.0.0.1"):
        with pytest.raises(departments.DestinationRefused):
            departments.checked_addresses(address, 443)
    assert departments.checked_addresses("8.8.8.8", 443) == ["8.8.8.8"]


def test_no_push_for_a_rolled_back_whistle(demo_committed, receiver):
    department = Department.objects.get(code="chengguan")
    department.webhook_url = receiver.url
    department.save(update_fields=["webhook_url"])
    with pytest.raises(RuntimeError), transaction.atomic():
        summon(department)
        raise RuntimeError("the request failed after the whistle")
    assert not Delivery.objects.exists()


def test_departments_without_a_webhook_get_no_delivery(demo_committed):
    summon(Department.objects.get(code="chengguan"))
    assert not Delivery.objects.exists()


@pytest.mark.services
def test_summons_is_published_on_the_department_downlink(demo_committed, mqtt_settings, job_worker):
    from streams.mqtt.client import broker_config, connect, make_client

    received: list[tuple[str, bytes]] = []
    subscribed = threading.Event()
    config = broker_config(mqtt_settings.url_for("qingshui"))
    client, _ = make_client("test-township-system", config=config)
    client.on_subscribe = lambda *args: subscribed.set()
    client.on_message = lambda c, u, m: received.append((m.topic, m.payload))
    client.on_connect = lambda c, *args: c.subscribe("whistle/qingshui/dispatch/#", qos=1)
    connect(client, config)
    client.loop_start()
    try:
        assert subscribed.wait(10)
        department = Department.objects.get(code="chengguan")
        department.mqtt_downlink = True
        department.save(update_fields=["mqtt_downlink"])
        summons = summon(department).summonses.get()
        job_worker.start()
        wait_for(lambda: received, timeout=20, what="the downlink message")
        job_worker.stop()
    finally:
        client.disconnect()
        client.loop_stop()
    topic, payload = received[0]
    assert topic == "whistle/qingshui/dispatch/chengguan"
    assert json.loads(payload)["summons"]["id"] == summons.pk
    delivery = Delivery.objects.get(channel=Delivery.Channel.MQTT)
    assert delivery.status == Delivery.Status.DELIVERED and delivery.attempts == 1
