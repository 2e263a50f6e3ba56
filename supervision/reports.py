"""The monthly report (月度报表, 定期推送重点数据报表) of a township: its figures for a calendar
month on the township's clock, and the same figures as an .xlsx workbook.

:func:`monthly_figures` reads the month in a handful of grouped queries and returns plain
JSON-ready data (what ``MonthlyReport.figures`` keeps, what the printable page and the workbook
show); :func:`workbook` writes those figures as a workbook, one sheet per section, with the
headers in the active language, number formats, frozen header rows and native Excel charts.

Intake counts as the daily review does (``supervision.review``): every channel becomes an
alert, plus the incidents opened by hand; a merged alert was a duplicate and is not counted.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import Count, Exists, OuterRef
from django.utils.translation import gettext as _
from openpyxl import Workbook
from openpyxl.chart import BarChart, Reference
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from alerts.models import Alert
from command import clock
from command.org import localtime
from command.org.models import Category, Township
from incidents.models import Incident, SupervisionOrder
from supervision import assessment, review, stats, trends

# The 631 target: the share of matters settled at each level (county: at most).
TARGET_631 = {"grid": 0.60, "township": 0.30, "county": 0.10}
HOT_SPOT_ROWS = 15

MONTH = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True)
class Month:
    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Month:
        """``YYYY-MM``; ValueError for anything else."""
        found = MONTH.match(text.strip())
        if not found or not 1 <= int(found.group(2)) <= 12:
            raise ValueError(f"not a month (YYYY-MM): {text!r}")
        return cls(int(found.group(1)), int(found.group(2)))

    @classmethod
    def of(cls, day: date) -> Month:
        return cls(day.year, day.month)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def first(self) -> date:
        return date(self.year, self.month, 1)

    def next(self) -> Month:
        return Month(self.year + self.month // 12, self.month % 12 + 1)

    def previous(self) -> Month:
        return Month(self.year - (self.month == 1), (self.month - 2) % 12 + 1)

    def days(self) -> list[date]:
        end = self.next().first
        return [self.first + timedelta(days=n) for n in range((end - self.first).days)]

    def bounds(self, township: Township) -> tuple[datetime, datetime]:
        """From the township's midnight of the 1st to that of the next month's 1st."""
        return (
            localtime.day_start(township, self.first),
            localtime.day_start(township, self.next().first),
        )


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _minutes(value: timedelta | None) -> float | None:
    return round(value.total_seconds() / 60, 1) if value is not None else None


def _local(moment: datetime | None, township: Township) -> str | None:
    return moment.astimezone(township.zone).isoformat() if moment else None


# --- figures ------------------------------------------------------------------------------------


def monthly_figures(*, township: Township, month: Month) -> dict[str, Any]:
    """Every figure of the township's report for ``month``, as JSON-ready data with its
    labels in the active language."""
    start, end = month.bounds(township)
    alerts = Alert.objects.filter(
        township=township, first_seen__gte=start, first_seen__lt=end
    ).exclude(status=Alert.Status.MERGED)
    opened = Incident.objects.filter(township=township, opened_at__gte=start, opened_at__lt=end)
    by_hand = opened.filter(~Exists(Alert.objects.filter(incident_id=OuterRef("pk"))))
    departments = stats.department_table(township_id=township.pk, start=start, end=end)
    settled = stats.settled_table(township_id=township.pk, start=start, end=end)
    return {
        "township": {"code": township.code, "name": township.display_name},
        "month": str(month),
        "start": _local(start, township),
        "end": _local(end, township),
        "generated_at": _local(clock.now(), township),
        "intake": _intake(township, month, alerts, opened, by_hand),
        "settled": _settled(settled),
        "departments": [_department(row) for row in departments],
        "scores": _scores(township, month),
        "overdue": _overdue(township, start, end, departments),
        "hot_spots": _hot_spots(township, start, end),
    }


_PER_DAY = """
SELECT (first_seen AT TIME ZONE %(zone)s)::date AS day, count(*)
  FROM alerts_alert
 WHERE township_id = %(township)s AND first_seen >= %(start)s AND first_seen < %(end)s
   AND status <> 'merged'
 GROUP BY day
"""

_PER_DAY_BY_HAND = """
SELECT (i.opened_at AT TIME ZONE %(zone)s)::date AS day, count(*)
  FROM incidents_incident i
 WHERE i.township_id = %(township)s AND i.opened_at >= %(start)s AND i.opened_at < %(end)s
   AND NOT EXISTS (SELECT 1 FROM alerts_alert a WHERE a.incident_id = i.id)
 GROUP BY day
