"""The daily review (一日一研判) of a township for the morning meeting: a day's intake (by
channel, category and grid), places where the same matter keeps coming back, and the cases
still open now, with the overdue ones first, and the callbacks due (回访待办): closed cases whose
raiser has not been asked yet.

"A day" is the township's (``command.org.localtime``). The intake of a day is the alerts first
seen in it (every channel becomes an alert: devices, grid officers' reports, hotline and
Open311 tickets) plus the incidents opened in it by hand, without an alert. A *matter* is
counted once: the alerts escalated into one incident are that incident; a merged alert was a
duplicate and is not counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, Exists, OuterRef, Q
from django.utils.translation import gettext_lazy as _

from alerts.models import Alert
from command import clock
from command.org import localtime
from command.org.models import Category, Grid, Township
from command.text import phone_masked
from incidents.models import Incident, Summons
from streams.models import GridReport
from supervision.trends import REPEAT_DAYS, hot_spots

BY_HAND = "by_hand"


def stale_after() -> timedelta:
    """An incident open longer than this is flagged (``WHISTLE_REVIEW_STALE_DAYS``)."""
    return timedelta(days=settings.WHISTLE_REVIEW_STALE_DAYS)


def report_channels() -> dict[str, str]:
    """The channels an intake item arrives by (grid officer, hotline 12345, walk-in …):
    value → label."""
    return {str(value): str(label) for value, label in GridReport.Channel.choices}


@dataclass(frozen=True)
class Count_:
    key: str
    label: str
    alerts: int = 0
    incidents: int = 0  # incidents opened that day (from alerts or by hand)

    @property
    def total(self) -> int:
        return self.alerts + self.incidents


@dataclass(frozen=True)
class Repeat:
    category: Category
    grid: Grid
    matters: int
    incidents: list[Incident]  # the latest few, to open


@dataclass(frozen=True)
class OverdueSummons:
    summons: Summons
    check_in: bool  # missed the check-in deadline
    finishing: bool  # missed the finishing deadline


@dataclass(frozen=True)
class OpenCase:
    incident: Incident
    open_for: timedelta
    stale: bool
    overdue: int  # its overdue summonses


@dataclass(frozen=True)
class Caller:
    channel: str  # its label
    name: str
    phone: str  # as the reader may see it: whole for those who call back, else masked


@dataclass(frozen=True)
class CallbackDue:
    incident: Incident
    callers: list[Caller]  # whoever raised it (the intake items of its alerts)


@dataclass
class DailyReview:
    township: Township
    day: date
    start: datetime
    end: datetime
    now: datetime
    alerts: int
    incidents: int
    by_channel: list[Count_]
    by_category: list[Count_]
    by_grid: list[Count_]
    repeats: list[Repeat]
    overdue: list[OverdueSummons]
    open_cases: list[OpenCase]
    repeat_grids: set[int] = field(default_factory=set)
    callbacks: list[CallbackDue] = field(default_factory=list)


def review_day(township: Township, text: str | None) -> date:
    """The day asked for (``YYYY-MM-DD``), else yesterday on the township's clock. ValueError
    for a malformed date or a day that has not begun."""
    today = localtime.township_today(township)
    if not text:
        return today - timedelta(days=1)
    day = date.fromisoformat(text)
    if day > today:
        raise ValueError("a day that has not begun")
    return day


def callbacks_due(township: Township, *, whole_phone: bool) -> list[CallbackDue]:
    """Closed incidents, within the reopening window, whose raiser has not been called back:
    the duty officer's calls to make, each with who raised it (none: opened by hand or by a
    device, the township's own judgement of the outcome)."""
    since = clock.now() - timedelta(days=settings.WHISTLE_REOPEN_DAYS)
    closed = list(
        Incident.objects.filter(
            township=township,
            status=Incident.Status.CLOSED,
            satisfaction="",
            closed_at__gte=since,
        )
        .select_related("category", "grid")
        .order_by("closed_at", "id")[:200]
    )
    channels = report_channels()
    raised: dict[int, list[Caller]] = {}
    for report in GridReport.objects.filter(alert__incident__in=closed).select_related(
        "alert", "reporter"
    ):
        name = report.caller_name or report.reporter.get_full_name() or report.reporter.username
        phone = report.caller_phone
        if phone and not whole_phone:
            phone = phone_masked(phone)
        raised.setdefault(report.alert.incident_id, []).append(
            Caller(channels.get(report.channel, report.channel), name, phone)
        )
    return [CallbackDue(i, raised.get(i.pk, [])) for i in closed]


