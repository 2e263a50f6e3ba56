"""Supervision orders (督办单): a supervisor (or the township's duty officer) issues one on an
incident to a summoned department; the department acknowledges it and answers it; the list in
scope — a supervisor's townships', a department's own."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from django.db.models import QuerySet
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Router, Schema, Status
from pydantic import Field

from api.common import Problem, request_actor, request_source, visible_incidents
from command.org import policy
from command.org.models import Department, User
from incidents.models import Summons, SupervisionOrder
from incidents.services.orders import order_acknowledge, order_answer, order_issue

router = Router(tags=["orders"])

# An instruction or an answer is a few sentences, not a document.
Words = Annotated[str, Field(max_length=2000)]


class OrderIn(Schema):
    department: str
    instruction: Words
    # ISO 8601; without an offset it is read on the incident's township's clock (a form's
    # datetime-local field).
    due_at: datetime
    summons: int | None = None


class AnswerIn(Schema):
    answer: Words


class OrderOut(Schema):
    id: int
    incident: int
    township: str
    department: str
    summons: int | None
    instruction: str
    due_at: datetime
    status: str
    issued_by: str | None
    issued_at: datetime
    acknowledged_at: datetime | None
    answer: str
    answered_at: datetime | None
    # Answered by its deadline; None while not answered.
    on_time: bool | None

    @staticmethod
    def from_order(order: SupervisionOrder) -> OrderOut:
        return OrderOut(
            id=order.pk,
            incident=order.incident_id,
            township=order.township.code,
            department=order.department.code,
            summons=order.summons_id,
            instruction=order.instruction,
            due_at=order.due_at,
            status=order.status,
            issued_by=order.issued_by.username if order.issued_by else None,
            issued_at=order.issued_at,
            acknowledged_at=order.acknowledged_at,
            answer=order.answer,
            answered_at=order.answered_at,
            on_time=order.answered_at <= order.due_at if order.answered_at else None,
        )


def visible_orders(user: User) -> QuerySet[SupervisionOrder]:
    return policy.orders(
        user, SupervisionOrder.objects.select_related("township", "department", "issued_by")
    )


@router.post(
    "/incidents/{incident_id}/orders",
    response={201: OrderOut, 403: Problem, 404: Problem, 409: Problem},
    tags=["incidents"],
)
def issue_order(request: HttpRequest, incident_id: int, body: OrderIn):
    """督办: an order to a department summoned to the incident, due at ``due_at``."""
    user = request_actor(request)
    incident = get_object_or_404(visible_incidents(user), pk=incident_id)
    department = Department.objects.filter(code=body.department).first()
    if department is None:
        detail = f"Unknown department: {body.department}"
        return Status(404, {"detail": detail, "code": "not_found"})
    summons = None
    if body.summons is not None:
        summons = (
            Summons.objects.filter(pk=body.summons, whistle__incident=incident)
            .select_related("whistle")
            .first()
        )
        if summons is None:
            detail = f"No summons {body.summons} on this incident"
            return Status(404, {"detail": detail, "code": "not_found"})
    order = order_issue(
        actor=user,
        incident=incident,
        department=department,
        instruction=body.instruction,
        due_at=body.due_at,
        summons=summons,
        source=request_source(request),
    )
    return Status(201, OrderOut.from_order(order))


@router.get("/orders", response=list[OrderOut])
def list_orders(request: HttpRequest, open_only: bool = False, incident: int | None = None):
    """Orders in scope, the soonest due first; ``open_only`` leaves out the answered ones."""
    queryset = visible_orders(request_actor(request))
    if open_only:
        queryset = queryset.filter(status__in=SupervisionOrder.OPEN_STATUSES)
    if incident is not None:
        queryset = queryset.filter(incident_id=incident)
    return [OrderOut.from_order(o) for o in queryset.order_by("due_at", "pk")[:500]]


def _order(request: HttpRequest, order_id: int) -> SupervisionOrder:
    return get_object_or_404(visible_orders(request_actor(request)), pk=order_id)


@router.post(
    "/orders/{order_id}/acknowledge",
    response={200: OrderOut, 403: Problem, 404: Problem, 409: Problem},
)
def acknowledge_order(request: HttpRequest, order_id: int):
    """Issued → acknowledged; its summons, if still only notified, is acknowledged too."""
    order = order_acknowledge(
        actor=request_actor(request),
        order=_order(request, order_id),
        source=request_source(request),
    )
    return OrderOut.from_order(order)


@router.post(
    "/orders/{order_id}/answer",
    response={200: OrderOut, 403: Problem, 404: Problem, 409: Problem},
)
def answer_order(request: HttpRequest, order_id: int, body: AnswerIn):
    """The department's answer: issued or acknowledged → answered."""
    order = order_answer(
        actor=request_actor(request),
        order=_order(request, order_id),
        answer=body.answer,
        source=request_source(request),
    )
    return OrderOut.from_order(order)
