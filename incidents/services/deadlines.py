"""Deadlines and escalation (督办): each summons' reminder and escalation steps before it checks
in, and its escalation steps when it has not finished in time (限时办结), run by the job chains
(``incidents.tasks``) and, as a backstop, by the periodic sweep."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import F, Func, IntegerField

from command import clock, jobs, realtime
from command.timeline.actions import Action
from command.timeline.models import TimelineEntry
from incidents.models import Summons, Whistle
from incidents.services.common import locked_summonses, log, record
from incidents.services.escalation import page_overdue, pages_due_sweep
from incidents.services.pushes import announce_summons

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


def step_times(summons: Summons, whistle: Whistle) -> list[datetime]:
    """When each step runs: the reminder, then every escalation level of the policy snapshot."""
    deadline = summons.check_in_deadline
    times = [deadline - min(REMIND_BEFORE, whistle.report_within / 3)]
    for step in whistle.escalation_policy:
        times.append(deadline + timedelta(minutes=int(step["after_deadline_minutes"])))
    return times


DEADLINE_TASK = "incidents.tasks.summons_deadline"
FINISH_TASK = "incidents.tasks.summons_finish_deadline"


def finish_step_times(summons: Summons, whistle: Whistle) -> list[datetime]:
    """When each level of late finishing escalates: the policy's offsets after the finishing
    deadline (level n is item n-1). None without a finishing deadline."""
    if summons.finish_deadline is None:
        return []
    return [
        summons.finish_deadline + timedelta(minutes=int(step["after_deadline_minutes"]))
        for step in whistle.escalation_policy
    ]


def finish_step_job(summons: Summons) -> jobs.Deferral | None:
    """The summons' next finishing step, if its policy has one left."""
    times = finish_step_times(summons, summons.whistle)
    level = summons.finish_escalation_level + 1
    if level > len(times):
        return None
    return jobs.Deferral(
        FINISH_TASK,
        {"summons_id": summons.pk, "level": level},
        schedule_at=times[level - 1],
        queueing_lock=f"summons-{summons.pk}-finish-{level}",
    )


def schedule_finish_chain(summons: Summons) -> None:
    """Defer the summons' next finishing step (in the current transaction) when returned work
    sends the department back (a chain stops at "done")."""
    deferral = finish_step_job(summons)
    if deferral is not None:
        jobs.defer_once(deferral)


@dataclass(frozen=True)
class Lateness:
    """Which deadline a summons missed: its fields and the timeline's words for it."""

    deadline: str  # the Summons field holding the deadline
    overdue: str  # … the flag set the first time
    level: str  # … the escalation level reached
    overdue_action: Action
    escalated_action: Action
    key: str  # the payload key the deadline is written under


ARRIVAL = Lateness(
    "check_in_deadline",
    "overdue",
    "escalation_level",
    Action.SUMMONS_OVERDUE,
    Action.SUMMONS_ESCALATED,
    "deadline",
)
FINISHING = Lateness(
    "finish_deadline",
    "finish_overdue",
    "finish_escalation_level",
    Action.SUMMONS_FINISH_OVERDUE,
    Action.SUMMONS_FINISH_ESCALATED,
    "finish_deadline",
)


def _escalated(summons: Summons, level: int, late: Lateness) -> None:
    """Write an escalation the caller has checked is due (under the summons' row lock): the
    overdue flag and its row the first time, the level and its row, the department's push."""
    step = next((s for s in summons.whistle.escalation_policy if int(s["level"]) == level), None)
    township_id = summons.whistle.incident.township_id
    fields = [late.level]
    if not getattr(summons, late.overdue):
        setattr(summons, late.overdue, True)
        fields.append(late.overdue)
        record(
            summons,
            township_id,
            late.overdue_action,
            actor=None,
            source=TimelineEntry.Source.SYSTEM,
            after={late.key: getattr(summons, late.deadline).isoformat()},
        )
    before = getattr(summons, late.level)
    setattr(summons, late.level, level)
    summons.save(update_fields=fields)
    record(
        summons,
        township_id,
        late.escalated_action,
        actor=None,
        source=TimelineEntry.Source.SYSTEM,
        before={"level": before},
        after={"level": level, "notify": (step or {}).get("notify", "")},
    )
    announce_summons(summons, late.escalated_action, key_suffix=f":{level}")
    if step is not None:
        page_overdue(summons, level, step.get("notify", ""), finishing=late is FINISHING)


def summons_finish_step(*, summons_id: int, level: int) -> str:
    """Escalate late finishing to ``level`` and schedule the next level."""
    with transaction.atomic():
        outcome = summons_finish_escalate(summons_id=summons_id, level=level)
        summons = Summons.objects.select_related("whistle").filter(pk=summons_id).first()
        if summons is not None and summons.status in Summons.WORKING_STATUSES:
            schedule_finish_chain(summons)
    return outcome


