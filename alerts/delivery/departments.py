"""Pushes to a department's own system: signed webhooks and MQTT downlink, through the job queue.

:func:`deliveries_enqueue` runs inside the transaction of the state change: the delivery row and
its job commit with it or not at all. The jobs retry with exponential backoff (2, 4, 8 … s, eight
attempts, about eight minutes); every attempt is recorded on the row, which admin shows.

Webhook requests carry ``X-Whistle-Timestamp`` (Unix seconds), ``X-Whistle-Delivery`` (the
delivery's key: the same on every retry, so a receiver can drop repeats) and
``X-Whistle-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" with the secret>``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.request
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from alerts.models import Delivery
from command.org.models import Department

TIMEOUT = 10  # seconds for a department's server to answer
MAX_ATTEMPTS = 8


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def deliveries_enqueue(*, department: Department, event: str, key: str, payload: dict) -> None:
    """Create the department's deliveries for one state change and defer their jobs."""
    from alerts import tasks

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
            task = (
                tasks.deliver_webhook if channel == Delivery.Channel.WEBHOOK else tasks.deliver_mqtt
            )
            task.defer(delivery_id=delivery.pk)


def _attempt(delivery_id: int, attempt: int, send: Any) -> str:
    """Run one attempt of ``send(delivery) -> response status`` and record it."""
    delivery = Delivery.objects.select_related("department__township").get(pk=delivery_id)
    if delivery.status == Delivery.Status.DELIVERED:
        return "already delivered"
    try:
        status = send(delivery)
    except Exception as exc:
        final = attempt + 1 >= MAX_ATTEMPTS
        with transaction.atomic():
            Delivery.objects.filter(pk=delivery.pk).update(
                attempts=attempt + 1,
                last_error=str(exc)[:500],
                response_status=getattr(exc, "code", None),
                status=Delivery.Status.FAILED if final else Delivery.Status.PENDING,
            )
        raise
    Delivery.objects.filter(pk=delivery.pk).update(
        attempts=attempt + 1,
        status=Delivery.Status.DELIVERED,
        response_status=status,
        last_error="",
        delivered_at=timezone.now(),
    )
    return "delivered"


def _post(delivery: Delivery) -> int:
    department = delivery.department
    body = json.dumps(delivery.payload, ensure_ascii=False).encode()
    timestamp = str(int(time.time()))
    request = urllib.request.Request(
        department.webhook_url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "Whistle",
            "X-Whistle-Event": delivery.event,
            "X-Whistle-Delivery": delivery.key,
            "X-Whistle-Timestamp": timestamp,
            "X-Whistle-Signature": sign(department.webhook_secret, timestamp, body),
        },
    )
    with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
        return int(response.status)


def _publish(delivery: Delivery) -> int:
    from django.conf import settings

    from streams.mqtt.client import connect, make_client
    from streams.mqtt.topics import dispatch_topic

    department = delivery.department
    township = delivery.payload.get("incident", {}).get("township") or (
        department.township.code if department.township else ""
    )
    topic = dispatch_topic(township, department.code, settings.MQTT_TOPIC_PREFIX)
    client, config = make_client(f"whistle-downlink-{delivery.pk}")
    connect(client, config)
    client.loop_start()
    try:
        info = client.publish(
            topic, json.dumps(delivery.payload, ensure_ascii=False).encode(), qos=1
        )
        info.wait_for_publish(timeout=TIMEOUT)
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
