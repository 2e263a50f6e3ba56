"""Assessment (考核): a township's ratings of the departments that served it, a department's
written objections and the township's answers, and the district's ranking."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from django.db.models import QuerySet
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Router, Schema, Status
from pydantic import Field

from api.common import Problem, request_actor, request_source
from command.errors import ActionForbidden
from command.org import policy
from command.org.models import Department, Township, User
from supervision import assessment
from supervision.models import DepartmentRating, RatingObjection

router = Router(tags=["assessment"])

Words = Annotated[str, Field(max_length=4000)]
PeriodText = Annotated[str, Field(pattern=r"^2\d{3}(-(0[1-9]|1[0-2]|Q[1-4]))?$")]
Mark = Annotated[Decimal, Field(ge=0, le=100, max_digits=5, decimal_places=2)]


class RatingIn(Schema):
    township: str
    department: str
    # 2026-10 (a month), 2026-Q4 (a quarter) or 2026 (a year)
    period: PeriodText
    # criterion id → mark (0–100), one for each of the township's criteria in use
    marks: dict[int, Mark]
    comment: Words = ""


class ObjectionIn(Schema):
    text: Words


class AnswerIn(Schema):
    answer: Words
    outcome: Annotated[str, Field(pattern="^(upheld|rejected)$")]
    # when upheld: the revised marks (criterion id → mark)
    marks: dict[int, Mark] | None = None


class ObjectionOut(Schema):
    id: int
    text: str
    raised_by: str | None
    raised_at: datetime
    outcome: str
    answer: str
    answered_at: datetime | None


class RatingOut(Schema):
    id: int
    township: str
    department: str
    period: str
    score: Decimal
    marks: dict[str, Decimal]
    comment: str
    measured: dict[str, Any]
    computation: dict[str, Any]
    rated_by: str | None
    rated_at: datetime
    objection_until: datetime
    objections: list[ObjectionOut]

    @staticmethod
    def from_rating(rating: DepartmentRating) -> RatingOut:
        return RatingOut(
            id=rating.pk,
            township=rating.township.code,
            department=rating.department.code,
            period=assessment.period_name(rating.period, rating.period_start),
            score=rating.score,
            marks={str(m.criterion_id): m.mark for m in rating.marks.all()},
            comment=rating.comment,
            measured=rating.measured,
            computation=rating.computation,
            rated_by=rating.rated_by.username if rating.rated_by else None,
            rated_at=rating.rated_at,
            objection_until=rating.objection_until,
            objections=[
                ObjectionOut(
                    id=o.pk,
                    text=o.text,
                    raised_by=o.raised_by.username if o.raised_by else None,
                    raised_at=o.raised_at,
                    outcome=o.outcome,
                    answer=o.answer,
                    answered_at=o.answered_at,
                )
                for o in rating.objections.all()
            ],
        )


def visible_ratings(user: User) -> QuerySet[DepartmentRating]:
    return policy.ratings(
        user,
        DepartmentRating.objects.select_related("township", "department", "rated_by")
        .prefetch_related("marks", "objections__raised_by")
        .order_by("-period_start", "township__code", "department__code"),
    )


def _problem(status: int, detail: str, code: str) -> Status:
    return Status(status, {"detail": detail, "code": code})


@router.get("/ratings", response=list[RatingOut])
def list_ratings(
    request: HttpRequest,
    period: PeriodText | None = None,
    township: str | None = None,
    department: str | None = None,
):
    """Ratings in scope (a township's, a department's own), the latest period first."""
    queryset = visible_ratings(request_actor(request))
    if period:
        kind, start = assessment.parse_period(period)
        queryset = queryset.filter(period=kind, period_start=start)
    if township:
        queryset = queryset.filter(township__code=township)
    if department:
        queryset = queryset.filter(department__code=department)
    return [RatingOut.from_rating(r) for r in queryset[:500]]


@router.post("/ratings", response={201: RatingOut, 403: Problem, 404: Problem, 409: Problem})
def give_rating(request: HttpRequest, body: RatingIn):
    """Rate (or revise the rating of) a department that served the township in an ended period."""
    user = request_actor(request)
    township = Township.objects.filter(code=body.township).first()
    if township is None or not policy.can_supervise(user, township):
        return _problem(404, f"Unknown township: {body.township}", "not_found")
    department = Department.objects.filter(code=body.department).first()
    if department is None:
        return _problem(404, f"Unknown department: {body.department}", "not_found")
    kind, start = assessment.parse_period(body.period)
    rating = assessment.rating_give(
        actor=user,
        township=township,
        department=department,
        period=kind,
        period_start=start,
        marks=body.marks,
        comment=body.comment,
        source=request_source(request),
    )
    return Status(201, RatingOut.from_rating(visible_ratings(user).get(pk=rating.pk)))


@router.post(
    "/ratings/{rating_id}/objections",
    response={201: RatingOut, 403: Problem, 404: Problem, 409: Problem},
)
def object_to_rating(request: HttpRequest, rating_id: int, body: ObjectionIn):
    """The rated department objects in writing, within the window."""
    user = request_actor(request)
    rating = get_object_or_404(visible_ratings(user), pk=rating_id)
    assessment.rating_object(
        actor=user, rating=rating, text=body.text, source=request_source(request)
    )
    return Status(201, RatingOut.from_rating(visible_ratings(user).get(pk=rating.pk)))


@router.post(
    "/ratings/{rating_id}/objections/{objection_id}/answer",
    response={200: RatingOut, 403: Problem, 404: Problem, 409: Problem},
)
def answer_objection(request: HttpRequest, rating_id: int, objection_id: int, body: AnswerIn):
    """The township rejects the objection or upholds it with the revised marks."""
    user = request_actor(request)
    rating = get_object_or_404(visible_ratings(user), pk=rating_id)
    objection = get_object_or_404(RatingObjection, rating=rating, pk=objection_id)
    assessment.objection_answer(
        actor=user,
        objection=objection,
        answer=body.answer,
        outcome=body.outcome,
        marks=body.marks,
        source=request_source(request),
    )
    return RatingOut.from_rating(visible_ratings(user).get(pk=rating.pk))


class RankedDepartmentOut(Schema):
    rank: int
    department: str
    name: str
    score: Decimal
    by_township: dict[str, Decimal]


class RankedTownshipOut(Schema):
    rank: int
    township: str
    name: str
    score: Decimal
    closed: int
    settled: dict[str, int]
    points_631: Decimal | None
    satisfaction: Decimal | None
    drifting: bool


class RankingOut(Schema):
    period: str
    departments: list[RankedDepartmentOut]
    townships: list[RankedTownshipOut]


@router.get("/ranking", response={200: RankingOut, 403: Problem})
def district_ranking(request: HttpRequest, period: PeriodText):
    """The district's ranking of departments (mean score over the townships that rated them)
    and of townships (631 and satisfaction) for a period; a year is the year-end ranking."""
    user = request_actor(request)
    if not policy.can_view_district(user):
        raise ActionForbidden("The ranking is the district roles'.")
    kind, start = assessment.parse_period(period)
    ids = policy.township_ids(user)
    departments = assessment.district_ranking(period=kind, period_start=start, township_ids=ids)
    townships = assessment.township_ranking(period=kind, period_start=start, township_ids=ids)
    return RankingOut(
        period=assessment.period_name(kind, start),
        departments=[
            RankedDepartmentOut(
                rank=d.rank,
                department=d.department.code,
                name=d.department.display_name,
                score=d.score,
                by_township={r.township.code: r.score for r in d.ratings},
            )
            for d in departments
        ],
        townships=[
            RankedTownshipOut(
                rank=t.rank,
                township=t.township.code,
                name=t.township.display_name,
                score=t.score,
                closed=t.closed,
                settled=t.settlement.counts,
                points_631=None if t.points_631 is None else round(t.points_631, 2),
                satisfaction=None if t.satisfied is None else round(t.satisfied, 2),
                drifting=t.settlement.drifting,
            )
            for t in townships
        ],
    )
