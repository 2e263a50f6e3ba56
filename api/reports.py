"""Intake items: a grid officer's report or a call, ticket or visit the duty desk files (an
alert on the duty board at once, or an incident directly), the list of what became of them,
and one item with its caller (the phone whole only to the township's duty officers)."""

from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Router, Schema, Status

from api.common import Latitude, Longitude, Problem, request_actor, request_source
from command.org import policy
from command.org.models import Category, Grid, Township, User
from command.text import phone_masked
from intake.reports import intake_file
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
    # grid (a grid officer's own report) or, at the duty desk: phone, 12345, 12315, jiyu,
    # walk_in, other; the desk names its township.
    channel: str = GridReport.Channel.GRID
    township: str | None = None
    grid: str | None = None
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    photos: list[str] = []  # addresses returned by POST /photos
    caller_name: str = ""
    caller_phone: str = ""
    ticket: str = ""  # a hotline's own ticket number
    open_incident: bool = False  # the desk makes it an incident directly


class ReportOut(Schema):
    id: int
    channel: str
    category: str
    description: str
    grid: str | None
    created_at: datetime
    alert: int | None
    alert_status: str | None
    incident: int | None
    photos: list[str]
    caller_name: str
    # Masked (138****5678) except in one item's answer to the township's duty officers.
    caller_phone: str
    ticket: str


def _report_out(report: GridReport, *, whole_phone: bool = False) -> ReportOut:
    alert = report.alert
    return ReportOut(
        id=report.pk,
        channel=report.channel,
        category=report.category.code,
        description=report.description,
        grid=report.grid.code if report.grid else None,
        created_at=report.created_at,
        alert=alert.pk if alert else None,
        alert_status=alert.status if alert else None,
        incident=alert.incident_id if alert else None,
        photos=report.photos,
        caller_name=report.caller_name,
        caller_phone=report.caller_phone if whole_phone else phone_masked(report.caller_phone),
        ticket=report.external_id,
    )


@router.post("/reports", response={201: ReportOut, 403: Problem, 409: Problem})
def file_report(request: HttpRequest, body: ReportIn):
    """A grid officer's report, or a call, ticket or visit filed at the duty desk; it is an
    alert on the duty board at once (or, with ``open_incident``, an incident)."""
    user = request_actor(request)
    category = get_object_or_404(Category, code=body.category)
    grid = get_object_or_404(Grid, code=body.grid) if body.grid else None
    township = get_object_or_404(Township, code=body.township) if body.township else None
    filed = intake_file(
        actor=user,
        channel=body.channel,
        township=township,
        category=category,
        description=body.description,
        grid=grid,
        latitude=body.latitude,
        longitude=body.longitude,
        photos=body.photos,
        caller_name=body.caller_name,
        caller_phone=body.caller_phone,
        external_id=body.ticket,
        open_incident=body.open_incident,
        source=request_source(request),
    )
    report = visible_reports(user).filter(pk=filed.report.pk).first() or filed.report
    return Status(
        201, _report_out(report, whole_phone=policy.can_see_caller(user, report.township_id))
    )


@router.get("/reports", response=list[ReportOut])
def list_reports(request: HttpRequest):
    """A grid officer's own reports and what became of them; officers see their township's.
    Callers' phones are masked in the list."""
    return [_report_out(r) for r in visible_reports(request_actor(request))[:200]]


@router.get("/reports/{report_id}", response={200: ReportOut, 404: Problem})
def get_report(request: HttpRequest, report_id: int):
    """One intake item; the caller's phone whole for the township's duty officers (to call
    back), masked for everyone else."""
    user = request_actor(request)
    report = get_object_or_404(visible_reports(user), pk=report_id)
    return _report_out(report, whole_phone=policy.can_see_caller(user, report.township_id))
