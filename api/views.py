"""The JSON API (`/api/v1/`, OpenAPI at `/api/v1/openapi.json`): every action a person can take,
for systems (token: ``Authorization: Bearer <token>``) and for the browser (session + CSRF).

Views stay thin: they scope, call a service, and map its refusals to precise answers — 404 for
what the caller may not see, 403 for what it may see but not do, 409 for a transition the
current state does not allow, 422 for a malformed body.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, URLResolver
from django.utils.translation import gettext as _
from ninja import File, NinjaAPI, Schema, Status, UploadedFile
from ninja.security import HttpBearer, django_auth
from pydantic import Field

from alerts import services as alert_services
from alerts.models import Alert
from command.errors import ActionForbidden, TransitionNotAllowed
from command.org import policy
from command.org.models import Category, Department, Grid, Township, User
from command.org.tokens import api_token_user
from command.timeline.models import TimelineEntry
from incidents import selectors as incident_selectors
from incidents.models import Incident, Summons, Whistle
from incidents.services.incidents import (
    incident_add_evidence,
    incident_close,
    incident_open,
    incident_resolve,
)
from incidents.services.summonses import (
    summons_acknowledge,
    summons_check_in,
    summons_done,
    summons_release,
)
from incidents.services.whistles import (
    SummonedDepartment,
    suggested_departments,
    whistle_blow,
    whistle_joint_confirm,
    whistle_joint_decline,
)

# A place on Earth: NaN, infinities and out-of-range degrees are refused with 422 (stored, they
# made every later JSON document of the incident invalid and its webhooks fail).
Latitude = Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]
Longitude = Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]
# How many rows a list returns: 1 to 500 (a negative slice was a 500).
PageLimit = Annotated[int, Field(ge=1, le=500)]


class TokenAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> User | None:
        user = api_token_user(token)
        if user is not None:
            request.user = user
            request.whistle_source = TimelineEntry.Source.API  # type: ignore[attr-defined]
        return user


api = NinjaAPI(
    title="Whistle API",
    version="1",
    description="Township command platform: alerts, incidents, whistles and summons.",
    # Session auth is cookie auth: django-ninja checks CSRF for it; a bearer token needs none.
    auth=[TokenAuth(), django_auth],
    urls_namespace="api",
    # The interactive page loads Swagger UI from a CDN, which a closed network cannot reach.
    docs_url=None,
)


def _source(request: HttpRequest) -> str:
    return getattr(request, "whistle_source", TimelineEntry.Source.WEB)


def _actor(request: HttpRequest) -> User:
    return request.auth if isinstance(request.auth, User) else request.user  # type: ignore[return-value]


# --- errors -----------------------------------------------------------------------------------


class Problem(Schema):
    detail: str
    code: str = ""


@api.exception_handler(TransitionNotAllowed)
def _conflict(request: HttpRequest, exc: TransitionNotAllowed):
    return api.create_response(request, {"detail": str(exc), "code": exc.code}, status=409)


@api.exception_handler(ActionForbidden)
def _forbidden(request: HttpRequest, exc: ActionForbidden):
    return api.create_response(request, {"detail": str(exc), "code": "forbidden"}, status=403)


@api.exception_handler(Alert.DoesNotExist)
def _alert_missing(request: HttpRequest, exc: Exception):
    return api.create_response(request, {"detail": "Not found.", "code": "not_found"}, status=404)


# --- scoping ----------------------------------------------------------------------------------


def visible_incidents(user: User):
    return policy.incidents(user, Incident.objects.select_related("township", "category", "grid"))


def visible_reports(user: User):
    from streams.models import GridReport

    queryset = GridReport.objects.select_related(
        "category", "grid", "township", "alert__incident"
    ).order_by("-created_at")
    return policy.reports(user, queryset)


def visible_summonses(user: User):
    return policy.summonses(
        user, Summons.objects.select_related("whistle__incident__township", "department")
    )


# --- schemas ----------------------------------------------------------------------------------


class AlertOut(Schema):
    id: int
    township: str
    category: str | None
    severity: str
    status: str
    title: str
    device: str | None
    count: int
    first_seen: datetime
    last_seen: datetime

    @staticmethod
    def from_alert(alert: Alert) -> AlertOut:
        return AlertOut(
            id=alert.pk,
            township=alert.township.code,
            category=alert.category.code if alert.category else None,
            severity=alert.severity,
            status=alert.status,
            title=alert.title,
            device=alert.device.code if alert.device else None,
            count=alert.count,
            first_seen=alert.first_seen,
            last_seen=alert.last_seen,
        )


class DismissIn(Schema):
    reason: str


class SummonsOut(Schema):
    id: int
    incident: int
    department: str
    status: str
    check_in_deadline: datetime
    checked_in_at: datetime | None
    overdue: bool
    escalation_level: int

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
        )


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
    title: str
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
    # Only with ?timeline=true: the incident as one document, for archives and other systems.
    timeline: list[TimelineOut] | None = None

    @staticmethod
    def from_incident(incident: Incident) -> IncidentOut:
        summonses = Summons.objects.filter(whistle__incident=incident).select_related(
            "whistle", "department"
        )
        return IncidentOut(
            id=incident.pk,
            township=incident.township.code,
            title=incident.title,
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


class SummonedIn(Schema):
    department: str
    reason: str = ""


class WhistleIn(Schema):
    kind: str
    purpose: str
    departments: list[SummonedIn]
    joint_township: str | None = None
    note: str = ""


class WhistleOut(Schema):
    id: int
    incident: int
    kind: str
    purpose: str
    blown_at: datetime
    summonses: list[SummonsOut]
    # A joint whistle (联合哨): the other township, whether it confirmed ("pending",
    # "confirmed", "declined"), and its departments still waiting for that.
    joint_township: str | None = None
    joint_status: str = ""
    awaiting: list[str] = []


class JointDeclineIn(Schema):
    reason: str


class CheckInIn(Schema):
    latitude: Latitude | None = None
    longitude: Longitude | None = None


class DoneIn(Schema):
    note: str = ""
    photos: list[str] = []  # photos of the finished work: from POST /photos, or http(s)


class ReleaseIn(Schema):
    reason: str


class CloseIn(Schema):
    feedback: str
    settled_level: str


class DepartmentOut(Schema):
    code: str
    name: str


# --- alerts -----------------------------------------------------------------------------------


@api.get("/alerts", response=list[AlertOut], tags=["alerts"])
def list_alerts(request: HttpRequest, status: str = "open", limit: PageLimit = 100):
    queryset = policy.alerts(
        _actor(request), Alert.objects.select_related("township", "category", "device")
    )
    if status == "open":
        queryset = queryset.filter(status__in=Alert.OPEN_STATUSES)
    elif status != "all":
        queryset = queryset.filter(status=status)
    return [AlertOut.from_alert(a) for a in queryset.order_by("-last_seen")[: min(limit, 500)]]


def _officer_townships(user: User) -> set[int] | None:
    """Where ``user`` acts on alerts; an alert elsewhere answers 404 (the service's scope)."""
    townships = policy.command_township_ids(user)
    if townships is not None and not townships:
        raise ActionForbidden(_("Only duty officers act on alerts."))
    return townships


@api.post("/alerts/{alert_id}/acknowledge", response={200: AlertOut, 409: Problem}, tags=["alerts"])
def acknowledge_alert(request: HttpRequest, alert_id: int):
    user = _actor(request)
    alert = alert_services.alert_acknowledge(
        alert_id=alert_id,
        actor_id=user.pk,
        township_ids=_officer_townships(user),
        source=_source(request),
    )
    return AlertOut.from_alert(alert)


@api.post("/alerts/{alert_id}/dismiss", response={200: AlertOut, 409: Problem}, tags=["alerts"])
def dismiss_alert(request: HttpRequest, alert_id: int, body: DismissIn):
    user = _actor(request)
    alert = alert_services.alert_dismiss(
        alert_id=alert_id,
        actor_id=user.pk,
        township_ids=_officer_townships(user),
        reason=body.reason,
        source=_source(request),
    )
    return AlertOut.from_alert(alert)


class MergeIn(Schema):
    into: int


@api.post("/alerts/{alert_id}/merge", response={200: AlertOut, 409: Problem}, tags=["alerts"])
def merge_alert(request: HttpRequest, alert_id: int, body: MergeIn):
    """Fold this alert into another open one (``into``); the one kept is returned."""
    user = _actor(request)
    kept = alert_services.alert_merge(
        alert_id=alert_id,
        into_id=body.into,
        actor_id=user.pk,
        township_ids=_officer_townships(user),
        source=_source(request),
    )
    return AlertOut.from_alert(kept)


# --- incidents --------------------------------------------------------------------------------


@api.post(
    "/incidents",
    response={201: IncidentOut, 403: Problem, 404: Problem, 409: Problem},
    tags=["incidents"],
)
def open_incident(request: HttpRequest, body: IncidentIn):
    user = _actor(request)
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
        source=_source(request),
    )
    return Status(201, IncidentOut.from_incident(incident))


