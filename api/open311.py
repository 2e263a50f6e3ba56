"""Open311 GeoReport v2 (https://wiki.open311.org/GeoReport_v2/): intake items for standard 311
clients and hotline systems, in JSON and XML.

    GET  /open311/v2/services.{json|xml}            our categories as services
    GET  /open311/v2/services/{code}.{json|xml}     a service's definition (its attributes)
    POST /open311/v2/requests.{json|xml}            file a request (form-encoded, api_key)
    GET  /open311/v2/requests.{json|xml}            requests in the caller's scope, filtered
    GET  /open311/v2/requests/{id}.{json|xml}       one request

Every call carries ``api_key`` (a Whistle API token; also accepted as a bearer token): a
grid officer's token files reports and reads its own; a hotline system's (role "hotline")
files its tickets into its township and reads its own, with ``attribute[channel]`` (12345,
12315, jiyu, other; 12345 when left out), ``attribute[ticket]`` (its own ticket number: the
same ticket filed again answers the same service_request_id) and the caller in ``first_name``,
``last_name`` and ``phone``; an officer's token reads the township's.
Errors are the specification's list of ``{code, description}`` with the HTTP status; an unknown
format suffix gets that list too, in JSON unless the Accept header prefers XML.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from xml.etree import ElementTree as ET

from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import ValidationError
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.dateparse import parse_datetime
from django.views.decorators.csrf import csrf_exempt

from command.errors import ActionForbidden, TransitionNotAllowed
from command.org import policy
from command.org.models import Category, Grid, User
from command.org.tokens import api_token_user
from command.text import xml_text
from command.timeline.actions import Subject
from command.timeline.models import TimelineEntry
from incidents.models import Incident
from intake.reports import HOTLINE_CHANNELS, grid_at, intake_file, report_file
from streams.models import GridReport

FORMATS = ("json", "xml")
# The specification caps a request's description at 4,000 characters: a longer one is refused
# when filed here, and a longer report filed on the phone page is cut in the answer.
DESCRIPTION_LIMIT = 4000
# Where a document holds a list, the XML element of each entry (the specification's singulars).
_XML_ITEMS = {"attributes": "attribute", "values": "value"}

Document = list[dict[str, Any]] | dict[str, Any]


class Problem(Exception):
    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


def _xml_fields(element: ET.Element, fields: dict[str, Any]) -> None:
    for key, value in fields.items():
        child = ET.SubElement(element, key)
        if isinstance(value, list):
            for entry in value:
                _xml_fields(ET.SubElement(child, _XML_ITEMS[key]), entry)
        elif isinstance(value, bool):
            child.text = "true" if value else "false"
        elif value is not None:
            child.text = xml_text(str(value))


def _render(data: Document, fmt: str, root: str, item: str | None, status: int = 200):
    """A list is ``root`` of ``item`` elements in XML; a single object is ``root`` itself."""
    if fmt == "json":
        return JsonResponse(
            data, safe=False, status=status, json_dumps_params={"ensure_ascii": False}
        )
    top = ET.Element(root)
    if isinstance(data, dict):
        _xml_fields(top, data)
    else:
        for entry in data:
            _xml_fields(ET.SubElement(top, item or root), entry)
    body = ET.tostring(top, encoding="utf-8", xml_declaration=True)
    return HttpResponse(body, status=status, content_type="text/xml; charset=utf-8")


def _errors(problem: Problem, fmt: str) -> HttpResponse:
    errors = [{"code": problem.status, "description": problem.description}]
    return _render(errors, fmt, "errors", "error", problem.status)


def _endpoint(
    root: str, item: str | None = None, *, methods: tuple[str, ...] = ("GET",)
) -> Callable[[Callable], Callable]:
    """Format from the suffix, the caller from api_key, refusals (a method the endpoint does
    not take included) as the spec's error list."""

    def decorate(view: Callable[..., Document]) -> Callable[..., HttpResponse]:
        @login_not_required
        @csrf_exempt  # no cookies: the caller is its api_key
        def wrapped(request: HttpRequest, fmt: str, **kwargs: Any) -> HttpResponse:
            if fmt not in FORMATS:
                # No suffix to answer in: the Accept header chooses, JSON when it says nothing.
                preferred = request.get_preferred_type(
                    ["application/json", "text/xml", "application/xml"]
                )
                fallback = "xml" if preferred in ("text/xml", "application/xml") else "json"
                return _errors(Problem(404, f"no format {fmt}: use .json or .xml"), fallback)
            if request.method not in methods:
                allowed = ", ".join(methods)
                refused = _errors(
                    Problem(405, f"{request.method} is not taken here: {allowed}"), fmt
                )
                refused["Allow"] = allowed
                return refused
            try:
                return _render(view(request, **kwargs), fmt, root, item)
            except Problem as problem:
                return _errors(problem, fmt)

        return wrapped

    return decorate


