"""Fragments shared by pages and websocket pushes: one partial, two transports."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation

from alerts import selectors
from command import clock
from command.org import localtime
from command.org.models import Department, Township
from frontend import paging
from frontend.frames import Items, Part
from incidents import selectors as incident_selectors
from incidents.models import Summons, SupervisionOrder


def _alert_rows(alerts: list) -> list:
    for alert in alerts:
        alert.cursor = paging.cursor(alert.last_seen, alert.pk)
    return alerts


def _alert_more(township: Township, *, remaining: int, oob: bool) -> str:
    return render_to_string(
        "frontend/partials/more.html",
        {
            "more_id": "alert-queue-more",
            "list_id": "alert-queue",
            "more_url": reverse("board_alerts", args=[township.code]),
            "remaining": remaining,
            "oob": oob,
        },
    )


def alert_queue_html(*, township: Township, oob: bool, language: str) -> str:
    """The queue's first page (the newest open alerts) and "N more" below it."""
    alerts = _alert_rows(selectors.board_alerts(township_id=township.pk, limit=paging.page_size()))
    open_count = selectors.open_alert_count(township_id=township.pk)
    with translation.override(language), localtime.shown_in(township):
        return render_to_string(
            "frontend/partials/alert_queue.html",
            {
                "township": township,
                "alerts": alerts,
                "open_count": open_count,
                "page_size": paging.page_size(),
                "oob": oob,
            },
        ) + _alert_more(township, remaining=open_count - len(alerts), oob=oob)


def alert_queue_parts(*, township: Township, language: str) -> list[Part]:
    """The same for a socket: the empty list, then its rows (which may be cut between frames),
    then the count and "N more"."""
    alerts = _alert_rows(selectors.board_alerts(township_id=township.pk, limit=paging.page_size()))
    open_count = selectors.open_alert_count(township_id=township.pk)
    with translation.override(language), localtime.shown_in(township):
        context = {"township": township, "open_count": open_count, "page_size": paging.page_size()}
        return [
            render_to_string(
                "frontend/partials/alert_queue.html", {**context, "alerts": [], "oob": True}
            ),
            Items("alert-queue", [_alert_row(alert) for alert in alerts]),
            _alert_more(township, remaining=open_count - len(alerts), oob=True),
        ]


def _alert_row(alert: object) -> str:
    return render_to_string("frontend/partials/alert_row.html", {"alert": alert})


def alert_page_html(
    *, township: Township, before: tuple[datetime, int] | None, language: str
) -> str:
    """The page of the queue after the row ``before`` (HTTP, "show more"): its rows, and
    "N more" for what is left after them."""
    alerts = _alert_rows(
        selectors.board_alerts(township_id=township.pk, limit=paging.page_size(), before=before)
    )
    remaining = (
        selectors.open_alert_count_before(
            township_id=township.pk, before=(alerts[-1].last_seen, alerts[-1].pk)
        )
        if alerts
        else 0
    )
    with translation.override(language), localtime.shown_in(township):
        rows = "".join(_alert_row(alert) for alert in alerts)
        return rows + _alert_more(township, remaining=remaining, oob=True)


def _locate(summonses: list) -> list:
    """Where each summons' incident is on its township's map: the reported position, else
    the middle of its grid."""
    from frontend import maps

    for summons in summonses:
        incident = summons.whistle.incident
        shaped = maps.base_map(incident.township)
        x = y = None
        if incident.latitude is not None and incident.longitude is not None:
            x, y = shaped.projection.point(incident.longitude, incident.latitude)
        elif incident.grid_id in shaped.centroids:
            x, y = shaped.centroids[incident.grid_id]
        summons.location = {
            "map": shaped,
            "x": x,
            "y": y,
            "grid": incident.grid.code if incident.grid else None,
        }
    return summonses


def _summons_rows(summonses: list) -> list:
    for summons in summonses:
        summons.cursor = paging.cursor(summons.check_in_deadline, summons.pk)
    return summonses


def _summons_more(department: Department, *, remaining: int, oob: bool) -> str:
    return render_to_string(
        "frontend/partials/more.html",
        {
            "more_id": "summons-inbox-more",
            "list_id": "summons-inbox",
            "more_url": reverse("console_summonses", args=[department.code]),
            "remaining": remaining,
            "oob": oob,
        },
    )