"""


def _intake(
    township: Township, month: Month, alerts: Any, opened: Any, by_hand: Any
) -> dict[str, Any]:
    channels = review.report_channels()
    sources = {str(k): str(v) for k, v in Alert.Source.choices}
    by_channel: dict[str, dict[str, Any]] = {}
    for row in alerts.values("source", "report__channel").annotate(n=Count("id")):
        channel = row["report__channel"] or ""
        key = f"report:{channel}" if channel else row["source"]
        label = channels.get(channel, channel) if channel else sources.get(row["source"], "")
        entry = by_channel.setdefault(key, {"key": key, "label": label, "count": 0})
        entry["count"] += row["n"]
    hand = by_hand.count()
    if hand:
        by_channel[review.BY_HAND] = {"key": review.BY_HAND, "label": _("Opened by hand"),
                                      "count": hand}  # fmt: skip

    counts: dict[int | None, list[int]] = {}
    for row in alerts.values("category").annotate(n=Count("id")):
        counts.setdefault(row["category"], [0, 0])[0] += row["n"]
    for row in opened.values("category").annotate(n=Count("id")):
        counts.setdefault(row["category"], [0, 0])[1] += row["n"]
    names = Category.objects.in_bulk([k for k in counts if k is not None])
    by_category = sorted(
        (
            {
                "label": names[k].display_name if k in names else _("Not given"),
                "alerts": a,
                "incidents": i,
            }
            for k, (a, i) in counts.items()
        ),
        key=lambda r: (-(r["alerts"] + r["incidents"]), r["label"]),
    )

    start, end = month.bounds(township)
    params = {"zone": township.time_zone, "township": township.pk, "start": start, "end": end}
    per_day = {day: 0 for day in month.days()}
    with connection.cursor() as cursor:
        for query in (_PER_DAY, _PER_DAY_BY_HAND):
            cursor.execute(query, params)
            for day, n in cursor.fetchall():
                if day in per_day:
                    per_day[day] += n
    alert_count = alerts.count()
    return {
        "total": alert_count + hand,
        "alerts": alert_count,
        "by_hand": hand,
        "incidents": opened.count(),
        "by_channel": sorted(by_channel.values(), key=lambda r: (-r["count"], r["label"])),
        "by_category": by_category,
        "per_day": [{"day": day.isoformat(), "count": n} for day, n in per_day.items()],
    }


def _settled(settled: dict[str, int]) -> dict[str, Any]:
    total = sum(settled.values())
    labels = dict(Incident.SettledLevel.choices)
    levels = []
    for level, target in TARGET_631.items():
        count = settled.get(level, 0)
        share = _rate(count, total)
        # The county's 10% is a ceiling; the others are floors.
        meets = None if share is None else share <= target if level == "county" else share >= target
        levels.append(
            {
                "level": level,
                "label": str(labels.get(level, level)),
                "count": count,
                "share": share,
                "target": target,
                "meets": meets,
            }
        )
    return {"total": total, "levels": levels}


def _department(row: stats.DepartmentRow) -> dict[str, Any]:
    return {
        "code": row.code,
        "name": row.name,
        "received": row.received,
        "checked_in": row.checked_in,
        "on_time": row.on_time,
        "on_time_rate": _rate(row.on_time, row.received),
        "median_check_in_minutes": _minutes(row.median_check_in),
        "p90_check_in_minutes": _minutes(row.p90_check_in),
        "done": row.done,
        "completion_rate": _rate(row.done, row.received),
        "overdue": row.overdue,
        "finish_overdue": row.finish_overdue,
        "escalated": row.escalated,
        "first_time_rate": _rate(row.accepted_first_time, row.accepted),
        "satisfaction_rate": _rate(row.satisfied, row.rated),
        "orders": row.orders,
        "orders_on_time": row.orders_on_time,
    }


def _scores(township: Township, month: Month) -> list[dict[str, Any]]:
    """The departments' scores for the month (``supervision.assessment``): what their figures
    alone give, the township's marks and the combined score where the township has rated
    them (None where it has not yet)."""

    def number(value: Any) -> float | None:
        return None if value is None else round(float(value), 2)

    rows = []
    for score in assessment.department_scores(
        township=township, period="month", period_start=month.first
    ):
        rated = (score.rating.computation or {}) if score.rating else {}
        rows.append(
            {
                "code": score.department.code,
                "name": score.department.display_name,
                "measured": number(score.measured_only.measured),
                "township": number(rated.get("township")),
                "score": number(score.score),
            }
        )
    return rows


def _overdue(
    township: Township, start: datetime, end: datetime, departments: list[stats.DepartmentRow]
) -> dict[str, Any]:
    orders = (
        SupervisionOrder.objects.filter(township=township, issued_at__gte=start, issued_at__lt=end)
        .select_related("department", "incident")
        .order_by("issued_at", "id")
    )
    rows = [
        {
            "issued_at": _local(o.issued_at, township),
            "department": o.department.display_name,
            "incident": o.incident_id,
            "incident_title": o.incident.title if o.incident_id else "",
            "due_at": _local(o.due_at, township),
            "status": str(o.get_status_display()),
            "answered_at": _local(o.answered_at, township),
            "on_time": None if o.answered_at is None else o.answered_at <= o.due_at,
        }
        for o in orders
    ]
    return {
        "summonses": sum(r.received for r in departments),
        "check_in_overdue": sum(r.overdue for r in departments),
        "finish_overdue": sum(r.finish_overdue for r in departments),
        "escalated": sum(r.escalated for r in departments),
        "orders": len(rows),
        "orders_answered": sum(1 for r in rows if r["answered_at"]),
        "orders_on_time": sum(1 for r in rows if r["on_time"]),
        "order_rows": rows,
    }


def _hot_spots(township: Township, start: datetime, end: datetime) -> dict[str, Any]:
    """The busiest grids, and the places where a category kept coming back in the month
    (``supervision.trends.hot_spots``: 3+ matters in one grid within 30 days)."""
    grids = stats.grid_table(township_id=township.pk, start=start, end=end)
    spots = trends.hot_spots(township_id=township.pk, start=start, end=end)
    return {
        "grids": [
            {"code": g.code, "name": g.name, "alerts": g.alerts, "incidents": g.incidents}
            for g in grids[:HOT_SPOT_ROWS]
            if g.alerts or g.incidents
        ],
        "repeats": [
            {
                "grid": spot.grid_name,
                "grid_code": spot.grid_code,
                "category": spot.category_name,
                "matters": spot.matters,
                "peak": spot.peak,
            }
            for spot in spots[:HOT_SPOT_ROWS]
        ],
    }


# --- the workbook -------------------------------------------------------------------------------

HEADER_FONT = Font(bold=True, color="FFFFFF")
HEADER_FILL = PatternFill("solid", fgColor="305496")
TITLE_FONT = Font(bold=True, size=14)
PERCENT = "0.0%"
INTEGER = "#,##0"
MINUTES = "0.0"
DAY = "yyyy-mm-dd"
MOMENT = "yyyy-mm-dd hh:mm"


def _place(sheet: Worksheet, chart: BarChart, anchor: str) -> None:
    # openpyxl 3.1 marks a chart's axes deleted unless told otherwise: Excel then draws the
    # chart without them (LibreOffice draws them anyway).
    chart.x_axis.delete = False
    chart.y_axis.delete = False
    sheet.add_chart(chart, anchor)


def _header(sheet: Worksheet, row: int, column: int, titles: list[str]) -> None:
    for offset, title in enumerate(titles):
        cell = sheet.cell(row=row, column=column + offset, value=title)
        cell.font = HEADER_FONT
        cell.fill = HEADER_FILL
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)


def _rows(
    sheet: Worksheet, row: int, column: int, rows: list[list[Any]], formats: list[str | None]
) -> None:
    for r, values in enumerate(rows):
        for c, value in enumerate(values):
            cell = sheet.cell(row=row + r, column=column + c, value=value)
            if formats[c]:
                cell.number_format = formats[c]


def _widths(sheet: Worksheet, widths: dict[int, float]) -> None:
    for column, width in widths.items():
        sheet.column_dimensions[get_column_letter(column)].width = width


def _moment(text: str | None) -> datetime | None:
    """A stored local ISO time as Excel keeps times: the township's wall clock, no zone."""
    return datetime.fromisoformat(text).replace(tzinfo=None) if text else None


