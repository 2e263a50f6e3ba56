"""Assessment (督查考核): a township rates the departments that served it for a period, each
department's combined score says how it was reached, the department may object in writing,
and the district ranks departments and townships.

A department's score for a township and a period, on 100 points:

    score = (1 - share) × measured + share × township

- ``share`` is the district's scheme's (``AssessmentScheme.township_share``, 0.30 by default:
  the township's assessment weighs 30% of a department's score);
- ``measured`` is the weighted mean of the figures measured from the whistles blown in the
  period (``supervision.stats.department_table``), each as points out of 100:

  ===================  =====================================================================
  on_time_arrival      summonses checked in by their deadline / summonses received
  on_time_finishing    summonses not late finishing (限时办结) / summonses received
  first_time           accepted without being returned / accepted (验收一次通过)
  satisfaction         callbacks satisfied or basically satisfied / callbacks (回访满意)
  orders               100 − the scheme's penalty per supervision order (督办单) received, ≥ 0
  ===================  =====================================================================

  A figure with nothing to measure (no work accepted, nobody called back) is left out and the
  others' weights are scaled up to fill its place; the computation says so;
- ``township`` is the weighted mean of the township's own marks (0–100) on its criteria.

The arithmetic is exact (``Decimal``); only the score is rounded, to 0.01, half up. A
department's score in the district for a period is the mean of its ratings' scores in the
townships that rated it; a township is ranked on its own work (``township_ranking``).

Every rating, revision, objection and answer writes one timeline row (subject ``rating``).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from alerts.delivery.people import Cause, Recipient, page
from alerts.delivery.wording import official_language
from command import clock
from command.errors import ActionForbidden, TransitionNotAllowed
from command.org import localtime, policy
from command.org.models import Department, Township, User
from command.org.oncall import township_supervisors
from command.timeline.actions import Action
from command.timeline.models import TimelineEntry
from command.timeline.records import timeline_record
from supervision import stats
from supervision.models import (
    AssessmentCriterion,
    AssessmentScheme,
    DepartmentRating,
    Period,
    RatingMark,
    RatingObjection,
)

HUNDRED = Decimal(100)
CENT = Decimal("0.01")

FIGURE_LABELS = {
    "on_time_arrival": gettext_lazy("on-time arrival"),
    "on_time_finishing": gettext_lazy("on-time finishing"),
    "first_time": gettext_lazy("accepted first time"),
    "satisfaction": gettext_lazy("satisfaction"),
    "orders": gettext_lazy("supervision orders"),
}
# What a township marks departments on until it defines its own criteria.
DEFAULT_CRITERIA = (
    ("配合度", "Cooperation", Decimal(1)),
    ("办理质量", "Quality of work", Decimal(1)),
)


# --- periods ----------------------------------------------------------------------------------


def period_start_of(period: str, day: date) -> date:
    """The first day of the month, quarter or year ``day`` is in."""
    if period == Period.MONTH:
        return day.replace(day=1)
    if period == Period.QUARTER:
        return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    if period == Period.YEAR:
        return date(day.year, 1, 1)
    raise ValueError(f"unknown period {period!r}")


def period_end(period: str, start: date) -> date:
    """The first day after the period that begins on ``start``."""
    months = {Period.MONTH: 1, Period.QUARTER: 3, Period.YEAR: 12}[Period(period)]
    month = start.month - 1 + months
    return date(start.year + month // 12, month % 12 + 1, 1)


def period_name(period: str, start: date) -> str:
    """2026-10, 2026-Q4, 2026."""
    if period == Period.MONTH:
        return f"{start:%Y-%m}"
    if period == Period.QUARTER:
        return f"{start.year}-Q{(start.month - 1) // 3 + 1}"
    return str(start.year)


def parse_period(text: str) -> tuple[str, date]:
    """``2026-10`` (a month), ``2026-Q4`` (a quarter) or ``2026`` (a year)."""
    text = (text or "").strip().upper()
    match = re.fullmatch(r"(\d{4})(?:-(?:(0[1-9]|1[0-2])|Q([1-4])))?", text)
    if match and int(match.group(1)) >= 2000:
        year, month, quarter = match.groups()
        if month:
            return Period.MONTH, date(int(year), int(month), 1)
        if quarter:
            return Period.QUARTER, date(int(year), 3 * (int(quarter) - 1) + 1, 1)
        return Period.YEAR, date(int(year), 1, 1)
    raise ValueError(_("Give a month (2026-10), a quarter (2026-Q4) or a year (2026)."))


def bounds(township: Township, period: str, start: date) -> tuple[datetime, datetime]:
    """The period as moments: from the township's midnight of its first day to the one after."""
    return (
        localtime.day_start(township, start),
        localtime.day_start(township, period_end(period, start)),
    )