def _last_change(subject: Subject, subject_id: str) -> Subquery:
    rows = TimelineEntry.objects.filter(subject_type=subject, subject_id=OuterRef(subject_id))
    return Subquery(rows.order_by("-time").values("time")[:1])


def _reports(user: User) -> QuerySet[GridReport]:
    queryset = GridReport.objects.select_related(
        "category", "grid", "township", "alert__incident"
    ).annotate(
        # The last row of the alert's and its incident's timelines: when the request last
        # changed (acknowledged, dismissed, dispatched …), which no column of theirs holds.
        alert_changed=_last_change(Subject.ALERT, "alert_id"),
        incident_changed=_last_change(Subject.INCIDENT, "alert__incident_id"),
    )
    return policy.reports(user, queryset.order_by("-created_at"))


def _caller(request: HttpRequest) -> User:
    raw = request.POST.get("api_key") or request.GET.get("api_key") or ""
    if not raw:
        raw = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    user = api_token_user(raw) if raw else None
    if user is None:
        raise Problem(403, "api_key is missing or not valid")
    return user


def _attributes() -> list[dict[str, Any]]:
    """What a hotline system may add to a request (``attribute[code]``); grid officers add
    nothing. Names in the reader's language."""
    return [
        {
            "variable": True,
            "code": "channel",
            "datatype": "singlevaluelist",
            "required": False,
            "order": 1,
            "description": "How the hotline received it (hotline systems only; default 12345)",
            "values": [
                {"key": channel, "name": str(GridReport.Channel(channel).label)}
                for channel in sorted(HOTLINE_CHANNELS)
            ],
        },
        {
            "variable": True,
            "code": "ticket",
            "datatype": "string",
            "required": False,
            "order": 2,
            "description": "The hotline's own ticket number: filed again, the same request answers",
        },
    ]


def _service(category: Category) -> dict[str, Any]:
    return {
        "service_code": category.code,
        "service_name": category.name,
        "description": category.name_en or category.name,
        "metadata": True,
        "type": "realtime",
        "keywords": category.name_en,
        "group": "",
    }


@_endpoint("services", "service")
def services(request: HttpRequest) -> list[dict[str, Any]]:
    _caller(request)
    return [_service(c) for c in Category.objects.order_by("code")]


@_endpoint("service_definition")
def service_definition(request: HttpRequest, code: str) -> dict[str, Any]:
    _caller(request)
    if not Category.objects.filter(code=code).exists():
        raise Problem(404, f"no service {code}")
    # A category, a description and a place are all a report needs; a hotline system adds
    # how the ticket came and its number.
    return {"service_code": code, "attributes": _attributes()}


def _status(report: GridReport) -> tuple[str, str]:
    alert = report.alert
    if alert is None:
        return "open", ""
    incident = alert.incident
    if incident is not None:
        # Resolved is not closed for the person who raised it: the township has yet to close
        # it with its feedback, and may still reopen it.
        closed = incident.status == Incident.Status.CLOSED
        note = incident.get_status_display()
        if incident.feedback:
            note = f"{note}: {incident.feedback}"
        return ("closed" if closed else "open"), note
    return ("open" if alert.is_open else "closed"), alert.get_status_display()


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds") if moment else None


def _request(report: GridReport, request: HttpRequest) -> dict[str, Any]:
    status, notes = _status(report)
    alert = report.alert
    # alert_changed and incident_changed: annotations of _reports(), every reader's queryset.
    changes = [report.created_at, report.alert_changed, report.incident_changed]
    if alert is not None:
        changes += [alert.last_seen, alert.closed_at]
        if alert.incident is not None:
            incident = alert.incident
            changes += [incident.opened_at, incident.resolved_at, incident.closed_at]
    found = {
        "service_request_id": str(report.pk),
        "status": status,
        "status_notes": notes,
        "service_name": report.category.name,
        "service_code": report.category.code,
        "description": report.description[:DESCRIPTION_LIMIT],
        "agency_responsible": report.township.name,
        "service_notice": "",
        "requested_datetime": _iso(report.created_at),
        "updated_datetime": _iso(max((t for t in changes if t is not None), default=None)),
        "expected_datetime": None,
        "address": report.grid.name if report.grid else "",
        "address_id": report.grid.code if report.grid else "",
        "zipcode": "",
        "lat": report.latitude,
        "long": report.longitude,
    }
    # The specification's media_url is a URI: without a photo the field is left out.
    if report.photos:
        found["media_url"] = request.build_absolute_uri(report.photos[0])
    return found


