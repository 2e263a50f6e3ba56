"""Whistles: blowing one summons departments with a deadline to report on site; a joint
whistle waits for the other township's confirmation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from command import clock, jobs, realtime
from command.errors import ActionForbidden, TransitionNotAllowed
from command.org import policy
from command.org.models import Category, Department, Responsibility, Township, User
from command.timeline.actions import Action
from command.timeline.models import TimelineEntry
from command.timeline.records import Row, timeline_record_many
from incidents.models import Incident, Summons, Whistle
from incidents.services.common import broadcast, record, require_officer
from incidents.services.deadlines import (
    DEFAULT_ESCALATION_POLICY,
    deadline_step_job,
    finish_step_job,
    step_times,
)
from incidents.services.escalation import chain_for, first_page_at, page_step_job
from incidents.services.incidents import require_active, set_incident_status
from incidents.services.pushes import push_to_department

# Report-on-site deadlines per whistle kind. Emergency: the reform's 30 minutes. General: two
# hours, a working half-day's response for an ordinary matter. Tough (攻坚): a long-running hard
# problem needs the departments to arrange a joint action, so a day.
REPORT_WITHIN = {
    Whistle.Kind.EMERGENCY: timedelta(minutes=30),
    Whistle.Kind.GENERAL: timedelta(hours=2),
    Whistle.Kind.TOUGH: timedelta(hours=24),
}


# Finishing deadlines (限时办结) per whistle kind, from blowing to work the township accepts:
# an emergency is contained within hours; an ordinary matter within three days, the hotlines'
# usual limit; a tough problem within fifteen days.
FINISH_WITHIN = {
    Whistle.Kind.EMERGENCY: timedelta(hours=4),
    Whistle.Kind.GENERAL: timedelta(days=3),
    Whistle.Kind.TOUGH: timedelta(days=15),
}


def report_within(township: Township, kind: str) -> timedelta:
    """The township's own deadline for this kind of whistle, else the default."""
    minutes = (township.report_deadlines or {}).get(kind)
    return timedelta(minutes=minutes) if minutes else REPORT_WITHIN[kind]


def finish_within(township: Township, kind: str) -> timedelta:
    """The township's own finishing deadline for this kind of whistle, else the default; never
    shorter than the time to arrive."""
    minutes = (township.finish_deadlines or {}).get(kind)
    chosen = timedelta(minutes=minutes) if minutes else FINISH_WITHIN[kind]
    return max(chosen, report_within(township, kind))


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
) -> Whistle:
    """吹哨: summon departments to the incident, each with a check-in deadline."""
    require_officer(actor, incident.township)
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
    now = clock.now()
    with transaction.atomic():
        incident = (
            Incident.objects.select_for_update().select_related("township").get(pk=incident.pk)
        )
        require_active(incident, _("A whistle cannot be blown for an incident that is %(status)s."))
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
            finish_within=finish_within(incident.township, kind),
            escalation_policy=DEFAULT_ESCALATION_POLICY,
            escalation_chain=chain_for(incident.township, kind),
            note=note,
        )
        after: dict[str, Any] = {"kind": kind, "purpose": purpose, "departments": codes}
        if joint_township is not None:
            after |= {
                "joint_township": joint_township.code,
                "joint_status": whistle.joint_status,
                "awaiting": [d.department.pk for d in waiting],
            }
        record(whistle, incident.township_id, Action.WHISTLE_BLOWN, actor=actor, source=source,
                time=now, after=after)  # fmt: skip
        _summon(incident, whistle, summoned_now, on_list, actor=actor, source=source, now=now)
        broadcast(incident, "whistle.blown", whistle_id=whistle.pk)
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
    finish_by = now + whistle.finish_within if whistle.finish_within else None
    page_at = first_page_at(whistle, now)
    # One INSERT for all summonses and one for their timeline rows: the officer is waiting.
    summonses = Summons.objects.bulk_create(
        [
            Summons(
                whistle=whistle,
                department=summoned.department,
                check_in_deadline=deadline,
                finish_deadline=finish_by,
                page_at=page_at,
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
                after={
                    "status": summons.status,
                    "deadline": deadline.isoformat(),
                    **({"finish_deadline": finish_by.isoformat()} if finish_by else {}),
                },
            )
            for summons in summonses
        ]
    )
    # Each new summons' first deadline, finishing and escalation steps: one INSERT for all
    # (no job can hold a new summons' queueing locks yet).
    first_steps: list[jobs.Deferral] = []
    for summons in summonses:
        realtime.broadcast_on_commit(
            realtime.department_group(summons.department.code),
            {"type": "summons.notified", "summons_id": summons.pk},
        )
        summons.whistle = whistle
        first_steps.append(deadline_step_job(summons.pk, 0, step_times(summons, whistle)[0]))
        finish = finish_step_job(summons)
        if finish is not None:
            first_steps.append(finish)
        if page_at is not None:
            first_steps.append(page_step_job(summons.pk, 0, page_at))
        push_to_department(summons, Action.SUMMONS_NOTIFIED)
    jobs.defer_all(first_steps)
    if incident.status == Incident.Status.OPEN:
        set_incident_status(
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
        require_active(incident, _("The incident is %(status)s."))
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
        record(whistle, incident.township_id, Action.WHISTLE_JOINT_CONFIRMED, actor=actor,
                source=source, time=now,
                before={"joint_status": Whistle.JointStatus.PENDING},
                after={"joint_status": whistle.joint_status,
                       "departments": [d.department.pk for d in departments]})  # fmt: skip
        _summon(incident, whistle, departments, on_list, actor=actor, source=source, now=now)
        broadcast(incident, "incident.updated")
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
        record(whistle, incident.township_id, Action.WHISTLE_JOINT_DECLINED, actor=actor,
                source=source, time=now,
                before={"joint_status": Whistle.JointStatus.PENDING, "awaiting": waiting},
                after={"joint_status": whistle.joint_status, "reason": reason.strip()})  # fmt: skip
        broadcast(incident, "incident.updated")
    return whistle


def _joint_pending_for_update(whistle: Whistle) -> Whistle:
    whistle = Whistle.objects.select_for_update().get(pk=whistle.pk)
    if whistle.joint_status != Whistle.JointStatus.PENDING:
        raise TransitionNotAllowed(
            _("This joint whistle is not awaiting confirmation."), code="joint_not_pending"
        )
    return whistle
