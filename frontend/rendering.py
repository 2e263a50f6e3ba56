"""Fragments shared by pages and websocket pushes: one partial, two transports."""

from __future__ import annotations

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import timezone, translation

from alerts import selectors
from command.incidents import selectors as incident_selectors
from command.org.models import Department, Township


def alert_queue_html(*, township: Township, oob: bool, language: str) -> str:
    with translation.override(language), timezone.override(township.time_zone):
        return render_to_string(
            "frontend/partials/alert_queue.html",
            {
                "township": township,
                "alerts": selectors.board_alerts(township_id=township.pk),
                "open_count": selectors.open_alert_count(township_id=township.pk),
                "oob": oob,
            },
        )


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


def summons_inbox_html(*, department: Department, oob: bool, language: str) -> str:
    summonses = _locate(incident_selectors.console_summonses(department_id=department.pk))
    with translation.override(language), timezone.override(settings.TIME_ZONE):
        return render_to_string(
            "frontend/partials/summons_inbox.html", {"summonses": summonses, "oob": oob}
        )


def summons_push_html(*, department: Department, summons_id: int, language: str) -> str:
    """A new or changed summons: its row is replaced (or removed once it is closed)."""
    summons = incident_selectors.summons_for_console(
        summons_id=summons_id, department_id=department.pk
    )
    if summons is None:
        return ""
    _locate([summons])
    with translation.override(language), timezone.override(settings.TIME_ZONE):
        return render_to_string("frontend/partials/summons_push.html", {"summons": summons})


def alert_push_html(*, township: Township, alert_id: int, language: str) -> str:
    """A raised or repeated alert moves to the top of the queue; the count follows."""
    alert = selectors.alert_for_board(alert_id=alert_id, township_id=township.pk)
    if alert is None:
        return ""
    if not alert.is_open:
        # Dismissed, merged, escalated or cleared: it leaves the queue.
        with translation.override(language):
            return render_to_string(
                "frontend/partials/alert_gone.html",
                {"alert": alert, "open_count": selectors.open_alert_count(township_id=township.pk)},
            )
    with translation.override(language), timezone.override(township.time_zone):
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
        devices, markers = maps.overlay(
            township, selectors.board_alerts(township_id=township.pk, limit=200)
        )
        return render_to_string(
            "frontend/partials/map_overlay.html",
            {"map": maps.base_map(township), "devices": devices, "markers": markers, "oob": oob},
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
    with translation.override(language), timezone.override(township.time_zone):
        return render_to_string(
            "frontend/partials/incident_panel.html",
            {"incidents": incident_selectors.board_incidents(township_id=township.pk), "oob": oob},
        )


def figures_html(*, township: Township, oob: bool, language: str) -> str:
    with translation.override(language):
        return render_to_string(
            "frontend/partials/figures.html",
            {"figures": incident_selectors.board_figures(township_id=township.pk), "oob": oob},
        )


def board_state_html(*, township: Township, language: str) -> str:
    """Everything the board shows, for a socket that has just (re)connected."""
    return "".join(
        render(township=township, oob=True, language=language)
        for render in (alert_queue_html, map_overlay_html, incidents_html, figures_html)
    )
