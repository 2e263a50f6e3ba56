"""Escalation chains (督办 reaching people): until a summoned department acknowledges, its
people are paged step by step, then the township's and the district's supervisors (Grafana
OnCall's escalation chain), from the copy of the township's chain made when the whistle was
blown. Overdue levels (``incidents.services.deadlines``) page the supervisors they name.

Each summons keeps its place in the chain (``page_step``: the notification steps run;
``page_at``: when the next is due). A step runs under the summons' row lock only when it is
the next one, and writes its notifications, its place and the job of the step after it in one
transaction: a worker killed at any moment leaves either the step done and the next one
queued, or neither, so a restart neither skips a step nor repeats one. The jobs fire steps on
the second; the deadline sweep runs any step whose job was lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import translation
from django.utils.translation import gettext as _

from alerts.delivery.people import Cause, Recipient, page
from command import clock, jobs, realtime
from command.org import oncall
from command.org.models import Township, User
from command.timeline.actions import Action
from command.timeline.models import TimelineEntry
from incidents.models import EscalationChain, EscalationStep, Summons, Whistle
from incidents.services.common import locked_summonses, log, record

PAGE_TASK = "incidents.tasks.summons_page"

Step = EscalationStep.Action

# The chains a township has when neither it nor the district has set one. Emergency: the
# on-call, then within minutes the backup, the head by every channel, the township's and the
# district's supervisors, all well inside the 30 minutes to arrive. General and tough whistles
# leave more time to answer, in step with their deadlines.
DEFAULT_CHAINS: dict[str, list[dict[str, Any]]] = {
    Whistle.Kind.EMERGENCY: [
        {"action": Step.NOTIFY_ON_CALL},
        {"action": Step.WAIT, "minutes": 3},
        {"action": Step.NOTIFY_BACKUP},
        {"action": Step.WAIT, "minutes": 3},
        {"action": Step.NOTIFY_HEAD, "all_channels": True},
        {"action": Step.WAIT, "minutes": 4},
        {"action": Step.NOTIFY_TOWNSHIP_SUPERVISORS},
        {"action": Step.WAIT, "minutes": 10},
        {"action": Step.NOTIFY_DISTRICT_SUPERVISORS, "all_channels": True},
    ],
    Whistle.Kind.GENERAL: [
        {"action": Step.NOTIFY_ON_CALL},
        {"action": Step.WAIT, "minutes": 15},
        {"action": Step.NOTIFY_BACKUP},
        {"action": Step.WAIT, "minutes": 30},
        {"action": Step.NOTIFY_HEAD},
        {"action": Step.WAIT, "minutes": 30},
        {"action": Step.NOTIFY_TOWNSHIP_SUPERVISORS},
    ],
    Whistle.Kind.TOUGH: [
        {"action": Step.NOTIFY_ON_CALL},
        {"action": Step.WAIT, "minutes": 60},
        {"action": Step.NOTIFY_BACKUP},
        {"action": Step.WAIT, "minutes": 240},
        {"action": Step.NOTIFY_HEAD},
    ],
}


def local_time(moment: datetime, township: Township, pattern: str) -> str:
    """A moment on the township's clock, for the words of a page."""
    return moment.astimezone(township.zone).strftime(pattern)


def chain_for(township: Township, kind: str) -> list[dict[str, Any]]:
    """The chain a whistle of ``kind`` in ``township`` runs, as the copy kept on the whistle:
    the township's for the kind, its chain for every kind, the district's (the same two), or
    the default."""
    chains = {
        (c.township_id, c.kind): c
        for c in EscalationChain.objects.filter(Q(township=township) | Q(township__isnull=True))
        .filter(kind__in=[kind, ""])
        .prefetch_related("steps")
    }
    for place in ((township.pk, kind), (township.pk, ""), (None, kind), (None, "")):
        chain = chains.get(place)
        if chain is not None:
            return chain.snapshot()
    return [dict(step) for step in DEFAULT_CHAINS[kind]]


@dataclass(frozen=True)
class PageStep:
    number: int  # from 1, over the repeats too
    offset: timedelta  # after the department was summoned
    action: str
    all_channels: bool


