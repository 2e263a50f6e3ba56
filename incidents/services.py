"""Services that change incidents, whistles and summons, and the timeline they all write.

Every state change here runs in one transaction that writes the row, a timeline entry and the
broadcast (sent on commit). An action the current state does not allow raises
:class:`TransitionNotAllowed`; an actor without the right raises :class:`ActionForbidden`. The
API turns those into precise 409 and 403 answers.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import F, Func, IntegerField
from django.utils.translation import gettext as _
from procrastinate.contrib.django import app
from procrastinate.exceptions import AlreadyEnqueued

from alerts.models import Alert
from command import clock, realtime
from command.errors import ActionForbidden, TransitionNotAllowed
from command.org import policy
from command.org.models import Category, Department, Grid, Responsibility, Township, User
from command.timeline.actions import Action
from command.timeline.models import TimelineEntry
from command.timeline.records import Row, timeline_record, timeline_record_many
from incidents.models import Incident, Summons, Whistle

log = logging.getLogger("whistle.incidents")

# Report-on-site deadlines per whistle kind. Emergency: the reform's 30 minutes. General: two
# hours, a working half-day's response for an ordinary matter. Tough (攻坚): a long-running hard
# problem needs the departments to arrange a joint action, so a day.
REPORT_WITHIN = {
    Whistle.Kind.EMERGENCY: timedelta(minutes=30),
    Whistle.Kind.GENERAL: timedelta(hours=2),
    Whistle.Kind.TOUGH: timedelta(hours=24),
}

# Who hears of an overdue summons, and when (督办): copied onto each whistle when it is blown.
DEFAULT_ESCALATION_POLICY: list[dict[str, Any]] = [
    {"level": 1, "after_deadline_minutes": 0, "notify": "township_supervisors"},
    {"level": 2, "after_deadline_minutes": 30, "notify": "district_supervisors"},
]
# A reminder goes out this long before the deadline (a third of the window when that is shorter).
REMIND_BEFORE = timedelta(minutes=10)
# The deadline sweep leaves a step this long to its own job (which fires within the worker's
# polling interval) before running it itself, so that on a good day the chain does the work.
SWEEP_GRACE = timedelta(seconds=5)


def report_within(township: Township, kind: str) -> timedelta:
    """The township's own deadline for this kind of whistle, else the default."""
    minutes = (township.report_deadlines or {}).get(kind)
    return timedelta(minutes=minutes) if minutes else REPORT_WITHIN[kind]


# --- timeline ---------------------------------------------------------------------------------


def _record(
    subject: Incident | Whistle | Summons,
    township_id: int,
    action: str,
    *,
    actor: User | None,
    source: str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    time: datetime | None = None,
) -> None:
    timeline_record(
        township_id=township_id,
        subject_type=subject._meta.model_name,
        subject_id=subject.pk,
        action=action,
        source=source,
        actor_id=actor.pk if actor else None,
        before=before,
        after=after,
        time=time,
    )


def _broadcast(incident: Incident, event_type: str, **fields: Any) -> None:
    event = {"type": event_type, "incident_id": incident.pk, **fields}
    realtime.broadcast_on_commit(realtime.incident_group(incident.pk), event)
    realtime.broadcast_on_commit(realtime.board_group(incident.township.code), event)


# --- permissions ------------------------------------------------------------------------------


def _require_officer(actor: User, township: Township) -> None:
    """Duty officers of the township (and its or the district's administrators) run
    incidents (command.org.policy.can_command)."""
    if policy.can_command(actor, township):
        return
    raise ActionForbidden(_("Only the township's duty officers may do this."))


def _require_member(actor: User, department_id: int) -> None:
    if policy.can_act_for_department(actor, department_id):
        return
    raise ActionForbidden(_("Only members of the summoned department may do this."))