def daily_review(*, township: Township, day: date, whole_phone: bool = False) -> DailyReview:
    start = localtime.day_start(township, day)
    end = localtime.day_start(township, day + timedelta(days=1))
    alerts = Alert.objects.filter(township=township, first_seen__gte=start, first_seen__lt=end)
    opened = Incident.objects.filter(township=township, opened_at__gte=start, opened_at__lt=end)
    by_hand = opened.filter(~Exists(Alert.objects.filter(incident_id=OuterRef("pk"))))
    channels = report_channels()

    # By channel: an alert's source; a report's own channel where reports record one.
    keys = ["source", "report__channel"]
    sources = dict(Alert.Source.choices)
    by_channel: dict[str, int] = {}
    labels: dict[str, str] = {}
    for row in alerts.values(*keys).annotate(n=Count("id")):
        channel = row.get("report__channel") or ""
        key = f"report:{channel}" if channel else row["source"]
        labels[key] = (
            channels.get(channel, channel)
            if channel
            else str(sources.get(row["source"], row["source"]))
        )
        by_channel[key] = by_channel.get(key, 0) + row["n"]
    channel_rows = [Count_(k, labels[k], alerts=n) for k, n in by_channel.items()]
    hand = by_hand.count()
    if hand:
        channel_rows.append(Count_(BY_HAND, str(_("Opened by hand")), incidents=hand))
    channel_rows.sort(key=lambda c: -c.total)

    by_category = _grouped(alerts, opened, "category", Category)
    by_grid = _grouped(alerts, opened, "grid", Grid)
    repeats = _repeats(township, end)
    now = clock.now()
    overdue = [
        OverdueSummons(s, s.overdue, s.finish_overdue)
        for s in Summons.objects.filter(
            Q(overdue=True) | Q(finish_overdue=True),
            whistle__incident__township=township,
            whistle__incident__status__in=Incident.ACTIVE_STATUSES,
            status__in=Summons.OPEN_STATUSES,
        )
        .select_related("department", "whistle__incident__category", "whistle__incident__grid")
        .order_by("check_in_deadline", "id")
    ]
    overdue_by_incident: dict[int, int] = {}
    for item in overdue:
        key = item.summons.whistle.incident_id
        overdue_by_incident[key] = overdue_by_incident.get(key, 0) + 1
    limit = stale_after()
    open_cases = [
        OpenCase(i, now - i.opened_at, now - i.opened_at > limit, overdue_by_incident.get(i.pk, 0))
        for i in Incident.objects.filter(township=township)
        .exclude(status=Incident.Status.CLOSED)
        .select_related("category", "grid")
        .order_by("opened_at", "id")
    ]
    open_cases.sort(key=lambda c: (not c.overdue, not c.stale, c.incident.opened_at))
    return DailyReview(
        township=township,
        day=day,
        start=start,
        end=end,
        now=now,
        alerts=alerts.count(),
        incidents=opened.count(),
        by_channel=channel_rows,
        by_category=by_category,
        by_grid=by_grid,
        repeats=repeats,
        overdue=overdue,
        open_cases=open_cases,
        repeat_grids={r.grid.pk for r in repeats},
        callbacks=callbacks_due(township, whole_phone=whole_phone),
    )


def _grouped(alerts: Any, opened: Any, key: str, model: Any) -> list[Count_]:
    counts: dict[int | None, list[int]] = {}
    for row in alerts.values(key).annotate(n=Count("id")):
        counts.setdefault(row[key], [0, 0])[0] += row["n"]
    for row in opened.values(key).annotate(n=Count("id")):
        counts.setdefault(row[key], [0, 0])[1] += row["n"]
    names = model.objects.in_bulk([k for k in counts if k is not None])
    rows = [
        Count_(
            str(k or ""),
            names[k].display_name if k in names else str(_("Not given")),
            alerts=a,
            incidents=i,
        )
        for k, (a, i) in counts.items()
    ]
    return sorted(rows, key=lambda c: (-c.total, c.label))


def _repeats(township: Township, end: datetime) -> list[Repeat]:
    """Same category in the same grid, ``REPEAT_AT_LEAST`` matters or more in the
    ``REPEAT_DAYS`` days that end with the reviewed day: the hot spots of those days."""
    start = end - timedelta(days=REPEAT_DAYS)
    found = hot_spots(township_id=township.pk, start=start, end=end)
    categories = Category.objects.in_bulk({s.category_id for s in found})
    grids = Grid.objects.in_bulk({s.grid_id for s in found})
    repeats = []
    for spot in found:
        incidents = list(
            Incident.objects.filter(
                township=township,
                category_id=spot.category_id,
                grid_id=spot.grid_id,
                opened_at__gte=start,
                opened_at__lt=end,
            ).order_by("-opened_at")[:5]
        )
        repeats.append(
            Repeat(categories[spot.category_id], grids[spot.grid_id], spot.matters, incidents)
        )
    return repeats
