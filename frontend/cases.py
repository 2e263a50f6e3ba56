"""The case library (案件库) and the daily review (一日一研判): thin pages over
``supervision.cases`` and ``supervision.review``."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from command.org import localtime, policy
from command.org.models import User
from frontend.views import supervised_township
from supervision import cases as case_library
from supervision import review as daily
from supervision import trends

CSV_HEADER = [
    "id", "township", "opened_at", "category", "title", "grid", "status", "departments",
    "settled_level", "satisfaction", "reopened_count", "resolved_at", "closed_at", "feedback",
]  # fmt: skip


def _local(row: case_library.CaseRow, moment: Any) -> Any:
    """A time on the clock of the incident's township."""
    return moment.astimezone(row.incident.township.zone) if moment else None


def _decorate(user: User, rows: list[case_library.CaseRow]) -> list[case_library.CaseRow]:
    """Each row's opening on its township's clock, and whether its timeline opens for ``user``
    (the timeline and replay are the supervision pages of the incident's township)."""
    supervised: dict[int, bool] = {}
    for row in rows:
        incident = row.incident
        if incident.township_id not in supervised:
            supervised[incident.township_id] = policy.can_supervise(user, incident.township)
        row.opened_local = _local(row, incident.opened_at)  # type: ignore[attr-defined]
        shown = supervised[incident.township_id]
        where = [incident.township.code, incident.pk]
        row.timeline_url = reverse("incident_timeline", args=where) if shown else None  # type: ignore[attr-defined]
        row.replay_url = reverse("replay", args=where) if shown else None  # type: ignore[attr-defined]
    return rows


def _query(request: HttpRequest, *, drop: tuple[str, ...] = ("after", "format")) -> str:
    params = request.GET.copy()
    for name in drop:
        params.pop(name, None)
    return params.urlencode()


def case_library_page(request: HttpRequest) -> HttpResponse:
    """Every incident the user may see, searched and filtered; ``?format=csv`` exports all the
    matching rows (not one page)."""
    user: User = request.user  # type: ignore[assignment]
    form = case_library.CaseFilterForm(request.GET, user=user)
    wants_csv = request.GET.get("format") == "csv"
    if not form.is_valid():
        if wants_csv:
            return HttpResponse(
                form.error_text(), status=400, content_type="text/plain; charset=utf-8"
            )
        context = {"form": form, "page": None, "query": ""}
        return render(request, _template(request), context, status=400)
    filters = form.filters()
    if wants_csv:
        return _csv(user, filters)
    page = case_library.case_page(user=user, filters=filters, complete=False)
    context = {
        "form": form,
        "rows": _decorate(user, page.rows),
        "page": page,
        "query": _query(request),
        "first_page": bool(filters.after),
        "home_township": user.township if user.township_id else None,
    }
    return render(request, _template(request), context)


def _template(request: HttpRequest) -> str:
    # A filter change (htmx) redraws the results only; the address bar gets the query.
    if getattr(request, "htmx", False) and not request.htmx.boosted:  # type: ignore[attr-defined]
        return "frontend/partials/case_results.html"
    return "frontend/cases.html"


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv(user: User, filters: case_library.CaseFilter) -> StreamingHttpResponse:
    writer = csv.writer(_Echo())

    def lines() -> Iterator[str]:
        yield "\ufeff"  # so a spreadsheet opened by double-click reads the Chinese
        yield writer.writerow(CSV_HEADER)
        for row in case_library.every_case(user=user, filters=filters):
            i = row.incident
            yield writer.writerow(
                [
                    i.pk, i.township.code, _stamp(_local(row, i.opened_at)), i.category.code,
                    i.title, i.grid.code if i.grid else "", i.status,
                    " ".join(row.department_codes), i.settled_level, i.satisfaction,
                    i.reopened_count, _stamp(_local(row, i.resolved_at)),
                    _stamp(_local(row, i.closed_at)), i.feedback,
                ]
            )  # fmt: skip

    today = timezone.localdate()
    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="cases-{today}.csv"'
    return response


def _stamp(moment: Any) -> str:
    """ISO 8601 with the township's offset: unambiguous in a spreadsheet and to a program."""
    return moment.isoformat(timespec="seconds") if moment else ""


def review_page(request: HttpRequest, township: str) -> HttpResponse:
    """一日一研判: yesterday's intake (``?day=`` another day), repeats, and what is open now."""
    found = supervised_township(request, township)
    try:
        day = daily.review_day(found, request.GET.get("day"))
    except ValueError:
        context = {"township": found, "problem": _("Choose a day that has begun (YYYY-MM-DD).")}
        return render(request, "frontend/review.html", context, status=400)
    figures = daily.daily_review(
        township=found, day=day, whole_phone=policy.can_see_caller(request.user, found)
    )
    context = {
        "township": found,
        "review": figures,
        "stale_days": daily.stale_after().days,
        "repeat_days": trends.REPEAT_DAYS,
        "repeat_least": trends.REPEAT_AT_LEAST,
        "previous_day": (day - timedelta(days=1)).isoformat(),
        "next_day": (day + timedelta(days=1)).isoformat()
        if day < localtime.township_today(found)
        else None,
    }
    with localtime.shown_in(found):
        return render(request, "frontend/review.html", context)
