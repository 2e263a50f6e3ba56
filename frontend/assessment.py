"""Assessment pages (考核): a township rates the departments that served it, a department reads
its ratings and objects, the district ranks departments and townships (with exports)."""

from __future__ import annotations

import csv
from datetime import date
from decimal import Decimal
from typing import Any

from django import forms
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from command import clock
from command.errors import ActionForbidden, TransitionNotAllowed
from command.org import localtime, policy
from command.org.models import DEFAULT_TIME_ZONE, Department, User, township_zone
from frontend.views import supervised_township
from supervision import assessment, monthly, reports
from supervision.models import AssessmentCriterion, DepartmentRating, Period, RatingObjection

TREND_MONTHS = 12


def _period(request: HttpRequest, default: tuple[str, date]) -> tuple[str, date, str | None]:
    """The page's period (``?period=2026-10``, ``2026-Q4`` or ``2026``), and the error when the
    text is none of these."""
    text = request.GET.get("period")
    if not text:
        return (*default, None)
    try:
        return (*assessment.parse_period(text), None)
    except ValueError as error:
        return (*default, str(error))


def _last_month() -> tuple[str, date]:
    """The district's last full month, on the district's (the default) clock."""
    today = clock.now().astimezone(township_zone(DEFAULT_TIME_ZONE)).date()
    return Period.MONTH, assessment.months_before(today.replace(day=1), 2)[0]


def _period_context(period: str, start: date) -> dict[str, Any]:
    return {
        "period": period,
        "period_start": start,
        "period_name": assessment.period_name(period, start),
        "period_label": Period(period).label,
        "previous": assessment.period_name(
            period, assessment.period_start_of(period, _day_before(start))
        ),
        "next": assessment.period_name(period, assessment.period_end(period, start)),
    }


def _day_before(day: date) -> date:
    return date.fromordinal(day.toordinal() - 1)


# --- the township rates -----------------------------------------------------------------------


class CriterionForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Criterion (Chinese)"), max_length=120)
    name_en = forms.CharField(
        label=gettext_lazy("Criterion (English)"), max_length=120, required=False
    )
    weight = forms.DecimalField(
        label=gettext_lazy("Weight"), min_value=Decimal("0.01"), max_digits=4, decimal_places=2
    )


def ratings(request: HttpRequest, township: str) -> HttpResponse:
    """The departments that served the township in a period, their figures and ratings; the
    township's criteria (added and retired here by whoever rates)."""
    found = supervised_township(request, township)
    period, start, error = _period(request, (Period.MONTH, assessment.last_full_month(found)))
    may_rate = policy.can_rate(request.user, found)
    criterion_form = CriterionForm(request.POST or None, prefix="criterion")
    if request.method == "POST":
        if not may_rate:
            raise PermissionDenied
        retire = request.POST.get("retire")
        if retire and retire.isdigit():
            assessment.criterion_retire(actor=request.user, township=found, pk=int(retire))  # type: ignore[arg-type]
            return redirect(request.get_full_path())
        if criterion_form.is_valid():
            assessment.criterion_put(
                actor=request.user,  # type: ignore[arg-type]
                township=found,
                **criterion_form.cleaned_data,
            )
            return redirect(request.get_full_path())
    scores = assessment.department_scores(township=found, period=period, period_start=start)
    context = {
        "township": found,
        "scores": scores,
        "criteria": assessment.criteria_for(found) if may_rate else [],
        "may_rate": may_rate,
        "criterion_form": criterion_form,
        "error": error,
        "ended": assessment.period_end(period, start) <= localtime.township_today(found),
        "scheme": assessment.scheme_for(found),
        **_period_context(period, start),
    }
    status = 400 if error or criterion_form.errors else 200
    return render(request, "frontend/ratings.html", context, status=status)


