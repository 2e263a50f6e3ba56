"""What the supervisor console shows (督办): across the townships a supervisor follows, the
summonses late to arrive and late to finish, the escalation chains still paging, the open
supervision orders (督办单), and every notification about those matters: who was told, by
what, whether it went out and whether they read it.

Read-only. The caller scopes it: ``township_ids`` from ``policy.supervised_township_ids``
(None: every township)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Q, QuerySet
from django.utils.translation import gettext_lazy as _

from alerts.models import Notification
from command import clock
from incidents.models import EscalationStep, Summons, SupervisionOrder
from incidents.services.escalation import page_schedule

# Rows per section: the console is an overview (the incident's page has everything), and each
# section is one fragment on the socket, well under the frame limit.
SECTION_ROWS = 50
NOTIFICATION_ROWS = 100

_SUMMONS_RELATED = (
    "department",
    "whistle__incident__township",
    "whistle__incident__category",
    "whistle__incident__grid",
)


@dataclass(frozen=True)
class ChainPosition:
    """Where a summons' escalation chain is: steps run, the step due next and when."""

    done: int
    total: int
    next_label: str
    next_at: datetime | None


@dataclass
class Section:
    rows: list[Any]
    total: int

    @property
    def more(self) -> int:
        return max(self.total - len(self.rows), 0)


@dataclass
class ConsoleState:
    now: datetime
    overdue_arrivals: Section
    overdue_finishings: Section
    escalations: Section
    orders: Section
    notifications: Section
    # Summons and order ids shown, by section, for the notifications of those subjects.
    subjects: dict[str, set[int]] = field(default_factory=dict)


def step_label(step: dict[str, Any] | None) -> str:
    """A notification step of a whistle's chain in the reader's language."""
    if not step:
        return ""
    action = str(step.get("action", ""))
    try:
        label = str(EscalationStep.Action(action).label)
    except ValueError:
        return action  # a step of a newer vocabulary than this page's
    if step.get("all_channels"):
        return _("%(label)s, by every channel") % {"label": label}
    return label


def chain_position(summons: Summons) -> ChainPosition:
    """The summons' place in its whistle's chain (incidents.services.escalation): of the
    chain's notification steps in order (repeats unrolled), ``page_step`` have run, and the
    next one is due at ``page_at``."""
    steps = page_schedule(summons.whistle.escalation_chain or [])
    done = summons.page_step
    upcoming = steps[done] if 0 <= done < len(steps) else None
    return ChainPosition(
        done=done,
        total=len(steps),
        next_label=step_label(
            {"action": upcoming.action, "all_channels": upcoming.all_channels} if upcoming else None
        ),
        next_at=summons.page_at,
    )


def _in_townships(queryset: QuerySet, township_ids: set[int] | None, path: str) -> QuerySet:
    return queryset if township_ids is None else queryset.filter(**{f"{path}__in": township_ids})


def _section(queryset: QuerySet, limit: int) -> Section:
    rows = list(queryset[:limit])
    total = len(rows) if len(rows) < limit else queryset.count()
    return Section(rows, total)


def _summonses(township_ids: set[int] | None) -> QuerySet[Summons]:
    return _in_townships(
        Summons.objects.select_related(*_SUMMONS_RELATED),
        township_ids,
        "whistle__incident__township_id",
    )


def _late(section: Section, deadline: str) -> Section:
    """Each row's missed deadline and how late it is now, in whole minutes."""
    now = clock.now()
    for summons in section.rows:
        summons.deadline = getattr(summons, deadline)
        summons.late_minutes = max(int((now - summons.deadline).total_seconds() // 60), 0)
    return section


def overdue_arrivals(*, township_ids: set[int] | None, limit: int = SECTION_ROWS) -> Section:
    """Not on site past the check-in deadline, the latest first in line (longest late)."""
    queryset = _summonses(township_ids).filter(overdue=True, status__in=Summons.WAITING_STATUSES)
    return _late(_section(queryset.order_by("check_in_deadline", "pk"), limit), "check_in_deadline")


def overdue_finishings(*, township_ids: set[int] | None, limit: int = SECTION_ROWS) -> Section:
    """Still working past the finishing deadline (限时办结)."""
    queryset = _summonses(township_ids).filter(
        finish_overdue=True, status__in=Summons.WORKING_STATUSES
    )
    return _late(_section(queryset.order_by("finish_deadline", "pk"), limit), "finish_deadline")


def escalations(*, township_ids: set[int] | None, limit: int = SECTION_ROWS) -> Section:
    """Summons whose chain is still paging (not acknowledged, a step due), the next due first."""
    queryset = _summonses(township_ids).filter(
        page_at__isnull=False, status=Summons.Status.NOTIFIED
    )
    section = _section(queryset.order_by("page_at", "pk"), limit)
    for summons in section.rows:
        summons.chain = chain_position(summons)
    return section


def open_orders(*, township_ids: set[int] | None, limit: int = SECTION_ROWS) -> Section:
    """督办单 issued and not yet answered, the first due first."""
    queryset = _in_townships(
        SupervisionOrder.objects.select_related(
            "township", "department", "incident__category", "issued_by", "summons"
        ).filter(status__in=SupervisionOrder.OPEN_STATUSES),
        township_ids,
        "township_id",
    )
    return _section(queryset.order_by("due_at", "pk"), limit)


def notifications_about(
    *,
    township_ids: set[int] | None,
    summons_ids: Iterable[int],
    order_ids: Iterable[int],
    limit: int = NOTIFICATION_ROWS,
) -> Section:
    """Every notification about these summonses and orders, the newest first."""
    summons_ids, order_ids = set(summons_ids), set(order_ids)
    if not summons_ids and not order_ids:
        return Section([], 0)
    queryset = _in_townships(
        Notification.objects.select_related("user", "township").filter(
            Q(subject_type="summons", subject_id__in=summons_ids)
            | Q(subject_type="order", subject_id__in=order_ids)
        ),
        township_ids,
        "township_id",
    )
    return _section(queryset.order_by("-created_at", "-pk"), limit)


def console_state(*, township_ids: set[int] | None) -> ConsoleState:
    arrivals = overdue_arrivals(township_ids=township_ids)
    finishings = overdue_finishings(township_ids=township_ids)
    paging = escalations(township_ids=township_ids)
    orders = open_orders(township_ids=township_ids)
    summons_ids = {s.pk for section in (arrivals, finishings, paging) for s in section.rows}
    summons_ids |= {o.summons_id for o in orders.rows if o.summons_id}
    order_ids = {o.pk for o in orders.rows}
    notifications = notifications_about(
        township_ids=township_ids, summons_ids=summons_ids, order_ids=order_ids
    )
    return ConsoleState(
        now=clock.now(),
        overdue_arrivals=arrivals,
        overdue_finishings=finishings,
        escalations=paging,
        orders=orders,
        notifications=notifications,
        subjects={"summons": summons_ids, "order": order_ids},
    )
