"""Incidents: open, read (as JSON, as CAP, as a timeline), the departments to summon, evidence,
resolve and close."""

from __future__ import annotations

from datetime import datetime

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from ninja import Query, Router, Schema, Status

from alerts.models import Alert
from alerts.titles import in_english
from api.common import (
    Latitude,
    Longitude,
    PageLimit,
    Problem,
    SummonsOut,
    request_actor,
    request_source,
    visible_incidents,
)
from command.org.models import Category, Grid, Township
from incidents import cap
from incidents import selectors as incident_selectors
from incidents.models import Incident, Summons
from incidents.services.incidents import (
    incident_add_evidence,
    incident_call_back,
    incident_close,
    incident_open,
    incident_reopen,
    incident_resolve,
)
from incidents.services.whistles import suggested_departments
from supervision import cases as case_library

router = Router(tags=["incidents"])


class TimelineOut(Schema):
    time: datetime
    subject_type: str
    subject_id: int
    action: str
    source: str
    actor: str | None
    before: dict | None
    after: dict | None


class EvidenceOut(Schema):
    kind: str
    url: str
    caption: str = ""


class IncidentOut(Schema):
    id: int
    township: str
    # As stored: as typed, or copied from the alert it was opened from (in Chinese); title_en
    # is the same in English (as typed when a person typed it).
    title: str
    title_en: str
    category: str
    severity: str
    status: str
    grid: str | None
    opened_at: datetime
    settled_level: str
    evidence: list[EvidenceOut]
    summonses: list[SummonsOut]
    description: str = ""
    latitude: float | None = None
    longitude: float | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    feedback: str = ""
    # 回访: satisfied | basic | unsatisfied, or "" before the callback.
    satisfaction: str = ""
    reopened_count: int = 0
    # Only with ?timeline=true: the incident as one document, for archives and other systems.
    timeline: list[TimelineOut] | None = None

    @staticmethod
    def from_incident(incident: Incident, summonses: list[Summons] | None = None) -> IncidentOut:
        """``summonses``: the incident's, when the caller fetched them for a whole page."""
        if summonses is None:
            summonses = list(
                Summons.objects.filter(whistle__incident=incident).select_related(
                    "whistle", "department"
                )
            )
        return IncidentOut(
            id=incident.pk,
            township=incident.township.code,
            title=incident.title,
            title_en=in_english(lambda: incident.display_title),
            category=incident.category.code,
            severity=incident.severity,
            status=incident.status,
            grid=incident.grid.code if incident.grid else None,
            opened_at=incident.opened_at,
            settled_level=incident.settled_level,
            evidence=[
                EvidenceOut(**{k: e.get(k, "") for k in ("kind", "url", "caption")})
                for e in incident.evidence
            ],
            summonses=[SummonsOut.from_summons(s) for s in summonses],
            description=incident.description,
            latitude=incident.latitude,
            longitude=incident.longitude,
            resolved_at=incident.resolved_at,
            closed_at=incident.closed_at,
            feedback=incident.feedback,
            satisfaction=incident.satisfaction,
            reopened_count=incident.reopened_count,
        )


class IncidentIn(Schema):
    township: str
    category: str
    severity: str
    title: str
    description: str = ""
    grid: str | None = None
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    alerts: list[int] = []


class CloseIn(Schema):
    feedback: str
    settled_level: str


class ReopenIn(Schema):
    reason: str


class CallbackIn(Schema):
    satisfaction: str  # satisfied | basic | unsatisfied
    note: str = ""
    reopen: bool = False  # only with "unsatisfied", and only the township's officers


class EvidenceIn(Schema):
    url: str
    caption: str = ""
    kind: str = "photo"


class DepartmentOut(Schema):
    code: str
    name: str


class IncidentPage(Schema):
    items: list[IncidentOut]
    # The next page (the same filters, after the last item), null on the last page.
    next: str | None


class IncidentFilters(Schema):
    """The case library's filters (``supervision.cases``), as its page's query string."""

    q: str | None = None  # in title, description or feedback
    category: str | None = None  # category code
    grid: str | None = None  # grid code
    township: str | None = None  # township code
    department: str | None = None  # code of a department summoned to it
    status: str | None = None  # open|dispatched|on_site|resolved|closed, or active
    start: str | None = None  # opened on or after this day (YYYY-MM-DD, township time)
    end: str | None = None  # opened on or before this day
    level: str | None = None  # 631: grid|township|county, or none
    satisfaction: str | None = None  # satisfied|basic|unsatisfied, or none
    reopened: str | None = None  # yes|no
    after: str | None = None  # the cursor of the page before (from ``next``)


@router.get("/incidents", response={200: IncidentPage, 400: Problem})
def list_incidents(request: HttpRequest, filters: Query[IncidentFilters], limit: PageLimit = 100):
    """The case library: incidents in scope matching the filters, newest first, ``limit`` at a
    time; ``next`` is the address of the page after."""
    user = request_actor(request)
    form = case_library.CaseFilterForm(request.GET, user=user)
    if not form.is_valid():
        return Status(400, {"detail": form.error_text(), "code": "bad_filter"})
    page = case_library.case_page(user=user, filters=form.filters(), limit=limit)
    incidents = [row.incident for row in page.rows]
    summonses: dict[int, list[Summons]] = {i.pk: [] for i in incidents}
    for summons in Summons.objects.filter(whistle__incident__in=incidents).select_related(
        "whistle", "department"
    ):
        summonses[summons.whistle.incident_id].append(summons)
    following = None
    if page.next_cursor:
        query = request.GET.copy()
        query["after"] = page.next_cursor
        following = request.build_absolute_uri(f"{request.path}?{query.urlencode()}")
    return IncidentPage(
        items=[IncidentOut.from_incident(i, summonses[i.pk]) for i in incidents], next=following
    )


