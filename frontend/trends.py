"""The trends page (研判) of a township: matters per category and per grid by week or month
with last year's beside them, where the same matter keeps coming back (hot spots, on the map),
and when in the week and the day things happen. The figures are supervision.trends'."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _

from command.org import localtime
from command.org.models import Township
from frontend import maps
from frontend.supervision import PeriodForm
from frontend.views import supervised_township
from supervision import trends

GRID_ROWS = 15  # the busiest grids in the table; the map shows every grid
HOT_SPOT_ROWS = 20  # the hottest in the list; the map marks every grid with one
WEEKDAYS = (_("Mon"), _("Tue"), _("Wed"), _("Thu"), _("Fri"), _("Sat"), _("Sun"))
CHART_WIDTH, CHART_HEIGHT = 900.0, 180.0
LABELS = 13  # at most this many bucket labels under the chart, and values over the bars


class TrendsForm(PeriodForm):
    bucket = forms.ChoiceField(
        label=_("Count per"),
        choices=[("month", _("By month")), ("week", _("By week"))],
        initial="month",
    )


@dataclass(frozen=True)
class Column:
    """One bucket of the chart: last year's bar and this period's beside it, in SVG units."""

    label: str
    centre: float  # of the pair, for the label
    then_x: float
    now_x: float
    width: float
    now: int
    now_y: float
    then: int
    then_y: float
    labelled: bool = True

    @property
    def now_centre(self) -> float:
        return self.now_x + self.width / 2

    @property
    def now_height(self) -> float:
        return CHART_HEIGHT - self.now_y

    @property
    def then_height(self) -> float:
        return CHART_HEIGHT - self.then_y


def columns(trend: trends.Trend) -> list[Column]:
    """The bars of the matters per bucket, this period against last year, on one scale."""
    now, then = trend.counts, trend.last_year
    top = max([*now, *then, 1])
    slot = CHART_WIDTH / max(len(trend.buckets), 1)
    width = min(slot * 0.36, 40.0)
    label = "%m-%d" if trend.bucket == "week" else "%Y-%m"
    # A label every few columns when there are many, so they do not run into each other.
    every = max(1, -(-len(trend.buckets) // LABELS))
    found = []
    for i, day in enumerate(trend.buckets):
        centre = (i + 0.5) * slot
        found.append(
            Column(
                day.strftime(label),
                centre,
                centre - width,
                centre,
                width,
                now[i],
                CHART_HEIGHT - CHART_HEIGHT * now[i] / top,
                then[i],
                CHART_HEIGHT - CHART_HEIGHT * then[i] / top,
                i % every == 0,
            )
        )
    return found


def _cells(counts: list[int], busiest: int) -> list[tuple[str, str]]:
    """Each count as the cell shows it (blank for none) and its red, from none to 0.85 for the
    busiest. Written here, not by the template: a year's tables are thousands of numbers, and
    the template's number formatting of each would be a good part of the page's time."""
    return [(str(n), f"{0.85 * n / busiest:.2f}") if n and busiest else ("", "0") for n in counts]


def _default_period(township: Township) -> dict[str, str]:
    """The last twelve months: from the 1st of the month eleven months ago to today."""
    today = localtime.township_today(township)
    first = today.replace(day=1)
    for _month in range(11):
        first = (first - timedelta(days=1)).replace(day=1)
    return {"start": first.isoformat(), "end": today.isoformat(), "bucket": "month"}


def trends_page(request: HttpRequest, township: str) -> HttpResponse:
    found = supervised_township(request, township)
    period = _default_period(found)
    period |= {k: v for k, v in request.GET.items() if k in ("start", "end", "bucket")}
    form = TrendsForm(period)
    context: dict = {"township": found, "form": form}
    if not form.is_valid():
        return render(request, "frontend/trends.html", context, status=400)
    first: date = form.cleaned_data["start"]
    last: date = form.cleaned_data["end"]
    bucket = form.cleaned_data["bucket"]
    start = localtime.day_start(found, first)
    end = localtime.day_start(found, last + timedelta(days=1))
    figures = trends.overview(township_id=found.pk, start=start, end=end, bucket=bucket)
    by_category, by_grid, hours = figures.by_category, figures.by_grid, figures.hours
    spots = trends.hot_spots(township_id=found.pk, start=start, end=end)
    cell_top = max((max(s.counts, default=0) for s in by_category.series), default=0)
    grid_top = max((max(s.counts, default=0) for s in by_grid.series), default=0)
    busiest_grid = max((s.total for s in by_grid.series if s.id is not None), default=0)
    label = "%m-%d" if bucket == "week" else "%Y-%m"
    context |= {
        "start": first,
        "last": last,
        "bucket_labels": [day.strftime(label) for day in by_category.buckets],
        "by_category": [(s, _cells(s.counts, cell_top)) for s in by_category.series],
        "by_grid": [(s, _cells(s.counts, grid_top)) for s in by_grid.series[:GRID_ROWS]],
        "more_grids": max(len(by_grid.series) - GRID_ROWS, 0),
        "trend": by_category,
        "columns": columns(by_category),
        "few_columns": len(by_category.buckets) <= LABELS,
        "chart_width": CHART_WIDTH,
        "chart_height": CHART_HEIGHT,
        "chart_view_height": f"{CHART_HEIGHT + 34:.0f}",
        "chart_label_y": f"{CHART_HEIGHT + 16:.0f}",
        "hours": [
            (WEEKDAYS[d], _cells(row, hours.busiest), sum(row))
            for d, row in enumerate(hours.counts)
        ],
        "hour_totals": hours.by_hour,
        "hours_total": hours.total,
        "hot_spots": spots[:HOT_SPOT_ROWS],
        "more_hot_spots": max(len(spots) - HOT_SPOT_ROWS, 0),
        "map": maps.base_map(found),
        "map_hot_spots": maps.hot_spot_markers(found, spots),
        "heat": {
            s.code: f"{0.05 + 0.6 * s.total / busiest_grid:.2f}"
            for s in by_grid.series
            if s.id is not None and busiest_grid
        },
        "repeat_days": trends.REPEAT_DAYS,
        "repeat_least": trends.REPEAT_AT_LEAST,
    }
    with localtime.shown_in(found):
        return render(request, "frontend/trends.html", context)
