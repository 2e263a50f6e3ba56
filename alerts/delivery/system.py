"""Channel "system": a person paged through their department's own system, by the same signed
webhook or MQTT downlink its summonses take (alerts.delivery.departments). The system shows
the message to the person it names (``person.paged``)."""

from __future__ import annotations

import json
from typing import Any

from alerts.delivery import departments
from alerts.delivery.people import Channel, absolute_link, register
from alerts.models import Notification
from command.org.models import User

EVENT = "person.paged"


def reaches(user: User) -> bool:
    department = user.department
    return department is not None and bool(department.webhook_url or department.mqtt_downlink)


def payload(notification: Notification) -> dict[str, Any]:
    user = notification.user
    return {
        "event": EVENT,
        "notification": notification.pk,
        "person": {"username": user.username, "name": user.display_name, "phone": user.phone},
        "reason": notification.reason,
        "subject": {"type": notification.subject_type, "id": notification.subject_id},
        "incident": notification.incident_id,
        "text": notification.text,
        "link": absolute_link(notification),
    }


def send(notification: Notification) -> None:
    department = notification.user.department
    if department is None:
        raise departments.DestinationRefused("the person belongs to no department")
    body = json.dumps(payload(notification), ensure_ascii=False).encode()
    if department.webhook_url:
        departments.post_signed(
            url=department.webhook_url,
            secret=department.webhook_secret,
            body=body,
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": "Whistle",
                "X-Whistle-Event": EVENT,
                "X-Whistle-Delivery": notification.key,
            },
        )
        return
    # The downlink publishes a delivery's payload; this one is built for the occasion.
    departments.publish_payload(department, payload(notification), key=notification.key)


register(Channel("system", reaches, send))
