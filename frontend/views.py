from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import translation
from django.utils.crypto import constant_time_compare
from django.utils.translation import gettext as _

from command.errors import ActionForbidden, TransitionNotAllowed
from command.org import localtime, policy
from command.org import selectors as org_selectors
from command.org.auth import is_local_request
from command.org.models import Department, Township, User
from frontend import maps, paging, rendering, widgets
from frontend.forms import CloseForm, IncidentForm, IntakeForm, WhistleForm
from incidents import selectors as incident_selectors
from incidents.models import Incident
from incidents.photos import visible_photos
from incidents.services.incidents import incident_close, incident_open
from incidents.services.whistles import whistle_blow
from intake.reports import intake_file


def watched_township(request: HttpRequest, code: str) -> Township:
    """The township whose board (and supervision pages) the user may see, else 403."""
    found = org_selectors.township_for_board(user=request.user, code=code)  # type: ignore[arg-type]
    if found is None:
        raise PermissionDenied
    return found


def supervised_township(request: HttpRequest, code: str) -> Township:
    """The township whose performance, timelines and replays the user may see, else 403."""
    found = Township.objects.filter(code=code).first()
    if found is None or not policy.can_supervise(request.user, found):
        raise PermissionDenied
    return found


def commanded_township(request: HttpRequest, code: str) -> Township:
    """The township whose board the user watches and may act on (policy.can_command), else 403."""
    found = watched_township(request, code)
    if not policy.can_command(request.user, found):
        raise PermissionDenied
    return found


def board_dialog(
    request: HttpRequest,
    form: forms.Form,
    act: Callable[[], object],
    template: str,
    context: dict[str, Any],
) -> HttpResponse:
    """A dialog of the board (htmx): a bound, valid form runs ``act``, and the dialog goes (the
    change reaches the board through its socket, like every other); a refusal of the service
    stays in the form, with the form's own errors."""
    if form.is_bound and form.is_valid():
        try:
            act()
        except (TransitionNotAllowed, ActionForbidden) as refusal:
            form.add_error(None, str(refusal))
        else:
            return HttpResponse("")
    return render(request, template, {**context, "form": form})


def home(request: HttpRequest) -> HttpResponse:
    """Each role lands on its own page."""
    user: User = request.user  # type: ignore[assignment]
    if (
        user.district_id
        and not user.township_id
        and policy.can_watch_district(user, user.district_id)
    ):
        # A district's duty officer or supervisor starts from every township at once.
        return redirect("district_board", district=user.district.code)
    township = org_selectors.home_township(user=user)
    if township is not None and policy.can_watch_board(user, township):
        return redirect("board", township=township.code)
    if user.department_id and policy.can_open_console(user, user.department_id):
        return redirect("console", department=user.department.code)
    if policy.can_file_report(user):
        return redirect("report")
    return render(request, "frontend/home.html", {"user": user})


def _console_department(request: HttpRequest, code: str) -> Department:
    found = incident_selectors.department_for_console(user=request.user, code=code)  # type: ignore[arg-type]
    if found is None:
        raise PermissionDenied
    return found


def _no_such_page() -> HttpResponse:
    return HttpResponse(
        _("This page of the list does not exist."),
        status=400,
        content_type="text/plain; charset=utf-8",
    )


def console(request: HttpRequest, department: str) -> HttpResponse:
    """A department's console: its summons and supervision orders, pushed live; acknowledge,
    check in, report done; acknowledge and answer an order."""
    found = _console_department(request, department)
    language = translation.get_language() or "zh-hans"
    context = {
        "department": found,
        "inbox_html": rendering.summons_inbox_html(department=found, oob=False, language=language),
        "count_html": rendering.summons_count_html(department=found),
        "orders_html": rendering.order_inbox_html(department=found, oob=False, language=language),
        "order_count_html": rendering.order_count_html(department=found, oob=False),
    }
    return render(request, "frontend/console.html", context)


