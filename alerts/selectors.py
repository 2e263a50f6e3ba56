"""Read-only queries for alerts; views and consumers call these, never the ORM directly."""

from __future__ import annotations

from alerts.models import Alert


def board_alerts(*, township_id: int, limit: int = 50) -> list[Alert]:
    """Open alerts of a township, newest first (the board's queue)."""
    return list(
        Alert.objects.filter(township_id=township_id, status__in=Alert.OPEN_STATUSES)
        .select_related("category", "device", "grid")
        .order_by("-last_seen", "-id")[:limit]
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