class RatingForm(forms.Form):
    comment = forms.CharField(
        label=gettext_lazy("Comment (shown to the department)"),
        widget=forms.Textarea({"rows": 3}),
        required=False,
        max_length=2000,
    )

    def __init__(self, *args: Any, criteria: list[AssessmentCriterion], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.criteria = criteria
        for criterion in criteria:
            self.fields[f"mark_{criterion.pk}"] = forms.DecimalField(
                label=criterion.display_name,
                min_value=0,
                max_value=100,
                decimal_places=2,
                max_digits=5,
                widget=forms.NumberInput({"step": "0.5", "class": "mark"}),
            )

    def marks(self) -> dict[int, Decimal]:
        return {c.pk: self.cleaned_data[f"mark_{c.pk}"] for c in self.criteria}

    def mark_fields(self) -> list[Any]:
        return [self[f"mark_{c.pk}"] for c in self.criteria]


class AnswerForm(forms.Form):
    outcome = forms.ChoiceField(
        label=gettext_lazy("Outcome"),
        choices=[
            (RatingObjection.Outcome.REJECTED, RatingObjection.Outcome.REJECTED.label),
            (RatingObjection.Outcome.UPHELD, RatingObjection.Outcome.UPHELD.label),
        ],
        widget=forms.RadioSelect,
    )
    answer = forms.CharField(
        label=gettext_lazy("Answer"), widget=forms.Textarea({"rows": 3}), max_length=2000
    )


def rating_page(request: HttpRequest, township: str, period: str, department: str) -> HttpResponse:
    """One department's rating by the township for one period: figures, the computation, the
    marks form (for whoever rates) and the objections with their answers."""
    found = supervised_township(request, township)
    rated = get_object_or_404(Department, code=department)
    try:
        kind, start = assessment.parse_period(period)
    except ValueError:
        return HttpResponse(
            _("Give a month (2026-10), a quarter (2026-Q4) or a year (2026)."), status=404
        )
    may_rate = policy.can_rate(request.user, found)
    criteria = assessment.criteria_for(found) if may_rate else []
    rating = (
        DepartmentRating.objects.filter(
            township=found, department=rated, period=kind, period_start=start
        )
        .prefetch_related("marks__criterion", "objections")
        .first()
    )
    initial: dict[str, Any] = {}
    if rating:
        initial = {f"mark_{m.criterion_id}": m.mark for m in rating.marks.all()}
        initial["comment"] = rating.comment
    form = RatingForm(
        request.POST if request.method == "POST" and "rate" in request.POST else None,
        criteria=criteria,
        initial=initial,
    )
    answer_form = AnswerForm(
        request.POST if request.method == "POST" and "answer-objection" in request.POST else None
    )
    if request.method == "POST":
        if not may_rate:
            raise PermissionDenied
        try:
            if form.is_bound and form.is_valid():
                assessment.rating_give(
                    actor=request.user,  # type: ignore[arg-type]
                    township=found,
                    department=rated,
                    period=kind,
                    period_start=start,
                    marks=form.marks(),
                    comment=form.cleaned_data["comment"],
                )
                return redirect(request.path + "#computation")
            if answer_form.is_bound and answer_form.is_valid() and rating:
                objection = get_object_or_404(
                    RatingObjection, rating=rating, pk=request.POST.get("objection")
                )
                marks = None
                if answer_form.cleaned_data["outcome"] == RatingObjection.Outcome.UPHELD:
                    revised = RatingForm(request.POST, criteria=criteria)
                    if not revised.is_valid():
                        raise TransitionNotAllowed(
                            _("Upholding revises the marks: give every mark."),
                            code="marks_missing",
                        )
                    marks = revised.marks()
                assessment.objection_answer(
                    actor=request.user,  # type: ignore[arg-type]
                    objection=objection,
                    answer=answer_form.cleaned_data["answer"],
                    outcome=answer_form.cleaned_data["outcome"],
                    marks=marks,
                )
                return redirect(request.path + "#objections")
        except (TransitionNotAllowed, ActionForbidden) as refusal:
            (form if form.is_bound else answer_form).add_error(None, str(refusal))
    row = assessment.measured_row(found, rated, kind, start)
    scheme = assessment.scheme_for(found)
    preview = assessment.compute(row, [], scheme) if row is not None else None
    context = {
        "township": found,
        "department": rated,
        "rating": rating,
        "computation": rating.computation if rating else (preview.as_json() if preview else None),
        "row": row,
        "form": form,
        "answer_form": answer_form,
        "may_rate": may_rate,
        "scheme": scheme,
        "history": _history(rating),
        **_period_context(kind, start),
    }
    status = 400 if (form.errors or answer_form.errors) else 200
    return render(request, "frontend/rating.html", context, status=status)


def _history(rating: DepartmentRating | None) -> list[Any]:
    from command.timeline.models import TimelineEntry

    if rating is None:
        return []
    return list(
        TimelineEntry.objects.filter(subject_type="rating", subject_id=rating.pk)
        .select_related("actor")
        .order_by("time")
    )


# --- the department reads and objects ----------------------------------------------------------


class ObjectionForm(forms.Form):
    text = forms.CharField(
        label=gettext_lazy("Your objection, in writing"),
        widget=forms.Textarea({"rows": 4}),
        max_length=4000,
    )


def department_assessment(request: HttpRequest, department: str) -> HttpResponse:
    """A department's ratings by every township it served, with how each score was computed,
    and the objection form while the window is open."""
    found = get_object_or_404(Department, code=department)
    if not policy.can_open_console(request.user, found):
        raise PermissionDenied
    ratings_ = list(
        DepartmentRating.objects.filter(department=found)
        .select_related("township")
        .prefetch_related("marks__criterion", "objections")
        .order_by("-period_start", "township__code")[:48]
    )
    form = ObjectionForm(request.POST or None)
    if request.method == "POST":
        rating = get_object_or_404(
            DepartmentRating, department=found, pk=request.POST.get("rating")
        )
        if form.is_valid():
            try:
                assessment.rating_object(
                    actor=request.user,  # type: ignore[arg-type]
                    rating=rating,
                    text=form.cleaned_data["text"],
                )
            except (TransitionNotAllowed, ActionForbidden) as refusal:
                form.add_error(None, str(refusal))
            else:
                return redirect(request.path + f"#rating-{rating.pk}")
        form.rating_pk = rating.pk  # type: ignore[attr-defined]
    now = clock.now()
    rows = [
        {
            "rating": r,
            "name": assessment.period_name(r.period, r.period_start),
            "open": r.objection_until >= now and not any(not o.outcome for o in r.objections.all()),
        }
        for r in ratings_
    ]
    return render(
        request,
        "frontend/department_assessment.html",
        {"department": found, "rows": rows, "form": form},
        status=400 if form.errors else 200,
    )


# --- the district -----------------------------------------------------------------------------


def district(request: HttpRequest) -> HttpResponse:
    """Every department across the district's townships (scores, ranks, the last months'
    trend), the townships' 631 split against the target with the drifting ones marked, and
    the townships' ranking; each table as CSV (the year-end ranking: ``?period=2026``)."""
    user: User = request.user  # type: ignore[assignment]
    if not policy.can_view_district(user):
        raise PermissionDenied
    period, start, error = _period(request, _last_month())
    ids = policy.township_ids(user)
    departments = assessment.district_ranking(period=period, period_start=start, township_ids=ids)
    townships = assessment.township_ranking(period=period, period_start=start, township_ids=ids)
    # The 631 drift is read over the quarter of the period (a month alone is too few cases).
    quarter = assessment.period_start_of(Period.QUARTER, start) if period != Period.YEAR else start
    drift_period = Period.QUARTER if period != Period.YEAR else Period.YEAR
    settlement = assessment.settlement_table(
        period=drift_period, period_start=quarter, township_ids=ids
    )
    table = request.GET.get("csv")
    if table:
        return _district_csv(table, assessment.period_name(period, start), departments, townships)
    if "xlsx" in request.GET:
        name = assessment.period_name(period, start)
        response = HttpResponse(
            reports.ranking_workbook(name=name, departments=departments, townships=townships),
            content_type=monthly.XLSX,
        )
        response["Content-Disposition"] = f'attachment; filename="district-ranking-{name}.xlsx"'
        return response
    last_month = start if period == Period.MONTH else _last_month()[1]
    months = assessment.months_before(last_month, TREND_MONTHS)
    trend = assessment.score_trend(
        department_ids=[r.department.pk for r in departments], months=months, township_ids=ids
    )
    all_townships = sorted(
        {r.township for d in departments for r in d.ratings}, key=lambda t: t.code
    )
    context = {
        "departments": [
            {
                "row": d,
                "by_township": {r.township_id: r for r in d.ratings},
                "trend": _sparkline(trend.get(d.department.pk, [])),
            }
            for d in departments
        ],
        "rated_townships": all_townships,
        "townships": townships,
        "settlement": settlement,
        "drift_name": assessment.period_name(drift_period, quarter),
        "target": {k: int(v * 100) for k, v in assessment.TARGET_631.items()},
        "months": [f"{m:%Y-%m}" for m in months],
        "error": error,
        **_period_context(period, start),
    }
    return render(request, "frontend/district.html", context, status=400 if error else 200)


def _sparkline(points: list[Decimal | None], width: int = 120, height: int = 28) -> dict[str, Any]:
    """An SVG line of monthly scores: a dot per rated month, lines between neighbours (a gap
    where a month was not rated)."""
    step = (width - 4) / max(1, len(points) - 1)
    dots: list[tuple[str, str]] = []
    segments: list[list[str]] = [[]]
    for i, value in enumerate(points):
        if value is None:
            if segments[-1]:
                segments.append([])
            continue
        x, y = (
            f"{2 + i * step:.1f}",
            f"{height - 3 - float(value) / 100 * (height - 6):.1f}",
        )
        dots.append((x, y))
        segments[-1].append(f"{x},{y}")
    return {
        "segments": [" ".join(s) for s in segments if len(s) > 1],
        "dots": dots,
        "width": width,
        "height": height,
    }


def _district_csv(
    table: str, name: str, departments: list[Any], townships: list[Any]
) -> HttpResponse:
    if table not in ("departments", "townships"):
        return HttpResponse("csv must be departments or townships", status=400)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="district-{table}-{name}.csv"'
    response.write("\ufeff")  # so a spreadsheet opened by double-click reads the Chinese
    writer = csv.writer(response)
    if table == "departments":
        writer.writerow(["rank", "department", "name", "score", "townships", "scores_by_township"])
        for d in departments:
            writer.writerow(
                [
                    d.rank,
                    d.department.code,
                    d.department.display_name,
                    d.score,
                    d.townships,
                    "; ".join(f"{r.township.code}={r.score}" for r in d.ratings),
                ]
            )
    else:
        writer.writerow(
            ["rank", "township", "name", "score", "closed", "grid", "township_level", "county",
             "points_631", "satisfaction"]
        )  # fmt: skip
        for t in townships:
            counts = t.settlement.counts
            writer.writerow(
                [
                    t.rank, t.township.code, t.township.display_name, t.score, t.closed,
                    counts.get("grid", 0), counts.get("township", 0), counts.get("county", 0),
                    "" if t.points_631 is None else f"{t.points_631:.2f}",
                    "" if t.satisfied is None else f"{t.satisfied:.2f}",
                ]
            )  # fmt: skip
    return response