# --- incidents --------------------------------------------------------------------------------


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
    _require_officer(actor, township)
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
        _record(
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
        _broadcast(incident, "incident.opened")
    return incident


def _require_active(incident: Incident, message: str) -> None:
    if incident.status not in Incident.ACTIVE_STATUSES:
        raise TransitionNotAllowed(
            message % {"status": incident.get_status_display()}, code="incident_not_active"
        )


def _set_incident_status(
    incident: Incident,
    status: str,
    *,
    actor: User | None,
    source: str,
    action: str,
    time: datetime | None = None,
    **fields: Any,
) -> None:
    before = incident.status
    incident.status = status
    for name, value in fields.items():
        setattr(incident, name, value)
    incident.save(update_fields=["status", *fields])
    _record(
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
    _broadcast(incident, "incident.updated")


def incident_resolve(
    *, actor: User, incident: Incident, source: str = TimelineEntry.Source.WEB
) -> Incident:
    """事不完，人不走: not while a summoned department has not reported done or been released."""
    _require_officer(actor, incident.township)
    with transaction.atomic():
        incident = Incident.objects.select_for_update().get(pk=incident.pk)
        _require_active(incident, _("An incident that is %(status)s cannot be resolved."))
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
        _set_incident_status(
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
    _require_officer(actor, incident.township)
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
        _set_incident_status(
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
        _require_officer(actor, incident.township)
    from incidents.photos import is_acceptable_url, photos_attach

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
        _record(
            incident,
            incident.township_id,
            Action.INCIDENT_EVIDENCE_ADDED,
            actor=actor,
            source=source,
            after=item,
        )
        _broadcast(incident, "incident.updated")
    return incident


# --- whistles ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SummonedDepartment:
    department: Department
    # Required when the incident's category is not on the department's responsibility list.
    reason: str = ""


def suggested_departments(*, category: Category) -> list[Department]:
    """From the responsibility list (清单): lead departments first."""
    return [
        r.department
        for r in Responsibility.objects.filter(category=category)
        .select_related("department")
        .order_by("-lead", "department__code")
    ]


def whistle_blow(
    *,
    actor: User,
    incident: Incident,
    kind: str,
    purpose: str,
    departments: Sequence[SummonedDepartment],
    joint_township: Township | None = None,
    note: str = "",
    source: str = TimelineEntry.Source.WEB,
    now: datetime | None = None,
) -> Whistle:
    """吹哨: summon departments to the incident, each with a check-in deadline."""
    _require_officer(actor, incident.township)
    if kind not in Whistle.Kind.values:
        raise TransitionNotAllowed(_("Unknown whistle kind."), code="kind_invalid")
    if purpose not in Whistle.Purpose.values:
        raise TransitionNotAllowed(_("Unknown whistle purpose."), code="purpose_invalid")
    if not departments:
        raise TransitionNotAllowed(_("Summon at least one department."), code="no_departments")
    codes = [d.department.pk for d in departments]
    if len(set(codes)) != len(codes):
        raise TransitionNotAllowed(_("A department is summoned twice."), code="duplicate")
    on_list = set(
        Responsibility.objects.filter(
            category_id=incident.category_id, department_id__in=codes
        ).values_list("department_id", flat=True)
    )
    if joint_township is not None and joint_township.pk == incident.township_id:
        raise TransitionNotAllowed(
            _("A joint whistle is blown with another township."), code="joint_same_township"
        )
    townships = {None, incident.township_id, joint_township.pk if joint_township else None}
    for summoned in departments:
        if summoned.department.township_id not in townships:
            # Another township's own offices answer only a joint whistle (联合哨) of both.
            raise TransitionNotAllowed(
                _("%(dept)s belongs to another township; blow a joint whistle with it.")
                % {"dept": summoned.department.display_name},
                code="other_township",
            )
    for summoned in departments:
        if summoned.department.pk not in on_list and not summoned.reason.strip():
            raise TransitionNotAllowed(
                _("%(dept)s is not responsible for %(category)s; give a reason to summon it.")
                % {
                    "dept": summoned.department.display_name,
                    "category": incident.category.display_name,
                },
                code="not_on_list",
            )
    now = now or clock.now()
    with transaction.atomic():
        incident = (
            Incident.objects.select_for_update().select_related("township").get(pk=incident.pk)
        )
        _require_active(
            incident, _("A whistle cannot be blown for an incident that is %(status)s.")
        )
        # 联合哨: the other township's own offices wait for its confirmation, unless whoever
        # blows it commands there too (a district role).
        confirmed_now = joint_township is not None and policy.can_confirm_joint(
            actor, joint_township
        )
        waiting = [
            d
            for d in departments
            if joint_township is not None
            and not confirmed_now
            and d.department.township_id == joint_township.pk
        ]
        summoned_now = [d for d in departments if d not in waiting]
        whistle = Whistle.objects.create(
            incident=incident,
            kind=kind,
            purpose=purpose,
            joint_township=joint_township,
            joint_status=(
                ""
                if joint_township is None
                else Whistle.JointStatus.CONFIRMED
                if confirmed_now
                else Whistle.JointStatus.PENDING
            ),
            joint_pending=[
                {"department": d.department.pk, "reason": d.reason.strip()} for d in waiting
            ],
            joint_decided_by=actor if confirmed_now else None,
            joint_decided_at=now if confirmed_now else None,
            blown_by=actor,
            blown_at=now,
            report_within=report_within(incident.township, kind),
            escalation_policy=DEFAULT_ESCALATION_POLICY,
            note=note,
        )
        after: dict[str, Any] = {"kind": kind, "purpose": purpose, "departments": codes}
        if joint_township is not None:
            after |= {
                "joint_township": joint_township.code,
                "joint_status": whistle.joint_status,
                "awaiting": [d.department.pk for d in waiting],
            }
        _record(whistle, incident.township_id, Action.WHISTLE_BLOWN, actor=actor, source=source,
                time=now, after=after)  # fmt: skip
        _summon(incident, whistle, summoned_now, on_list, actor=actor, source=source, now=now)
        _broadcast(incident, "whistle.blown", whistle_id=whistle.pk)
    return whistle


def _summon(
    incident: Incident,
    whistle: Whistle,
    departments: Sequence[SummonedDepartment],
    on_list: set[int],
    *,
    actor: User,
    source: str,
    now: datetime,
) -> list[Summons]:
    """Summon ``departments`` for ``whistle`` (inside the caller's transaction): the rows, their
    timeline, deadlines, pushes; the incident is dispatched with its first summons."""
    if not departments:
        return []
    deadline = now + whistle.report_within
    # One INSERT for all summonses and one for their timeline rows: the officer is waiting.
    summonses = Summons.objects.bulk_create(
        [
            Summons(
                whistle=whistle,
                department=summoned.department,
                check_in_deadline=deadline,
                off_list_reason=summoned.reason.strip()
                if summoned.department.pk not in on_list
                else "",
            )
            for summoned in departments
        ]
    )
    timeline_record_many(
        [
            Row(
                time=now,
                township_id=incident.township_id,
                subject_type="summons",
                subject_id=summons.pk,
                action=Action.SUMMONS_NOTIFIED,
                source=source,
                actor_id=actor.pk,
                after={"status": summons.status, "deadline": deadline.isoformat()},
            )
            for summons in summonses
        ]
    )
    for summons in summonses:
        realtime.broadcast_on_commit(
            realtime.department_group(summons.department.code),
            {"type": "summons.notified", "summons_id": summons.pk},
        )
        summons.whistle = whistle
        _schedule_deadline_step(summons.pk, 0, _step_times(summons, whistle)[0])
        _push_to_department(summons, Action.SUMMONS_NOTIFIED)
    if incident.status == Incident.Status.OPEN:
        _set_incident_status(
            incident,
            Incident.Status.DISPATCHED,
            actor=actor,
            source=source,
            action=Action.INCIDENT_DISPATCHED,
            time=now,  # one moment with the whistle, for a replay
        )
    return summonses


def whistle_joint_confirm(
    *, actor: User, whistle: Whistle, source: str = TimelineEntry.Source.WEB
) -> Whistle:
    """The other township of a joint whistle confirms it: its offices are summoned now, each
    with the whistle's report window from this moment."""
    if not policy.can_confirm_joint(actor, whistle.joint_township_id):
        raise ActionForbidden(_("Only the other township's duty officers may confirm this."))
    now = clock.now()
    with transaction.atomic():
        whistle = _joint_pending_for_update(whistle)
        incident = (
            Incident.objects.select_for_update()
            .select_related("township")
            .get(pk=whistle.incident_id)
        )
        _require_active(incident, _("The incident is %(status)s."))
        waiting = {p["department"]: p.get("reason", "") for p in whistle.joint_pending}
        found = Department.objects.in_bulk(list(waiting))
        departments = [SummonedDepartment(found[pk], waiting[pk]) for pk in waiting if pk in found]
        on_list = set(
            Responsibility.objects.filter(
                category_id=incident.category_id, department_id__in=list(waiting)
            ).values_list("department_id", flat=True)
        )
        whistle.joint_status = Whistle.JointStatus.CONFIRMED
        whistle.joint_pending = []
        whistle.joint_decided_by = actor
        whistle.joint_decided_at = now
        whistle.save(
            update_fields=["joint_status", "joint_pending", "joint_decided_by", "joint_decided_at"]
        )
        _record(whistle, incident.township_id, Action.WHISTLE_JOINT_CONFIRMED, actor=actor,
                source=source, time=now,
                before={"joint_status": Whistle.JointStatus.PENDING},
                after={"joint_status": whistle.joint_status,
                       "departments": [d.department.pk for d in departments]})  # fmt: skip
        _summon(incident, whistle, departments, on_list, actor=actor, source=source, now=now)
        _broadcast(incident, "incident.updated")
    return whistle


def whistle_joint_decline(
    *, actor: User, whistle: Whistle, reason: str, source: str = TimelineEntry.Source.WEB
) -> Whistle:
    """The other township declines a joint whistle: its offices are not summoned."""
    if not policy.can_confirm_joint(actor, whistle.joint_township_id):
        raise ActionForbidden(_("Only the other township's duty officers may confirm this."))
    if not reason.strip():
        raise TransitionNotAllowed(_("Declining needs a reason."), code="reason_missing")
    now = clock.now()
    with transaction.atomic():
        whistle = _joint_pending_for_update(whistle)
        whistle.joint_status = Whistle.JointStatus.DECLINED
        waiting = [p["department"] for p in whistle.joint_pending]
        whistle.joint_pending = []
        whistle.joint_decided_by = actor
        whistle.joint_decided_at = now
        whistle.save(
            update_fields=["joint_status", "joint_pending", "joint_decided_by", "joint_decided_at"]
        )
        incident = Incident.objects.select_related("township").get(pk=whistle.incident_id)
        _record(whistle, incident.township_id, Action.WHISTLE_JOINT_DECLINED, actor=actor,
                source=source, time=now,
                before={"joint_status": Whistle.JointStatus.PENDING, "awaiting": waiting},
                after={"joint_status": whistle.joint_status, "reason": reason.strip()})  # fmt: skip
        _broadcast(incident, "incident.updated")
    return whistle


def _joint_pending_for_update(whistle: Whistle) -> Whistle:
    whistle = Whistle.objects.select_for_update().get(pk=whistle.pk)
    if whistle.joint_status != Whistle.JointStatus.PENDING:
        raise TransitionNotAllowed(
            _("This joint whistle is not awaiting confirmation."), code="joint_not_pending"
        )
    return whistle


# --- pushes to departments' own systems -------------------------------------------------------


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
        },
        "whistle": {"id": whistle.pk, "kind": whistle.kind, "purpose": whistle.purpose},
        "incident": {
            "id": incident.pk,
            "township": incident.township.code,
            "title": incident.title,
            "category": incident.category.code,
            "severity": incident.severity,
            "grid": incident.grid.code if incident.grid else None,
            "latitude": incident.latitude,
            "longitude": incident.longitude,
        },
    }


def _push_to_department(summons: Summons, event: str, key_suffix: str = "") -> None:
    from alerts.delivery.departments import deliveries_enqueue

    department = summons.department
    if not (department.webhook_url or department.mqtt_downlink):
        return  # nothing to push, and no payload to build
    deliveries_enqueue(
        department=department,
        event=event,
        key=f"{event}:{summons.pk}{key_suffix}",
        payload=_summons_payload(summons, event),
    )


# --- summons ----------------------------------------------------------------------------------


def _locked_summonses() -> Any:
    """Summons rows locked for a change, with what every change reads alongside."""
    return Summons.objects.select_for_update(of=("self",)).select_related(
        "whistle__incident__township", "department"
    )


def _summons_for_update(summons: Summons) -> Summons:
    return _locked_summonses().get(pk=summons.pk)


def _announce(summons: Summons, action: str, key_suffix: str = "") -> None:
    """A summons changed: its department's console, the board and incident, its own system."""
    realtime.broadcast_on_commit(
        realtime.department_group(summons.department.code),
        {"type": "summons.updated", "summons_id": summons.pk},
    )
    _broadcast(summons.whistle.incident, "summons.updated", summons_id=summons.pk)
    _push_to_department(summons, action, key_suffix)


def _summons_changed(
    summons: Summons,
    before: str,
    action: str,
    *,
    actor: User | None,
    source: str,
    fields: Sequence[str],
    after: dict[str, Any] | None = None,
    time: datetime | None = None,
) -> None:
    summons.save(update_fields=["status", *fields])
    incident = summons.whistle.incident
    _record(
        summons,
        incident.township_id,
        action,
        actor=actor,
        source=source,
        before={"status": before},
        after={"status": summons.status, **(after or {})},
        time=time,
    )
    _announce(summons, action)


def summons_acknowledge(
    *, actor: User, summons: Summons, source: str = TimelineEntry.Source.WEB
) -> Summons:
    _require_member(actor, summons.department_id)
    with transaction.atomic():
        summons = _summons_for_update(summons)
        if summons.status != Summons.Status.NOTIFIED:
            raise TransitionNotAllowed(
                _("This summons is already %(status)s.") % {"status": summons.get_status_display()},
                code="summons_not_notified",
            )
        summons.status = Summons.Status.ACKNOWLEDGED
        summons.acknowledged_at = clock.now()
        _summons_changed(
            summons,
            Summons.Status.NOTIFIED,
            Action.SUMMONS_ACKNOWLEDGED,
            actor=actor,
            source=source,
            fields=["acknowledged_at"],
        )
    return summons


def summons_check_in(
    *,
    actor: User,
    summons: Summons,
    latitude: float | None = None,
    longitude: float | None = None,
    source: str = TimelineEntry.Source.WEB,
) -> Summons:
    """报到: the department is on site. Checking in acknowledges too, if it had not."""
    _require_member(actor, summons.department_id)
    with transaction.atomic():
        summons = _summons_for_update(summons)
        if summons.status not in Summons.WAITING_STATUSES:
            raise TransitionNotAllowed(
                _("This summons is already %(status)s.") % {"status": summons.get_status_display()},
                code="summons_not_waiting",
            )
        before = summons.status
        now = clock.now()
        summons.status = Summons.Status.CHECKED_IN
        summons.acknowledged_at = summons.acknowledged_at or now
        summons.checked_in_at = now
        summons.checked_in_by = actor
        summons.check_in_latitude = latitude
        summons.check_in_longitude = longitude
        on_time = now <= summons.check_in_deadline
        _summons_changed(
            summons,
            before,
            Action.SUMMONS_CHECKED_IN,
            actor=actor,
            source=source,
            fields=[
                "acknowledged_at",
                "checked_in_at",
                "checked_in_by",
                "check_in_latitude",
                "check_in_longitude",
            ],
            after={"on_time": on_time, "position": [latitude, longitude]},
            time=now,
        )
        incident = Incident.objects.select_for_update().get(pk=summons.whistle.incident_id)
        if incident.status == Incident.Status.DISPATCHED:
            _set_incident_status(
                incident,
                Incident.Status.ON_SITE,
                actor=actor,
                source=source,
                action=Action.INCIDENT_ON_SITE,
                time=now,  # one moment with the check-in, for a replay
            )
    return summons


def summons_done(
    *, actor: User, summons: Summons, note: str = "", source: str = TimelineEntry.Source.WEB
) -> Summons:
    _require_member(actor, summons.department_id)
    with transaction.atomic():
        summons = _summons_for_update(summons)
        if summons.status != Summons.Status.CHECKED_IN:
            raise TransitionNotAllowed(
                _("Report done only after checking in on site."), code="summons_not_on_site"
            )
        summons.status = Summons.Status.DONE
        summons.done_at = clock.now()
        summons.done_note = note
        _summons_changed(
            summons,
            Summons.Status.CHECKED_IN,
            Action.SUMMONS_DONE,
            actor=actor,
            source=source,
            fields=["done_at", "done_note"],
            # The note is part of the record a supervisor replays.
            after={"note": note} if note else None,
        )
    return summons


def summons_release(
    *, actor: User, summons: Summons, reason: str, source: str = TimelineEntry.Source.WEB
) -> Summons:
    """The officer lets a department go before it has reported done; the reason is kept."""
    if not reason.strip():
        raise TransitionNotAllowed(_("Releasing needs a reason."), code="reason_missing")
    with transaction.atomic():
        summons = _summons_for_update(summons)
        _require_officer(actor, summons.whistle.incident.township)
        if summons.status not in Summons.OPEN_STATUSES:
            raise TransitionNotAllowed(
                _("This summons is already %(status)s.") % {"status": summons.get_status_display()},
                code="summons_closed",
            )
        before = summons.status
        summons.status = Summons.Status.RELEASED
        summons.released_at = clock.now()
        summons.release_reason = reason.strip()
        _summons_changed(
            summons,
            before,
            Action.SUMMONS_RELEASED,
            actor=actor,
            source=source,
            fields=["released_at", "release_reason"],
            after={"reason": summons.release_reason},
        )
    return summons


# --- deadlines and escalation (督办) ----------------------------------------------------------


def _step_times(summons: Summons, whistle: Whistle) -> list[datetime]:
    """When each step runs: the reminder, then every escalation level of the policy snapshot."""
    deadline = summons.check_in_deadline
    times = [deadline - min(REMIND_BEFORE, whistle.report_within / 3)]
    for step in whistle.escalation_policy:
        times.append(deadline + timedelta(minutes=int(step["after_deadline_minutes"])))
    return times


DEADLINE_TASK = "incidents.tasks.summons_deadline"


def _schedule_deadline_step(summons_id: int, step: int, at: datetime) -> None:
    """Defer one step of the summons' deadline chain, in the current transaction (procrastinate
    writes its jobs through Django's connection). Each step defers the next when it runs, so a
    whistle costs one job per summons, and a chain never outlives its summons."""
    try:
        # By name: incidents.tasks imports this module, not the other way round.
        app.configure_task(
            DEADLINE_TASK, schedule_at=at, queueing_lock=f"summons-{summons_id}-step-{step}"
        ).defer(summons_id=summons_id, step=step)
    except AlreadyEnqueued:
        pass  # a step that ran twice: its successor is already waiting


def summons_deadline_step(*, summons_id: int, step: int) -> str:
    """Run step ``step`` (0: reminder, n: escalation level n) and schedule the next one."""
    with transaction.atomic():
        summons = Summons.objects.select_related("whistle").filter(pk=summons_id).first()
        if summons is None:
            return "gone"
        outcome = (
            summons_remind(summons_id=summons_id)
            if step == 0
            else summons_escalate(summons_id=summons_id, level=step)
        )
        summons.refresh_from_db(fields=["status"])
        times = _step_times(summons, summons.whistle)
        waiting = summons.status in Summons.WAITING_STATUSES
        if waiting and step + 1 < len(times):
            _schedule_deadline_step(summons_id, step + 1, times[step + 1])
    return outcome


def summons_deadlines_sweep(*, now: datetime | None = None) -> int:
    """Run every deadline step that is due and has not run; returns how many steps ran.

    The backstop of the job chain (see ``incidents.tasks``): it finds waiting summonses
    whose reminder or escalation moment has passed and runs those steps through the same
    services, which re-check under the row lock, so a step the chain runs at the same moment
    happens once. Fully escalated summonses drop out of the query, so its cost is the number of
    summonses in their last ten minutes or still escalating, not every open one.
    """
    now = now or clock.now()
    due = (
        Summons.objects.filter(
            status__in=Summons.WAITING_STATUSES, check_in_deadline__lte=now + REMIND_BEFORE
        )
        .annotate(
            levels=Func(
                F("whistle__escalation_policy"),
                function="jsonb_array_length",
                output_field=IntegerField(),
            )
        )
        .filter(escalation_level__lt=F("levels"))
        .select_related("whistle")
        .order_by("check_in_deadline", "pk")
    )
    summonses = list(due)
    reminded = set(
        TimelineEntry.objects.filter(
            subject_type="summons",
            subject_id__in=[s.pk for s in summonses],
            action=Action.SUMMONS_REMINDED,
        ).values_list("subject_id", flat=True)
    )
    ran = 0
    failed: list[int] = []
    cutoff = now - SWEEP_GRACE
    for summons in summonses:
        try:
            for step, at in enumerate(_step_times(summons, summons.whistle)):
                if at > cutoff:
                    break
                if step == 0:
                    if summons.pk not in reminded:
                        ran += summons_remind(summons_id=summons.pk) == "reminded"
                elif summons.escalation_level < step:
                    outcome = summons_escalate(summons_id=summons.pk, level=step)
                    ran += outcome.startswith("escalated")
        except Exception:
            # One summons must not hold up the others; the next sweep tries it again.
            log.exception("deadline sweep failed for summons %s", summons.pk)
            failed.append(summons.pk)
    if ran:
        log.warning("deadline sweep ran %s step(s) the job chain had not", ran)
    if failed:
        raise RuntimeError(f"deadline sweep failed for summonses {failed}")
    return ran


def summons_remind(*, summons_id: int) -> str:
    """Remind a department that has not checked in yet."""
    with transaction.atomic():
        summons = _locked_summonses().filter(pk=summons_id).first()
        if summons is None or summons.status not in Summons.WAITING_STATUSES:
            return "nothing to remind"
        already = TimelineEntry.objects.filter(
            subject_type="summons", subject_id=summons.pk, action=Action.SUMMONS_REMINDED
        ).exists()
        if already:
            return "already reminded"
        _record(
            summons,
            summons.whistle.incident.township_id,
            Action.SUMMONS_REMINDED,
            actor=None,
            source=TimelineEntry.Source.SYSTEM,
            after={"deadline": summons.check_in_deadline.isoformat()},
        )
        realtime.broadcast_on_commit(
            realtime.department_group(summons.department.code),
            {"type": "summons.updated", "summons_id": summons.pk},
        )
    return "reminded"


def summons_escalate(*, summons_id: int, level: int) -> str:
    """Past the deadline without checking in: overdue, and escalated to the policy's level.

    Levels only go up, under a row lock: a job that runs twice or late changes nothing.
    """
    with transaction.atomic():
        summons = _locked_summonses().filter(pk=summons_id).first()
        if summons is None:
            return "gone"
        if summons.status not in Summons.WAITING_STATUSES:
            return "checked in or closed in time"
        if summons.escalation_level >= level:
            return "already escalated"
        if clock.now() < summons.check_in_deadline:
            return "not due"  # the deadline moved; the job for the new one will come
        step = next(
            (s for s in summons.whistle.escalation_policy if int(s["level"]) == level), None
        )
        township_id = summons.whistle.incident.township_id
        fields = ["escalation_level"]
        if not summons.overdue:
            summons.overdue = True
            fields.append("overdue")
            _record(
                summons,
                township_id,
                Action.SUMMONS_OVERDUE,
                actor=None,
                source=TimelineEntry.Source.SYSTEM,
                after={"deadline": summons.check_in_deadline.isoformat()},
            )
        before = summons.escalation_level
        summons.escalation_level = level
        summons.save(update_fields=fields)
        _record(
            summons,
            township_id,
            Action.SUMMONS_ESCALATED,
            actor=None,
            source=TimelineEntry.Source.SYSTEM,
            before={"level": before},
            after={"level": level, "notify": (step or {}).get("notify", "")},
        )
        _announce(summons, Action.SUMMONS_ESCALATED, key_suffix=f":{level}")
    return f"escalated to level {level}"