def _yes_no(value: bool | None) -> str:
    return "" if value is None else _("yes") if value else _("no")


def workbook(figures: dict[str, Any]) -> bytes:
    """The report as an .xlsx workbook (headers in the active language)."""
    book = Workbook()
    _summary_sheet(book.active, figures)
    _intake_sheet(book.create_sheet(), figures["intake"])
    _settled_sheet(book.create_sheet(), figures["settled"])
    _departments_sheet(book.create_sheet(), figures["departments"], figures["scores"])
    _overdue_sheet(book.create_sheet(), figures["overdue"])
    _hot_spots_sheet(book.create_sheet(), figures["hot_spots"])
    book.properties.title = _("Monthly report %(township)s %(month)s") % {
        "township": figures["township"]["name"],
        "month": figures["month"],
    }
    book.properties.creator = "Whistle"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _summary_sheet(sheet: Worksheet, figures: dict[str, Any]) -> None:
    sheet.title = _("Summary")
    intake, overdue, settled = figures["intake"], figures["overdue"], figures["settled"]
    _header(sheet, 1, 1, [_("Item"), _("Value")])
    sheet.freeze_panes = "A2"
    shares = {level["level"]: level["share"] for level in settled["levels"]}
    rows: list[tuple[str, Any, str | None]] = [
        (_("Township"), figures["township"]["name"], None),
        (_("Month"), figures["month"], None),
        (_("Generated at"), _moment(figures["generated_at"]), MOMENT),
        (_("Intake items"), intake["total"], INTEGER),
        (_("Incidents opened"), intake["incidents"], INTEGER),
        (_("Incidents closed"), settled["total"], INTEGER),
        (_("Settled in the grid / village"), shares.get("grid"), PERCENT),
        (_("Settled in the township"), shares.get("township"), PERCENT),
        (_("Went up to the county"), shares.get("county"), PERCENT),
        (_("Departments summoned"), overdue["summonses"], INTEGER),
        (_("Check-in overdue"), overdue["check_in_overdue"], INTEGER),
        (_("Finishing overdue"), overdue["finish_overdue"], INTEGER),
        (_("Escalated (督办)"), overdue["escalated"], INTEGER),
        (_("Supervision orders issued"), overdue["orders"], INTEGER),
        (_("Supervision orders answered on time"), overdue["orders_on_time"], INTEGER),
    ]
    for n, (label, value, number_format) in enumerate(rows, start=2):
        sheet.cell(row=n, column=1, value=label)
        cell = sheet.cell(row=n, column=2, value=value)
        if number_format:
            cell.number_format = number_format
    _widths(sheet, {1: 34, 2: 22})


