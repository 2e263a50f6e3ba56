"""What the API's routers share: the caller and where it acts from, the incidents it may see,
the error body, bounded numbers, and the summons as every router shows it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from django.db.models import QuerySet
from django.http import HttpRequest
from ninja import Schema
from pydantic import Field

from command.org import policy
from command.org.models import User
from command.timeline.models import TimelineEntry
from incidents.models import Incident, Summons
from incidents.selectors import alerts_for_titles

# A place on Earth: NaN, infinities and out-of-range degrees are refused with 422 (stored, they
# made every later JSON document of the incident invalid and its webhooks fail).
Latitude = Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]
Longitude = Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]
# How many rows a list returns: 1 to 500 (a negative slice was a 500).
PageLimit = Annotated[int, Field(ge=1, le=500)]


def request_source(request: HttpRequest) -> str:
    """Where the caller acts from, for the timeline: the token marks API calls."""
    return getattr(request, "whistle_source", TimelineEntry.Source.WEB)


def request_actor(request: HttpRequest) -> User:
    return request.auth if isinstance(request.auth, User) else request.user  # type: ignore[return-value]


class Problem(Schema):
    detail: str
    code: str = ""


def visible_incidents(user: User) -> QuerySet[Incident]:
    return policy.incidents(
        user,
        Incident.objects.select_related("township", "category", "grid").prefetch_related(
            alerts_for_titles()
        ),
    )


class SummonsOut(Schema):
    id: int
    incident: int
    department: str
    status: str
    check_in_deadline: datetime
    checked_in_at: datetime | None
    overdue: bool
    escalation_level: int
    finish_deadline: datetime | None = None
    finish_overdue: bool = False
    returned_count: int = 0

    @staticmethod
    def from_summons(summons: Summons) -> SummonsOut:
        return SummonsOut(
            id=summons.pk,
            incident=summons.whistle.incident_id,
            department=summons.department.code,
            status=summons.status,
            check_in_deadline=summons.check_in_deadline,
            checked_in_at=summons.checked_in_at,
            overdue=summons.overdue,
            escalation_level=summons.escalation_level,
            finish_deadline=summons.finish_deadline,
            finish_overdue=summons.finish_overdue,
            returned_count=summons.returned_count,
        )
