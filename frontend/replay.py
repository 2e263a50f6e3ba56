"""The replay player: an incident's board at any moment, rebuilt from its timeline and drawn
with the live board's own partials. The page holds the player; each moment is a frame the
player fetches, and ``?at=`` links to one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from command.org import localtime
from command.org.models import Township
from command.timeline.actions import label as action_label
from frontend import maps, widgets
from frontend.views import supervised_township
from incidents import replay
from incidents.models import Incident
from incidents.selectors import alerts_for_titles

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SPEEDS = (1, 10, 60)


def _ms(moment: datetime) -> int:
    """Milliseconds since the epoch, rounded up: a moment in the browser is then never before
    the entry it stands for (timeline times carry microseconds)."""
    micro = (moment - EPOCH) // timedelta(microseconds=1)  # exact: a float loses the last µs
    return -(-micro // 1000)


def _incident(request: HttpRequest, township: str, incident: int) -> tuple[Township, Incident]:
    found = supervised_township(request, township)
    target = get_object_or_404(
        Incident.objects.select_related("category", "grid", "township").prefetch_related(
            alerts_for_titles()
        ),
        pk=incident,
        township=found,
    )
    return found, target


def frame_parts(township: Township, incident: Incident, frame: replay.Frame) -> dict[str, str]:
    """The parts of the board a frame replaces, each an element with its id, as the board's
    widgets draw them in a replay (frontend.widgets)."""
    # Who each summons of the recent entries is: the frame's incident has them, as they were.
    departments = {
        s.pk: s.department.display_name
        for w in (frame.incident.whistles.all() if frame.incident else [])
        for s in w.summonses.all()
    }
    # A supervision order's rows are its department's.
    addressed = (
        {
            o.pk: o.department.display_name
            for o in incident.supervision_orders.select_related("department")
        }
        if any(e.subject_type == "order" for e in frame.recent)
        else {}
    )
    recent = [
        {
            "entry": e,
            "label": action_label(e.action),
            "who": departments.get(e.subject_id)
            if e.subject_type == "summons"
            else addressed.get(e.subject_id)
            if e.subject_type == "order"
            else None,
        }
        for e in frame.recent
    ]
    moment = widgets.Moment(
        township=township, incident=incident, frame=frame, at_ms=_ms(frame.at), recent=recent
    )
    return widgets.board_replay(moment)


def player(request: HttpRequest, township: str, incident: int) -> HttpResponse:
    found, target = _incident(request, township, incident)
    span = replay.incident_span(target)
    try:
        at = replay.parse_moment(request.GET.get("at"), span)
    except ValueError as problem:
        return HttpResponse(str(problem), status=400, content_type="text/plain; charset=utf-8")
    moments = [_ms(m) for m in span.moments]
    length = max(moments[-1] - moments[0], 1)
    # One tick per thousandth of the span at most: a 10,000-entry timeline stays a light page.
    ticks = sorted({round(1000 * (m - moments[0]) / length) / 10 for m in moments})
    context = {
        "township": found,
        "incident": target,
        "at": at,
        "at_ms": _ms(at),
        "at_seconds": (_ms(at) - moments[0]) // 1000,
        "span_seconds": -(-length // 1000),
        "opened_ms": _ms(target.opened_at),
        "since_opened": at - target.opened_at,
        "moments_ms": moments,
        "ticks": ticks,
        "speeds": SPEEDS,
        "tiles": maps.tiles(found, settings.WHISTLE_MAP_TILES),
        "map": maps.base_map(found),
        "devices_svg": maps.device_layer(found, device_states=False)[1],
        "parts": frame_parts(found, target, replay.board_at(target, at)),
    }
    with localtime.shown_in(found):
        return render(request, "frontend/replay.html", context)


def frame(request: HttpRequest, township: str, incident: int) -> HttpResponse:
    """One moment (``?at=``, required); the player only asks for moments inside the span."""
    found, target = _incident(request, township, incident)
    try:
        at = replay.parse_moment(request.GET.get("at"))
    except ValueError as problem:
        return HttpResponse(str(problem), status=400, content_type="text/plain; charset=utf-8")
    return HttpResponse("".join(frame_parts(found, target, replay.board_at(target, at)).values()))