def page_schedule(chain: list[dict[str, Any]]) -> list[PageStep]:
    """The chain's notification steps in order with their moments: waits add up, a repeat
    runs the steps before it again ``times`` times; anything after a repeat is never reached."""
    body: list[dict[str, Any]] = []
    rounds = 1
    for step in chain:
        if step.get("action") == Step.REPEAT:
            rounds += max(0, int(step.get("times") or 0))
            break
        body.append(step)
    steps: list[PageStep] = []
    offset = timedelta()
    for _round in range(rounds):
        for step in body:
            action = step.get("action")
            if action == Step.WAIT:
                offset += timedelta(minutes=float(step.get("minutes") or 0))
            elif action in EscalationStep.NOTIFY_ACTIONS:
                steps.append(
                    PageStep(len(steps) + 1, offset, action, bool(step.get("all_channels")))
                )
    return steps


def summoned_at(summons: Summons) -> datetime:
    """When the department was summoned: its chain's moments count from there (a joint
    township's departments are summoned when that township confirms, not at the blowing)."""
    return summons.check_in_deadline - summons.whistle.report_within


def first_page_at(whistle: Whistle, now: datetime) -> datetime | None:
    """When the chain's first step is due for a department summoned ``now``."""
    steps = page_schedule(whistle.escalation_chain)
    return now + steps[0].offset if steps else None


def page_step_job(summons_id: int, step: int, at: datetime) -> jobs.Deferral:
    return jobs.Deferral(
        PAGE_TASK,
        {"summons_id": summons_id, "step": step},
        schedule_at=at,
        queueing_lock=f"summons-{summons_id}-page-{step}",
    )


def schedule_page_step(summons_id: int, step: int, at: datetime) -> None:
    """Defer the summons' chain step ``step`` (from 0) at ``at``, in the current transaction,
    unless it is already queued."""
    jobs.defer_once(page_step_job(summons_id, step, at))


def summons_page_step(*, summons_id: int, step: int) -> str:
    """Run the summons' chain step ``step`` (from 0) if it is the next one and due, and queue
    the one after it; the chain stops once the department has acknowledged."""
    with transaction.atomic():
        summons = locked_summonses().filter(pk=summons_id).first()
        if summons is None:
            return "gone"
        if summons.page_step != step:
            return "already ran" if summons.page_step > step else "not the next step"
        if summons.status != Summons.Status.NOTIFIED:
            if summons.page_at is not None:
                summons.page_at = None
                summons.save(update_fields=["page_at"])
            return "acknowledged"
        steps = page_schedule(summons.whistle.escalation_chain)
        if step >= len(steps):
            summons.page_at = None
            summons.save(update_fields=["page_at"])
            return "chain ran out"
        start = summoned_at(summons)
        if clock.now() < start + steps[step].offset:
            return "not due"
        _page_step(summons, steps[step])
        summons.page_step = step + 1
        summons.page_at = start + steps[step + 1].offset if step + 1 < len(steps) else None
        summons.save(update_fields=["page_step", "page_at"])
        if summons.page_at is not None:
            schedule_page_step(summons.pk, step + 1, summons.page_at)
        # The supervisor consoles show each chain's step, also one that found nobody to page.
        realtime.broadcast_on_commit(
            realtime.supervision_group(summons.whistle.incident.township_id),
            {"type": "summons.updated", "summons_id": summons.pk},
        )
    return f"step {step + 1} paged"


REASONS = {
    Step.NOTIFY_ON_CALL: "on_call",
    Step.NOTIFY_BACKUP: "backup",
    Step.NOTIFY_HEAD: "head",
    Step.NOTIFY_TOWNSHIP_SUPERVISORS: "township_supervisors",
    Step.NOTIFY_DISTRICT_SUPERVISORS: "district_supervisors",
    Step.NOTIFY_DISCIPLINE: "discipline",
}


def recipients(summons: Summons, action: str, at: datetime) -> list[Recipient]:
    """Whom a step of ``action`` reaches for this summons at ``at``."""
    department = summons.department
    township = summons.whistle.incident.township
    reason = REASONS[action]
    people: list[User | None]
    if action in (Step.NOTIFY_ON_CALL, Step.NOTIFY_BACKUP):
        duty = oncall.on_call(department, at)
        people = [duty.primary if action == Step.NOTIFY_ON_CALL else duty.backup]
    elif action == Step.NOTIFY_HEAD:
        people = [department.head]
    elif action == Step.NOTIFY_TOWNSHIP_SUPERVISORS:
        people = list(oncall.township_supervisors(township))
    elif action == Step.NOTIFY_DISTRICT_SUPERVISORS:
        people = list(oncall.district_supervisors(township))
    else:
        people = list(oncall.discipline_office(township))
    return [Recipient(person, reason) for person in people if person is not None]


