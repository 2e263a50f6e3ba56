"""Incidents: opened from alerts or by hand, resolved, closed with feedback and the 631 level,
and the evidence gathered for them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from alerts.models import Alert
from command import clock, realtime
from command.errors import ActionForbidden, TransitionNotAllowed
from command.org import policy
from command.org.models import Category, Grid, Township, User
from command.timeline.actions import Action
from command.timeline.models import TimelineEntry
from command.timeline.records import timeline_record
from incidents.models import Incident, Summons
from incidents.photos import is_acceptable_url, photos_attach
from incidents.services.common import broadcast, record, require_officer


def incident_open(
    *,
    actor: User,
    township: Township,
    category: Category,
    severity: str,
    title: str,
    description: str = "",
    grid: Grid | None = None,
    latitude: float | None = None,
    longitude: float | None = None,
    alerts: Sequence[Alert] = (),
    source: str = TimelineEntry.Source.WEB,
) -> Incident:
    """Open an incident by hand or from open alerts, which are escalated into it."""
    require_officer(actor, township)
    with transaction.atomic():
        locked = list(
            Alert.objects.select_for_update().filter(pk__in=[a.pk for a in alerts]).order_by("pk")
        )
        for alert in locked:
            if alert.township_id != township.pk:
                raise ActionForbidden(_("An alert of another township cannot join this incident."))
            if not alert.is_open:
                raise TransitionNotAllowed(
                    _("Alert %(id)s is %(status)s and cannot open an incident.")
                    % {"id": alert.pk, "status": alert.get_status_display()},
                    code="alert_not_open",
                )
        if grid is None and locked:
            grid = next((a.grid for a in locked if a.grid_id), None)
        evidence = [
            {
                "kind": "snapshot",
                "url": a.detail["snapshot"],
                "caption": a.title,
                "source": f"alert:{a.pk}",
            }
            for a in locked
            if isinstance(a.detail, dict) and a.detail.get("snapshot")
        ]
        incident = Incident.objects.create(
            township=township,
            category=category,
            severity=severity,
            title=title,
            description=description,
            grid=grid,
            latitude=latitude,
            longitude=longitude,
            opened_by=actor,
            evidence=evidence,
        )
        record(
            incident,
            township.pk,
            Action.INCIDENT_OPENED,
            actor=actor,
            source=source,
            after={"status": incident.status, "alerts": [a.pk for a in locked]},
            time=incident.opened_at,
        )
        for alert in locked:
            before = alert.status
            alert.status = Alert.Status.ESCALATED
            alert.closed_at = incident.opened_at
            alert.incident = incident
            alert.save(update_fields=["status", "closed_at", "incident"])
            timeline_record(
                township_id=township.pk,
                subject_type="alert",
                subject_id=alert.pk,
                action=Action.ALERT_ESCALATED,
                source=source,
                actor_id=actor.pk,
                before={"status": before},
                after={"status": alert.status, "incident": incident.pk},
                # One moment with the opening: a replay never shows the alert both in the
                # queue and in the incident.
                time=incident.opened_at,
            )
            realtime.broadcast_on_commit(
                realtime.board_group(township.code), {"type": "alert.updated", "alert_id": alert.pk}
            )
        broadcast(incident, "incident.opened")
    return incident


def require_active(incident: Incident, message: str) -> None:
    if incident.status not in Incident.ACTIVE_STATUSES:
        raise TransitionNotAllowed(
            message % {"status": incident.get_status_display()}, code="incident_not_active"
        )


def set_incident_status(
    incident: Incident,
    status: str,
    *,
    actor: User | None,
    source: str,
    action: Action,
    time: datetime | None = None,
    **fields: Any,
) -> None:
    before = incident.status
    incident.status = status
    for name, value in fields.items():
        setattr(incident, name, value)
    incident.save(update_fields=["status", *fields])
    record(
        incident,
        incident.township_id,
        action,
        actor=actor,
        source=source,
        before={"status": before},
        # The closing's feedback and 631 level belong to the timeline too; the times are the
        # entry's own.
        after={"status": status, **{k: v for k, v in fields.items() if isinstance(v, str)}},
        time=time,
    )
    broadcast(incident, "incident.updated")


def incident_resolve(
    *, actor: User, incident: Incident, source: str = TimelineEntry.Source.WEB
) -> Incident:
    """事不完，人不走: not while a summoned department has not reported done or been released."""
    require_officer(actor, incident.township)
    with transaction.atomic():
        incident = Incident.objects.select_for_update().get(pk=incident.pk)
        require_active(incident, _("An incident that is %(status)s cannot be resolved."))
        waiting = list(
            Summons.objects.filter(
                whistle__incident=incident, status__in=Summons.OPEN_STATUSES
            ).select_related("department")
        )
        if waiting:
            names = "、".join(s.department.display_name for s in waiting)
            raise TransitionNotAllowed(
                _("Departments still at work: %(names)s. Wait for their report or release them.")
                % {"names": names},
                code="summons_open",
            )
        set_incident_status(
            incident,
            Incident.Status.RESOLVED,
            actor=actor,
            source=source,
            action=Action.INCIDENT_RESOLVED,
            resolved_at=clock.now(),
        )
    return incident


def incident_close(
    *,
    actor: User,
    incident: Incident,
    feedback: str,
    settled_level: str,
    source: str = TimelineEntry.Source.WEB,
) -> Incident:
    """闭环: closing needs feedback and the 631 level the matter was settled at."""
    require_officer(actor, incident.township)
    if not feedback.strip():
        raise TransitionNotAllowed(_("Closing needs feedback."), code="feedback_missing")
    if settled_level not in Incident.SettledLevel.values:
        raise TransitionNotAllowed(
            _("Say where it was settled: grid/village, township or county."),
            code="settled_level_missing",
        )
    with transaction.atomic():
        incident = Incident.objects.select_for_update().get(pk=incident.pk)
        if incident.status != Incident.Status.RESOLVED:
            raise TransitionNotAllowed(
                _("Only a resolved incident can be closed."), code="incident_not_resolved"
            )
        set_incident_status(
            incident,
            Incident.Status.CLOSED,
            actor=actor,
            source=source,
            action=Action.INCIDENT_CLOSED,
            closed_at=clock.now(),
            feedback=feedback.strip(),
            settled_level=settled_level,
        )
    return incident


def incident_add_evidence(
    *,
    actor: User,
    incident: Incident,
    url: str,
    caption: str = "",
    kind: str = "photo",
    source: str = TimelineEntry.Source.WEB,
) -> Incident:
    """A photo or link from the officer or from a department summoned to the incident."""
    summoned = (
        actor.department_id is not None
        and policy.can_act_for_department(actor, actor.department_id)
        and Summons.objects.filter(
            whistle__incident=incident, department_id=actor.department_id
        ).exists()
    )
    if not summoned:
        require_officer(actor, incident.township)
    if kind not in ("photo", "snapshot", "link") or not is_acceptable_url(url):
        raise TransitionNotAllowed(
            _("Evidence needs an http(s) address or an uploaded photo."), code="url_invalid"
        )
    with transaction.atomic():
        photos_attach(urls=[url], township=incident.township, actor=actor)
        incident = Incident.objects.select_for_update().get(pk=incident.pk)
        item = {
            "kind": kind,
            "url": url[:500],
            "caption": caption[:200],
            "added_by": actor.username,
        }
        incident.evidence = [*incident.evidence, item]
        incident.save(update_fields=["evidence"])
        record(
            incident,
            incident.township_id,
            Action.INCIDENT_EVIDENCE_ADDED,
            actor=actor,
            source=source,
            after=item,
        )
        broadcast(incident, "incident.updated")
    return incident
