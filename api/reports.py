"""Grid officers' reports: filing one (an alert on the duty board at once) and the list of
what became of them."""

from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Router, Schema, Status

from api.common import Latitude, Longitude, Problem, request_actor
from command.org import policy
from command.org.models import Category, Grid, User
from intake.reports import report_file
from streams.models import GridReport

router = Router(tags=["reports"])


def visible_reports(user: User) -> QuerySet[GridReport]:
    queryset = GridReport.objects.select_related(
        "category", "grid", "township", "alert__incident"
    ).order_by("-created_at")
    return policy.reports(user, queryset)


class ReportIn(Schema):
    category: str
    description: str
    grid: str | None = None
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    photos: list[str] = []  # addresses returned by POST /photos


class ReportOut(Schema):
    id: int
    category: str
    description: str
    grid: str | None
    created_at: datetime
    alert: int | None
    alert_status: str | None
    incident: int | None
    photos: list[str]


def _report_out(report: GridReport) -> ReportOut:
    alert = report.alert
    return ReportOut(
        id=report.pk,
        category=report.category.code,
        description=report.description,
        grid=report.grid.code if report.grid else None,
        created_at=report.created_at,
        alert=alert.pk if alert else None,
        alert_status=alert.status if alert else None,
        incident=alert.incident_id if alert else None,
        photos=report.photos,
    )


@router.post("/reports", response={201: ReportOut, 403: Problem, 409: Problem})
def file_report(request: HttpRequest, body: ReportIn):
    """A grid officer's report; it is an alert on the duty board at once."""
    user = request_actor(request)
    category = get_object_or_404(Category, code=body.category)
    grid = get_object_or_404(Grid, code=body.grid) if body.grid else None
    report = report_file(
        reporter=user,
        category=category,
        description=body.description,
        grid=grid,
        latitude=body.latitude,
        longitude=body.longitude,
        photos=body.photos,
    )
    return Status(201, _report_out(report))


@router.get("/reports", response=list[ReportOut])
def list_reports(request: HttpRequest):
    """A grid officer's own reports and what became of them; officers see their township's."""
    return [_report_out(r) for r in visible_reports(request_actor(request))[:200]]