def _page_step(summons: Summons, step: PageStep) -> None:
    whistle = summons.whistle
    incident = whistle.incident
    with translation.override("zh-hans"):
        text = _(
            "%(kind)s #%(incident)s %(title)s: %(department)s has not acknowledged yet; "
            "on site by %(deadline)s."
        ) % {
            "kind": whistle.get_kind_display(),
            "incident": incident.pk,
            "title": incident.title[:60],
            "department": summons.department.name,
            "deadline": local_time(summons.check_in_deadline, incident.township, "%H:%M"),
        }
    notify(
        summons,
        recipients(summons, step.action, clock.now()),
        reason=REASONS[step.action],
        text=f"【{_escalation_word()}】{text}",
        key=f"summons:{summons.pk}:page:{step.number}",
        step=step.number,
        all_channels=step.all_channels,
    )


def _escalation_word() -> str:
    with translation.override("zh-hans"):
        return _("Escalation")


def notify(
    summons: Summons,
    people: list[Recipient],
    *,
    reason: str,
    text: str,
    key: str,
    step: int,
    all_channels: bool = False,
) -> None:
    """Page ``people`` about the summons; with nobody to page, a timeline row says so."""
    incident = summons.whistle.incident
    if not people:
        record(
            summons,
            incident.township_id,
            Action.SUMMONS_NOBODY_TO_PAGE,
            actor=None,
            source=TimelineEntry.Source.SYSTEM,
            after={"reason": reason, "step": step},
        )
        log.warning("summons %s: nobody to page for %s (step %s)", summons.pk, reason, step)
        return
    department_people = reason in ("on_call", "backup", "head")
    link = (
        f"/console/{summons.department.code}/#summons-{summons.pk}"
        if department_people
        else f"/supervise/{incident.township.code}/incidents/{incident.pk}/"
    )
    page(
        Cause(
            township_id=incident.township_id,
            subject_type="summons",
            subject_id=summons.pk,
            incident_id=incident.pk,
            text=text,
            link=link,
            key=key,
            step=step,
        ),
        people,
        all_channels=all_channels,
    )


def overdue_reasons(notify_key: str) -> str | None:
    """The chain action an overdue level's "notify" names (the escalation policy's words)."""
    return {
        "township_supervisors": Step.NOTIFY_TOWNSHIP_SUPERVISORS,
        "district_supervisors": Step.NOTIFY_DISTRICT_SUPERVISORS,
        "discipline": Step.NOTIFY_DISCIPLINE,
    }.get(notify_key)


def page_overdue(summons: Summons, level: int, notify_key: str, *, finishing: bool) -> None:
    """An overdue level was reached: page the supervisors it names (in the caller's
    transaction, under the summons' lock)."""
    action = overdue_reasons(notify_key)
    if action is None:
        return
    incident = summons.whistle.incident
    deadline = summons.finish_deadline if finishing else summons.check_in_deadline
    with translation.override("zh-hans"):
        late = _("not finished") if finishing else _("not on site")
        text = _(
            "#%(incident)s %(title)s: %(department)s %(late)s by %(deadline)s (level %(level)s)."
        ) % {
            "incident": incident.pk,
            "title": incident.title[:60],
            "department": summons.department.name,
            "late": late,
            "deadline": local_time(deadline, incident.township, "%m-%d %H:%M"),
            "level": level,
        }
        word = _("Overdue")
    notify(
        summons,
        recipients(summons, action, clock.now()),
        reason=REASONS[action],
        text=f"【{word}】{text}",
        key=f"summons:{summons.pk}:{'finish' if finishing else 'arrival'}:{level}",
        step=level,
        all_channels=level > 1,
    )


def pages_due_sweep(now: datetime, grace: timedelta) -> tuple[int, list[int]]:
    """Run every chain step due for longer than ``grace`` whose job has not run it; returns
    how many ran and the summonses that failed (the next sweep tries them again)."""
    ran = 0
    failed: list[int] = []
    due = Summons.objects.filter(page_at__lte=now - grace).values_list("pk", "page_step")
    for summons_id, step in due:
        try:
            outcome = summons_page_step(summons_id=summons_id, step=step)
        except Exception:
            log.exception("escalation sweep failed for summons %s", summons_id)
            failed.append(summons_id)
            continue
        ran += outcome.endswith("paged")
    return ran, failed