def summons_finish_escalate(*, summons_id: int, level: int) -> str:
    """Past the finishing deadline and not done: overdue, escalated like a late arrival.

    Work reported done waits on the township's acceptance, not on the department, so it does
    not escalate; returned work does, from where its chain stopped.
    """
    with transaction.atomic():
        summons = locked_summonses().filter(pk=summons_id).first()
        if summons is None:
            return "gone"
        if summons.status not in Summons.WORKING_STATUSES:
            return "finished or released"
        if summons.finish_escalation_level >= level:
            return "already escalated"
        if summons.finish_deadline is None or clock.now() < summons.finish_deadline:
            return "not due"
        _escalated(summons, level, FINISHING)
    return f"escalated to level {level}"


def deadline_step_job(summons_id: int, step: int, at: datetime) -> jobs.Deferral:
    # By name: incidents.tasks imports this module, not the other way round.
    return jobs.Deferral(
        DEADLINE_TASK,
        {"summons_id": summons_id, "step": step},
        schedule_at=at,
        queueing_lock=f"summons-{summons_id}-step-{step}",
    )


def schedule_deadline_step(summons_id: int, step: int, at: datetime) -> None:
    """Defer one step of the summons' deadline chain, in the current transaction. Each step
    defers the next when it runs, so a whistle costs one job per summons, and a chain never
    outlives its summons."""
    jobs.defer_once(deadline_step_job(summons_id, step, at))


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
        times = step_times(summons, summons.whistle)
        waiting = summons.status in Summons.WAITING_STATUSES
        if waiting and step + 1 < len(times):
            schedule_deadline_step(summons_id, step + 1, times[step + 1])
    return outcome


def summons_deadlines_sweep() -> int:
    """Run every deadline step that is due and has not run; returns how many steps ran.

    The backstop of the job chain (see ``incidents.tasks``): it finds waiting summonses
    whose reminder or escalation moment has passed and runs those steps through the same
    services, which re-check under the row lock, so a step the chain runs at the same moment
    happens once. Fully escalated summonses drop out of the query, so its cost is the number of
    summonses in their last ten minutes or still escalating, not every open one.
    """
    now = clock.now()
    summonses = _still_escalating(
        Summons.objects.filter(
            status__in=Summons.WAITING_STATUSES, check_in_deadline__lte=now + REMIND_BEFORE
        ),
        ARRIVAL,
    )
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
            for step, at in enumerate(step_times(summons, summons.whistle)):
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
    finishing_late = Summons.objects.filter(
        status__in=Summons.WORKING_STATUSES, finish_deadline__lte=now - SWEEP_GRACE
    )
    for summons in _still_escalating(finishing_late, FINISHING):
        try:
            for level, at in enumerate(finish_step_times(summons, summons.whistle), start=1):
                if at > cutoff:
                    break
                if summons.finish_escalation_level < level:
                    outcome = summons_finish_escalate(summons_id=summons.pk, level=level)
                    ran += outcome.startswith("escalated")
        except Exception:
            log.exception("finishing sweep failed for summons %s", summons.pk)
            failed.append(summons.pk)
    paged, page_failed = pages_due_sweep(now, SWEEP_GRACE)
    ran += paged
    failed += page_failed
    if ran:
        log.warning("deadline sweep ran %s step(s) the job chain had not", ran)
    if failed:
        raise RuntimeError(f"deadline sweep failed for summonses {failed}")
    return ran


def _still_escalating(summonses: Any, late: Lateness) -> list[Summons]:
    """Those of ``summonses`` with levels of their whistle's policy still to run for ``late``,
    earliest deadline first. Fully escalated ones drop out in the query."""
    levels = Func(
        F("whistle__escalation_policy"), function="jsonb_array_length", output_field=IntegerField()
    )
    return list(
        summonses.annotate(levels=levels)
        .filter(**{f"{late.level}__lt": F("levels")})
        .select_related("whistle")
        .order_by(late.deadline, "pk")
    )


def summons_remind(*, summons_id: int) -> str:
    """Remind a department that has not checked in yet."""
    with transaction.atomic():
        summons = locked_summonses().filter(pk=summons_id).first()
        if summons is None or summons.status not in Summons.WAITING_STATUSES:
            return "nothing to remind"
        already = TimelineEntry.objects.filter(
            subject_type="summons", subject_id=summons.pk, action=Action.SUMMONS_REMINDED
        ).exists()
        if already:
            return "already reminded"
        record(
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
        summons = locked_summonses().filter(pk=summons_id).first()
        if summons is None:
            return "gone"
        if summons.status not in Summons.WAITING_STATUSES:
            return "checked in or closed in time"
        if summons.escalation_level >= level:
            return "already escalated"
        if clock.now() < summons.check_in_deadline:
            return "not due"  # the deadline moved; the job for the new one will come
        _escalated(summons, level, ARRIVAL)
    return f"escalated to level {level}"