def _float(value: str | None, name: str, low: float, high: float) -> float | None:
    if value in (None, ""):
        return None
    try:
        number = float(value)
    except ValueError:
        raise Problem(400, f"{name} is not a number") from None
    if not low <= number <= high:
        raise Problem(400, f"{name} is out of range")
    return number


@_endpoint("service_requests", "request", methods=("GET", "POST"))
def requests(request: HttpRequest) -> list[dict[str, Any]]:
    user = _caller(request)
    if request.method == "POST":
        if not (policy.can_file_report(user) or policy.can_file_hotline(user)):
            raise Problem(403, "only grid officers and hotline systems file requests")
        return [_file(request, user)]
    queryset = _reports(user)
    query = request.GET
    if query.get("service_request_id"):
        ids = [i for i in query["service_request_id"].split(",") if i.strip().isdigit()]
        queryset = queryset.filter(pk__in=ids)
    else:
        if query.get("service_code"):
            queryset = queryset.filter(category__code__in=query["service_code"].split(","))
        for name, lookup in (("start_date", "created_at__gte"), ("end_date", "created_at__lte")):
            if query.get(name):
                moment = parse_datetime(query[name].replace(" ", "+"))
                if moment is None:
                    raise Problem(400, f"{name} is not a W3C date-time")
                queryset = queryset.filter(**{lookup: moment})
        queryset = queryset[:1000]
    found = [_request(r, request) for r in queryset]
    if query.get("status") in ("open", "closed"):
        found = [r for r in found if r["status"] == query["status"]]
    return found


@_endpoint("service_requests", "request")
def request_detail(request: HttpRequest, pk: int) -> list[dict[str, Any]]:
    user = _caller(request)
    report = _reports(user).filter(pk=pk).first()
    if report is None:
        raise Problem(404, f"no request {pk}")
    return [_request(report, request)]


def _person(first: str, last: str) -> str:
    """王晓明 for a Chinese name (family name first, no space), Ann Lee otherwise."""
    first, last = first.strip(), last.strip()
    if any("\u4e00" <= ch <= "\u9fff" for ch in first + last):
        return f"{last}{first}"
    return f"{first} {last}".strip()


def _file(request: HttpRequest, user: User) -> dict[str, Any]:
    data = request.POST
    category = Category.objects.filter(code=data.get("service_code", "")).first()
    if category is None:
        raise Problem(400, "service_code is missing or unknown")
    lat = _float(data.get("lat"), "lat", -90, 90)
    lon = _float(data.get("long"), "long", -180, 180)
    grid = None
    if data.get("address_id"):
        grid = Grid.objects.filter(code=data["address_id"]).first()
        if grid is None:
            raise Problem(400, "address_id is not a grid of this township")
        if grid.township_id != user.township_id:
            # Filing into another township is not allowed, whatever the channel.
            raise Problem(403, "address_id is a grid of another township")
    elif lat is not None and lon is not None and user.township_id:
        grid = grid_at(user.township_id, lat, lon)
    if grid is None and (lat is None or lon is None) and not data.get("address_string"):
        raise Problem(400, "a location is required: lat and long, address_string or address_id")
    description = data.get("description", "")
    if len(description) > DESCRIPTION_LIMIT:
        raise Problem(400, f"description is longer than {DESCRIPTION_LIMIT:,} characters")
    if data.get("address_string"):
        description = f"{description}\n{data['address_string']}".strip()
    try:
        if policy.can_file_hotline(user):
            channel = data.get("attribute[channel]") or GridReport.Channel.HOTLINE_12345
            if channel not in HOTLINE_CHANNELS:
                known = ", ".join(sorted(HOTLINE_CHANNELS))
                raise Problem(400, f"attribute[channel] is one of {known}")
            report = intake_file(
                actor=user,
                channel=channel,
                category=category,
                description=description,
                grid=grid,
                latitude=lat,
                longitude=lon,
                caller_name=_person(data.get("first_name", ""), data.get("last_name", "")),
                caller_phone=data.get("phone", ""),
                external_id=data.get("attribute[ticket]", ""),
                source=TimelineEntry.Source.API,
            ).report
        else:
            report = report_file(
                reporter=user,
                category=category,
                description=description,
                grid=grid,
                latitude=lat,
                longitude=lon,
            )
    except ActionForbidden as refusal:
        raise Problem(403, str(refusal)) from None
    except (TransitionNotAllowed, ValidationError) as refusal:
        raise Problem(400, str(refusal)) from None
    return {"service_request_id": str(report.pk), "service_notice": "", "account_id": None}