def console_summonses(request: HttpRequest, department: str) -> HttpResponse:
    """The console's "show more": the page of summons after the last one shown (htmx)."""
    found = _console_department(request, department)
    try:
        after = paging.parse_cursor(request.GET.get("after"))
    except ValueError:
        return _no_such_page()
    html = rendering.summons_page_html(
        department=found, after=after, language=translation.get_language() or "zh-hans"
    )
    return HttpResponse(html)


def console_summons_details(request: HttpRequest, department: str, summons: int) -> HttpResponse:
    """A console row's details, location and evidence, fetched when the row is opened."""
    found = _console_department(request, department)
    html = rendering.summons_details_html(
        department=found, summons_id=summons, language=translation.get_language() or "zh-hans"
    )
    if html is None:
        raise Http404
    return HttpResponse(html)


def board(request: HttpRequest, township: str) -> HttpResponse:
    found = watched_township(request, township)
    language = translation.get_language() or "zh-hans"
    context = {
        "township": found,
        "widgets": widgets.board_page(township=found, language=language),
        "takes_calls": policy.can_command(request.user, found),
    }
    return render(request, "frontend/board.html", context)


def board_alerts(request: HttpRequest, township: str) -> HttpResponse:
    """The queue's "show more": the page of open alerts after the last one shown (htmx)."""
    found = watched_township(request, township)
    try:
        before = paging.parse_cursor(request.GET.get("after"))
    except ValueError:
        return _no_such_page()
    html = rendering.alert_page_html(
        township=found, before=before, language=translation.get_language() or "zh-hans"
    )
    return HttpResponse(html)


def board_device(request: HttpRequest, township: str, device: str) -> HttpResponse:
    """The selected device's panel on the board: its state and the last hour of its readings
    with the thresholds that apply. The panel asks again every few seconds while it is open."""
    from command.org.models import Device
    from frontend.charts import WIDTH, device_charts

    found = watched_township(request, township)
    target = get_object_or_404(Device.objects.select_related("grid"), township=found, code=device)
    with localtime.shown_in(found):
        context = {
            "township": found,
            "device": target,
            "charts": device_charts(target),
            "width": WIDTH,
        }
        return render(request, "frontend/partials/device_panel.html", context)


def board_whistle(request: HttpRequest, township: str, incident: int) -> HttpResponse:
    """The board's whistle dialog (htmx): GET shows it, POST blows the whistle. On success the
    dialog goes away and the incident panel changes through the board's socket, like every
    other change; a refusal is shown in the dialog."""
    found = commanded_township(request, township)
    target = get_object_or_404(
        Incident.objects.select_related("township", "category"), pk=incident, township=found
    )
    # Choosing a joint township redraws the dialog with that township's offices to summon.
    code = request.POST.get("joint_township") or request.GET.get("joint_township") or ""
    joint = Township.objects.exclude(pk=found.pk).filter(code=code).first() if code else None
    submitted = request.method == "POST" and "redraw" not in request.POST
    form = WhistleForm(request.POST if submitted else None, incident=target, joint=joint)
    return board_dialog(
        request,
        form,
        lambda: whistle_blow(
            actor=request.user,  # type: ignore[arg-type]
            incident=target,
            kind=form.cleaned_data["kind"],
            purpose=form.cleaned_data["purpose"],
            departments=form.summoned(),
            joint_township=form.joint_township_chosen(),
            note=form.cleaned_data["note"],
        ),
        "frontend/partials/whistle_dialog.html",
        {"township": found, "incident": target},
    )


def board_close(request: HttpRequest, township: str, incident: int) -> HttpResponse:
    """The board's closing dialog (htmx): feedback and the 631 level; a refusal stays in it."""
    found = commanded_township(request, township)
    target = get_object_or_404(
        Incident.objects.select_related("township", "category"), pk=incident, township=found
    )
    form = CloseForm(request.POST or None, incident=target)
    return board_dialog(
        request,
        form,
        lambda: incident_close(
            actor=request.user,  # type: ignore[arg-type]
            incident=target,
            feedback=form.cleaned_data["feedback"],
            settled_level=form.cleaned_data["settled_level"],
        ),
        "frontend/partials/close_dialog.html",
        {"township": found, "incident": target},
    )


