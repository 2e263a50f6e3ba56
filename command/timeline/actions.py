"""The timeline's vocabulary: every action a row can record, and the shape of its payload.

One closed set (Grafana OnCall's log-record types, Zulip's typed event catalogue): the writer
refuses an action or a payload key that is not declared here, and every reader (replay, the
timeline page, CAP, the API, the SQL that names actions) takes the names from this module.
Payloads are JSON objects; the TypedDicts say which keys each action's ``before`` and ``after``
may hold, so the rows written over the years keep one shape per action.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict

from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class Subject(models.TextChoices):
    ALERT = "alert", _("alert")
    INCIDENT = "incident", _("incident")
    WHISTLE = "whistle", _("whistle")
    SUMMONS = "summons", _("summons")
    ORDER = "order", _("supervision order")
    RATING = "rating", _("department rating")
    REPORT = "report", _("monthly report")


class Action(models.TextChoices):
    ALERT_RAISED = "alert.raised", _("Alert raised")
    ALERT_UPDATED = "alert.updated", _("Alert repeated")
    ALERT_ACKNOWLEDGED = "alert.acknowledged", _("Alert acknowledged")
    ALERT_DISMISSED = "alert.dismissed", _("Alert dismissed")
    ALERT_CLEARED = "alert.cleared", _("Alert cleared")
    ALERT_MERGED = "alert.merged", _("Alert merged")
    ALERT_ABSORBED = "alert.absorbed", _("Alert absorbed a duplicate")
    ALERT_ESCALATED = "alert.escalated", _("Alert escalated into the incident")
    ALERT_HANDED_UP = "alert.handed_up", _("The grid officer handed it up to the township")
    INCIDENT_OPENED = "incident.opened", _("Incident opened")
    INCIDENT_DISPATCHED = "incident.dispatched", _("Departments summoned")
    INCIDENT_ON_SITE = "incident.on_site", _("A department on site")
    INCIDENT_RESOLVED = "incident.resolved", _("Incident resolved")
    INCIDENT_CLOSED = "incident.closed", _("Incident closed")
    INCIDENT_EVIDENCE_ADDED = "incident.evidence_added", _("Evidence added")
    INCIDENT_REOPENED = "incident.reopened", _("Incident reopened")
    INCIDENT_CALLED_BACK = "incident.called_back", _("Called back (satisfaction)")
    INCIDENT_SETTLED_IN_GRID = (
        "incident.settled_in_grid",
        _("The grid officer settled it on the spot in the grid"),
    )
    WHISTLE_BLOWN = "whistle.blown", _("Whistle blown")
    WHISTLE_JOINT_CONFIRMED = (
        "whistle.joint_confirmed",
        _("The other township confirmed the joint whistle"),
    )
    WHISTLE_JOINT_DECLINED = (
        "whistle.joint_declined",
        _("The other township declined the joint whistle"),
    )
    SUMMONS_NOTIFIED = "summons.notified", _("Department notified")
    SUMMONS_ACKNOWLEDGED = "summons.acknowledged", _("Department acknowledged")
    SUMMONS_CHECKED_IN = "summons.checked_in", _("Department checked in on site")
    SUMMONS_DONE = "summons.done", _("Department reported done")
    SUMMONS_RELEASED = "summons.released", _("Department released")
    SUMMONS_REMINDED = "summons.reminded", _("Reminder before the deadline")
    SUMMONS_OVERDUE = "summons.overdue", _("Deadline passed")
    SUMMONS_ESCALATED = "summons.escalated", _("Escalated to supervisors")
    SUMMONS_ACCEPTED = "summons.accepted", _("Work accepted by the township")
    SUMMONS_RETURNED = "summons.returned", _("Work returned to the department")
    SUMMONS_FINISH_OVERDUE = "summons.finish_overdue", _("Finishing deadline passed")
    SUMMONS_FINISH_ESCALATED = "summons.finish_escalated", _("Late finishing escalated")
    # 督办 reaching people: a notification sent, failed for good, read; a step with nobody.
    SUMMONS_PAGED = "summons.paged", _("Person notified")
    SUMMONS_PAGE_FAILED = "summons.page_failed", _("Notification failed")
    SUMMONS_PAGE_READ = "summons.page_read", _("Notification read")
    SUMMONS_NOBODY_TO_PAGE = "summons.nobody_to_page", _("Nobody to notify at this step")
    ORDER_ISSUED = "order.issued", _("Supervision order issued (督办单)")
    ORDER_ACKNOWLEDGED = "order.acknowledged", _("Supervision order acknowledged")
    ORDER_ANSWERED = "order.answered", _("Supervision order answered")
    ORDER_PAGED = "order.paged", _("Person notified of the order")
    ORDER_PAGE_FAILED = "order.page_failed", _("Notification of the order failed")
    ORDER_PAGE_READ = "order.page_read", _("Notification of the order read")
    ORDER_NOBODY_TO_PAGE = "order.nobody_to_page", _("Nobody to notify of the order")
    RATING_GIVEN = "rating.given", _("Department rated by the township")
    RATING_REVISED = "rating.revised", _("Rating revised")
    RATING_OBJECTED = "rating.objected", _("The department objected to its rating")
    RATING_ANSWERED = "rating.answered", _("Objection answered")
    RATING_PAGED = "rating.paged", _("Person notified of the rating")
    RATING_PAGE_FAILED = "rating.page_failed", _("Notification of the rating failed")
    RATING_PAGE_READ = "rating.page_read", _("Notification of the rating read")
    # The monthly report (月度报表): generated (again), and sent to the supervisors.
    REPORT_GENERATED = "report.generated", _("Monthly report generated")
    REPORT_PAGED = "report.paged", _("Person sent the monthly report")
    REPORT_PAGE_FAILED = "report.page_failed", _("Sending the monthly report failed")
    REPORT_PAGE_READ = "report.page_read", _("Monthly report opened")

    @property
    def subject(self) -> Subject:
        return Subject(self.value.split(".", 1)[0])


# --- payloads ---------------------------------------------------------------------------------


class StatusChange(TypedDict, total=False):
    status: str


class AlertSeen(TypedDict, total=False):
    """A raise or a repeat: the alert's status and count after it, and what crossed the line."""

    status: str
    count: int
    severity: str
    metric: str
    value: float
    threshold: float
    rate: float
    label: str
    score: float
    report: int
    # An intake item's channel, its caller (name and the phone masked: never the whole number)
    # and the open alert it may repeat.
    channel: str
    caller: str
    duplicate_of: int