def months_before(start: date, count: int) -> list[date]:
    """The ``count`` months that end with the one beginning ``start``, oldest first."""
    months = []
    year, month = start.year, start.month
    for _i in range(count):
        months.append(date(year, month, 1))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return months[::-1]


# --- the scheme and criteria -------------------------------------------------------------------


def scheme_for(township: Township) -> AssessmentScheme:
    """The township's district's scheme, else the scheme for every district, else the
    defaults (unsaved)."""
    schemes = {
        s.district_id: s
        for s in AssessmentScheme.objects.filter(
            Q(district=None) | Q(district_id=township.district_id)
        )
    }
    return (
        (township.district_id and schemes.get(township.district_id))
        or schemes.get(None)
        or AssessmentScheme()
    )


def criteria_for(township: Township) -> list[AssessmentCriterion]:
    """The township's criteria in use; a township that has none gets the defaults (配合度,
    办理质量), so it can rate at once."""
    found = list(AssessmentCriterion.objects.filter(township=township, active=True))
    if found or AssessmentCriterion.objects.filter(township=township).exists():
        return found
    for position, (name, name_en, weight) in enumerate(DEFAULT_CRITERIA):
        AssessmentCriterion.objects.get_or_create(
            township=township,
            name=name,
            defaults={"name_en": name_en, "weight": weight, "position": position},
        )
    return list(AssessmentCriterion.objects.filter(township=township, active=True))


def criterion_put(
    *, actor: User, township: Township, name: str, name_en: str, weight: Decimal
) -> AssessmentCriterion:
    """Add a criterion to the township's (or bring one back into use with a new weight)."""
    if not policy.can_rate(actor, township):
        raise ActionForbidden(
            _("Only the township's supervisors and administrators rate departments.")
        )
    criterion, _created = AssessmentCriterion.objects.update_or_create(
        township=township,
        name=name.strip(),
        defaults={
            "name_en": name_en.strip(),
            "weight": weight,
            "active": True,
            "position": AssessmentCriterion.objects.filter(township=township).count(),
        },
    )
    return criterion


def criterion_retire(*, actor: User, township: Township, pk: int) -> None:
    """Stop using a criterion: ratings already given keep their marks on it."""
    if not policy.can_rate(actor, township):
        raise ActionForbidden(
            _("Only the township's supervisors and administrators rate departments.")
        )
    AssessmentCriterion.objects.filter(township=township, pk=pk).update(active=False)


# --- the computation ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Part:
    """One figure or mark of a score: its value as measured (for people), its points out of 100,
    its weight within its part and the weight it ended with (after figures left out)."""

    key: str
    label: str
    shown: str
    points: Decimal | None
    weight: Decimal
    effective: Decimal = Decimal(0)

    @property
    def contribution(self) -> Decimal:
        return (self.points or Decimal(0)) * self.effective


@dataclass(frozen=True)
class Computation:
    measured_parts: list[Part]
    mark_parts: list[Part]
    share: Decimal
    measured: Decimal | None
    township: Decimal | None
    score: Decimal
    left_out: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        def part(p: Part) -> dict[str, Any]:
            return {
                "key": p.key,
                "label": p.label,
                "shown": p.shown,
                "points": _cents(p.points),
                "weight": str(p.weight),
                "effective": str(p.effective.quantize(Decimal("0.0001"))),
            }

        return {
            "share": str(self.share),
            "measured": _cents(self.measured),
            "township": _cents(self.township),
            "score": str(self.score),
            "measured_parts": [part(p) for p in self.measured_parts],
            "mark_parts": [part(p) for p in self.mark_parts],
            "left_out": self.left_out,
        }


def _cents(value: Decimal | None) -> str | None:
    return None if value is None else str(value.quantize(CENT, rounding=ROUND_HALF_UP))


