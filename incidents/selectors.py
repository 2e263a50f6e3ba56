"""Read-only queries for incidents and summons."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Count, F, Prefetch, Q

from command.org import localtime, policy
from command.org.models import Department, Township, User
from command.timeline.actions import Action
from command.timeline.models import TIMELINE_TIE_RANK, TimelineEntry
from incidents.models import Incident, Summons, SupervisionOrder, Whistle


def alerts_for_titles(lookup: str = "alerts") -> Prefetch:
    """The alerts an incident's ``display_title`` looks at, fetched for a whole list at once;
    ``lookup`` is the path to them (``whistle__incident__alerts`` from a summons)."""
    from alerts.models import Alert

    return Prefetch(lookup, queryset=Alert.objects.select_related("device").order_by("pk"))


def department_for_console(*, user: User, code: str) -> Department | None:
    """The department whose console ``user`` may open (command.org.policy)."""
    if not policy.is_active(user):
        return None
    department = Department.objects.filter(code=code).first()
    if department is None or not policy.can_open_console(user, department):
        return None
    return department


def console_summonses(
    *, department_id: int, limit: int | None = None, after: tuple[datetime, int] | None = None
) -> list[Summons]:
    """A department's open summons, the most urgent deadline first; ``after`` (deadline, id)
    of the last summons a page showed gives the next page."""
    summonses = _open_summonses(department_id)
    if after is not None:
        summonses = summonses.filter(_later_than(after))
    summonses = (
        summonses.select_related(
            "whistle__incident__category",
            "whistle__incident__grid",
            "whistle__incident__township",
        )
        .prefetch_related(alerts_for_titles("whistle__incident__alerts"))
        .order_by("check_in_deadline", "id")
    )
    return list(summonses if limit is None else summonses[:limit])


def _open_summonses(department_id: int) -> Any:
    return Summons.objects.filter(department_id=department_id, status__in=Summons.OPEN_STATUSES)


def _later_than(after: tuple[datetime, int]) -> Q:
    deadline, pk = after
    return Q(check_in_deadline__gt=deadline) | Q(check_in_deadline=deadline, pk__gt=pk)


def open_summons_count(*, department_id: int, after: tuple[datetime, int] | None = None) -> int:
    """How many summons a department has open (after ``after``: the "N more" of a page)."""
    summonses = _open_summonses(department_id)
    if after is not None:
        summonses = summonses.filter(_later_than(after))
    return summonses.count()


def summons_for_console(*, summons_id: int, department_id: int) -> Summons | None:
    return (
        Summons.objects.filter(pk=summons_id, department_id=department_id)
        .select_related(
            "whistle__incident__category",
            "whistle__incident__grid",
            "whistle__incident__township",
        )
        .prefetch_related(alerts_for_titles("whistle__incident__alerts"))
        .first()
    )


def _orders() -> Any:
    return SupervisionOrder.objects.select_related(
        "incident__township", "incident__category", "department", "issued_by", "answered_by"
    ).prefetch_related(alerts_for_titles("incident__alerts"))


def open_orders(user: User) -> list[SupervisionOrder]:
    """The supervision orders not answered yet that ``user`` may see (command.org.policy),
    the soonest due first: a supervisor's townships', a department's own."""
    scoped = policy.orders(user, _orders().filter(status__in=SupervisionOrder.OPEN_STATUSES))
    return list(scoped.order_by("due_at", "pk")[:200])


def incident_orders(*, incident: Incident) -> list[SupervisionOrder]:
    """Every supervision order of an incident, oldest first (the incident's timeline page)."""
    return list(_orders().filter(incident=incident).order_by("issued_at", "pk"))


def console_orders(*, department_id: int) -> list[SupervisionOrder]:
    """A department's open orders, the soonest due first (its console). A department has a
    handful at most: the list is not paged."""
    return list(
        _orders()
        .filter(department_id=department_id, status__in=SupervisionOrder.OPEN_STATUSES)
        .order_by("due_at", "pk")
    )


def open_order_count(*, department_id: int) -> int:
    return SupervisionOrder.objects.filter(
        department_id=department_id, status__in=SupervisionOrder.OPEN_STATUSES
    ).count()


def order_for_console(*, order_id: int, department_id: int) -> SupervisionOrder | None:
    return _orders().filter(pk=order_id, department_id=department_id).first()


