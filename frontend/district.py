"""The district board (区级指挥大屏): every township of a district on one screen, for the
district's duty officers and supervisors.

One map of all the townships, each marked with its open alerts and whether a department is
late or being escalated there; every township's queue in one table (open alerts, incidents,
summonses waiting, late, escalating, open supervision orders), each linking to the township's
own board; the newest open alerts across the district; and the escalations (late arrivals and
finishings, chains still paging). The page and its socket (frontend.consumers.DistrictConsumer)
draw the same parts: the socket hears the board groups of all the district's townships and
redraws what an event changed, as the township board does.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils import translation

from alerts import selectors as alert_selectors
from command import clock
from command.org import policy
from command.org.models import District, Township, User
from frontend import maps
from frontend.frames import Part
from incidents import selectors as incident_selectors
from supervision import console

# What the socket redraws for a batch: the queues and figures on every event; the alert list
# on alert events; the escalations on incident and summons events.
ALERTS = "alerts"
WORK = "work"
ESCALATION_ROWS = 20
ALERT_ROWS = 30


def district_for_board(*, user: User, code: str) -> District | None:
    """The district whose board ``user`` may watch, or None (unknown or not allowed)."""
    if not policy.is_active(user):
        return None
    found = District.objects.filter(code=code).first()
    if found is None or not policy.can_watch_district(user, found):
        return None
    return found


def district_townships(district: District) -> list[Township]:
    return list(Township.objects.filter(district=district).order_by("code"))


def _context(district: District, townships: list[Township]) -> dict[str, Any]:
    rows = incident_selectors.district_overview(townships=townships)
    ids = [t.pk for t in townships]
    shaped = maps.district_map(district.pk, townships)
    badges = []
    for row in rows:
        x, y = shaped.place(row.township.code)
        badges.append({"row": row, "x": x, "y": y})
    totals = {
        name: sum(getattr(row, name) for row in rows)
        for name in (
            "open_alerts",
            "critical_alerts",
            "incidents",
            "waiting",
            "late_arrivals",
            "late_finishings",
            "paging",
            "open_orders",
        )
    }
    return {
        "district": district,
        "rows": rows,
        "totals": totals,
        "map": shaped,
        "badges": badges,
        "township_ids": ids,
    }


def _escalations(township_ids: list[int]) -> dict[str, Any]:
    scope = set(township_ids)
    return {
        "late_arrivals": console.overdue_arrivals(township_ids=scope, limit=ESCALATION_ROWS),
        "late_finishings": console.overdue_finishings(township_ids=scope, limit=ESCALATION_ROWS),
        "paging": console.escalations(township_ids=scope, limit=ESCALATION_ROWS),
        "now": clock.now(),
    }


def _render(template: str, context: dict[str, Any], language: str, *, oob: bool) -> str:
    with translation.override(language):
        return render_to_string(f"frontend/partials/{template}", {**context, "oob": oob})


def district_parts(
    *, district: District, townships: list[Township], language: str, what: set[str]
) -> list[Part]:
    """The parts of the board that ``what`` (ALERTS, WORK) changed, for its socket."""
    context = _context(district, townships)
    parts: list[Part] = [
        _render("district_figures.html", context, language, oob=True),
        _render("district_overlay.html", context, language, oob=True),
        _render("district_queues.html", context, language, oob=True),
    ]
    if ALERTS in what:
        alerts = alert_selectors.district_alerts(
            township_ids=context["township_ids"], limit=ALERT_ROWS
        )
        parts.append(_render("district_alerts.html", {"alerts": alerts}, language, oob=True))
    if WORK in what:
        parts.append(
            _render(
                "district_escalations.html",
                _escalations(context["township_ids"]),
                language,
                oob=True,
            )
        )
    return parts


def district_state(*, district: District, townships: list[Township], language: str) -> list[Part]:
    """Everything the district board shows, for a socket that has just (re)connected."""
    return district_parts(
        district=district, townships=townships, language=language, what={ALERTS, WORK}
    )


def district_board(request: HttpRequest, district: str) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    found = district_for_board(user=user, code=district)
    if found is None:
        raise PermissionDenied
    townships = district_townships(found)
    context = _context(found, townships)
    context["alerts"] = alert_selectors.district_alerts(
        township_ids=context["township_ids"], limit=ALERT_ROWS
    )
    context |= _escalations(context["township_ids"])
    return render(request, "frontend/district_board.html", context)
