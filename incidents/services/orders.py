"""Supervision orders (督办单): a supervisor's written order to a summoned department on an
incident — what to do and by when — which the department acknowledges and answers.

Supervisors otherwise only read (command.org.policy); issuing an order is the one thing they
do, beside the township's duty officers and administrators. An order is issued → acknowledged
→ answered; answering an order not yet acknowledged acknowledges it too. Each step writes one
timeline row on the order (subject ``order``, shown on the incident's timeline) and tells the
department's console and the incident's board (``order.updated``). Issuing pages the
department's on-call, backup and head by every channel they have; acknowledging the order
(or answering it) also acknowledges the summons it is about while that is still only
notified, which stops the summons' escalation chain.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from alerts.delivery.people import Cause, Recipient, page
from command import clock, realtime
from command.errors import ActionForbidden, TransitionNotAllowed
from command.org import policy
from command.org.models import Department, User
from command.org.oncall import on_call
from command.timeline.actions import Action, Subject
from command.timeline.models import TimelineEntry
from incidents.models import Incident, Summons, SupervisionOrder
from incidents.services.common import broadcast, record, summons_for_update
from incidents.services.summonses import summons_acknowledge

# An order is for work in hand: a deadline further off than this is a typo, not an order.
LONGEST = timedelta(days=366)
# What a notification's text keeps of the instruction (an SMS is short).
INSTRUCTION_IN_TEXT = 120


def order_issue(
    *,
    actor: User,
    incident: Incident,
    department: Department,
    instruction: str,
    due_at: datetime,
    summons: Summons | None = None,
    source: str = TimelineEntry.Source.WEB,
) -> SupervisionOrder:
    """Issue an order to ``department`` (summoned to ``incident``) about ``summons`` when given,
    else the department's latest summons on the incident. A ``due_at`` without an offset is
    read on the township's clock."""
    township = incident.township
    if not policy.can_issue_order(actor, township):
        raise ActionForbidden(
            _(
                "Only the township's supervisors, duty officers and administrators may issue "
                "a supervision order."
            )
        )
    instruction = instruction.strip()
    if not instruction:
        raise TransitionNotAllowed(_("Say what is to be done."), code="instruction_missing")
    if timezone.is_naive(due_at):
        due_at = timezone.make_aware(due_at, township.zone)
    now = clock.now()
    if due_at <= now:
        raise TransitionNotAllowed(_("The order must be due in the future."), code="due_in_past")
    if due_at - now > LONGEST:
        raise TransitionNotAllowed(_("The order must be due within a year."), code="due_too_far")
    if incident.status == Incident.Status.CLOSED:
        raise TransitionNotAllowed(
            _("The incident is closed; reopen it first."), code="incident_closed"
        )
    summoned = Summons.objects.filter(whistle__incident=incident, department=department)
    if summons is not None:
        if summons.whistle.incident_id != incident.pk:
            raise TransitionNotAllowed(
                _("That summons is of another incident."), code="summons_other_incident"
            )
        if summons.department_id != department.pk:
            raise TransitionNotAllowed(
                _("That summons is of another department."), code="summons_other_department"
            )
    else:
        # The department's summons still open, else its latest: acknowledging the order then
        # acknowledges a summons still waiting for that.
        summons = (
            summoned.filter(status__in=Summons.OPEN_STATUSES).order_by("-whistle__blown_at").first()
            or summoned.order_by("-whistle__blown_at").first()
        )
        if summons is None:
            raise TransitionNotAllowed(
                _("An order goes to a department summoned to the incident."),
                code="department_not_summoned",
            )
    with transaction.atomic():
        order = SupervisionOrder.objects.create(
            township=township,
            incident=incident,
            summons=summons,
            department=department,
            instruction=instruction,
            due_at=due_at,
            issued_by=actor,
            issued_at=now,
        )
        record(
            order,
            order.township_id,
            Action.ORDER_ISSUED,
            actor=actor,
            source=source,
            after={
                "status": order.status,
                "department": department.code,
                "summons": summons.pk,
                "instruction": instruction,
                "due_at": due_at.isoformat(),
            },
            time=now,
        )
        _page_department(order, incident, now)
        _announce(order, incident)
    return order


def _page_department(order: SupervisionOrder, incident: Incident, now: datetime) -> None:
    """The department's on-call (A), backup (B) and head, by every channel each has: an order
    is read at once, not after an escalation."""
    department = order.department
    duty = on_call(department, now)
    recipients = [
        Recipient(user, reason)
        for user, reason in (
            (duty.primary, "on_call"),
            (duty.backup, "backup"),
            (department.head, "head"),
        )
        if user is not None and user.is_active
    ]
    if not recipients:
        record(
            order,
            order.township_id,
            Action.ORDER_NOBODY_TO_PAGE,
            actor=None,
            source=TimelineEntry.Source.SYSTEM,
            after={"reason": "nobody_on_call"},
        )
        return
    page(
        Cause(
            township_id=order.township_id,
            subject_type=Subject.ORDER.value,
            subject_id=order.pk,
            incident_id=incident.pk,
            text=_notice(order, incident),
            link=f"/console/{department.code}/#order-{order.pk}",
            key=f"order:{order.pk}",
            step=0,
        ),
        recipients,
        all_channels=True,
    )


