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
        .select_related("whistle__incident__category", "whistle__incident__grid")
        .order_by("check_in_deadline")
    )


def summons_for_console(*, summons_id: int, department_id: int) -> Summons | None:
    return (
        Summons.objects.filter(pk=summons_id, department_id=department_id)
        .select_related("whistle__incident__category", "whistle__incident__grid")
        .first()
    )