def _intake_sheet(sheet: Worksheet, intake: dict[str, Any]) -> None:
    sheet.title = _("Intake")
    sheet.freeze_panes = "A2"
    _header(sheet, 1, 1, [_("Day"), _("Intake items")])
    days = [[date.fromisoformat(d["day"]), d["count"]] for d in intake["per_day"]]
    _rows(sheet, 2, 1, days, [DAY, INTEGER])
    _header(sheet, 1, 4, [_("Channel"), _("Intake items")])
    _rows(sheet, 2, 4, [[c["label"], c["count"]] for c in intake["by_channel"]], [None, INTEGER])
    _header(sheet, 1, 7, [_("Category"), _("Alerts"), _("Incidents opened")])
    _rows(
        sheet,
        2,
        7,
        [[c["label"], c["alerts"], c["incidents"]] for c in intake["by_category"]],
        [None, INTEGER, INTEGER],
    )
    _widths(sheet, {1: 12, 2: 12, 4: 22, 5: 12, 7: 22, 8: 10, 9: 14})
    if days:
        chart = BarChart()
        chart.title = _("Intake per day")
        chart.y_axis.title = _("Intake items")
        chart.x_axis.number_format = "d"  # the day of the month: 31 labels fit
        chart.legend = None
        chart.gap_width = 40
        chart.height, chart.width = 8, 22
        chart.add_data(Reference(sheet, min_col=2, min_row=1, max_row=len(days) + 1),
                       titles_from_data=True)  # fmt: skip
        chart.set_categories(Reference(sheet, min_col=1, min_row=2, max_row=len(days) + 1))
        _place(sheet, chart, "K2")
    if intake["by_channel"]:
        bars = BarChart()
        bars.type = "bar"
        bars.title = _("Intake by channel")
        bars.height, bars.width = 8, 22
        count = len(intake["by_channel"])
        bars.add_data(Reference(sheet, min_col=5, min_row=1, max_row=count + 1),
                      titles_from_data=True)  # fmt: skip
        bars.set_categories(Reference(sheet, min_col=4, min_row=2, max_row=count + 1))
        bars.legend = None
        _place(sheet, bars, "K19")


