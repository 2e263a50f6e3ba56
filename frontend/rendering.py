"""Fragments shared by pages and websocket pushes: one partial, two transports."""

from __future__ import annotations

from django.template.loader import render_to_string
from django.utils import timezone, translation

from alerts import selectors
from command.org.models import Township


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
