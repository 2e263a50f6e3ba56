"""Alerts on the duty board: the list, a duty officer's acknowledge, dismiss and merge, and a grid
officer's settle on the spot and hand up (小事不出格)."""

from __future__ import annotations

from datetime import datetime

from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from ninja import Router, Schema

from alerts.models import Alert
from alerts.services import alert_acknowledge, alert_dismiss, alert_merge
from alerts.titles import in_english
from api.common import PageLimit, Problem, request_actor, request_source
from api.incidents import IncidentOut
from command.errors import ActionForbidden
from command.org import policy
from command.org.models import User
from intake.settle import matter_hand_up, matter_settle

router = Router(tags=["alerts"])


class AlertOut(Schema):
    id: int
    township: str
    category: str | None
    severity: str
    status: str
    # As stored (a composed title in Chinese, a grid report's in the officer's words); title_en
    # is composed in English from the same facts (a report's reads as written).
    title: str
    title_en: str
    device: str | None
    count: int
    first_seen: datetime
    last_seen: datetime
    # A grid officer who could not settle it in the grid, and why (POST …/hand-up).
    handed_up_by: str | None = None
    hand_up_note: str | None = None

    @staticmethod
    def from_alert(alert: Alert) -> AlertOut:
        return AlertOut(
            id=alert.pk,
            township=alert.township.code,
            category=alert.category.code if alert.category else None,
            severity=alert.severity,
            status=alert.status,
            title=alert.title,
            title_en=in_english(lambda: alert.display_title),
            device=alert.device.code if alert.device else None,
            count=alert.count,
            first_seen=alert.first_seen,
            last_seen=alert.last_seen,
            handed_up_by=(alert.detail or {}).get("handed_up_by"),
            hand_up_note=(alert.detail or {}).get("handed_up_note"),
        )


class DismissIn(Schema):
    reason: str


class MergeIn(Schema):
    into: int


class SettleIn(Schema):
    note: str
    photos: list[str] = []  # addresses returned by POST /photos


class HandUpIn(Schema):
    note: str


@router.get("/alerts", response=list[AlertOut])
def list_alerts(request: HttpRequest, status: str = "open", limit: PageLimit = 100):
    queryset = policy.alerts(
        request_actor(request), Alert.objects.select_related("township", "category", "device")
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


@router.post("/alerts/{alert_id}/acknowledge", response={200: AlertOut, 409: Problem})
def acknowledge_alert(request: HttpRequest, alert_id: int):
    user = request_actor(request)
    alert = alert_acknowledge(
        alert_id=alert_id,
        actor_id=user.pk,
        township_ids=_officer_townships(user),
        source=request_source(request),
    )
    return AlertOut.from_alert(alert)


@router.post("/alerts/{alert_id}/dismiss", response={200: AlertOut, 409: Problem})
def dismiss_alert(request: HttpRequest, alert_id: int, body: DismissIn):
    user = request_actor(request)
    alert = alert_dismiss(
        alert_id=alert_id,
        actor_id=user.pk,
        township_ids=_officer_townships(user),
        reason=body.reason,
        source=request_source(request),
    )
    return AlertOut.from_alert(alert)


@router.post("/alerts/{alert_id}/merge", response={200: AlertOut, 409: Problem})
def merge_alert(request: HttpRequest, alert_id: int, body: MergeIn):
    """Fold this alert into another open one (``into``); the one kept is returned."""
    user = request_actor(request)
    kept = alert_merge(
        alert_id=alert_id,
        into_id=body.into,
        actor_id=user.pk,
        township_ids=_officer_townships(user),
        source=request_source(request),
    )
    return AlertOut.from_alert(kept)


def _grid_matter(user: User, alert_id: int) -> Alert:
    """An alert ``user`` may settle in the grid or hand up; another grid's answers 404."""
    if not policy.can_file_report(user):
        raise ActionForbidden(_("Only grid officers settle matters in the grid."))
    return get_object_or_404(policy.settle_alerts(user, Alert.objects.all()), pk=alert_id)


_REFUSALS = {403: Problem, 404: Problem, 409: Problem}


@router.post("/alerts/{alert_id}/settle", response={200: IncidentOut, **_REFUSALS})
def settle_alert(request: HttpRequest, alert_id: int, body: SettleIn):
    """A grid officer settled it on the spot: an incident closed at once at grid level (631),
    the note its feedback, the photos its evidence."""
    user = request_actor(request)
    incident = matter_settle(
        actor=user,
        alert=_grid_matter(user, alert_id),
        note=body.note,
        photos=body.photos,
        source=request_source(request),
    )
    return IncidentOut.from_incident(incident)


@router.post("/alerts/{alert_id}/hand-up", response={200: AlertOut, **_REFUSALS})
def hand_up_alert(request: HttpRequest, alert_id: int, body: HandUpIn):
    """A grid officer cannot settle it: it stays on the duty board with the note, at least
    major."""
    user = request_actor(request)
    alert = matter_hand_up(
        actor=user,
        alert=_grid_matter(user, alert_id),
        note=body.note,
        source=request_source(request),
    )
    return AlertOut.from_alert(
        Alert.objects.select_related("township", "category", "device").get(pk=alert.pk)
    )
