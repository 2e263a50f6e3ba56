"""Whistles: blowing one on an incident, and the other township's answer to a joint whistle
(联合哨) — the list waiting for it, confirm, decline."""

from __future__ import annotations

from datetime import datetime

from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Router, Schema, Status

from api.common import Problem, SummonsOut, request_actor, request_source, visible_incidents
from command.org import policy
from command.org.models import Department, Township
from incidents.models import Whistle
from incidents.services.whistles import (
    SummonedDepartment,
    whistle_blow,
    whistle_joint_confirm,
    whistle_joint_decline,
)

# Listed with the incidents they are blown on, as they always were in the document.
router = Router(tags=["incidents"])


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


@router.post(
    "/incidents/{incident_id}/whistles",
    response={201: WhistleOut, 403: Problem, 404: Problem, 409: Problem},
)
def blow_whistle(request: HttpRequest, incident_id: int, body: WhistleIn):
    user = request_actor(request)
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
        source=request_source(request),
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
    visible = visible_incidents(request_actor(request))
    return get_object_or_404(
        Whistle.objects.select_related("joint_township"),
        pk=whistle_id,
        incident__in=visible.values("pk"),
    )


@router.get("/whistles/joint-pending", response=list[WhistleOut])
def joint_pending(request: HttpRequest):
    """Joint whistles another township blew with the caller's, waiting for its confirmation."""
    user = request_actor(request)
    townships = policy.command_township_ids(user)
    queryset = Whistle.objects.filter(joint_status=Whistle.JointStatus.PENDING).select_related(
        "joint_township"
    )
    if townships is not None:
        queryset = queryset.filter(joint_township_id__in=townships)
    return [_whistle_out(w) for w in queryset.order_by("blown_at")[:200]]


@router.post(
    "/whistles/{whistle_id}/joint/confirm",
    response={200: WhistleOut, 403: Problem, 404: Problem, 409: Problem},
)
def confirm_joint(request: HttpRequest, whistle_id: int):
    """The other township confirms a joint whistle: its departments are summoned now."""
    whistle = whistle_joint_confirm(
        actor=request_actor(request),
        whistle=_joint_whistle(request, whistle_id),
        source=request_source(request),
    )
    return _whistle_out(whistle)


@router.post(
    "/whistles/{whistle_id}/joint/decline",
    response={200: WhistleOut, 403: Problem, 404: Problem, 409: Problem},
)
def decline_joint(request: HttpRequest, whistle_id: int, body: JointDeclineIn):
    whistle = whistle_joint_decline(
        actor=request_actor(request),
        whistle=_joint_whistle(request, whistle_id),
        reason=body.reason,
        source=request_source(request),
    )
    return _whistle_out(whistle)