def _settled_sheet(sheet: Worksheet, settled: dict[str, Any]) -> None:
    sheet.title = _("631")
    sheet.freeze_panes = "A2"
    _header(sheet, 1, 1, [_("Settled at"), _("Incidents"), _("Share"), _("Target"),
                          _("Meets the target")])  # fmt: skip
    rows = [
        [
            level["label"],
            level["count"],
            level["share"],
            level["target"],
            _yes_no(level["meets"]),
        ]
        for level in settled["levels"]
    ]
    rows.append([_("Total"), settled["total"], None, None, ""])
    _rows(sheet, 2, 1, rows, [None, INTEGER, PERCENT, PERCENT, None])
    _widths(sheet, {1: 22, 2: 12, 3: 12, 4: 12, 5: 16})
    chart = BarChart()
    chart.title = _("631: settled against the target")
    chart.y_axis.number_format = "0%"
    chart.y_axis.scaling.min = 0
    chart.y_axis.scaling.max = 1
    chart.height, chart.width = 8, 16
    levels = len(settled["levels"])
    chart.add_data(Reference(sheet, min_col=3, max_col=4, min_row=1, max_row=levels + 1),
                   titles_from_data=True)  # fmt: skip
    chart.set_categories(Reference(sheet, min_col=1, min_row=2, max_row=levels + 1))
    _place(sheet, chart, "G2")


def _departments_sheet(
    sheet: Worksheet, departments: list[dict[str, Any]], scores: list[dict[str, Any]]
) -> None:
    sheet.title = _("Departments")
    sheet.freeze_panes = "C2"
    titles = [
        _("Code"),
        _("Department"),
        _("Summoned"),
        _("Checked in"),
        _("On time"),
        _("On-time rate"),
        _("Median check-in (min)"),
        _("P90 check-in (min)"),
        _("Done"),
        _("Completion rate"),
        _("Check-in overdue"),
        _("Finishing overdue"),
        _("Escalated"),
        _("Accepted first time"),
        _("Satisfaction"),
        _("Supervision orders"),
        _("Orders answered on time"),
    ]
    formats: list[str | None] = [None, None, INTEGER, INTEGER, INTEGER, PERCENT, MINUTES,
                                 MINUTES, INTEGER, PERCENT, INTEGER, INTEGER, INTEGER, PERCENT,
                                 PERCENT, INTEGER, INTEGER]  # fmt: skip
    keys = ["code", "name", "received", "checked_in", "on_time", "on_time_rate",
            "median_check_in_minutes", "p90_check_in_minutes", "done", "completion_rate",
            "overdue", "finish_overdue", "escalated", "first_time_rate", "satisfaction_rate",
            "orders", "orders_on_time"]  # fmt: skip
    by_code = {s["code"]: s for s in scores}
    titles += [_("Score from the figures"), _("Township's marks"), _("Combined score")]
    formats += ["0.00", "0.00", "0.00"]
    _header(sheet, 1, 1, titles)
    rows = []
    for d in departments:
        score = by_code.get(d["code"], {})
        rows.append(
            [d[k] for k in keys]
            + [score.get("measured"), score.get("township"), score.get("score")]
        )
    _rows(sheet, 2, 1, rows, formats)
    sheet.row_dimensions[1].height = 32
    _widths(sheet, {1: 12, 2: 24, **{c: 12 for c in range(3, len(titles) + 1)}})


def _overdue_sheet(sheet: Worksheet, overdue: dict[str, Any]) -> None:
    sheet.title = _("Overdue and orders")
    sheet.freeze_panes = "A2"
    _header(sheet, 1, 1, [_("Issued at"), _("Department"), _("Incident"), _("By when"),
                          _("Status"), _("Answered at"), _("On time")])  # fmt: skip
    rows = [
        [
            _moment(o["issued_at"]),
            o["department"],
            f"#{o['incident']} {o['incident_title']}".strip(),
            _moment(o["due_at"]),
            o["status"],
            _moment(o["answered_at"]),
            _yes_no(o["on_time"]),
        ]
        for o in overdue["order_rows"]
    ]
    _rows(sheet, 2, 1, rows, [MOMENT, None, None, MOMENT, None, MOMENT, None])
    _header(sheet, 1, 9, [_("Item"), _("Count")])
    totals = [
        [_("Departments summoned"), overdue["summonses"]],
        [_("Check-in overdue"), overdue["check_in_overdue"]],
        [_("Finishing overdue"), overdue["finish_overdue"]],
        [_("Escalated (督办)"), overdue["escalated"]],
        [_("Supervision orders issued"), overdue["orders"]],
        [_("Supervision orders answered"), overdue["orders_answered"]],
        [_("Supervision orders answered on time"), overdue["orders_on_time"]],
    ]
    _rows(sheet, 2, 9, totals, [None, INTEGER])
    _widths(sheet, {1: 17, 2: 22, 3: 34, 4: 17, 5: 12, 6: 17, 7: 9, 9: 30, 10: 10})