def _summons_row(summons: object, department: Department) -> str:
    return render_to_string(
        "frontend/partials/summons_row.html", {"summons": summons, "department": department}
    )


def summons_inbox_html(*, department: Department, oob: bool, language: str) -> str:
    """The console's first page (the most urgent open summons), the count, and "N more"."""
    summonses = _summons_rows(
        incident_selectors.console_summonses(department_id=department.pk, limit=paging.page_size())
    )
    open_count = incident_selectors.open_summons_count(department_id=department.pk)
    with translation.override(language):
        return render_to_string(
            "frontend/partials/summons_inbox.html",
            {
                "summonses": summonses,
                "department": department,
                "open_count": open_count,
                "oob": oob,
            },
        ) + _summons_more(department, remaining=open_count - len(summonses), oob=oob)


def summons_inbox_parts(*, department: Department, language: str) -> list[Part]:
    """The same for a socket: the empty list, its rows (which may be cut between frames), the
    count and "N more"."""
    summonses = _summons_rows(
        incident_selectors.console_summonses(department_id=department.pk, limit=paging.page_size())
    )
    open_count = incident_selectors.open_summons_count(department_id=department.pk)
    with translation.override(language):
        return [
            render_to_string(
                "frontend/partials/summons_inbox.html",
                {"summonses": [], "open_count": open_count, "oob": True},
            ),
            Items("summons-inbox", [_summons_row(summons, department) for summons in summonses]),
            _summons_more(department, remaining=open_count - len(summonses), oob=True),
            _summons_count(open_count),
        ]


def _summons_count(open_count: int) -> str:
    return render_to_string(
        "frontend/partials/summons_count.html", {"open_count": open_count, "oob": True}
    )


def summons_page_html(
    *, department: Department, after: tuple[datetime, int] | None, language: str
) -> str:
    """The page of the console after the summons ``after`` (HTTP, "show more")."""
    summonses = _summons_rows(
        incident_selectors.console_summonses(
            department_id=department.pk, limit=paging.page_size(), after=after
        )
    )
    remaining = (
        incident_selectors.open_summons_count(
            department_id=department.pk,
            after=(summonses[-1].check_in_deadline, summonses[-1].pk),
        )
        if summonses
        else 0
    )
    with translation.override(language):
        rows = "".join(_summons_row(summons, department) for summons in summonses)
        return rows + _summons_more(department, remaining=remaining, oob=True)


def summons_details_html(*, department: Department, summons_id: int, language: str) -> str | None:
    """What a console row opens to: the incident's facts, a map of where it is and the
    evidence. Fetched when opened, not pushed with every row: the map alone is the township's
    every grid outline (~16 KB), which made each row 18 KB."""
    summons = incident_selectors.summons_for_console(
        summons_id=summons_id, department_id=department.pk
    )
    if summons is None:
        return None
    _locate([summons])
    with translation.override(language):
        return render_to_string("frontend/partials/summons_details.html", {"summons": summons})


def summons_push_html(*, department: Department, summons_id: int, new: bool, language: str) -> str:
    """A new summons is added to the list; a changed one is replaced where it is shown (and
    left alone if its page is not shown); a closed one is removed. The count follows."""
    summons = incident_selectors.summons_for_console(
        summons_id=summons_id, department_id=department.pk
    )
    if summons is None:
        return ""
    _summons_rows([summons])
    with translation.override(language):
        return render_to_string(
            "frontend/partials/summons_push.html",
            {
                "summons": summons,
                "department": department,
                "new": new,
                "open": summons.status in Summons.OPEN_STATUSES,
            },
        )


def summons_count_html(*, department: Department) -> str:
    return _summons_count(incident_selectors.open_summons_count(department_id=department.pk))


def alert_push_html(*, township: Township, alert_id: int, language: str) -> str:
    """A raised or repeated alert moves to the top of the queue; the count follows."""
    alert = selectors.alert_for_board(alert_id=alert_id, township_id=township.pk)
    if alert is None:
        return ""
    _alert_rows([alert])
    if not alert.is_open:
        # Dismissed, merged, escalated or cleared: it leaves the queue.
        with translation.override(language):
            return render_to_string(
                "frontend/partials/alert_gone.html",
                {"alert": alert, "open_count": selectors.open_alert_count(township_id=township.pk)},
            )
    with translation.override(language), localtime.shown_in(township):
        return render_to_string(
            "frontend/partials/alert_push.html",
            {
                "alert": alert,
                "open_count": selectors.open_alert_count(township_id=township.pk),
            },
        )