def orderable_departments(*, incident: Incident) -> list[Department]:
    """The departments an order on ``incident`` may go to: those summoned to it."""
    return list(
        Department.objects.filter(summonses__whistle__incident=incident)
        .distinct()
        .order_by("kind", "code")
    )


def board_incidents(*, township_id: int, limit: int = 20) -> list:
    """Incidents still being handled, newest first, each with its summonses."""
    from incidents.models import Incident

    # Resolved ones stay until closed (the officer closes them from the board), and a joint
    # incident of another township shows on this board too once its whistle is confirmed.
    joint = Whistle.objects.filter(
        joint_township_id=township_id, joint_status=Whistle.JointStatus.CONFIRMED
    ).values("incident_id")
    return list(
        Incident.objects.filter(
            Q(township_id=township_id) | Q(pk__in=joint),
            status__in=(*Incident.ACTIVE_STATUSES, Incident.Status.RESOLVED),
        )
        .select_related("category", "grid", "township")
        .prefetch_related(
            Prefetch(
                "whistles__summonses",
                # How many supervision orders each department has still to answer: the
                # board shows them beside its countdown.
                queryset=Summons.objects.select_related("department")
                .annotate(
                    open_orders=Count(
                        "supervision_orders",
                        filter=Q(supervision_orders__status__in=SupervisionOrder.OPEN_STATUSES),
                    )
                )
                .order_by("department__code"),
            ),
            alerts_for_titles(),
        )
        .order_by("-opened_at")[:limit]
    )


def joint_awaiting(*, township_id: int) -> list:
    """Joint whistles (联合哨) another township blew that wait for this township's answer."""
    return list(
        Whistle.objects.filter(
            joint_township_id=township_id, joint_status=Whistle.JointStatus.PENDING
        )
        .select_related("incident__township", "incident__category", "blown_by")
        .prefetch_related(alerts_for_titles("incident__alerts"))
        .order_by("-blown_at")[:20]
    )


def board_figures(*, township: Township) -> dict[str, object]:
    """Today's figures for the board's strip: alerts, incidents, on-time check-in rate,
    closure rate, devices online. Today is the township's (command.org.localtime)."""
    from alerts.models import Alert
    from command.org.models import Device
    from incidents.models import Incident

    township_id = township.pk
    start = localtime.day_start(township)
    # One query per table: the strip is redrawn with every burst of alerts, on every board.
    summonses = Summons.objects.filter(
        whistle__incident__township_id=township_id, whistle__blown_at__gte=start
    ).aggregate(
        checked=Count("pk", filter=Q(checked_in_at__isnull=False)),
        on_time=Count("pk", filter=Q(checked_in_at__lte=F("check_in_deadline"))),
    )
    incidents = Incident.objects.filter(township_id=township_id, opened_at__gte=start).aggregate(
        count=Count("pk"), closed=Count("pk", filter=Q(status=Incident.Status.CLOSED))
    )
    devices = Device.objects.filter(township_id=township_id).aggregate(
        count=Count("pk"), online=Count("pk", filter=Q(online=True))
    )
    checked, incident_count = summonses["checked"], incidents["count"]
    return {
        "alerts": Alert.objects.filter(township_id=township_id, first_seen__gte=start).count(),
        "incidents": incident_count,
        "on_time": round(100 * summonses["on_time"] / checked) if checked else None,
        "closed": round(100 * incidents["closed"] / incident_count) if incident_count else None,
        "online": devices["online"],
        "devices": devices["count"],
    }


def timeline_subjects(incident) -> dict[str, list[int]]:
    """Whose timeline rows make an incident's: its own, its whistles', its summonses', its
    supervision orders' and those of the alerts it was opened from or absorbed."""
    return {
        "incident": [incident.pk],
        "whistle": list(incident.whistles.values_list("pk", flat=True)),
        "summons": list(
            Summons.objects.filter(whistle__incident=incident).values_list("pk", flat=True)
        ),
        "order": list(incident.supervision_orders.values_list("pk", flat=True)),
        "alert": list(incident.alerts.values_list("pk", flat=True)),
    }