class AlertDismissed(TypedDict, total=False):
    status: str
    dismiss_reason: str


class AlertCleared(TypedDict, total=False):
    status: str
    reason: str


class AlertMerged(TypedDict):
    status: str
    into: int


# "from" is a keyword, so this one is declared in the functional form.
AlertAbsorbed = TypedDict("AlertAbsorbed", {"count": int, "from": int})


class AlertEscalated(TypedDict):
    status: str
    incident: int


class AlertHandedUp(TypedDict, total=False):
    """A grid officer could not settle it: their note, and the severity it was raised to."""

    severity: str
    note: str


class IncidentOpened(TypedDict):
    status: str
    alerts: list[int]


class IncidentStatus(TypedDict, total=False):
    status: str
    feedback: str
    settled_level: str


class IncidentReopened(TypedDict, total=False):
    status: str
    reason: str


class CalledBack(TypedDict, total=False):
    satisfaction: str
    note: str
    reopen: bool


class SettledInGrid(TypedDict, total=False):
    """小事不出格: what the grid officer did on the spot, in which grid, with how many photos."""

    note: str
    grid: str
    photos: int


class Evidence(TypedDict):
    kind: str
    url: str
    caption: str
    added_by: str


class WhistleBlown(TypedDict, total=False):
    kind: str
    purpose: str
    departments: list[str]
    joint_township: str
    joint_status: str
    awaiting: list[int]


class JointPending(TypedDict, total=False):
    joint_status: str
    awaiting: list[int]


class JointConfirmed(TypedDict):
    joint_status: str
    departments: list[int]


class JointDeclined(TypedDict):
    joint_status: str
    reason: str


class SummonsChange(TypedDict, total=False):
    status: str
    deadline: str  # the check-in deadline (ISO 8601) the row was written against
    note: str
    reason: str
    on_time: bool
    position: list[float | None]  # where the check-in was made: [latitude, longitude]
    level: int  # escalation level (督办): 1 township, 2 district …
    notify: str  # whom that level notifies
    finish_deadline: str  # the finishing deadline (ISO 8601) the row was written against
    returned: int  # how many times the work has been returned