@api.get("/incidents/{incident_id}", response=IncidentOut, tags=["incidents"])
def get_incident(request: HttpRequest, incident_id: int, timeline: bool = False):
    """The incident with every summons; with ``timeline=true`` also every step, in order."""
    incident = get_object_or_404(visible_incidents(_actor(request)), pk=incident_id)
    found = IncidentOut.from_incident(incident)
    if timeline:
        found.timeline = _timeline(incident)
    return found


@api.get(
    "/incidents/{incident_id}/cap",
    tags=["incidents"],
    openapi_extra={
        "responses": {200: {"description": "CAP 1.2 alert", "content": {"application/cap+xml": {}}}}
    },
)
def incident_cap(request: HttpRequest, incident_id: int):
    """The incident as an OASIS CAP 1.2 alert (Restricted scope), in Chinese and English."""
    from incidents import cap

    incident = get_object_or_404(
        visible_incidents(_actor(request)).select_related("township", "category", "grid"),
        pk=incident_id,
    )
    body = cap.incident_cap(incident, absolute=request.build_absolute_uri)
    return HttpResponse(body, content_type=f"{cap.CONTENT_TYPE}; charset=utf-8")


@api.get(
    "/incidents/{incident_id}/suggested-departments",
    response=list[DepartmentOut],
    tags=["incidents"],
)
def suggested(request: HttpRequest, incident_id: int):
    incident = get_object_or_404(visible_incidents(_actor(request)), pk=incident_id)
    return [
        DepartmentOut(code=d.code, name=d.display_name)
        for d in suggested_departments(category=incident.category)
    ]