def subject_arrays(subjects: dict[str, list[int]]) -> dict[str, list]:
    """Subjects as two parallel arrays, for ``unnest(%(types)s::text[], %(ids)s::bigint[])``."""
    pairs = [(kind, pk) for kind, ids in subjects.items() for pk in ids]
    return {"types": [k for k, _ in pairs], "ids": [pk for _, pk in pairs]}


def _timeline_entries(incident) -> Any:
    from django.db.models import Q

    subjects = timeline_subjects(incident)
    return TimelineEntry.objects.filter(
        Q(subject_type="incident", subject_id=incident.pk)
        | Q(subject_type="whistle", subject_id__in=subjects["whistle"])
        | Q(subject_type="summons", subject_id__in=subjects["summons"])
        | Q(subject_type="order", subject_id__in=subjects["order"])
        | Q(subject_type="alert", subject_id__in=subjects["alert"])
    )


def incident_timeline(*, incident) -> list:
    """Every timeline entry of an incident in order: its own, its whistles', its summonses'
    and those of the alerts it was opened from or absorbed (their repeats included)."""
    from django.db.models.expressions import RawSQL

    return list(
        _timeline_entries(incident)
        .select_related("actor")
        .annotate(_tie=RawSQL(TIMELINE_TIE_RANK, []))
        .order_by("time", "_tie", "subject_id", "action")
    )


@dataclass
class TimelineRow:
    """A row of the timeline page: one entry, or a run of an alert's repeats in one row."""

    entry: Any  # TimelineEntry: the row's (for a run, the last repeat's)
    repeats: int = 1
    first: datetime | None = None  # a run's first repeat
    first_count: int | None = None
    low: float | None = None  # a run's readings, lowest and highest
    high: float | None = None
    # Filled in by the page: what the row means, who, how long after opening and the whistle.
    label: str = ""
    who: str | None = None
    since_opened: Any = None
    since_whistle: Any = None


# Runs of one alert's consecutive repeats ("gaps and islands": within a run the row's place in
# the whole timeline minus its place among that alert's repeats is constant), each run folded
# into its last row in PostgreSQL: a night of 10,000 repeats crosses the wire as one row.
_TIMELINE_ROWS = """
WITH t AS (
  SELECT time, subject_type, subject_id, action, source, actor_id, after, {tie} AS tie
    FROM unnest(%(types)s::text[], %(ids)s::bigint[]) AS s(subject_type, subject_id)
    JOIN {table} USING (subject_type, subject_id)
), numbered AS (
  SELECT *, row_number() OVER (ORDER BY time, tie, subject_id, action) AS n,
         row_number() OVER (PARTITION BY action = '{updated}', subject_type, subject_id
                            ORDER BY time, tie, subject_id, action) AS m
    FROM t
), runs AS (
  SELECT *, CASE WHEN %(collapse)s AND action = '{updated}'
                 THEN -(subject_id * 1000000 + (n - m)) ELSE n END AS run
    FROM numbered
), told AS (
  SELECT *, count(*) OVER r AS repeats, min(time) OVER r AS first,
         first_value(after -> 'count') OVER r AS first_count,
         min(jsonb_extract_path_text(after, 'value')::float) FILTER (
           WHERE jsonb_typeof(after -> 'value') = 'number') OVER r AS low,
         max(jsonb_extract_path_text(after, 'value')::float) FILTER (
           WHERE jsonb_typeof(after -> 'value') = 'number') OVER r AS high,
         max(n) OVER r AS last
    FROM runs WINDOW r AS (PARTITION BY run ORDER BY n
                           ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
)
SELECT time, subject_type, subject_id, action, source, actor_id, after,
       repeats, first, first_count, low, high
  FROM told WHERE n = last ORDER BY n
"""


def decoded_json(value: Any) -> Any:
    """A jsonb value read through a raw cursor: Django has psycopg hand it over as text (its
    JSONField decodes it itself)."""
    import json

    return json.loads(value) if isinstance(value, str) else value


