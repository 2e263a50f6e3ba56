"""The board as it was at a moment of an incident, rebuilt from the timeline.

Every change writes a timeline row whose ``after`` holds the fields it set (status, count,
deadline …). Folding a subject's rows up to a moment in time order gives its state then; the
rows are the only source, so a replay shows what the command center saw, not today's state.

What a frame holds:

- the alert queue: the township's alerts open at that moment (first seen before it, closed
  after it or not yet), newest activity first, with the incident's own alerts;
- the incident with each summoned department as it stood (status, deadline, overdue), above
  the township's other incidents being handled then (opened before the moment, resolved after
  it), each rebuilt the same way;
- the last few timeline entries before the moment, for the player's "what just happened".

The objects are unsaved copies of the models, so the live board's partials render them.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Prefetch
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from alerts.models import Alert, open_during
from command.timeline.actions import Action
from command.timeline.models import TIMELINE_TIE_RANKS, TimelineEntry
from incidents.models import Incident, Summons, Whistle, handled_during
from incidents.selectors import (
    alerts_for_titles,
    decoded_json,
    subject_arrays,
    timeline_subjects,
)

QUEUE_LENGTH = 50  # as many rows as the live board keeps
OTHER_INCIDENTS = 19  # the live panel lists 20 incidents
RECENT = 6
EXAMPLE = {"example": "2026-11-23T08:30:00+08:00"}
# Entries that make an alert's repeat: the row's time is the alert's last_seen at that moment.
_SEEN = (Action.ALERT_RAISED, Action.ALERT_UPDATED, Action.ALERT_ABSORBED)


@dataclass
class Frame:
    at: datetime
    incident: Incident | None  # None before the incident was opened
    others: list[Incident]  # the township's other incidents being handled then
    alerts: list[Alert]
    open_count: int
    recent: list[TimelineEntry] = field(default_factory=list)


@dataclass(frozen=True)
class Span:
    """Where a replay can go: from the incident's first entry to its last, and every moment
    something happened in between (the player steps from one to the next)."""

    start: datetime
    end: datetime
    moments: list[datetime]


def incident_span(incident: Incident) -> Span:
    """The distinct moments of the incident's timeline, in order."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT t.time"
            " FROM unnest(%(types)s::text[], %(ids)s::bigint[]) AS s(subject_type, subject_id)"
            f" JOIN {TimelineEntry._meta.db_table} t"
            " ON t.subject_type = s.subject_type AND t.subject_id = s.subject_id ORDER BY t.time",
            subject_arrays(timeline_subjects(incident)),
        )
        moments = [row[0] for row in cursor]
    if not moments:
        moments = [incident.opened_at]
    return Span(start=moments[0], end=moments[-1], moments=moments)


def parse_moment(value: str | None, span: Span | None = None) -> datetime:
    """``?at=`` as an ISO 8601 time with its offset, kept inside ``span`` when given (its
    start when absent). Raises ``ValueError`` with the reason when it cannot be read."""
    if not value:
        if span is None:
            raise ValueError(_("at is required: an ISO 8601 time such as %(example)s") % EXAMPLE)
        return span.start
    try:
        at = parse_datetime(value.replace(" ", "+"))  # '+' arrives as a space when unescaped
    except ValueError:
        at = None
    if at is None:
        raise ValueError(_("at must be an ISO 8601 time such as %(example)s") % EXAMPLE)
    if at.tzinfo is None:
        raise ValueError(_("at needs its UTC offset, such as +08:00 or Z"))
    return min(max(at, span.start), span.end) if span else at


def _fold(rows: list[tuple[str, int, str, datetime, Any]]) -> dict[tuple[str, int], dict]:
    """Each subject's state: the latest value of every field its rows set, and when it was
    first and last seen. ``rows`` in timeline order."""
    state: dict[tuple[str, int], dict] = {}
    for subject_type, subject_id, action, time, after in rows:
        current = state.setdefault((subject_type, subject_id), {"_first": time, "_actions": set()})
        if after:
            current.update(decoded_json(after))
        current["_actions"].add(action)
        if action in _SEEN:
            current["_seen"] = time
        current["_last"] = time
    return state


def _in_order(rows: list[tuple]) -> list[tuple]:
    """Timeline order: time, then within one moment the order the change wrote its rows."""
    return sorted(rows, key=lambda r: (r[3], TIMELINE_TIE_RANKS.get(r[0], 3), r[1], r[2]))


# The rows that make each subject's state at a moment. A repeat row carries its alert's whole
# state (status, count, severity), so of an alert's repeats only the last before the moment
# counts: a night of repeats (10,000 rows) costs one backward index step, not a fold.
_STATE_ROWS = """
WITH s AS (SELECT * FROM unnest(%(types)s::text[], %(ids)s::bigint[])
                AS s(subject_type, subject_id))
SELECT t.subject_type, t.subject_id, t.action, t.time, t.after
  FROM s JOIN {table} t ON t.subject_type = s.subject_type AND t.subject_id = s.subject_id
 WHERE t.time <= %(at)s AND t.action <> '{updated}'
UNION ALL
SELECT last.* FROM s CROSS JOIN LATERAL (
  SELECT t.subject_type, t.subject_id, t.action, t.time, t.after FROM {table} t
   WHERE t.subject_type = s.subject_type AND t.subject_id = s.subject_id
     AND t.action = '{updated}' AND t.time <= %(at)s
   ORDER BY t.time DESC LIMIT 1) last
 WHERE s.subject_type = 'alert'
"""
# The incident's last few rows before the moment, repeats included: each subject's newest.
_RECENT_ROWS = """
SELECT last.* FROM unnest(%(types)s::text[], %(ids)s::bigint[]) AS s(subject_type, subject_id)
CROSS JOIN LATERAL (
  SELECT t.subject_type, t.subject_id, t.action, t.time, t.after FROM {table} t
   WHERE t.subject_type = s.subject_type AND t.subject_id = s.subject_id AND t.time <= %(at)s
   ORDER BY t.time DESC LIMIT {n}) last
"""