def _hot_spots_sheet(sheet: Worksheet, hot_spots: dict[str, Any]) -> None:
    sheet.title = _("Hot spots")
    sheet.freeze_panes = "A2"
    _header(sheet, 1, 1, [_("Grid code"), _("Grid"), _("Alerts"), _("Incidents")])
    grids = [[g["code"], g["name"], g["alerts"], g["incidents"]] for g in hot_spots["grids"]]
    _rows(sheet, 2, 1, grids, [None, None, INTEGER, INTEGER])
    _header(sheet, 1, 6, [_("Grid"), _("Category"), _("Matters (same place)"),
                          _("Most within 30 days")])  # fmt: skip
    repeats = [[r["grid"], r["category"], r["matters"], r["peak"]] for r in hot_spots["repeats"]]
    _rows(sheet, 2, 6, repeats, [None, None, INTEGER, INTEGER])
    _widths(sheet, {1: 14, 2: 22, 3: 10, 4: 10, 6: 22, 7: 20, 8: 18, 9: 18})
    if grids:
        chart = BarChart()
        chart.title = _("Busiest grids")
        chart.grouping = "stacked"
        chart.overlap = 100
        chart.height, chart.width = 8, 18
        chart.add_data(Reference(sheet, min_col=3, max_col=4, min_row=1, max_row=len(grids) + 1),
                       titles_from_data=True)  # fmt: skip
        chart.set_categories(Reference(sheet, min_col=2, min_row=2, max_row=len(grids) + 1))
        _place(sheet, chart, "J2")


def filename(figures: dict[str, Any]) -> str:
    return f"whistle-report-{figures['township']['code']}-{figures['month']}.xlsx"


# --- the district's ranking (the year-end ranking when the period is a year) -------------------

SCORE = "0.00"


def ranking_workbook(
    *,
    name: str,
    departments: list[assessment.RankedDepartment],
    townships: list[assessment.RankedTownship],
) -> bytes:
    """The district's ranking of ``name`` (2026-10, 2026-Q4, 2026) as a workbook: departments
    with each township's score, and townships with their 631 split."""
    book = Workbook()
    sheet = book.active
    sheet.title = _("Departments")
    rated = sorted({r.township for d in departments for r in d.ratings}, key=lambda t: t.code)
    _header(
        sheet,
        1,
        1,
        [_("Rank"), _("Code"), _("Department"), _("Score"), *[t.name for t in rated]],
    )
    rows = []
    for d in departments:
        scores = {r.township_id: float(r.score) for r in d.ratings}
        rows.append(
            [d.rank, d.department.code, d.department.name, float(d.score)]
            + [scores.get(t.pk) for t in rated]
        )
    _rows(sheet, 2, 1, rows, [INTEGER, None, None, SCORE] + [SCORE] * len(rated))
    sheet.freeze_panes = "D2"
    _widths(sheet, {2: 14, 3: 24, **{5 + i: 12 for i in range(len(rated))}})

    sheet = book.create_sheet(_("Townships"))
    _header(
        sheet,
        1,
        1,
        [_("Rank"), _("Code"), _("Township"), _("Score"), _("Closed"), _("Grid / village"),
         _("Township"), _("County"), _("631 points"), _("Satisfaction rate")],
    )  # fmt: skip
    rows = [
        [
            t.rank, t.township.code, t.township.name, float(t.score), t.closed,
            t.settlement.counts.get("grid", 0), t.settlement.counts.get("township", 0),
            t.settlement.counts.get("county", 0),
            None if t.points_631 is None else float(t.points_631),
            None if t.satisfied is None else float(t.satisfied) / 100,
        ]
        for t in townships
    ]  # fmt: skip
    formats = [INTEGER, None, None, SCORE, INTEGER, INTEGER, INTEGER, INTEGER, SCORE, PERCENT]
    _rows(sheet, 2, 1, rows, formats)
    sheet.freeze_panes = "D2"
    _widths(sheet, {2: 14, 3: 18})
    sheet.cell(
        row=len(rows) + 3, column=1, value=_("District ranking") + f" {name}"
    ).font = TITLE_FONT
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
