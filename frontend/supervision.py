"""The supervisors' pages (督查考核): department performance for a period, the grid heat map,
the 631 distribution, each table as CSV."""

from __future__ import annotations

import csv
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils.translation import gettext_lazy as _

from alerts.labels import label_name
from alerts.models import Notification, Severity
from command.org import localtime, policy
from command.org.models import Department, Township
from command.timeline.actions import details as action_details
from command.timeline.actions import label as action_label
from frontend import maps
from frontend.templatetags.whistle import minutes
from frontend.views import supervised_township
from incidents import selectors as incident_selectors
from incidents.models import Incident, Summons, Whistle
from supervision import stats, trends


class PeriodForm(forms.Form):
    start = forms.DateField(
        label=_("From"), widget=forms.DateInput({"type": "date"}, format="%Y-%m-%d")
    )
    end = forms.DateField(
        label=_("To (inclusive)"), widget=forms.DateInput({"type": "date"}, format="%Y-%m-%d")
    )

    def clean(self) -> dict:
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        if start and end and end < start:
            raise forms.ValidationError(_("The period ends before it starts."))
        if start and end and (end - start).days > 366:
            raise forms.ValidationError(_("Choose a period of at most a year."))
        return data


def _bounds(start: date, end: date, township: Township) -> tuple[datetime, datetime]:
    """The period from the township's midnight of ``start`` to the one after ``end``."""
    return (
        localtime.day_start(township, start),
        localtime.day_start(township, end + timedelta(days=1)),
    )


def performance(request: HttpRequest, township: str) -> HttpResponse:
    found = supervised_township(request, township)
    today = localtime.township_today(found)
    # The last 30 days unless the page asks for another period.
    period = {"start": today - timedelta(days=29), "end": today}
    period |= {k: v for k, v in request.GET.items() if k in ("start", "end")}
    form = PeriodForm(period)
    context: dict = {"township": found, "form": form, "period_query": urlencode(period)}
    if not form.is_valid():
        return render(request, "frontend/performance.html", context, status=400)
    start, end = _bounds(form.cleaned_data["start"], form.cleaned_data["end"], found)
    departments = stats.department_table(township_id=found.pk, start=start, end=end)
    grids = stats.grid_table(township_id=found.pk, start=start, end=end)
    settled = stats.settled_table(township_id=found.pk, start=start, end=end)
    table = request.GET.get("csv")
    if table:
        return _csv(table, found.code, form.cleaned_data, departments, grids, settled)
    busiest = max((g.alerts + g.incidents for g in grids), default=0)
    settled_total = sum(settled.values())
    context |= {
        "departments": departments,
        "grids": grids,
        "settled": [
            (
                value,
                label,
                settled[value],
                settled[value] / settled_total if settled_total else None,
            )
            for value, label in Incident.SettledLevel.choices
        ],
        "settled_total": settled_total,
        "map": maps.base_map(found),
        "hot_spots": maps.hot_spot_markers(
            found, trends.hot_spots(township_id=found.pk, start=start, end=end)
        ),
        "repeat_days": trends.REPEAT_DAYS,
        "repeat_least": trends.REPEAT_AT_LEAST,
        # Heat from 0.05 (quiet) to 0.75 (the busiest grid of the period).
        "heat": {g.code: f"{0.05 + 0.7 * (g.alerts + g.incidents) / busiest:.2f}" for g in grids}
        if busiest
        else {},
        "query": request.GET.urlencode(),
    }
    return render(request, "frontend/performance.html", context)