def _notice(order: SupervisionOrder, incident: Incident) -> str:
    """The words the notification carries, in the site's language (an SMS has no reader's
    language to follow): the order, the incident, what, and by when on the township's clock."""
    zone = incident.township.zone
    due = order.due_at.astimezone(zone)
    today = clock.now().astimezone(zone).date()
    when = due.strftime("%H:%M") if due.date() == today else due.strftime("%m-%d %H:%M")
    instruction = order.instruction
    if len(instruction) > INSTRUCTION_IN_TEXT:
        instruction = instruction[: INSTRUCTION_IN_TEXT - 1] + "…"
    with translation.override(settings.LANGUAGE_CODE):
        return _(
            "[Supervision order] #%(number)s %(incident)s: %(instruction)s "
            "Acknowledge it and answer by %(due)s."
        ) % {
            "number": order.pk,
            "incident": incident.display_title,
            "instruction": instruction,
            "due": when,
        }


def order_acknowledge(
    *, actor: User, order: SupervisionOrder, source: str = TimelineEntry.Source.WEB
) -> SupervisionOrder:
    _require_answerer(actor, order)
    with transaction.atomic():
        order = _order_for_update(order)
        if order.status != SupervisionOrder.Status.ISSUED:
            raise TransitionNotAllowed(
                _("This order is already %(status)s.") % {"status": order.get_status_display()},
                code="order_not_issued",
            )
        now = clock.now()
        order.status = SupervisionOrder.Status.ACKNOWLEDGED
        order.acknowledged_at = now
        order.acknowledged_by = actor
        order.save(update_fields=["status", "acknowledged_at", "acknowledged_by"])
        record(
            order,
            order.township_id,
            Action.ORDER_ACKNOWLEDGED,
            actor=actor,
            source=source,
            before={"status": SupervisionOrder.Status.ISSUED},
            after={"status": order.status},
            time=now,
        )
        _acknowledge_summons(actor, order, source)
        _announce(order, order.incident)
    return order


def order_answer(
    *, actor: User, order: SupervisionOrder, answer: str, source: str = TimelineEntry.Source.WEB
) -> SupervisionOrder:
    """The department's answer: what it did. An order not yet acknowledged is acknowledged by
    answering it (one timeline row, the answer's)."""
    _require_answerer(actor, order)
    answer = answer.strip()
    if not answer:
        raise TransitionNotAllowed(_("Say what was done."), code="answer_missing")
    with transaction.atomic():
        order = _order_for_update(order)
        if order.status not in SupervisionOrder.OPEN_STATUSES:
            raise TransitionNotAllowed(_("This order is already answered."), code="order_answered")
        before = order.status
        now = clock.now()
        order.status = SupervisionOrder.Status.ANSWERED
        order.acknowledged_at = order.acknowledged_at or now
        order.acknowledged_by = order.acknowledged_by or actor
        order.answer = answer
        order.answered_at = now
        order.answered_by = actor
        order.save(
            update_fields=[
                "status",
                "acknowledged_at",
                "acknowledged_by",
                "answer",
                "answered_at",
                "answered_by",
            ]
        )
        record(
            order,
            order.township_id,
            Action.ORDER_ANSWERED,
            actor=actor,
            source=source,
            before={"status": before},
            after={"status": order.status, "answer": answer},
            time=now,
        )
        if before == SupervisionOrder.Status.ISSUED:
            _acknowledge_summons(actor, order, source)
        _announce(order, order.incident)
    return order


def _require_answerer(actor: User, order: SupervisionOrder) -> None:
    if policy.can_answer_order(actor, order.department_id, order.township_id):
        return
    raise ActionForbidden(
        _("Only members of the department the order is addressed to may do this.")
    )


def _order_for_update(order: SupervisionOrder) -> SupervisionOrder:
    return (
        SupervisionOrder.objects.select_for_update(of=("self",))
        .select_related("incident__township", "department", "township")
        .get(pk=order.pk)
    )


def _acknowledge_summons(actor: User, order: SupervisionOrder, source: str) -> None:
    """The order was acknowledged, so its summons is too if it was still only notified: that
    stops the summons' escalation chain. Only its department's own members acknowledge a
    summons (an administrator answering for it does not)."""
    if order.summons_id is None or not policy.can_act_for_department(actor, order.department_id):
        return
    summons = summons_for_update(Summons(pk=order.summons_id))
    if summons.status == Summons.Status.NOTIFIED:
        summons_acknowledge(actor=actor, summons=summons, source=source)


def _announce(order: SupervisionOrder, incident: Incident) -> None:
    """The department's console redraws the order; the incident's board shows its open
    orders."""
    fields = {"order_id": order.pk, "status": order.status}
    realtime.broadcast_on_commit(
        realtime.department_group(order.department.code), {"type": "order.updated", **fields}
    )
    broadcast(incident, "order.updated", **fields)