class Paged(TypedDict, total=False):
    """One notification to one person: who, why, by what, and how it went."""

    person: str  # the person's name as it reads on the page
    user: int
    reason: str  # on_call, backup, head, township_supervisors, district_supervisors, discipline
    channel: str
    step: int  # the escalation chain's step (from 1), or the overdue level
    error: str
    then: str  # the channel used next when this one failed for good


class NobodyToPage(TypedDict, total=False):
    reason: str
    step: int


class OrderChange(TypedDict, total=False):
    """A supervision order: to whom, what, by when; its acknowledgement and answer."""

    status: str
    department: str
    summons: int
    instruction: str
    due_at: str
    answer: str


class RatingChange(TypedDict, total=False):
    """A township's rating of a department for a period, and the objection to it."""

    department: str
    period: str
    period_start: str
    score: str
    marks: dict
    comment: str
    objection: str
    answer: str
    outcome: str


class ReportGenerated(TypedDict, total=False):
    """A township's monthly report: which month, and how many bytes its workbook has."""

    month: str  # YYYY-MM
    size: int


class Payload(TypedDict, total=False):
    pass


# (before, after) of each action. An action missing here cannot be written.
SCHEMAS: dict[Action, tuple[type, type]] = {
    Action.ALERT_RAISED: (Payload, AlertSeen),
    Action.ALERT_UPDATED: (Payload, AlertSeen),
    Action.ALERT_ACKNOWLEDGED: (StatusChange, StatusChange),
    Action.ALERT_DISMISSED: (StatusChange, AlertDismissed),
    Action.ALERT_CLEARED: (StatusChange, AlertCleared),
    Action.ALERT_MERGED: (Payload, AlertMerged),
    Action.ALERT_ABSORBED: (Payload, AlertAbsorbed),
    Action.ALERT_ESCALATED: (StatusChange, AlertEscalated),
    Action.ALERT_HANDED_UP: (AlertHandedUp, AlertHandedUp),
    Action.INCIDENT_OPENED: (Payload, IncidentOpened),
    Action.INCIDENT_DISPATCHED: (StatusChange, IncidentStatus),
    Action.INCIDENT_ON_SITE: (StatusChange, IncidentStatus),
    Action.INCIDENT_RESOLVED: (StatusChange, IncidentStatus),
    Action.INCIDENT_CLOSED: (StatusChange, IncidentStatus),
    Action.INCIDENT_EVIDENCE_ADDED: (Payload, Evidence),
    Action.INCIDENT_REOPENED: (StatusChange, IncidentReopened),
    Action.INCIDENT_CALLED_BACK: (Payload, CalledBack),
    Action.INCIDENT_SETTLED_IN_GRID: (Payload, SettledInGrid),
    Action.WHISTLE_BLOWN: (Payload, WhistleBlown),
    Action.WHISTLE_JOINT_CONFIRMED: (JointPending, JointConfirmed),
    Action.WHISTLE_JOINT_DECLINED: (JointPending, JointDeclined),
    Action.SUMMONS_NOTIFIED: (Payload, SummonsChange),
    Action.SUMMONS_ACKNOWLEDGED: (SummonsChange, SummonsChange),
    Action.SUMMONS_CHECKED_IN: (SummonsChange, SummonsChange),
    Action.SUMMONS_DONE: (SummonsChange, SummonsChange),
    Action.SUMMONS_RELEASED: (SummonsChange, SummonsChange),
    Action.SUMMONS_REMINDED: (Payload, SummonsChange),
    Action.SUMMONS_OVERDUE: (Payload, SummonsChange),
    Action.SUMMONS_ESCALATED: (SummonsChange, SummonsChange),
    Action.SUMMONS_ACCEPTED: (SummonsChange, SummonsChange),
    Action.SUMMONS_RETURNED: (SummonsChange, SummonsChange),
    Action.SUMMONS_FINISH_OVERDUE: (Payload, SummonsChange),
    Action.SUMMONS_FINISH_ESCALATED: (SummonsChange, SummonsChange),
    Action.SUMMONS_PAGED: (Payload, Paged),
    Action.SUMMONS_PAGE_FAILED: (Payload, Paged),
    Action.SUMMONS_PAGE_READ: (Payload, Paged),
    Action.SUMMONS_NOBODY_TO_PAGE: (Payload, NobodyToPage),
    Action.ORDER_ISSUED: (Payload, OrderChange),
    Action.ORDER_ACKNOWLEDGED: (OrderChange, OrderChange),
    Action.ORDER_ANSWERED: (OrderChange, OrderChange),
    Action.ORDER_PAGED: (Payload, Paged),
    Action.ORDER_PAGE_FAILED: (Payload, Paged),
    Action.ORDER_PAGE_READ: (Payload, Paged),
    Action.ORDER_NOBODY_TO_PAGE: (Payload, NobodyToPage),
    Action.RATING_GIVEN: (Payload, RatingChange),
    Action.RATING_REVISED: (RatingChange, RatingChange),
    Action.RATING_OBJECTED: (Payload, RatingChange),
    Action.RATING_ANSWERED: (RatingChange, RatingChange),
    Action.RATING_PAGED: (Payload, Paged),
    Action.RATING_PAGE_FAILED: (Payload, Paged),
    Action.RATING_PAGE_READ: (Payload, Paged),
    Action.REPORT_GENERATED: (Payload, ReportGenerated),
    Action.REPORT_PAGED: (Payload, Paged),
    Action.REPORT_PAGE_FAILED: (Payload, Paged),
    Action.REPORT_PAGE_READ: (Payload, Paged),
}


