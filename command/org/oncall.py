"""Who is reached (督办 reaching people): a department's on-call and backup at a moment (its
weekly rota, with overrides for leave), its head, a township's supervisors, the district's
supervisors and discipline office (纪委)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db.models import Q, QuerySet

from command.org.models import (
    Department,
    OnCallOverride,
    OnCallShift,
    Township,
    User,
    township_zone,
)


@dataclass(frozen=True)
class OnCall:
    primary: User | None
    backup: User | None
    # Where it came from, for the timeline: "override: <reason>", "rota" or "".
    source: str = ""


def _covers(shift: OnCallShift, local: datetime) -> bool:
    """Whether the weekly shift covers this local moment. A shift past midnight (ends not
    after starts; equal is a whole day) belongs to the weekday it starts on."""
    days = shift.weekdays or [1, 2, 3, 4, 5, 6, 7]
    now = local.time()
    weekday = local.isoweekday()
    if shift.starts < shift.ends:
        return weekday in days and shift.starts <= now < shift.ends
    if now >= shift.starts:
        return weekday in days
    yesterday = 7 if weekday == 1 else weekday - 1
    return now < shift.ends and yesterday in days


def on_call(department: Department, at: datetime) -> OnCall:
    """The department's on-call (A) and backup (B) at ``at``: an override covering the moment,
    else the rota's shift on the township's clock; nobody when neither covers it."""
    override = (
        OnCallOverride.objects.filter(department=department, starts_at__lte=at, ends_at__gt=at)
        .select_related("primary", "backup")
        .order_by("-starts_at", "-pk")
        .first()
    )
    if override is not None:
        return OnCall(override.primary, override.backup, "override")
    # A district department keeps the district's clock, the deployment's own zone.
    zone = township_zone(
        department.township.time_zone if department.township else settings.TIME_ZONE
    )
    local = at.astimezone(zone)
    shifts = OnCallShift.objects.filter(department=department).select_related("primary", "backup")
    for shift in sorted(shifts, key=lambda s: (s.starts, s.pk)):
        if _covers(shift, local):
            return OnCall(shift.primary, shift.backup, "rota")
    return OnCall(None, None)


def _supervisors() -> QuerySet[User]:
    return User.objects.filter(is_active=True, role=User.Role.SUPERVISOR)


def township_supervisors(township: Township) -> list[User]:
    return list(_supervisors().filter(township=township).order_by("pk"))


def _over(township: Township) -> Q:
    # Supervisors above the township: its district's, and those of every district (neither
    # township nor district), not another district's.
    return Q(township__isnull=True) & (Q(district__isnull=True) | Q(district=township.district_id))


def district_supervisors(township: Township) -> list[User]:
    """The supervisors of the township's district (its district's and the city-wide ones),
    not the discipline office, which its own step pages."""
    return list(_supervisors().filter(_over(township), discipline=False).order_by("pk"))


def discipline_office(township: Township) -> list[User]:
    """The discipline office's supervisors over the township (its own, its district's, the
    city's)."""
    return list(
        _supervisors()
        .filter(Q(township=township) | _over(township), discipline=True)
        .order_by("pk")
    )