def board_new_incident(request: HttpRequest, township: str) -> HttpResponse:
    """立案 by hand (htmx dialog): the new incident arrives on the board through the socket."""
    found = commanded_township(request, township)
    form = IncidentForm(request.POST or None, township=found)
    return board_dialog(
        request,
        form,
        lambda: incident_open(
            actor=request.user,  # type: ignore[arg-type]
            township=found,
            category=form.cleaned_data["category"],
            severity=form.cleaned_data["severity"],
            title=form.cleaned_data["title"],
            description=form.cleaned_data["description"],
            grid=form.cleaned_data["grid"],
        ),
        "frontend/partials/incident_dialog.html",
        {"township": found},
    )


def board_intake(request: HttpRequest, township: str) -> HttpResponse:
    """The board's intake desk (htmx): GET shows the dialog, POST files the call, ticket or
    visit. The new alert (or incident) reaches the board through its socket like any other;
    a refusal is shown in the dialog."""
    found = commanded_township(request, township)
    form = IntakeForm(request.POST or None, township=found)
    return board_dialog(
        request,
        form,
        lambda: intake_file(actor=request.user, **form.filing()),  # type: ignore[arg-type]
        "frontend/partials/intake_dialog.html",
        {"township": found, "map": maps.base_map(found)},
    )


def intake_item(request: HttpRequest, report: int) -> HttpResponse:
    """An intake item's details in a dialog over the board: the caller's phone whole for the
    township's duty officers (they call back), masked for everyone else who watches the
    board."""
    from streams.models import GridReport

    user: User = request.user  # type: ignore[assignment]
    queryset = GridReport.objects.select_related("township", "category", "grid", "reporter")
    found = get_object_or_404(policy.reports(user, queryset), pk=report)
    if not policy.can_watch_board(user, found.township):
        raise PermissionDenied
    context = {
        "item": found,
        "phone": found.caller_phone
        if policy.can_see_caller(user, found.township_id)
        else found.caller_phone_masked,
    }
    with localtime.shown_in(found.township):
        return render(request, "frontend/partials/intake_item_dialog.html", context)


def report(request: HttpRequest) -> HttpResponse:
    """The grid officer's phone page: file a report, settle or hand up the open matters of their
    grids (网格待办), see what became of earlier ones."""
    from command.org.models import Category, Grid
    from intake import selectors as intake_selectors

    user: User = request.user  # type: ignore[assignment]
    if not policy.can_file_report(user):
        raise PermissionDenied
    context = {
        "categories": Category.objects.order_by("code"),
        "grids": Grid.objects.filter(township_id=user.township_id).order_by("code"),
        "my_grid": (user.headed_grids.first() or user.grids.first()),
        "map": maps.base_map(user.township),
        "matters": intake_selectors.grid_matters(user=user),
        "earlier": intake_selectors.earlier_matters(user=user),
        "satisfaction_choices": Incident.SATISFACTION_ANSWERS,
    }
    with localtime.shown_in(user.township):
        return render(request, "frontend/report.html", context)


def photo(request: HttpRequest, photo: uuid.UUID) -> FileResponse:
    """A field photo, to those who may see it (404 to everyone else: not even that it exists)."""
    found = get_object_or_404(visible_photos(request.user), pk=photo)  # type: ignore[arg-type]
    response = FileResponse(found.file.open("rb"), content_type=found.content_type)
    # A photo never changes under its address; only this user's browser may keep it.
    response["Cache-Control"] = "private, max-age=31536000, immutable"
    return response


@login_not_required
def healthz(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain")


@login_not_required
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus metrics of this process: with ``METRICS_TOKEN`` set, for a scraper that
    presents ``Authorization: Bearer $METRICS_TOKEN``; without, for this host only."""
    token = settings.METRICS_TOKEN
    presented = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    # Without a token only this host may scrape, and a request a proxy on this host relayed is
    # not this host; once a token is set, everyone presents it.
    local = not token and is_local_request(request)
    if not (local or (token and constant_time_compare(presented, token))):
        raise PermissionDenied
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    from streams import metrics as ingest_metrics  # noqa: F401 - registers the ingest series

    return HttpResponse(generate_latest(), content_type=CONTENT_TYPE_LATEST)