def _csv(table, township, period, departments, grids, settled) -> HttpResponse:
    if table not in ("departments", "grids", "settled"):
        return HttpResponse("csv must be departments, grids or settled", status=400)
    name = f"{township}-{table}-{period['start']}-{period['end']}.csv"
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response.write("\ufeff")  # so a spreadsheet opened by double-click reads the Chinese
    writer = csv.writer(response)
    if table == "departments":
        writer.writerow(
            [
                "department", "name", "received", "acknowledged", "checked_in", "on_time",
                "on_time_rate", "median_check_in_min", "p90_check_in_min", "done",
                "completion_rate", "overdue", "escalated", "accepted", "accepted_first_time",
                "first_time_rate", "finish_overdue", "rated", "satisfied", "satisfaction_rate",
                "orders", "orders_answered", "orders_answered_on_time", "orders_on_time_rate",
            ]
        )  # fmt: skip
        for r in departments:
            writer.writerow(
                [
                    r.code, r.name, r.received, r.acknowledged, r.checked_in, r.on_time,
                    _rate(r.on_time_rate), _minutes(r.median_check_in),
                    _minutes(r.p90_check_in), r.done, _rate(r.completion_rate), r.overdue,
                    r.escalated, r.accepted, r.accepted_first_time, _rate(r.first_time_rate),
                    r.finish_overdue, r.rated, r.satisfied, _rate(r.satisfaction_rate),
                    r.orders, r.orders_answered, r.orders_on_time, _rate(r.orders_on_time_rate),
                ]
            )  # fmt: skip
    elif table == "grids":
        writer.writerow(["grid", "name", "alerts", "incidents"])
        for g in grids:
            writer.writerow([g.code, g.name, g.alerts, g.incidents])
    else:
        writer.writerow(["settled_level", "incidents"])
        for level, count in settled.items():
            writer.writerow([level, count])
    return response