def _ratio(numerator: int, denominator: int) -> Decimal | None:
    return HUNDRED * numerator / denominator if denominator else None


def measured_points(
    row: stats.DepartmentRow, scheme: AssessmentScheme
) -> dict[str, Decimal | None]:
    """Each measured figure as points out of 100 (None: nothing to measure)."""
    return {
        "on_time_arrival": _ratio(row.on_time, row.received),
        "on_time_finishing": _ratio(row.received - row.finish_overdue, row.received),
        "first_time": _ratio(row.accepted_first_time, row.accepted),
        "satisfaction": _ratio(row.satisfied, row.rated),
        "orders": max(Decimal(0), HUNDRED - scheme.order_penalty * row.orders),
    }


def _shown(row: stats.DepartmentRow, scheme: AssessmentScheme) -> dict[str, str]:
    return {
        "on_time_arrival": f"{row.on_time}/{row.received}",
        "on_time_finishing": f"{row.received - row.finish_overdue}/{row.received}",
        "first_time": f"{row.accepted_first_time}/{row.accepted}",
        "satisfaction": f"{row.satisfied}/{row.rated}",
        "orders": f"{row.orders} × −{scheme.order_penalty}",
    }


def _weighted(parts: list[Part]) -> tuple[list[Part], Decimal | None]:
    """The parts with their effective weights (those with points share the whole), and their
    weighted mean."""
    total = sum((p.weight for p in parts if p.points is not None), Decimal(0))
    if not total:
        return [Part(**{**p.__dict__, "effective": Decimal(0)}) for p in parts], None
    weighted = [
        Part(
            **{**p.__dict__, "effective": p.weight / total if p.points is not None else Decimal(0)}
        )
        for p in parts
    ]
    return weighted, sum((p.contribution for p in weighted), Decimal(0))


def compute(
    row: stats.DepartmentRow,
    marks: Iterable[tuple[AssessmentCriterion, Decimal]],
    scheme: AssessmentScheme,
) -> Computation:
    """The combined score of a department from its measured figures and a township's marks."""
    points = measured_points(row, scheme)
    shown = _shown(row, scheme)
    measured_parts, measured = _weighted(
        [
            Part(name, str(FIGURE_LABELS[name]), shown[name], points[name], weight)
            for name, weight in scheme.measured_weights.items()
        ]
    )
    mark_parts, township = _weighted(
        [Part(str(c.pk), c.display_name, str(mark), Decimal(mark), c.weight) for c, mark in marks]
    )
    share = scheme.township_share
    if measured is None and township is None:
        score = Decimal(0)
    elif measured is None:
        score = township
    elif township is None:
        score = measured
    else:
        score = (1 - share) * measured + share * township
    return Computation(
        measured_parts=measured_parts,
        mark_parts=mark_parts,
        share=share,
        measured=measured,
        township=township,
        score=score.quantize(CENT, rounding=ROUND_HALF_UP),
        left_out=[p.key for p in measured_parts if p.points is None],
    )


def measured_row(
    township: Township, department: Department, period: str, start: date
) -> stats.DepartmentRow | None:
    """The department's figures for the township and the period (None: it did not serve)."""
    begin, end = bounds(township, period, start)
    for row in stats.department_table(township_id=township.pk, start=begin, end=end):
        if row.code == department.code:
            return row
    return None


def _figures(row: stats.DepartmentRow) -> dict[str, Any]:
    return {
        name: getattr(row, name)
        for name in (
            "received", "on_time", "finish_overdue", "accepted", "accepted_first_time",
            "rated", "satisfied", "orders", "overdue", "escalated",
        )
    }  # fmt: skip


# --- who is told ---------------------------------------------------------------------------------


def _department_people(department: Department) -> list[Recipient]:
    """A rating is the department's business: its head, and its members."""
    people = [Recipient(department.head, "head")] if department.head else []
    members = department.members.filter(is_active=True, role=User.Role.DEPARTMENT_MEMBER)
    return people + [Recipient(m, "department") for m in members.order_by("pk")]


