"""Incidents: opened from alerts or by hand, resolved, closed with feedback and the 631 level,
called back (回访) and reopened within a window, and the evidence gathered for them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
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
from incidents.services.common import broadcast, record, require_officer, require_settler
from streams.models import GridReport


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
    in_grid: bool = False,
) -> Incident:
    """Open an incident by hand or from open alerts, which are escalated into it.

    ``in_grid``: a grid officer opens it from alerts of their grid to settle it on the spot
    (intake.settle); the township's officers open every other incident."""
    if not in_grid:
        require_officer(actor, township)
    elif not alerts:
        raise ActionForbidden(_("A matter settled in the grid is opened from its alert."))
    with transaction.atomic():
        locked = list(
            Alert.objects.select_for_update().filter(pk__in=[a.pk for a in alerts]).order_by("pk")
        )
        for alert in locked:
            if alert.township_id != township.pk:
                raise ActionForbidden(_("An alert of another township cannot join this incident."))
            if in_grid and not policy.can_settle_in_grid(actor, alert):
                raise ActionForbidden(_("Only the grid's officers settle its matters."))
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
            opened_at=clock.now(),
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


def _require_runner(actor: User, incident: Incident, in_grid: bool) -> None:
    if in_grid:
        require_settler(actor, incident)
    else:
        require_officer(actor, incident.township)


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
    *,
    actor: User,
    incident: Incident,
    source: str = TimelineEntry.Source.WEB,
    in_grid: bool = False,
) -> Incident:
    """事不完，人不走: not while a summoned department's work is unfinished or not accepted.
    ``in_grid``: the grid officer who opened it to settle it on the spot resolves it."""
    _require_runner(actor, incident, in_grid)
    with transaction.atomic():
        incident = Incident.objects.select_for_update().get(pk=incident.pk)
        require_active(incident, _("An incident that is %(status)s cannot be resolved."))
        waiting = list(
            Summons.objects.filter(
                whistle__incident=incident, status__in=Summons.OPEN_STATUSES
            ).select_related("department")
        )
        unaccepted = [s for s in waiting if s.status == Summons.Status.DONE]
        if unaccepted:
            names = "、".join(s.department.display_name for s in unaccepted)
            raise TransitionNotAllowed(
                _("Work reported done awaits acceptance: %(names)s. Accept or return it first.")
                % {"names": names},
                code="summons_unaccepted",
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
    in_grid: bool = False,
) -> Incident:
    """闭环: closing needs feedback and the 631 level the matter was settled at.
    ``in_grid``: the grid officer who settled it on the spot closes it, at grid level only."""
    _require_runner(actor, incident, in_grid)
    if in_grid and settled_level != Incident.SettledLevel.GRID:
        raise TransitionNotAllowed(
            _("A matter settled on the spot is settled at grid level."), code="settled_level_grid"
        )
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


def incident_reopen(
    *, actor: User, incident: Incident, reason: str, source: str = TimelineEntry.Source.WEB
) -> Incident:
    """A resolved or closed incident back to work, within ``WHISTLE_REOPEN_DAYS`` of closing:
    the departments' finished work stays on record, new whistles summon whoever is needed."""
    require_officer(actor, incident.township)
    if not reason.strip():
        raise TransitionNotAllowed(_("Reopening needs a reason."), code="reason_missing")
    with transaction.atomic():
        incident = Incident.objects.select_for_update().get(pk=incident.pk)
        if incident.status not in (Incident.Status.RESOLVED, Incident.Status.CLOSED):
            raise TransitionNotAllowed(
                _("Only a resolved or closed incident can be reopened."),
                code="incident_not_finished",
            )
        window = timedelta(days=settings.WHISTLE_REOPEN_DAYS)
        if incident.closed_at is not None and clock.now() - incident.closed_at > window:
            raise TransitionNotAllowed(
                _("Closed more than %(days)d days ago: open a new incident instead.")
                % {"days": settings.WHISTLE_REOPEN_DAYS},
                code="reopen_window_passed",
            )
        before = incident.status
        incident.status = Incident.Status.OPEN
        incident.resolved_at = incident.closed_at = None
        incident.settled_level = incident.satisfaction = ""
        incident.reopened_count += 1
        incident.save(
            update_fields=[
                "status",
                "resolved_at",
                "closed_at",
                "settled_level",
                "satisfaction",
                "reopened_count",
            ]
        )
        record(
            incident,
            incident.township_id,
            Action.INCIDENT_REOPENED,
            actor=actor,
            source=source,
            before={"status": before},
            after={"status": incident.status, "reason": reason.strip()[:500]},
        )
        broadcast(incident, "incident.updated")
    return incident


def raised_by(user: User, incident: Incident) -> bool:
    """Whether ``user`` raised the matter: the grid officer (or hotline account) whose report
    became one of the incident's alerts."""
    return GridReport.objects.filter(reporter=user, alert__incident=incident).exists()


def incident_call_back(
    *,
    actor: User,
    incident: Incident,
    satisfaction: str,
    note: str = "",
    reopen: bool = False,
    source: str = TimelineEntry.Source.WEB,
) -> Incident:
    """回访: the outcome told to the person who raised it, and their satisfaction, recorded by
    the officer who called them or by that person (a grid officer on the phone page). "Not
    satisfied" may reopen the incident at once (the officer's call)."""
    if reopen or not raised_by(actor, incident):
        # Reopening is the township's decision; the person who raised it says how it went.
        require_officer(actor, incident.township)
    if satisfaction not in Incident.Satisfaction.values or not satisfaction:
        raise TransitionNotAllowed(
            _("Say whether they were satisfied, basically satisfied or not satisfied."),
            code="satisfaction_missing",
        )
    if reopen and satisfaction != Incident.Satisfaction.UNSATISFIED:
        raise TransitionNotAllowed(
            _("Only a caller who is not satisfied reopens the incident."), code="reopen_invalid"
        )
    with transaction.atomic():
        incident = Incident.objects.select_for_update().get(pk=incident.pk)
        if incident.status != Incident.Status.CLOSED:
            raise TransitionNotAllowed(
                _("Call back once the incident is closed."), code="incident_not_closed"
            )
        incident.satisfaction = satisfaction
        incident.callback_at = clock.now()
        incident.callback_note = note.strip()
        incident.save(update_fields=["satisfaction", "callback_at", "callback_note"])
        after: dict[str, Any] = {"satisfaction": satisfaction}
        if incident.callback_note:
            after["note"] = incident.callback_note[:500]
        if reopen:
            after["reopen"] = True
        record(
            incident,
            incident.township_id,
            Action.INCIDENT_CALLED_BACK,
            actor=actor,
            source=source,
            after=after,
        )
        broadcast(incident, "incident.updated")
        if reopen:
            incident = incident_reopen(
                actor=actor,
                incident=incident,
                reason=incident.callback_note or str(Incident.Satisfaction.UNSATISFIED.label),
                source=source,
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
    in_grid: bool = False,
) -> Incident:
    """A photo or link from the officer or from a department summoned to the incident (or,
    ``in_grid``, from the grid officer settling it on the spot)."""
    summoned = not in_grid and (
        actor.department_id is not None
        and policy.can_act_for_department(actor, actor.department_id)
        and Summons.objects.filter(
            whistle__incident=incident, department_id=actor.department_id
        ).exists()
    )
    if not summoned:
        _require_runner(actor, incident, in_grid)
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
