"""Summons, as a summoned department answers them — acknowledge, check in, report done — and
as the township settles them — accept the work (验收), return it, release the department — and
the list in scope, whose ``overdue_only`` is the supervisors' 督办 list."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Router, Schema

from api.common import Latitude, Longitude, Problem, SummonsOut, request_actor, request_source
from command.org import policy
from command.org.models import User
from incidents.models import Summons
from incidents.services.incidents import incident_add_evidence
from incidents.services.summonses import (
    summons_accept,
    summons_acknowledge,
    summons_check_in,
    summons_done,
    summons_release,
    summons_return,
)

router = Router(tags=["summons"])


def visible_summonses(user: User) -> QuerySet[Summons]:
    return policy.summonses(
        user, Summons.objects.select_related("whistle__incident__township", "department")
    )


class CheckInIn(Schema):
    latitude: Latitude | None = None
    longitude: Longitude | None = None


class DoneIn(Schema):
    note: str = ""
    photos: list[str] = []  # photos of the finished work: from POST /photos, or http(s)


class ReleaseIn(Schema):
    reason: str


@router.get("/summonses", response=list[SummonsOut])
def list_summonses(request: HttpRequest, open_only: bool = True, overdue_only: bool = False):
    """Summons in scope, most urgent first; ``overdue_only`` is the supervisors' 督办 list."""
    queryset = visible_summonses(request_actor(request))
    if open_only:
        queryset = queryset.filter(status__in=Summons.OPEN_STATUSES)
    if overdue_only:
        queryset = queryset.filter(Q(overdue=True) | Q(finish_overdue=True))
    return [SummonsOut.from_summons(s) for s in queryset.order_by("check_in_deadline")[:500]]


def _summons(request: HttpRequest, summons_id: int) -> Summons:
    return get_object_or_404(visible_summonses(request_actor(request)), pk=summons_id)


@router.post("/summonses/{summons_id}/acknowledge", response={200: SummonsOut, 409: Problem})
def acknowledge_summons(request: HttpRequest, summons_id: int):
    summons = summons_acknowledge(
        actor=request_actor(request),
        summons=_summons(request, summons_id),
        source=request_source(request),
    )
    return SummonsOut.from_summons(summons)


@router.post("/summonses/{summons_id}/check-in", response={200: SummonsOut, 409: Problem})
def check_in(request: HttpRequest, summons_id: int, body: CheckInIn):
    summons = summons_check_in(
        actor=request_actor(request),
        summons=_summons(request, summons_id),
        latitude=body.latitude,
        longitude=body.longitude,
        source=request_source(request),
    )
    return SummonsOut.from_summons(summons)


@router.post("/summonses/{summons_id}/done", response={200: SummonsOut, 409: Problem})
def report_done(request: HttpRequest, summons_id: int, body: DoneIn):
    user = request_actor(request)
    summons = _summons(request, summons_id)
    with transaction.atomic():
        summons = summons_done(
            actor=user, summons=summons, note=body.note, source=request_source(request)
        )
        for url in body.photos:
            incident_add_evidence(
                actor=user,
                incident=summons.whistle.incident,
                url=url,
                caption=body.note[:200],
                kind="photo",
                source=request_source(request),
            )
    return SummonsOut.from_summons(summons)


@router.post("/summonses/{summons_id}/release", response={200: SummonsOut, 409: Problem})
def release(request: HttpRequest, summons_id: int, body: ReleaseIn):
    summons = summons_release(
        actor=request_actor(request),
        summons=_summons(request, summons_id),
        reason=body.reason,
        source=request_source(request),
    )
    return SummonsOut.from_summons(summons)


@router.post("/summonses/{summons_id}/accept", response={200: SummonsOut, 409: Problem})
def accept(request: HttpRequest, summons_id: int):
    """验收: the township accepts work reported done."""
    summons = summons_accept(
        actor=request_actor(request),
        summons=_summons(request, summons_id),
        source=request_source(request),
    )
    return SummonsOut.from_summons(summons)


@router.post("/summonses/{summons_id}/return", response={200: SummonsOut, 409: Problem})
def return_work(request: HttpRequest, summons_id: int, body: ReleaseIn):
    """The work is not accepted: the department is back on site; the finishing clock runs on."""
    summons = summons_return(
        actor=request_actor(request),
        summons=_summons(request, summons_id),
        reason=body.reason,
        source=request_source(request),
    )
    return SummonsOut.from_summons(summons)