def _tell(rating: DepartmentRating, recipients: list[Recipient], text: str, link: str) -> None:
    """Page ``recipients`` about the rating's latest step (once per step: the key counts the
    rating's timeline rows)."""
    step = TimelineEntry.objects.filter(subject_type="rating", subject_id=rating.pk).count()
    page(
        Cause(
            township_id=rating.township_id,
            subject_type="rating",
            subject_id=rating.pk,
            incident_id=None,
            text=text,
            link=link,
            key=f"rating:{rating.pk}:{step}",
        ),
        recipients,
    )


def _rating_words(rating: DepartmentRating) -> dict[str, str]:
    return {
        "township": rating.township.name,
        "department": rating.department.name,
        "period": period_name(rating.period, rating.period_start),
        "score": str(rating.score),
    }


def _department_link(rating: DepartmentRating) -> str:
    return f"/console/{rating.department.code}/assessment/#rating-{rating.pk}"


def _township_link(rating: DepartmentRating) -> str:
    name = period_name(rating.period, rating.period_start)
    return f"/supervise/{rating.township.code}/ratings/{name}/{rating.department.code}/#objections"


# --- services ----------------------------------------------------------------------------------


def _record(
    rating: DepartmentRating, action: Action, actor: User | None, source: str, **payload: Any
) -> None:
    timeline_record(
        township_id=rating.township_id,
        subject_type="rating",
        subject_id=rating.pk,
        action=action,
        source=source,
        actor_id=actor.pk if actor else None,
        before=payload.get("before"),
        after=payload.get("after"),
    )


def _state(rating: DepartmentRating) -> dict[str, Any]:
    return {
        "department": rating.department.code,
        "period": rating.period,
        "period_start": rating.period_start.isoformat(),
        "score": str(rating.score),
        "marks": {str(m.criterion_id): str(m.mark) for m in rating.marks.all()},
        "comment": rating.comment,
    }


def _mark(value: Any) -> Decimal:
    try:
        mark = Decimal(str(value).strip())
    except ArithmeticError:
        raise TransitionNotAllowed(
            _("A mark is a number from 0 to 100."), code="mark_invalid"
        ) from None
    if not mark.is_finite() or not 0 <= mark <= 100:
        raise TransitionNotAllowed(_("A mark is a number from 0 to 100."), code="mark_invalid")
    return mark.quantize(CENT, rounding=ROUND_HALF_UP)


def rating_give(
    *,
    actor: User,
    township: Township,
    department: Department,
    period: str,
    period_start: date,
    marks: Mapping[int, Any],
    comment: str = "",
    source: str = TimelineEntry.Source.WEB,
    notify: bool = True,
) -> DepartmentRating:
    """Rate ``department`` for the township's ``period`` beginning ``period_start`` with a mark
    (0–100) for each of the township's criteria; rating it again revises the rating (the
    objection window does not start again). The department is told of a new score unless
    ``notify`` is false (an answer to its objection tells it instead)."""
    if not policy.can_rate(actor, township):
        raise ActionForbidden(
            _("Only the township's supervisors and administrators rate departments.")
        )
    if period not in Period.values or period_start_of(period, period_start) != period_start:
        raise TransitionNotAllowed(_("Choose a month, a quarter or a year."), code="period_invalid")
    if period_end(period, period_start) > localtime.township_today(township):
        raise TransitionNotAllowed(
            _("A period is rated once it has ended."), code="period_not_ended"
        )
    criteria = criteria_for(township)
    by_pk = {c.pk: c for c in criteria}
    given = {int(k): v for k, v in marks.items() if str(v).strip() != ""}
    if set(given) - set(by_pk):
        raise TransitionNotAllowed(
            _("A mark is for a criterion the township no longer uses."), code="criterion_unknown"
        )
    missing = [c.display_name for c in criteria if c.pk not in given]
    if missing:
        raise TransitionNotAllowed(
            _("Give a mark for: %(criteria)s.") % {"criteria": "、".join(missing)},
            code="marks_missing",
        )
    checked = [(by_pk[pk], _mark(value)) for pk, value in given.items()]
    checked.sort(key=lambda pair: (pair[0].position, pair[0].pk))
    row = measured_row(township, department, period, period_start)
    if row is None:
        raise TransitionNotAllowed(
            _("%(department)s was not summoned by the township in %(period)s.")
            % {"department": department.display_name, "period": period_name(period, period_start)},
            code="department_did_not_serve",
        )
    scheme = scheme_for(township)
    computation = compute(row, checked, scheme)
    now = clock.now()
    with transaction.atomic():
        rating = (
            DepartmentRating.objects.select_for_update()
            .filter(
                township=township, department=department, period=period, period_start=period_start
            )
            .first()
        )
        before = _state(rating) if rating else None
        if rating is None:
            rating = DepartmentRating(
                township=township,
                department=department,
                period=period,
                period_start=period_start,
                rated_at=now,
                objection_until=now + timedelta(days=scheme.objection_days),
            )
        rating.comment = comment.strip()
        rating.measured = _figures(row)
        rating.score = computation.score
        rating.computation = computation.as_json()
        rating.rated_by = actor
        try:
            with transaction.atomic():
                rating.save()
        except IntegrityError:
            # Another of the township's people rated it between our read and our write.
            raise TransitionNotAllowed(
                _("The department was rated meanwhile: reload the page and revise it."),
                code="rated_meanwhile",
            ) from None
        rating.marks.all().delete()
        RatingMark.objects.bulk_create(
            RatingMark(rating=rating, criterion=c, mark=mark) for c, mark in checked
        )
        after = _state(rating)
        if before is None:
            _record(rating, Action.RATING_GIVEN, actor, source, after=after)
        elif before != after:
            _record(rating, Action.RATING_REVISED, actor, source, before=before, after=after)
        if notify and (before is None or before["score"] != after["score"]):
            with official_language():
                text = _(
                    "[Assessment] %(township)s rated %(department)s for %(period)s: %(score)s."
                )
                _tell(
                    rating,
                    _department_people(department),
                    text % _rating_words(rating),
                    _department_link(rating),
                )
    return rating