def incident_timeline_rows(*, incident, collapse: bool = True) -> list[TimelineRow]:
    """The incident's timeline for people: consecutive repeats of one alert (a sensor over its
    threshold all night writes thousands) as one row with their span, count and readings.
    The JSON API keeps every entry."""
    from django.db import connection

    query = _TIMELINE_ROWS.format(
        tie=TIMELINE_TIE_RANK,
        table=TimelineEntry._meta.db_table,
        updated=Action.ALERT_UPDATED.value,
    )
    params = {**subject_arrays(timeline_subjects(incident)), "collapse": collapse}
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        found = cursor.fetchall()
    rows = []
    for (
        time,
        kind,
        subject_id,
        action,
        source,
        actor_id,
        after,
        repeats,
        first,
        count,
        *span,
    ) in found:
        entry = TimelineEntry(
            time=time,
            subject_type=kind,
            subject_id=subject_id,
            action=action,
            source=source,
            actor_id=actor_id,
            after=decoded_json(after),
        )
        if repeats > 1:
            rows.append(TimelineRow(entry, repeats, first, decoded_json(count), *span))
        else:
            rows.append(TimelineRow(entry))
    actors = {r.entry.actor_id for r in rows if r.entry.actor_id}
    if actors:
        people = User.objects.in_bulk(actors)
        for row in rows:
            if row.entry.actor_id:
                row.entry.actor = people.get(row.entry.actor_id)
    return rows


def settled_level_default(incident: Incident) -> str:
    """Where the board's close form puts an incident on the 631 scale until the officer says
    otherwise: township once a department came to it or a grid officer handed it up (the grid
    could not settle it; a matter the grid settles on the spot is closed at grid level by
    intake.settle and never reaches the form); none otherwise, for the officer to say."""
    summoned = Summons.objects.filter(whistle__incident=incident).exists()
    handed_up = incident.alerts.filter(detail__has_key="handed_up_by").exists()
    return Incident.SettledLevel.TOWNSHIP if summoned or handed_up else ""


# --- the district board ---------------------------------------------------------------------------


@dataclass
class TownshipOverview:
    """One township's line on the district board: what is open, late and escalating now."""

    township: Township
    open_alerts: int = 0
    critical_alerts: int = 0
    incidents: int = 0
    waiting: int = 0  # summonses not on site yet
    late_arrivals: int = 0
    late_finishings: int = 0
    paging: int = 0  # escalation chains still paging
    open_orders: int = 0

    @property
    def state(self) -> str:
        """late: a department is late or being escalated; alert: open alerts; calm."""
        if self.late_arrivals or self.late_finishings or self.paging or self.open_orders:
            return "late"
        if self.open_alerts:
            return "alert"
        return "calm"


def district_overview(*, townships: list[Township]) -> list[TownshipOverview]:
    """Every township's open work, in four grouped queries whatever the number of townships
    (a district board redraws it for each batch of events)."""
    from alerts.models import Alert, Severity

    rows = {t.pk: TownshipOverview(t) for t in townships}
    ids = list(rows)
    for row in (
        Alert.objects.filter(township_id__in=ids, status__in=Alert.OPEN_STATUSES)
        .values("township_id")
        .annotate(n=Count("pk"), critical=Count("pk", filter=Q(severity=Severity.CRITICAL)))
    ):
        rows[row["township_id"]].open_alerts = row["n"]
        rows[row["township_id"]].critical_alerts = row["critical"]
    for row in (
        Incident.objects.filter(township_id__in=ids, status__in=Incident.ACTIVE_STATUSES)
        .values("township_id")
        .annotate(n=Count("pk"))
    ):
        rows[row["township_id"]].incidents = row["n"]
    waiting = Q(status__in=Summons.WAITING_STATUSES)
    for row in (
        Summons.objects.filter(
            whistle__incident__township_id__in=ids, status__in=Summons.WORKING_STATUSES
        )
        .values("whistle__incident__township_id")
        .annotate(
            waiting=Count("pk", filter=waiting),
            late=Count("pk", filter=waiting & Q(overdue=True)),
            late_finish=Count("pk", filter=Q(finish_overdue=True)),
            paging=Count("pk", filter=Q(status=Summons.Status.NOTIFIED, page_at__isnull=False)),
        )
    ):
        line = rows[row["whistle__incident__township_id"]]
        line.waiting, line.late_arrivals = row["waiting"], row["late"]
        line.late_finishings, line.paging = row["late_finish"], row["paging"]
    for row in (
        SupervisionOrder.objects.filter(
            township_id__in=ids, status__in=SupervisionOrder.OPEN_STATUSES
        )
        .values("township_id")
        .annotate(n=Count("pk"))
    ):
        rows[row["township_id"]].open_orders = row["n"]
    return list(rows.values())
