"""Assessment figures (督查考核) for a township and a period: how each summoned department
responded, where alerts and incidents happened, and where incidents were settled (631).

Each table is one SQL query grouped in PostgreSQL, so a month of a busy township is a few
index scans, not a loop over rows in Python.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from django.db import connection

from command.org.models import Department, Grid


@dataclass(frozen=True)
class DepartmentRow:
    code: str
    name: str
    received: int
    acknowledged: int
    checked_in: int
    on_time: int
    median_check_in: timedelta | None
    p90_check_in: timedelta | None
    done: int
    overdue: int
    escalated: int
    accepted: int = 0  # work the township accepted (验收)
    accepted_first_time: int = 0  # … without being returned
    finish_overdue: int = 0  # not finished by the finishing deadline (限时办结)
    rated: int = 0  # summonses of incidents whose raiser was called back (回访)
    satisfied: int = 0  # … and said satisfied or basically satisfied
    orders: int = 0  # supervision orders (督办单) received, issued in the period
    orders_answered: int = 0  # … answered (by now)
    orders_on_time: int = 0  # … answered by their deadline

    @property
    def first_time_rate(self) -> float | None:
        return self.accepted_first_time / self.accepted if self.accepted else None

    @property
    def satisfaction_rate(self) -> float | None:
        return self.satisfied / self.rated if self.rated else None

    @property
    def orders_on_time_rate(self) -> float | None:
        return self.orders_on_time / self.orders if self.orders else None

    @property
    def on_time_rate(self) -> float | None:
        return self.on_time / self.received if self.received else None

    @property
    def completion_rate(self) -> float | None:
        return self.done / self.received if self.received else None


_DEPARTMENTS = """
SELECT s.department_id,
       count(*),
       count(s.acknowledged_at),
       count(s.checked_in_at),
       count(*) FILTER (WHERE s.checked_in_at <= s.check_in_deadline),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY s.checked_in_at - w.blown_at)
           FILTER (WHERE s.checked_in_at IS NOT NULL),
       percentile_cont(0.9) WITHIN GROUP (ORDER BY s.checked_in_at - w.blown_at)
           FILTER (WHERE s.checked_in_at IS NOT NULL),
       count(*) FILTER (WHERE s.status IN ('done', 'accepted')),
       count(*) FILTER (WHERE s.overdue),
       count(*) FILTER (WHERE s.escalation_level > 0),
       count(*) FILTER (WHERE s.status = 'accepted'),
       count(*) FILTER (WHERE s.status = 'accepted' AND s.returned_count = 0),
       count(*) FILTER (WHERE s.finish_overdue),
       count(*) FILTER (WHERE s.status <> 'released' AND i.satisfaction <> ''),
       count(*) FILTER (WHERE s.status <> 'released' AND i.satisfaction IN ('satisfied', 'basic'))
  FROM incidents_summons s
  JOIN incidents_whistle w ON w.id = s.whistle_id
  JOIN incidents_incident i ON i.id = w.incident_id
 WHERE i.township_id = %s AND w.blown_at >= %s AND w.blown_at < %s
 GROUP BY s.department_id
"""


# The supervision orders of the township issued in the period, per department: how many, how
# many answered, how many answered by their deadline.
_ORDERS = """
SELECT o.department_id,
       count(*),
       count(o.answered_at),
       count(*) FILTER (WHERE o.answered_at <= o.due_at)
  FROM incidents_supervisionorder o
 WHERE o.township_id = %s AND o.issued_at >= %s AND o.issued_at < %s
 GROUP BY o.department_id
"""


def department_table(*, township_id: int, start: datetime, end: datetime) -> list[DepartmentRow]:
    """Per department, the whistles blown in [start, end) that summoned it and the
    supervision orders issued to it then (a department may have orders in a period whose
    whistles were blown before it): most summoned first."""
    with connection.cursor() as cursor:
        cursor.execute(_DEPARTMENTS, [township_id, start, end])
        rows = {r[0]: r[1:] for r in cursor.fetchall()}
        cursor.execute(_ORDERS, [township_id, start, end])
        orders = {r[0]: r[1:] for r in cursor.fetchall()}
    departments = Department.objects.in_bulk([*rows, *orders])
    no_summonses = (0, 0, 0, 0, None, None, 0, 0, 0)
    table = []
    for pk in rows.keys() | orders.keys():
        department = departments[pk]
        row = DepartmentRow(department.code, department.display_name, *rows.get(pk, no_summonses))
        if pk in orders:
            row = replace(
                row,
                orders=orders[pk][0],
                orders_answered=orders[pk][1],
                orders_on_time=orders[pk][2],
            )
        table.append(row)
    return sorted(table, key=lambda r: (-r.received, -r.orders, r.code))


@dataclass(frozen=True)
class GridRow:
    code: str
    name: str
    alerts: int
    incidents: int


_GRIDS = """
SELECT g.id,
       (SELECT count(*) FROM alerts_alert a
         WHERE a.grid_id = g.id AND a.first_seen >= %s AND a.first_seen < %s),
       (SELECT count(*) FROM incidents_incident i
         WHERE i.grid_id = g.id AND i.opened_at >= %s AND i.opened_at < %s)
  FROM org_grid g
 WHERE g.township_id = %s
"""


def grid_table(*, township_id: int, start: datetime, end: datetime) -> list[GridRow]:
    """Alerts and incidents per grid (the heat map), busiest first."""
    with connection.cursor() as cursor:
        cursor.execute(_GRIDS, [start, end, start, end, township_id])
        counts = {grid_id: (a, i) for grid_id, a, i in cursor.fetchall()}
    grids = Grid.objects.in_bulk(list(counts))
    table = [GridRow(grids[g].code, grids[g].display_name, *counts[g]) for g in counts]
    return sorted(table, key=lambda r: (-(r.alerts + r.incidents), r.code))


def settled_table(*, township_id: int, start: datetime, end: datetime) -> dict[str, int]:
    """The 631 distribution: incidents closed in the period by where they were settled."""
    from incidents.models import Incident

    counts = dict.fromkeys(Incident.SettledLevel.values, 0)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT settled_level, count(*) FROM incidents_incident"
            " WHERE township_id = %s AND status = 'closed' AND closed_at >= %s AND closed_at < %s"
            " GROUP BY settled_level",
            [township_id, start, end],
        )
        for level, count in cursor.fetchall():
            if level in counts:
                counts[level] = count
    return counts