class UndeclaredPayload(ValueError):
    """A row the vocabulary does not allow: a programming error, never the user's."""


def payload_check(
    action: Action | str, before: Mapping[str, Any] | None, after: Mapping[str, Any] | None
) -> Action:
    """The action as a member of the enum, once its payload keys are the declared ones."""
    try:
        member = Action(action)
    except ValueError:
        raise UndeclaredPayload(f"unknown timeline action {action!r}") from None
    for name, payload, schema in (
        ("before", before, SCHEMAS[member][0]),
        ("after", after, SCHEMAS[member][1]),
    ):
        extra = set(payload or ()) - set(schema.__annotations__)
        if extra:
            raise UndeclaredPayload(f"{member.value} {name} has undeclared keys {sorted(extra)}")
    return member


# How each payload key reads on the timeline page, in the reader's language.
FIELD_LABELS = {
    "count": _("count"),
    "severity": _("severity"),
    "metric": _("metric"),
    "value": _("value"),
    "threshold": _("threshold"),
    "rate": _("rate"),
    "label": _("detected"),
    "score": _("score"),
    "report": _("intake item"),
    "channel": pgettext_lazy("intake", "channel"),
    "caller": _("caller"),
    "duplicate_of": _("possibly the same as alert"),
    "reason": _("reason"),
    "dismiss_reason": _("reason"),
    "into": _("merged into alert"),
    "from": _("absorbed alert"),
    "incident": _("incident"),
    "alerts": _("alerts"),
    "feedback": _("feedback"),
    "settled_level": _("settled at"),
    "kind": _("kind"),
    "url": _("link"),
    "caption": _("caption"),
    "added_by": _("added by"),
    "purpose": _("purpose"),
    "departments": _("departments"),
    "joint_township": _("joint township"),
    "joint_status": _("joint status"),
    "awaiting": _("awaiting confirmation"),
    "deadline": _("deadline"),
    "note": _("note"),
    "on_time": _("on time"),
    "position": _("position"),
    "level": _("level"),
    "notify": _("notified"),
    "finish_deadline": _("finishing deadline"),
    "returned": _("times returned"),
    "satisfaction": _("satisfaction"),
    "reopen": _("reopened"),
    "grid": _("grid"),
    "photos": _("photos"),
    "person": _("person"),
    "user": _("user"),
    "step": _("step"),
    "error": _("error"),
    "then": _("then by"),
    "summons": _("summons"),
    "department": _("department"),
    "instruction": _("what is to be done"),
    "due_at": _("by when"),
    "answer": _("answer"),
    "period": _("period"),
    "period_start": _("period starts"),
    "marks": _("marks"),
    "comment": _("comment"),
    "objection": _("objection"),
    "outcome": _("outcome"),
    "month": _("month"),
    "size": _("size (bytes)"),
}


def details(after: Mapping[str, Any] | None) -> list[tuple[str, Any]]:
    """A row's payload as (label, value) pairs for people; the status is shown elsewhere."""
    return [
        (str(FIELD_LABELS.get(key, key)), value)
        for key, value in (after or {}).items()
        if key != "status"
    ]


def label(action: str) -> str:
    """The reader's words for an action; an action from a newer release reads as itself."""
    try:
        return str(Action(action).label)
    except ValueError:
        return action