def _others(incident: Incident, at: datetime) -> list[Incident]:
    """The township's other incidents being handled at ``at`` (opened, not yet resolved), as
    the live board's panel would have listed them, newest first."""
    return list(
        Incident.objects.alias(handled=handled_during())
        .filter(township_id=incident.township_id, handled__contains=at)
        .exclude(pk=incident.pk)
        .select_related("category", "grid", "township")
        .prefetch_related(alerts_for_titles())
        .order_by("-opened_at")[:OTHER_INCIDENTS]
    )


def board_at(incident: Incident, at: datetime) -> Frame:
    """The board of ``incident``'s township at ``at``, as the timeline says it was."""
    subjects = timeline_subjects(incident)
    township_id = incident.township_id
    others = _others(incident, at)
    whistles = list(
        Whistle.objects.filter(incident__in=[incident, *others])
        .prefetch_related(
            Prefetch(
                "summonses",
                queryset=Summons.objects.select_related("department").order_by("department__code"),
            )
        )
        .order_by("blown_at")
    )
    # The alerts open at the moment (the index alerts_open_during answers), and the incident's.
    open_then = (
        Alert.objects.alias(open=open_during())
        .filter(township_id=township_id, open__contains=at)
        .values_list("pk", flat=True)
    )
    everything = {
        "incident": [incident.pk, *(o.pk for o in others)],
        "whistle": [w.pk for w in whistles],
        "summons": [s.pk for w in whistles for s in w.summonses.all()],
        "alert": sorted(set(open_then) | set(subjects["alert"])),
    }
    table = TimelineEntry._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            _STATE_ROWS.format(table=table, updated=Action.ALERT_UPDATED.value),
            {**subject_arrays(everything), "at": at},
        )
        rows = _in_order(cursor.fetchall())
        cursor.execute(
            _RECENT_ROWS.format(table=table, n=RECENT), {**subject_arrays(subjects), "at": at}
        )
        recent = _in_order(cursor.fetchall())[-RECENT:]
    state = _fold(rows)
    alerts = _alerts_then(state, township_id)
    return Frame(
        at=at,
        incident=_incident_then(incident, state, whistles),
        others=[
            then
            for then in (_incident_then(other, state, whistles) for other in others)
            if then is not None and then.status in Incident.ACTIVE_STATUSES
        ],
        alerts=alerts[:QUEUE_LENGTH],
        open_count=len(alerts),
        recent=[
            TimelineEntry(
                subject_type=subject_type,
                subject_id=subject_id,
                action=action,
                time=time,
                after=decoded_json(after),
            )
            for subject_type, subject_id, action, time, after in reversed(recent)
        ],
    )


def _alerts_then(state: dict[tuple[str, int], dict], township_id: int) -> list[Alert]:
    ids = [
        subject_id
        for (kind, subject_id), fields in state.items()
        if kind == "alert" and fields.get("status") in Alert.OPEN_STATUSES
    ]
    alerts = []
    for alert in Alert.objects.filter(pk__in=ids, township_id=township_id).select_related(
        "category", "device", "grid"
    ):
        fields = state[("alert", alert.pk)]
        alert.status = fields["status"]
        alert.count = fields.get("count", 1)
        alert.severity = fields.get("severity", alert.severity)
        alert.first_seen = fields["_first"]
        alert.last_seen = fields.get("_seen", fields["_first"])
        alerts.append(alert)
    alerts.sort(key=lambda a: (a.last_seen, a.pk), reverse=True)
    return alerts


def _incident_then(incident: Incident, state: dict, whistles: list[Whistle]) -> Incident | None:
    """A copy of ``incident`` with its status, whistles and summonses as ``state`` has them
    (None before it was opened)."""
    fields = state.get(("incident", incident.pk))
    if fields is None:
        return None
    then = copy.copy(incident)
    then._state = copy.copy(incident._state)
    then._state.fields_cache = dict(incident._state.fields_cache)
    then.status = fields.get("status", incident.status)
    blown = []
    for whistle in whistles:
        if whistle.incident_id != incident.pk or ("whistle", whistle.pk) not in state:
            continue  # another incident's, or not blown yet
        whistle = copy.copy(whistle)
        summonses = []
        for summons in whistle.summonses.all():
            summons_state = state.get(("summons", summons.pk))
            if summons_state is None:
                continue
            summons = copy.copy(summons)
            summons.status = summons_state.get("status", Summons.Status.NOTIFIED)
            deadline = summons_state.get("deadline")
            if deadline:
                summons.check_in_deadline = datetime.fromisoformat(deadline)
            summons.overdue = Action.SUMMONS_OVERDUE in summons_state["_actions"]
            summons.escalation_level = summons_state.get("level", 0)
            summonses.append(summons)
        whistle._prefetched_objects_cache = {"summonses": summonses}
        blown.append(whistle)
    # Whatever else was prefetched (its alerts, for its title) stays.
    then._prefetched_objects_cache = {
        **getattr(incident, "_prefetched_objects_cache", {}),
        "whistles": blown,
    }
    return then