def map_overlay_html(*, township: Township, oob: bool, language: str) -> str:
    from frontend import maps

    with translation.override(language):
        devices_svg, markers = maps.overlay(
            township, selectors.board_alerts(township_id=township.pk, limit=200)
        )
        return render_to_string(
            "frontend/partials/map_overlay.html",
            {
                "map": maps.base_map(township),
                "devices_svg": devices_svg,
                "markers": markers,
                "oob": oob,
            },
        )


def board_map_html(*, township: Township, language: str) -> str:
    """The grids (drawn once per page) with the overlay that pushes replace."""
    from frontend import maps

    with translation.override(language):
        return render_to_string(
            "frontend/partials/board_map.html",
            {
                "map": maps.base_map(township),
                "tiles": maps.tiles(township, settings.WHISTLE_MAP_TILES),
                "overlay_html": map_overlay_html(township=township, oob=False, language=language),
            },
        )


def incidents_html(*, township: Township, oob: bool, language: str) -> str:
    with translation.override(language), localtime.shown_in(township):
        return render_to_string(
            "frontend/partials/incident_panel.html",
            {
                "incidents": incident_selectors.board_incidents(township_id=township.pk),
                "joint_awaiting": incident_selectors.joint_awaiting(township_id=township.pk),
                "township": township,
                "oob": oob,
            },
        )


def incidents_parts(*, township: Township, language: str) -> list[Part]:
    """The same for a socket: the empty panel, then each incident (with its countdowns) as a
    row that may go in a frame of its own."""
    incidents = incident_selectors.board_incidents(township_id=township.pk)
    awaiting = incident_selectors.joint_awaiting(township_id=township.pk)
    with translation.override(language), localtime.shown_in(township):
        panel = render_to_string(
            "frontend/partials/incident_panel.html",
            {"incidents": [], "more_coming": bool(incidents or awaiting), "oob": True},
        )
        rows = [
            render_to_string(
                "frontend/partials/joint_row.html", {"whistle": whistle, "township": township}
            )
            for whistle in awaiting
        ] + [
            render_to_string(
                "frontend/partials/incident_row.html", {"incident": incident, "township": township}
            )
            for incident in incidents
        ]
        return [panel, Items("incident-panel", rows)]


def figures_html(*, township: Township, oob: bool, language: str) -> str:
    with translation.override(language):
        return render_to_string(
            "frontend/partials/figures.html",
            {"figures": incident_selectors.board_figures(township=township), "oob": oob},
        )


# --- supervision orders on a department's console -----------------------------------------------


def _order_rows(orders: list) -> list:
    now = clock.now()
    for order in orders:
        order.late = order.due_at < now
    return orders


def order_inbox_html(*, department: Department, oob: bool, language: str) -> str:
    """The console's open supervision orders, the soonest due first. A department has a
    handful at most, so the list is whole: no pages."""
    orders = _order_rows(incident_selectors.console_orders(department_id=department.pk))
    with translation.override(language):
        return render_to_string(
            "frontend/partials/order_inbox.html", {"orders": orders, "oob": oob}
        )


def order_count_html(*, department: Department, oob: bool = True) -> str:
    return render_to_string(
        "frontend/partials/order_count.html",
        {
            "open_count": incident_selectors.open_order_count(department_id=department.pk),
            "oob": oob,
        },
    )


def order_push_html(*, department: Department, order_id: int, new: bool, language: str) -> str:
    """A new order is added to the list; an acknowledged one is replaced where it is; an
    answered one leaves it (the whole list, saying it is empty, when it was the last)."""
    order = incident_selectors.order_for_console(order_id=order_id, department_id=department.pk)
    if order is None:
        return ""
    is_open = order.status in SupervisionOrder.OPEN_STATUSES
    if not is_open and not incident_selectors.open_order_count(department_id=department.pk):
        return order_inbox_html(department=department, oob=True, language=language)
    _order_rows([order])
    with translation.override(language):
        return render_to_string(
            "frontend/partials/order_push.html", {"order": order, "new": new, "open": is_open}
        )
