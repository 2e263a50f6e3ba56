"""Read-only queries for incidents and summons."""

from __future__ import annotations

from command.incidents.models import Summons
from command.org.models import Department, User


def department_for_console(*, user: User, code: str) -> Department | None:
    """The department whose console ``user`` may open: its own members (and administrators)."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return None
    department = Department.objects.filter(code=code).first()
    if department is None:
        return None
    if user.is_superuser or (
        user.role == User.Role.DEPARTMENT_MEMBER and user.department_id == department.pk
    ):
        return department
    return None


def console_summonses(*, department_id: int) -> list[Summons]:
    """A department's open summons, the most urgent deadline first."""
    return list(
        Summons.objects.filter(department_id=department_id, status__in=Summons.OPEN_STATUSES)
        .select_related(
            "whistle__incident__category",
            "whistle__incident__grid",
            "whistle__incident__township",
        )
        .order_by("check_in_deadline")
    )


def summons_for_console(*, summons_id: int, department_id: int) -> Summons | None:
    return (
        Summons.objects.filter(pk=summons_id, department_id=department_id)
        .select_related(
            "whistle__incident__category",
            "whistle__incident__grid",
            "whistle__incident__township",
        )
        .first()
    )


def board_incidents(*, township_id: int, limit: int = 20) -> list:
    """Incidents still being handled, newest first, each with its summonses."""
    from django.db.models import Prefetch

    from command.incidents.models import Incident

    return list(
        Incident.objects.filter(township_id=township_id, status__in=Incident.ACTIVE_STATUSES)
        .select_related("category", "grid", "township")
        .prefetch_related(
            Prefetch(
                "whistles__summonses",
                queryset=Summons.objects.select_related("department").order_by("department__code"),
            )
        )
        .order_by("-opened_at")[:limit]
    )


def board_figures(*, township_id: int) -> dict[str, object]:
    """Today's figures for the board's strip: alerts, incidents, on-time check-in rate,
    closure rate, devices online."""
    from datetime import datetime

    from django.utils import timezone

    from alerts.models import Alert
    from command.incidents.models import Incident
    from command.org.models import Device

    start = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    assert isinstance(start, datetime)
    summonses = Summons.objects.filter(
        whistle__incident__township_id=township_id, whistle__blown_at__gte=start
    )
    checked = summonses.exclude(checked_in_at=None)
    on_time = sum(
        1
        for s in checked.only("checked_in_at", "check_in_deadline")
        if s.checked_in_at <= s.check_in_deadline
    )
    incidents = Incident.objects.filter(township_id=township_id, opened_at__gte=start)
    devices = Device.objects.filter(township_id=township_id)
    incident_count = incidents.count()
    return {
        "alerts": Alert.objects.filter(township_id=township_id, first_seen__gte=start).count(),
        "incidents": incident_count,
        "on_time": round(100 * on_time / checked.count()) if checked.exists() else None,
        "closed": round(
            100 * incidents.filter(status=Incident.Status.CLOSED).count() / incident_count
        )
        if incident_count
        else None,
        "online": devices.filter(online=True).count(),
        "devices": devices.count(),
    }


def incident_timeline(*, incident) -> list:
    """Every timeline entry of an incident in order: its own, its whistles', its summonses'
    and those of the alerts it was opened from or absorbed (their repeats included)."""
    from django.db.models import Q
    from django.db.models.expressions import RawSQL

    from command.incidents.models import TIMELINE_TIE_RANK, TimelineEntry

    whistles = list(incident.whistles.values_list("pk", flat=True))
    summonses = list(
        Summons.objects.filter(whistle__incident=incident).values_list("pk", flat=True)
    )
    alerts = list(incident.alerts.values_list("pk", flat=True))
    return list(
        TimelineEntry.objects.filter(
            Q(subject_type="incident", subject_id=incident.pk)
            | Q(subject_type="whistle", subject_id__in=whistles)
            | Q(subject_type="summons", subject_id__in=summonses)
            | Q(subject_type="alert", subject_id__in=alerts)
        )
        .select_related("actor")
        .annotate(_tie=RawSQL(TIMELINE_TIE_RANK, []))
        .order_by("time", "_tie", "subject_id", "action")
    )
