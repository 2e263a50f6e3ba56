"""Read-only queries for alerts; views and consumers call these, never the ORM directly."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Q

from alerts.models import Alert


def board_alerts(
    *, township_id: int, limit: int = 50, before: tuple[datetime, int] | None = None
) -> list[Alert]:
    """Open alerts of a township, newest first (the board's queue); ``before`` (last_seen, id)
    of the last alert a page showed gives the next page."""
    alerts = Alert.objects.filter(township_id=township_id, status__in=Alert.OPEN_STATUSES)
    if before is not None:
        alerts = alerts.filter(_older_than(before))
    return list(
        alerts.select_related("category", "device", "grid").order_by("-last_seen", "-id")[:limit]
    )


def _older_than(before: tuple[datetime, int]) -> Q:
    last_seen, pk = before
    return Q(last_seen__lt=last_seen) | Q(last_seen=last_seen, pk__lt=pk)


def open_alert_count_before(*, township_id: int, before: tuple[datetime, int]) -> int:
    """How many open alerts come after ``before`` in the board's order (the "N more")."""
    return (
        Alert.objects.filter(township_id=township_id, status__in=Alert.OPEN_STATUSES)
        .filter(_older_than(before))
        .count()
    )


def open_alert_count(*, township_id: int) -> int:
    return Alert.objects.filter(township_id=township_id, status__in=Alert.OPEN_STATUSES).count()


def alert_for_board(*, alert_id: int, township_id: int) -> Alert | None:
    """One alert, only if it belongs to the township whose board asks."""
    return (
        Alert.objects.select_related("category", "device", "grid")
        .filter(pk=alert_id, township_id=township_id)
        .first()
    )
