"""What a change of a summons pushes out: the department's console, the boards, and the
department's own system (signed webhook, MQTT downlink) through the delivery queue."""

from __future__ import annotations

from typing import Any

from alerts.delivery.departments import deliveries_enqueue
from alerts.titles import in_english
from command import realtime
from command.timeline.actions import Action
from incidents.models import Summons
from incidents.services.common import broadcast


def _summons_payload(summons: Summons, event: str) -> dict[str, Any]:
    whistle = summons.whistle
    incident = whistle.incident
    return {
        "event": event,
        "summons": {
            "id": summons.pk,
            "status": summons.status,
            "department": summons.department.code,
            "check_in_deadline": summons.check_in_deadline,
            "overdue": summons.overdue,
            "escalation_level": summons.escalation_level,
            "finish_deadline": summons.finish_deadline,
            "finish_overdue": summons.finish_overdue,
            "returned_count": summons.returned_count,
        },
        "whistle": {"id": whistle.pk, "kind": whistle.kind, "purpose": whistle.purpose},
        "incident": {
            "id": incident.pk,
            "township": incident.township.code,
            "title": incident.title,
            "title_en": in_english(lambda: incident.display_title),
            "category": incident.category.code,
            "severity": incident.severity,
            "grid": incident.grid.code if incident.grid else None,
            "latitude": incident.latitude,
            "longitude": incident.longitude,
        },
    }


def push_to_department(summons: Summons, event: str, key_suffix: str = "") -> None:
    department = summons.department
    if not (department.webhook_url or department.mqtt_downlink):
        return  # nothing to push, and no payload to build
    deliveries_enqueue(
        department=department,
        event=event,
        key=f"{event}:{summons.pk}{key_suffix}",
        payload=_summons_payload(summons, event),
    )


def announce_summons(summons: Summons, action: Action, key_suffix: str = "") -> None:
    """A summons changed: its department's console, the board and incident, its own system."""
    realtime.broadcast_on_commit(
        realtime.department_group(summons.department.code),
        {"type": "summons.updated", "summons_id": summons.pk},
    )
    broadcast(summons.whistle.incident, "summons.updated", summons_id=summons.pk)
    push_to_department(summons, action, key_suffix)
