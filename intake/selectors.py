"""What the grid officer's phone page lists: the open matters of their grids (网格待办) and what
became of the earlier ones, their reports and the matters they settled."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.utils.translation import gettext as _

from alerts.models import Alert
from command.org import policy
from command.org.models import Category, User
from incidents.models import Incident
from streams.models import GridReport


def grid_matters(*, user: User, limit: int = 30) -> list[Alert]:
    """Open alerts ``user`` may settle in the grid or hand up, newest first: their grids' and
    their own reports' (command.org.policy.settle_alerts)."""
    queryset = Alert.objects.filter(status__in=Alert.OPEN_STATUSES).select_related(
        "category", "grid", "device"
    )
    return list(policy.settle_alerts(user, queryset).order_by("-first_seen", "-pk")[:limit])


@dataclass(frozen=True)
class Earlier:
    """One line of the "earlier" list."""

    category: Category | None
    text: str
    time: datetime
    status: str
    settled_in_grid: bool
    photo: str | None
    # Closed by the township: its feedback, and the incident to say how it went about (回访)
    # while nobody has yet; the satisfaction once somebody has.
    feedback: str = ""
    callback_incident: int | None = None
    satisfaction: str = ""


def matter_status(alert: Alert | None) -> tuple[str, bool]:
    """What became of a matter, in the reader's words, and whether it was settled in the grid."""
    if alert is None:
        return "", False
    incident = alert.incident
    if incident is not None:
        if incident.status == Incident.Status.CLOSED:
            if incident.settled_level == Incident.SettledLevel.GRID:
                return _("Settled in the grid"), True
            return _("Closed by the township"), False
        return _("Became an incident"), False
    if alert.is_open and (alert.detail or {}).get("handed_up_by"):
        return _("Handed up to the township"), False
    return alert.get_status_display(), False


def _settled_photo(incident: Incident | None) -> str | None:
    """The first photo taken when the matter was dealt with (its evidence, not a snapshot)."""
    if incident is None:
        return None
    return next((e["url"] for e in incident.evidence if e.get("kind") == "photo"), None)


def earlier_matters(*, user: User, limit: int = 30) -> list[Earlier]:
    """``user``'s reports, and the other matters they settled in the grid, newest first."""
    reports = policy.reports(user, GridReport.objects.filter(reporter=user)).select_related(
        "category", "alert__incident"
    )[:limit]
    lines = []
    for report in reports:
        status, settled = matter_status(report.alert)
        incident = report.alert.incident if report.alert else None
        closed = incident is not None and incident.status == Incident.Status.CLOSED and not settled
        lines.append(
            Earlier(
                report.category,
                report.description,
                report.created_at,
                status,
                settled,
                (report.photos or [_settled_photo(incident)])[0],
                feedback=incident.feedback if closed else "",
                callback_incident=incident.pk if closed and not incident.satisfaction else None,
                satisfaction=incident.get_satisfaction_display()
                if closed and incident.satisfaction
                else "",
            )
        )
    settled_here = (
        policy.incidents(
            user,
            Incident.objects.filter(
                opened_by=user, settled_level=Incident.SettledLevel.GRID
            ).exclude(alerts__report__reporter=user),
        )
        .select_related("category")
        .order_by("-opened_at")[:limit]
    )
    for incident in settled_here:
        lines.append(
            Earlier(
                incident.category,
                incident.display_title,
                incident.opened_at,
                _("Settled in the grid"),
                True,
                _settled_photo(incident),
            )
        )
    lines.sort(key=lambda line: line.time, reverse=True)
    return lines[:limit]