@router.post("/incidents", response={201: IncidentOut, 403: Problem, 404: Problem, 409: Problem})
def open_incident(request: HttpRequest, body: IncidentIn):
    user = request_actor(request)
    township = get_object_or_404(Township, code=body.township)
    category = get_object_or_404(Category, code=body.category)
    grid = get_object_or_404(Grid, code=body.grid, township=township) if body.grid else None
    alerts = list(Alert.objects.filter(pk__in=body.alerts, township=township))
    if len(alerts) != len(set(body.alerts)):
        return Status(
            404, {"detail": "An alert does not exist in this township.", "code": "not_found"}
        )
    incident = incident_open(
        actor=user,
        township=township,
        category=category,
        severity=body.severity,
        title=body.title,
        description=body.description,
        grid=grid,
        latitude=body.latitude,
        longitude=body.longitude,
        alerts=alerts,
        source=request_source(request),
    )
    return Status(201, IncidentOut.from_incident(incident))


@router.get("/incidents/{incident_id}", response=IncidentOut)
def get_incident(request: HttpRequest, incident_id: int, timeline: bool = False):
    """The incident with every summons; with ``timeline=true`` also every step, in order."""
    incident = get_object_or_404(visible_incidents(request_actor(request)), pk=incident_id)
    found = IncidentOut.from_incident(incident)
    if timeline:
        found.timeline = _timeline(incident)
    return found


@router.get(
    "/incidents/{incident_id}/cap",
    openapi_extra={
        "responses": {200: {"description": "CAP 1.2 alert", "content": {"application/cap+xml": {}}}}
    },
)
def incident_cap(request: HttpRequest, incident_id: int):
    """The incident as an OASIS CAP 1.2 alert (Restricted scope), in Chinese and English."""
    incident = get_object_or_404(
        visible_incidents(request_actor(request)).select_related("township", "category", "grid"),
        pk=incident_id,
    )
    body = cap.incident_cap(incident, absolute=request.build_absolute_uri)
    return HttpResponse(body, content_type=f"{cap.CONTENT_TYPE}; charset=utf-8")


@router.get("/incidents/{incident_id}/suggested-departments", response=list[DepartmentOut])
def suggested(request: HttpRequest, incident_id: int):
    incident = get_object_or_404(visible_incidents(request_actor(request)), pk=incident_id)
    return [
        DepartmentOut(code=d.code, name=d.display_name)
        for d in suggested_departments(category=incident.category)
    ]


@router.post("/incidents/{incident_id}/resolve", response={200: IncidentOut, 409: Problem})
def resolve_incident(request: HttpRequest, incident_id: int):
    user = request_actor(request)
    incident = get_object_or_404(visible_incidents(user), pk=incident_id)
    incident = incident_resolve(actor=user, incident=incident, source=request_source(request))
    return IncidentOut.from_incident(incident)


@router.post("/incidents/{incident_id}/close", response={200: IncidentOut, 409: Problem})
def close_incident(request: HttpRequest, incident_id: int, body: CloseIn):
    user = request_actor(request)
    incident = get_object_or_404(visible_incidents(user), pk=incident_id)
    incident = incident_close(
        actor=user,
        incident=incident,
        feedback=body.feedback,
        settled_level=body.settled_level,
        source=request_source(request),
    )
    return IncidentOut.from_incident(incident)


@router.post("/incidents/{incident_id}/reopen", response={200: IncidentOut, 409: Problem})
def reopen_incident(request: HttpRequest, incident_id: int, body: ReopenIn):
    """Back to work within ``WHISTLE_REOPEN_DAYS`` of closing."""
    user = request_actor(request)
    incident = get_object_or_404(visible_incidents(user), pk=incident_id)
    incident = incident_reopen(
        actor=user, incident=incident, reason=body.reason, source=request_source(request)
    )
    return IncidentOut.from_incident(incident)


@router.post("/incidents/{incident_id}/callback", response={200: IncidentOut, 409: Problem})
def call_back(request: HttpRequest, incident_id: int, body: CallbackIn):
    """回访: the satisfaction of the person who raised it, after closing."""
    user = request_actor(request)
    incident = get_object_or_404(visible_incidents(user), pk=incident_id)
    incident = incident_call_back(
        actor=user,
        incident=incident,
        satisfaction=body.satisfaction,
        note=body.note,
        reopen=body.reopen,
        source=request_source(request),
    )
    return IncidentOut.from_incident(incident)


@router.post("/incidents/{incident_id}/evidence", response={200: IncidentOut, 409: Problem})
def add_evidence(request: HttpRequest, incident_id: int, body: EvidenceIn):
    user = request_actor(request)
    incident = get_object_or_404(visible_incidents(user), pk=incident_id)
    incident = incident_add_evidence(
        actor=user,
        incident=incident,
        url=body.url,
        caption=body.caption,
        kind=body.kind,
        source=request_source(request),
    )
    return IncidentOut.from_incident(incident)


@router.get("/incidents/{incident_id}/timeline", response=list[TimelineOut])
def incident_timeline(request: HttpRequest, incident_id: int):
    return _timeline(get_object_or_404(visible_incidents(request_actor(request)), pk=incident_id))


def _timeline(incident: Incident) -> list[TimelineOut]:
    return [
        TimelineOut(
            time=e.time,
            subject_type=e.subject_type,
            subject_id=e.subject_id,
            action=e.action,
            source=e.source,
            actor=e.actor.username if e.actor else None,
            before=e.before,
            after=e.after,
        )
        for e in incident_selectors.incident_timeline(incident=incident)
    ]