def rating_object(
    *, actor: User, rating: DepartmentRating, text: str, source: str = TimelineEntry.Source.WEB
) -> RatingObjection:
    """The rated department objects in writing (申诉) within the scheme's window, one
    objection at a time."""
    if not policy.can_object(actor, rating.department_id):
        raise ActionForbidden(_("Only the rated department's members may object."))
    text = text.strip()
    if not text:
        raise TransitionNotAllowed(_("Say what you object to."), code="objection_empty")
    if clock.now() > rating.objection_until:
        raise TransitionNotAllowed(
            _("Objections to this rating closed on %(day)s.")
            % {"day": f"{rating.objection_until.astimezone(rating.township.zone):%Y-%m-%d %H:%M}"},
            code="objection_closed",
        )
    with transaction.atomic():
        DepartmentRating.objects.select_for_update().get(pk=rating.pk)
        if rating.objections.filter(outcome="").exists():
            raise TransitionNotAllowed(
                _("An objection to this rating awaits its answer."), code="objection_pending"
            )
        objection = RatingObjection.objects.create(
            rating=rating, text=text, raised_by=actor, raised_at=clock.now()
        )
        _record(
            rating,
            Action.RATING_OBJECTED,
            actor,
            source,
            after={"department": rating.department.code, "objection": text},
        )
        raters = township_supervisors(rating.township)
        if rating.rated_by and rating.rated_by not in raters:
            raters.append(rating.rated_by)
        with official_language():
            words = _("[Assessment] %(department)s objects to its rating for %(period)s: %(text)s")
            _tell(
                rating,
                [Recipient(u, "township_supervisors") for u in raters],
                words % {**_rating_words(rating), "text": text},
                _township_link(rating),
            )
    return objection