@api.post(
    "/incidents/{incident_id}/whistles",
    response={201: WhistleOut, 403: Problem, 404: Problem, 409: Problem},
    tags=["incidents"],
)
def blow_whistle(request: HttpRequest, incident_id: int, body: WhistleIn):
    user = _actor(request)
    incident = get_object_or_404(visible_incidents(user), pk=incident_id)
    departments = {
        d.code: d
        for d in Department.objects.filter(code__in=[s.department for s in body.departments])
    }
    missing = [s.department for s in body.departments if s.department not in departments]
    if missing:
        detail = f"Unknown departments: {', '.join(missing)}"
        return Status(404, {"detail": detail, "code": "not_found"})
    joint = get_object_or_404(Township, code=body.joint_township) if body.joint_township else None
    whistle = whistle_blow(
        actor=user,
        incident=incident,
        kind=body.kind,
        purpose=body.purpose,
        departments=[
            SummonedDepartment(departments[s.department], s.reason) for s in body.departments
        ],
        joint_township=joint,
        note=body.note,
        source=_source(request),
    )
    return Status(201, _whistle_out(whistle))


def _whistle_out(whistle: Whistle) -> WhistleOut:
    waiting = [p["department"] for p in whistle.joint_pending]
    return WhistleOut(
        joint_township=whistle.joint_township.code if whistle.joint_township else None,
        joint_status=whistle.joint_status,
        awaiting=list(Department.objects.filter(pk__in=waiting).values_list("code", flat=True)),
        id=whistle.pk,
        incident=whistle.incident_id,
        kind=whistle.kind,
        purpose=whistle.purpose,
        blown_at=whistle.blown_at,
        summonses=[
            SummonsOut.from_summons(s)
            for s in whistle.summonses.select_related("whistle", "department")
        ],
    )


