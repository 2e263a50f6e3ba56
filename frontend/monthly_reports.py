"""The monthly report's pages: a printable page of a township's month (A4, the workbook's tables),
its workbook to download, and the list of the reports generated and sent."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _

from command.org import localtime
from command.org.models import Township
from frontend.views import supervised_township
from supervision import reports
from supervision.models import MonthlyReport

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# The per-day chart's drawing box (SVG user units).
CHART_WIDTH, CHART_HEIGHT = 700, 120


def _month(township: Township, text: str) -> reports.Month | None:
    """The month asked for, if it is one and has begun on the township's clock."""
    try:
        month = reports.Month.parse(text)
    except ValueError:
        return None
    if month.first > localtime.township_today(township):
        return None
    return month


def _bad_month(request: HttpRequest, township: Township) -> HttpResponse:
    context = {
        "township": township,
        "problem": _("Choose a month that has begun, as YYYY-MM."),
    }
    return render(request, "frontend/monthly_report.html", context, status=400)


def _per_day_bars(per_day: list[dict[str, Any]]) -> list[dict[str, Any]]:
    most = max((d["count"] for d in per_day), default=0) or 1
    width = CHART_WIDTH / max(len(per_day), 1)
    return [
        {
            "x": round(n * width + 1, 1),
            "width": round(width - 2, 1),
            "height": round(d["count"] / most * (CHART_HEIGHT - 14), 1),
            "y": round(CHART_HEIGHT - d["count"] / most * (CHART_HEIGHT - 14), 1),
            "day": d["day"],
            "count": d["count"],
            "label": d["day"][-2:],
        }
        for n, d in enumerate(per_day)
    ]


def _shown(moment: str | None) -> str:
    """A stored local ISO time as the page shows it (YYYY-MM-DD HH:MM, the township's clock)."""
    return moment[:16].replace("T", " ") if moment else ""


def monthly_report_page(request: HttpRequest, township: str, month: str) -> HttpResponse:
    """The month's report, read now in the reader's language; the stored one (sent) can be
    downloaded from it."""
    found = supervised_township(request, township)
    asked = _month(found, month)
    if asked is None:
        return _bad_month(request, found)
    figures = reports.monthly_figures(township=found, month=asked)
    stored = MonthlyReport.objects.filter(township=found, month=str(asked)).first()
    scores = {s["code"]: s for s in figures["scores"]}
    context = {
        "township": found,
        "figures": figures,
        "month": str(asked),
        "previous": str(asked.previous()),
        "next": str(asked.next())
        if asked.next().first <= localtime.township_today(found)
        else None,
        "stored": stored,
        "read_at": _shown(figures["generated_at"]),
        "bars": _per_day_bars(figures["intake"]["per_day"]),
        "chart_width": CHART_WIDTH,
        "chart_height": CHART_HEIGHT,
        "departments": [{**d, "score": scores.get(d["code"], {})} for d in figures["departments"]],
        "orders": [
            {**o, **{k: _shown(o[k]) for k in ("issued_at", "due_at", "answered_at")}}
            for o in figures["overdue"]["order_rows"]
        ],
    }
    with localtime.shown_in(found):
        return render(request, "frontend/monthly_report.html", context)


def monthly_report_workbook(request: HttpRequest, township: str, month: str) -> HttpResponse:
    """The workbook: the stored one as it was sent, else one generated now in the reader's
    language."""
    found = supervised_township(request, township)
    asked = _month(found, month)
    if asked is None:
        return _bad_month(request, found)
    stored = MonthlyReport.objects.filter(township=found, month=str(asked)).first()
    if stored is not None and stored.workbook:
        book, name = bytes(stored.workbook), reports.filename(stored.figures)
    else:
        figures = reports.monthly_figures(township=found, month=asked)
        book, name = reports.workbook(figures), reports.filename(figures)
    response = HttpResponse(book, content_type=XLSX)
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def monthly_reports_list(request: HttpRequest, township: str) -> HttpResponse:
    found = supervised_township(request, township)
    stored = list(
        MonthlyReport.objects.filter(township=found)
        .defer("workbook", "figures")
        .order_by("-month")[:60]
    )
    last = localtime.township_today(found).replace(day=1)
    context = {
        "township": found,
        "reports": stored,
        "last_month": str(reports.Month.of(last).previous()),
    }
    with localtime.shown_in(found):
        return render(request, "frontend/monthly_reports.html", context)
