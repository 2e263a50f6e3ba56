"""Signed webhooks to a department's own system, retried through the job queue, against a real
local HTTP receiver."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import transaction

from alerts.models import Delivery
from command.incidents import services
from command.incidents.models import Whistle
from command.org.models import Category, Department, Township, User
from tests.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


class Receiver:
    """A department's server: answers 500 to the first ``failures`` requests, then 204."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.requests: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body))
                failing = len(receiver.requests) <= receiver.failures
                self.send_response(500 if failing else 204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/whistle"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def receiver():
    server = Receiver(failures=1)
    yield server
    server.close()


def summon(department: Department) -> Whistle:
    duty = User.objects.get(username="duty")
    incident = services.incident_open(
        actor=duty,
        township=Township.objects.get(code="qingshui"),
        category=Category.objects.get(code="parking"),
        severity="major",
        title="违停",
    )
    return services.whistle_blow(
        actor=duty,
        incident=incident,
        kind=Whistle.Kind.EMERGENCY,
        purpose=Whistle.Purpose.JOINT_ENFORCEMENT,
        departments=[services.SummonedDepartment(department)],
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