def objection_answer(
    *,
    actor: User,
    objection: RatingObjection,
    answer: str,
    outcome: str,
    marks: Mapping[int, Any] | None = None,
    source: str = TimelineEntry.Source.WEB,
) -> RatingObjection:
    """The township answers an objection: rejected (the rating stands) or upheld, with the
    revised marks (the rating is computed again)."""
    rating = objection.rating
    if not policy.can_rate(actor, rating.township_id):
        raise ActionForbidden(
            _("Only the township's supervisors and administrators answer objections.")
        )
    answer = answer.strip()
    if not answer:
        raise TransitionNotAllowed(_("Write the answer."), code="answer_empty")
    if outcome not in (RatingObjection.Outcome.UPHELD, RatingObjection.Outcome.REJECTED):
        raise TransitionNotAllowed(_("Choose upheld or rejected."), code="outcome_invalid")
    with transaction.atomic():
        locked = RatingObjection.objects.select_for_update().get(pk=objection.pk)
        if locked.outcome:
            raise TransitionNotAllowed(
                _("This objection has been answered."), code="objection_answered"
            )
        before = {"department": rating.department.code, "objection": locked.text}
        if outcome == RatingObjection.Outcome.UPHELD and marks is not None:
            rating_give(
                actor=actor,
                township=rating.township,
                department=rating.department,
                period=rating.period,
                period_start=rating.period_start,
                marks=marks,
                comment=rating.comment,
                source=source,
                notify=False,
            )
            rating.refresh_from_db()
        locked.answer = answer
        locked.outcome = outcome
        locked.answered_by = actor
        locked.answered_at = clock.now()
        locked.save(update_fields=["answer", "outcome", "answered_by", "answered_at"])
        _record(
            rating,
            Action.RATING_ANSWERED,
            actor,
            source,
            before=before,
            after={**before, "answer": answer, "outcome": outcome, "score": str(rating.score)},
        )
        with official_language():
            words = _("[Assessment] %(township)s answered your objection (%(outcome)s): %(answer)s")
            _tell(
                rating,
                _department_people(rating.department),
                words
                % {
                    **_rating_words(rating),
                    "outcome": RatingObjection.Outcome(outcome).label,
                    "answer": answer,
                },
                _department_link(rating),
            )
    return locked


# --- selectors ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DepartmentScore:
    """A department that served a township in a period: its figures, the score its figures
    alone give, and the township's rating when there is one."""

    department: Department
    row: stats.DepartmentRow
    measured_only: Computation
    rating: DepartmentRating | None

    @property
    def score(self) -> Decimal | None:
        return self.rating.score if self.rating else None


def department_scores(
    *, township: Township, period: str, period_start: date
) -> list[DepartmentScore]:
    """Every department the township summoned (or sent a 督办单) in the period, with its
    rating when given: most summoned first. The monthly report's departments' scores."""
    begin, end = bounds(township, period, period_start)
    rows = stats.department_table(township_id=township.pk, start=begin, end=end)
    departments = {d.code: d for d in Department.objects.filter(code__in=[r.code for r in rows])}
    ratings = {
        r.department_id: r
        for r in DepartmentRating.objects.filter(
            township=township, period=period, period_start=period_start
        ).prefetch_related("marks__criterion", "objections")
    }
    scheme = scheme_for(township)
    scores = []
    for row in rows:
        department = departments[row.code]
        scores.append(
            DepartmentScore(department, row, compute(row, [], scheme), ratings.get(department.pk))
        )
    return scores


@dataclass
class RankedDepartment:
    department: Department
    score: Decimal
    ratings: list[DepartmentRating]
    rank: int = 0

    @property
    def townships(self) -> int:
        return len(self.ratings)

    @property
    def sort_name(self) -> str:
        return self.department.code


def _ranked(rows: list[Any], key: str = "score") -> list[Any]:
    """Ranks 1, 2, 2, 4 … by descending score (ties share a rank)."""
    rows.sort(key=lambda r: (-getattr(r, key), r.sort_name))
    previous, rank = None, 0
    for position, row in enumerate(rows, 1):
        if getattr(row, key) != previous:
            rank, previous = position, getattr(row, key)
        row.rank = rank
    return rows


def district_ranking(
    *, period: str, period_start: date, township_ids: set[int] | None = None
) -> list[RankedDepartment]:
    """Departments by their mean score over the townships that rated them in the period."""
    ratings = DepartmentRating.objects.filter(
        period=period, period_start=period_start
    ).select_related("department", "township")
    if township_ids is not None:
        ratings = ratings.filter(township_id__in=township_ids)
    by_department: dict[int, list[DepartmentRating]] = defaultdict(list)
    for rating in ratings:
        by_department[rating.department_id].append(rating)
    rows = []
    for found in by_department.values():
        mean = sum((r.score for r in found), Decimal(0)) / len(found)
        rows.append(
            RankedDepartment(
                found[0].department, mean.quantize(CENT, rounding=ROUND_HALF_UP), found
            )
        )
    return _ranked(rows)