def _joint_whistle(request: HttpRequest, whistle_id: int) -> Whistle:
    visible = visible_incidents(_actor(request))
    return get_object_or_404(
        Whistle.objects.select_related("joint_township"),
        pk=whistle_id,
        incident__in=visible.values("pk"),
    )


@api.get("/whistles/joint-pending", response=list[WhistleOut], tags=["incidents"])
def joint_pending(request: HttpRequest):
    """Joint whistles another township blew with the caller's, waiting for its confirmation."""
    user = _actor(request)
    townships = policy.command_township_ids(user)
    queryset = Whistle.objects.filter(joint_status=Whistle.JointStatus.PENDING).select_related(
        "joint_township"
    )
    if townships is not None:
        queryset = queryset.filter(joint_township_id__in=townships)
    return [_whistle_out(w) for w in queryset.order_by("blown_at")[:200]]


@api.post(
    "/whistles/{whistle_id}/joint/confirm",
    response={200: WhistleOut, 403: Problem, 404: Problem, 409: Problem},
    tags=["incidents"],
)
def confirm_joint(request: HttpRequest, whistle_id: int):
    """The other township confirms a joint whistle: its departments are summoned now."""
    whistle = whistle_joint_confirm(
        actor=_actor(request), whistle=_joint_whistle(request, whistle_id), source=_source(request)
    )
    return _whistle_out(whistle)


@api.post(
    "/whistles/{whistle_id}/joint/decline",
    response={200: WhistleOut, 403: Problem, 404: Problem, 409: Problem},
    tags=["incidents"],
)
def decline_joint(request: HttpRequest, whistle_id: int, body: JointDeclineIn):
    whistle = whistle_joint_decline(
        actor=_actor(request),
        whistle=_joint_whistle(request, whistle_id),
        reason=body.reason,
        source=_source(request),
    )
    return _whistle_out(whistle)


@api.post(
    "/incidents/{incident_id}/resolve",
    response={200: IncidentOut, 409: Problem},
    tags=["incidents"],
)
def resolve_incident(request: HttpRequest, incident_id: int):
    user = _actor(request)
    incident = get_object_or_404(visible_incidents(user), pk=incident_id)
    incident = incident_resolve(actor=user, incident=incident, source=_source(request))
    return IncidentOut.from_incident(incident)


@api.post(
    "/incidents/{incident_id}/close",
    response={200: IncidentOut, 409: Problem},
    tags=["incidents"],
)
def close_incident(request: HttpRequest, incident_id: int, body: CloseIn):
    user = _actor(request)
    incident = get_object_or_404(visible_incidents(user), pk=incident_id)
    incident = incident_close(
        actor=user,
        incident=incident,
        feedback=body.feedback,
        settled_level=body.settled_level,
        source=_source(request),
    )
    return IncidentOut.from_incident(incident)


class EvidenceIn(Schema):
    url: str
    caption: str = ""
    kind: str = "photo"


@api.post(
    "/incidents/{incident_id}/evidence",
    response={200: IncidentOut, 409: Problem},
    tags=["incidents"],
)
def add_evidence(request: HttpRequest, incident_id: int, body: EvidenceIn):
    user = _actor(request)
    incident = get_object_or_404(visible_incidents(user), pk=incident_id)
    incident = incident_add_evidence(
        actor=user,
        incident=incident,
        url=body.url,
        caption=body.caption,
        kind=body.kind,
        source=_source(request),
    )
    return IncidentOut.from_incident(incident)


@api.get("/incidents/{incident_id}/timeline", response=list[TimelineOut], tags=["incidents"])
def incident_timeline(request: HttpRequest, incident_id: int):
    return _timeline(get_object_or_404(visible_incidents(_actor(request)), pk=incident_id))


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


# --- summons ----------------------------------------------------------------------------------


@api.get("/summonses", response=list[SummonsOut], tags=["summons"])
def list_summonses(request: HttpRequest, open_only: bool = True, overdue_only: bool = False):
    """Summons in scope, most urgent first; ``overdue_only`` is the supervisors' 督办 list."""
    queryset = visible_summonses(_actor(request))
    if open_only:
        queryset = queryset.filter(status__in=Summons.OPEN_STATUSES)
    if overdue_only:
        queryset = queryset.filter(overdue=True)
    return [SummonsOut.from_summons(s) for s in queryset.order_by("check_in_deadline")[:500]]