def _rate(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def _minutes(value: timedelta | None) -> str:
    return "" if value is None else minutes(value)


# Whom an escalation level notifies (the policy snapshot's "notify").
NOTIFIED = {
    "township_supervisors": _("township supervisors"),
    "district_supervisors": _("district supervisors"),
}
# Why a person was notified (a notification row's "reason"), or why nobody was. Any other
# reason is a person's own words and reads as written.
PAGE_REASONS = {
    "on_call": _("on call (A)"),
    "backup": _("backup (B)"),
    "head": _("department head"),
    **NOTIFIED,
    "discipline": _("discipline office"),
    "department": _("member of the department"),
    "nobody_on_call": _("the department has no one on call, no backup and no head"),
}
# Payload values that are codes, read in the reader's words ("major" reads 重要); a code none
# of these know reads as itself. The camera's label: alerts.labels.
CODE_NAMES: dict[str, dict[str, Any]] = {
    "severity": dict(Severity.choices),
    "settled_level": dict(Incident.SettledLevel.choices),
    "satisfaction": dict(Incident.Satisfaction.choices),
    # A whistle's kind, or an evidence item's (which has no choices of its own).
    "kind": {
        **dict(Whistle.Kind.choices),
        "photo": _("photo"),
        "link": _("link"),
        "snapshot": _("snapshot"),
    },
    "purpose": dict(Whistle.Purpose.choices),
    "joint_status": dict(Whistle.JointStatus.choices),
    "reason": PAGE_REASONS,
    # A notification's channel; an intake item's channel codes are not among these.
    "channel": dict(Notification.Channel.choices),
    "then": dict(Notification.Channel.choices),
}


# Payload keys holding a moment (ISO 8601), shown on the township's clock.
MOMENTS = {"deadline", "finish_deadline", "due_at"}
# Payload keys holding department ids.
DEPARTMENT_LISTS = {"departments", "awaiting"}


class _Names:
    """What the payload's ids and codes name, looked up once for the whole page."""

    def __init__(self, rows: list[Any], township: Township) -> None:
        ids: set[int] = set()
        codes: set[str] = set()
        departments: set[str] = set()
        for row in rows:
            after = row.entry.after if isinstance(row.entry.after, dict) else {}
            for key in DEPARTMENT_LISTS:
                ids |= {i for i in after.get(key) or () if isinstance(i, int)}
            if isinstance(after.get("joint_township"), str):
                codes.add(after["joint_township"])
            if isinstance(after.get("department"), str):
                departments.add(after["department"])
        self.departments = {
            pk: d.display_name for pk, d in Department.objects.in_bulk(list(ids)).items()
        }
        # A supervision order names its department by code.
        self.department_codes = {
            d.code: d.display_name for d in Department.objects.filter(code__in=departments)
        }
        self.townships = {t.code: t.display_name for t in Township.objects.filter(code__in=codes)}
        self.zone = township.zone


def _in_words(key: str, value: Any, names: _Names) -> Any:
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if key in DEPARTMENT_LISTS and isinstance(value, list):
        return "、".join(names.departments.get(v, str(v)) for v in value)
    if key == "position" and isinstance(value, list):
        return "" if None in value else ", ".join(f"{v:.5f}" for v in value)
    if not isinstance(value, str) or not value:
        return value
    if key in MOMENTS:
        try:
            return datetime.fromisoformat(value).astimezone(names.zone).strftime("%m-%d %H:%M")
        except ValueError:
            return value
    if key == "joint_township":
        return names.townships.get(value, value)
    if key == "department":
        return names.department_codes.get(value, value)
    if key == "notify":
        return str(NOTIFIED.get(value, value))
    if key == "label":
        return label_name(value)
    return str(CODE_NAMES.get(key, {}).get(value, value))


def _readable(after: dict | None, names: _Names) -> dict | None:
    """A payload with its codes, ids and moments in the reader's words, for the timeline's
    detail column. A notification's person is named; their user id says nothing more."""
    if not isinstance(after, dict):
        return after
    return {
        key: _in_words(key, value, names)
        for key, value in after.items()
        if not (key == "user" and "person" in after)
    }


def _order_form(request: HttpRequest, township: Township, incident: Incident) -> dict | None:
    """The 督办单 form for whoever may issue one on the incident: the departments summoned
    to it, and a due time two hours from now on the township's clock to start from."""
    if incident.status == Incident.Status.CLOSED or not policy.can_issue_order(
        request.user, township
    ):
        return None
    departments = incident_selectors.orderable_departments(incident=incident)
    if not departments:
        return None
    now = localtime.township_now(township)
    return {
        "departments": departments,
        "due": (now + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"),
        "earliest": now.strftime("%Y-%m-%dT%H:%M"),
    }


def incident_timeline(request: HttpRequest, township: str, incident: int) -> HttpResponse:
    """Every step of an incident in order, with the time since it was opened and since the
    first whistle: what a supervisor replays and assesses, with the sensor history of the
    devices involved."""
    from frontend.charts import WIDTH, incident_history

    found = supervised_township(request, township)
    target = get_object_or_404(
        Incident.objects.select_related("category", "grid").prefetch_related(
            incident_selectors.alerts_for_titles()
        ),
        pk=incident,
        township=found,
    )
    every = request.GET.get("all") == "1"
    rows = incident_selectors.incident_timeline_rows(incident=target, collapse=not every)
    departments = {
        s.pk: s.department.display_name
        for s in Summons.objects.filter(whistle__incident=target).select_related("department")
    }
    orders = incident_selectors.incident_orders(incident=target)
    addressed = {o.pk: o.department.display_name for o in orders}
    first_whistle = target.whistles.order_by("blown_at").values_list("blown_at", flat=True).first()
    names = _Names(rows, found)
    for row in rows:
        e = row.entry
        row.label = action_label(e.action)
        row.details = action_details(_readable(e.after, names))
        row.who = (
            departments.get(e.subject_id)
            if e.subject_type == "summons"
            else addressed.get(e.subject_id)
            if e.subject_type == "order"
            else None
        )
        row.since_opened = e.time - target.opened_at
        row.since_whistle = (
            e.time - first_whistle if first_whistle and e.time >= first_whistle else None
        )
    history = incident_history(target, resolution=request.GET.get("resolution"))
    with localtime.shown_in(found):
        return render(
            request,
            "frontend/incident_timeline.html",
            {
                "township": found,
                "incident": target,
                "rows": rows,
                "every": every,
                "collapsed": sum(r.repeats for r in rows if r.repeats > 1),
                "history": history,
                "width": WIDTH,
                "can_command": policy.can_command(request.user, found),
                "satisfaction_choices": Incident.SATISFACTION_ANSWERS,
                "orders": orders,
                "order_form": _order_form(request, found, target),
            },
        )