def score_trend(
    *, department_ids: Iterable[int], months: list[date], township_ids: set[int] | None = None
) -> dict[int, list[Decimal | None]]:
    """Per department, its mean monthly rating score for each month (None: not rated)."""
    ratings = DepartmentRating.objects.filter(
        period=Period.MONTH, period_start__in=months, department_id__in=list(department_ids)
    )
    if township_ids is not None:
        ratings = ratings.filter(township_id__in=township_ids)
    sums: dict[tuple[int, date], list[Decimal]] = defaultdict(list)
    for department_id, start, score in ratings.values_list(
        "department_id", "period_start", "score"
    ):
        sums[(department_id, start)].append(score)
    trend: dict[int, list[Decimal | None]] = {}
    for department_id in department_ids:
        trend[department_id] = [
            (sum(s, Decimal(0)) / len(s)).quantize(CENT)
            if (s := sums.get((department_id, m)))
            else None
            for m in months
        ]
    return trend


# The 631 target: settled in the grid/village, in the township, gone up to the county.
TARGET_631 = {"grid": Decimal("0.60"), "township": Decimal("0.30"), "county": Decimal("0.10")}


@dataclass
class SettlementRow:
    township: Township
    counts: dict[str, int]
    rank: int = 0

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def share(self, level: str) -> Decimal | None:
        return Decimal(self.counts.get(level, 0)) / self.total if self.total else None

    @property
    def drifting(self) -> bool:
        """More than the target's 10% went up to the county (above 631)."""
        up = self.share("county")
        return up is not None and up > TARGET_631["county"]


def settlement_table(
    *, period: str, period_start: date, township_ids: set[int] | None = None
) -> list[SettlementRow]:
    """Every township's 631 split of the incidents closed in the period."""
    townships = (
        Township.objects.all()
        if township_ids is None
        else Township.objects.filter(pk__in=township_ids)
    )
    rows = []
    for township in townships:
        begin, end = bounds(township, period, period_start)
        rows.append(
            SettlementRow(
                township, stats.settled_table(township_id=township.pk, start=begin, end=end)
            )
        )
    return rows


@dataclass
class RankedTownship:
    township: Township
    settlement: SettlementRow
    points_631: Decimal | None
    closed: int
    satisfied: Decimal | None
    score: Decimal
    rank: int = 0

    @property
    def sort_name(self) -> str:
        return self.township.code


def township_ranking(
    *, period: str, period_start: date, township_ids: set[int] | None = None
) -> list[RankedTownship]:
    """Townships ranked on their own work in the period: how near their closings came to 631
    (100 points at or beyond the target, less by the share short of it: grid and township
    settled together against 90%, and the grid alone against 60%) and the satisfaction of the
    people called back; the two weigh equally, a township with no callbacks is ranked on 631
    alone."""
    from incidents.models import Incident

    rows = []
    for settlement in settlement_table(
        period=period, period_start=period_start, township_ids=township_ids
    ):
        township = settlement.township
        begin, end = bounds(township, period, period_start)
        points = None
        if settlement.total:
            grid = settlement.share("grid") or Decimal(0)
            below = (settlement.share("grid") or 0) + (settlement.share("township") or 0)
            shortfall = max(Decimal(0), TARGET_631["grid"] - grid) + max(
                Decimal(0), 1 - TARGET_631["county"] - below
            )
            points = max(Decimal(0), HUNDRED * (1 - shortfall))
        called = Incident.objects.filter(
            township=township, status="closed", closed_at__gte=begin, closed_at__lt=end
        ).exclude(satisfaction="")
        total = called.count()
        satisfied = (
            HUNDRED * called.filter(satisfaction__in=("satisfied", "basic")).count() / total
            if total
            else None
        )
        parts = [p for p in (points, satisfied) if p is not None]
        score = (
            (sum(parts, Decimal(0)) / len(parts)).quantize(CENT, rounding=ROUND_HALF_UP)
            if parts
            else Decimal(0)
        )
        rows.append(
            RankedTownship(township, settlement, points, settlement.total, satisfied, score)
        )
    return _ranked(rows)


def last_full_month(township: Township) -> date:
    """The first day of the month before the township's current one."""
    today = localtime.township_today(township)
    first = today.replace(day=1)
    previous = first - timedelta(days=1)
    return previous.replace(day=1)