def _summons(request: HttpRequest, summons_id: int) -> Summons:
    return get_object_or_404(visible_summonses(_actor(request)), pk=summons_id)


@api.post(
    "/summonses/{summons_id}/acknowledge",
    response={200: SummonsOut, 409: Problem},
    tags=["summons"],
)
def acknowledge_summons(request: HttpRequest, summons_id: int):
    summons = summons_acknowledge(
        actor=_actor(request), summons=_summons(request, summons_id), source=_source(request)
    )
    return SummonsOut.from_summons(summons)


@api.post(
    "/summonses/{summons_id}/check-in",
    response={200: SummonsOut, 409: Problem},
    tags=["summons"],
)
def check_in(request: HttpRequest, summons_id: int, body: CheckInIn):
    summons = summons_check_in(
        actor=_actor(request),
        summons=_summons(request, summons_id),
        latitude=body.latitude,
        longitude=body.longitude,
        source=_source(request),
    )
    return SummonsOut.from_summons(summons)


@api.post(
    "/summonses/{summons_id}/done", response={200: SummonsOut, 409: Problem}, tags=["summons"]
)
def report_done(request: HttpRequest, summons_id: int, body: DoneIn):
    user = _actor(request)
    summons = _summons(request, summons_id)
    with transaction.atomic():
        summons = summons_done(actor=user, summons=summons, note=body.note, source=_source(request))
        for url in body.photos:
            incident_add_evidence(
                actor=user,
                incident=summons.whistle.incident,
                url=url,
                caption=body.note[:200],
                kind="photo",
                source=_source(request),
            )
    return SummonsOut.from_summons(summons)


@api.post(
    "/summonses/{summons_id}/release",
    response={200: SummonsOut, 409: Problem},
    tags=["summons"],
)
def release(request: HttpRequest, summons_id: int, body: ReleaseIn):
    summons = summons_release(
        actor=_actor(request),
        summons=_summons(request, summons_id),
        reason=body.reason,
        source=_source(request),
    )
    return SummonsOut.from_summons(summons)


# --- photos ---------------------------------------------------------------------------------


class PhotoOut(Schema):
    id: str
    url: str
    content_type: str
    size: int


@api.post("/photos", response={201: PhotoOut, 413: Problem, 415: Problem}, tags=["photos"])
def upload_photo(request: HttpRequest, file: UploadedFile = File(...)):  # noqa: B008
    """A photo from the field (JPEG, PNG or WebP, multipart field ``file``); its ``url`` goes
    into a report's or a done report's ``photos``."""
    from incidents.photos import photo_store

    try:
        photo = photo_store(uploader=_actor(request), upload=file)
    except TransitionNotAllowed as refusal:
        status = 413 if refusal.code == "photo_too_large" else 415
        return Status(status, {"detail": str(refusal), "code": refusal.code})
    return Status(
        201,
        PhotoOut(id=str(photo.pk), url=photo.url, content_type=photo.content_type, size=photo.size),
    )


# --- grid reports -----------------------------------------------------------------------------


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


def _report_out(report) -> ReportOut:
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


@api.post("/reports", response={201: ReportOut, 403: Problem, 409: Problem}, tags=["reports"])
def file_report(request: HttpRequest, body: ReportIn):
    """A grid officer's report; it is an alert on the duty board at once."""
    from intake.reports import report_file

    user = _actor(request)
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


@api.get("/reports", response=list[ReportOut], tags=["reports"])
def list_reports(request: HttpRequest):
    """A grid officer's own reports and what became of them; officers see their township's."""
    return [_report_out(r) for r in visible_reports(_actor(request))[:200]]


def api_urls() -> tuple[list[URLPattern | URLResolver], str, str]:
    """The API's URL patterns, exempt from the site's login redirect: the API answers 401."""
    patterns, app_name, namespace = api.urls

    def exempt(items: list) -> None:
        for item in items:
            if isinstance(item, URLResolver):
                exempt(item.url_patterns)
            else:
                item.callback.login_required = False

    exempt(patterns)
    return patterns, app_name, namespace
