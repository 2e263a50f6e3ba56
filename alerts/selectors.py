"""Read-only queries for alerts; views and consumers call these, never the ORM directly."""

from __future__ import annotations

import math
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
        # The township too: each row carries its incident_body (the township's code).
        alerts.select_related("category", "device", "grid", "township").order_by(
            "-last_seen", "-id"
        )[:limit]
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
        Alert.objects.select_related("category", "device", "grid", "township")
        .filter(pk=alert_id, township_id=township_id)
        .first()
    )


# Two places closer than this are "the same place" for a duplicate call.
SAME_PLACE_METRES = 300.0
_EARTH_METRES = 6_371_000.0


def metres_between(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine); plenty for a few hundred metres."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi, dlmb = phi2 - phi1, math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * _EARTH_METRES * math.asin(min(1.0, math.sqrt(a)))


def alert_duplicate_of(
    *,
    township_id: int,
    category_code: str,
    since: datetime,
    grid_id: int | None = None,
    latitude: float | None = None,
    longitude: float | None = None,
) -> int | None:
    """The open alert a new call is possibly a repeat of: the township's, of the same category,
    first seen since ``since``, in the same grid or (when both have a position) within
    ``SAME_PLACE_METRES``. The earliest such one, so every repeat points at the first call."""
    candidates = (
        Alert.objects.filter(
            township_id=township_id,
            category__code=category_code,
            status__in=Alert.OPEN_STATUSES,
            first_seen__gte=since,
        )
        .select_related("device", "report")
        .order_by("first_seen", "pk")[:200]
    )
    here = (latitude, longitude) if latitude is not None and longitude is not None else None
    for alert in candidates:
        if grid_id is not None and alert.grid_id == grid_id:
            return alert.pk
        if here is None:
            continue
        there = _position(alert)
        if there is not None and metres_between(*here, *there) <= SAME_PLACE_METRES:
            return alert.pk
    return None


def _position(alert: Alert) -> tuple[float, float] | None:
    report = getattr(alert, "report", None)
    for holder in (report, alert.device):
        if holder is not None and holder.latitude is not None and holder.longitude is not None:
            return holder.latitude, holder.longitude
    return None


def district_alerts(*, township_ids: list[int], limit: int = 30) -> list[Alert]:
    """The newest open alerts across a district's townships (the district board's queue)."""
    return list(
        Alert.objects.filter(township_id__in=township_ids, status__in=Alert.OPEN_STATUSES)
        .select_related("category", "device", "grid", "township")
        .order_by("-last_seen", "-id")[:limit]
    )
