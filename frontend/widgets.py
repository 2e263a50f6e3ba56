"""The duty board's widgets, each declared once: how the page first draws it, what a socket
sends for it on (re)connect, which events redraw it and how, and what it shows in a replay.

The board view, the board's socket (the state on connect and each batch of events) and the
replay's frames all read :data:`BOARD_WIDGETS`; a widget added there is on the page, in the
state, redrawn by its events and, if it says how, in the replay. Order matters: it is the order
the socket sends the widgets in (the alert queue first: it is what the duty officer works
from); the page places them by :attr:`Widget.slot` in the board's layout.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.template.loader import render_to_string
from django.utils import translation

from command import realtime
from command.org import localtime
from command.org.models import Township
from frontend import maps, rendering
from frontend.frames import Part
from incidents.models import Incident
from incidents.replay import Frame

# Where the board page puts a widget, in page order: the figures strip across the top, the map
# down the left, the panels down the right (whistle.css, .board-grid).
SLOTS = ("strip", "map", "side")
# Above this many changed alerts in one frame, the whole queue is re-rendered (one query for
# its first page) rather than each row.
WHOLE_QUEUE_ABOVE = 10


@dataclass(frozen=True)
class Moment:
    """A moment of a replay, for the widgets to draw: the board as the timeline says it was.

    ``recent`` is the replay's "what just happened" (the entries with their labels and who)."""

    township: Township
    incident: Incident  # the one replayed
    frame: Frame
    at_ms: int
    recent: list[dict[str, Any]]


@dataclass(frozen=True)
class Widget:
    """One part of the board.

    ``page(township, language)`` is its HTML in the page: its panel, safe HTML as
    ``render_to_string`` returns it. ``state(township, language)`` is what a socket sends
    for it on (re)connect. An event whose type is in ``redraw_on`` marks it changed, with the
    event's ``item`` key (the alert's id, say) when it names one; the next frame then sends
    ``redraw(township, language, items)``, or the whole ``state`` when it has no cheaper
    redraw. ``replay(moment)`` gives its parts of a replay frame by their name in the player
    page; None: it is not in replays. A widget with no ``slot`` is not on the live board
    (the replay's clock).
    """

    name: str
    slot: str | None = None
    page: Callable[[Township, str], str] | None = None
    state: Callable[[Township, str], list[Part]] | None = None
    redraw_on: frozenset[str] = frozenset()
    item: str | None = None
    redraw: Callable[[Township, str, set[int]], list[Part]] | None = None
    replay: Callable[[Moment], dict[str, str]] | None = None

    def __post_init__(self) -> None:
        if self.slot is not None and (
            self.slot not in SLOTS or self.page is None or self.state is None
        ):
            raise ValueError(f"widget {self.name}: a live widget needs a slot, page and state")
        if self.slot is None and (self.page or self.state or self.redraw_on):
            raise ValueError(f"widget {self.name}: without a slot it is not on the live board")
        unknown = self.redraw_on - realtime.EVENT_TYPES
        if unknown:
            raise ValueError(f"widget {self.name}: unknown event types {sorted(unknown)}")

    @property
    def live(self) -> bool:
        return self.slot is not None

    def changed(self, township: Township, language: str, items: set[int]) -> list[Part]:
        """What a frame sends for it after its events."""
        if self.redraw is not None:
            return self.redraw(township, language, items)
        assert self.state is not None
        return self.state(township, language)


def _panel(template: str, township: Township, language: str, **context: Any) -> str:
    with translation.override(language):
        return render_to_string(template, {"township": township, **context})


# --- the alert queue -------------------------------------------------------------------------


def _queue_page(township: Township, language: str) -> str:
    queue = rendering.alert_queue_html(township=township, oob=False, language=language)
    return _panel("frontend/partials/panel_queue.html", township, language, queue_html=queue)


def _queue_state(township: Township, language: str) -> list[Part]:
    return rendering.alert_queue_parts(township=township, language=language)


def _queue_redraw(township: Township, language: str, alert_ids: set[int]) -> list[Part]:
    """A raised or repeated alert moves to the top of its queue; a burst re-renders the queue."""
    if len(alert_ids) > WHOLE_QUEUE_ABOVE:
        return _queue_state(township, language)
    return [
        rendering.alert_push_html(township=township, alert_id=alert_id, language=language)
        for alert_id in sorted(alert_ids)
    ]


def _queue_then(moment: Moment) -> dict[str, str]:
    context = {
        "township": moment.township,
        "alerts": moment.frame.alerts,
        "open_count": moment.frame.open_count,
        "replay": True,
    }
    return {
        "queue": render_to_string("frontend/partials/alert_queue.html", context),
        "count": render_to_string("frontend/partials/open_count.html", context),
    }


# --- the map ---------------------------------------------------------------------------------


def _map_page(township: Township, language: str) -> str:
    grids = rendering.board_map_html(township=township, language=language)
    return _panel("frontend/partials/panel_map.html", township, language, map_html=grids)


def _map_state(township: Township, language: str) -> list[Part]:
    return [rendering.map_overlay_html(township=township, oob=True, language=language)]


def _map_then(moment: Moment) -> dict[str, str]:
    _layer, markers = maps.overlay(moment.township, moment.frame.alerts, only_alerts=True)
    context = {
        "map": maps.base_map(moment.township),
        "devices_svg": "",  # drawn once by the page, under the frames' alert markers
        "markers": markers,
    }
    return {"overlay": render_to_string("frontend/partials/map_overlay.html", context)}


# --- the incidents being handled -------------------------------------------------------------


def _incidents_page(township: Township, language: str) -> str:
    panel = rendering.incidents_html(township=township, oob=False, language=language)
    return _panel(
        "frontend/partials/panel_incidents.html", township, language, incidents_html=panel
    )


def _incidents_state(township: Township, language: str) -> list[Part]:
    return rendering.incidents_parts(township=township, language=language)


def _incidents_then(moment: Moment) -> dict[str, str]:
    frame = moment.frame
    context = {
        "township": moment.township,
        "incidents": ([frame.incident] if frame.incident else []) + frame.others,
        "replayed": moment.incident.pk,
        "replay": True,
    }
    return {"incidents": render_to_string("frontend/partials/incident_panel.html", context)}


# --- today's figures -------------------------------------------------------------------------


def _figures_page(township: Township, language: str) -> str:
    return rendering.figures_html(township=township, oob=False, language=language)


def _figures_state(township: Township, language: str) -> list[Part]:
    return [rendering.figures_html(township=township, oob=True, language=language)]


# --- the replay's clock ----------------------------------------------------------------------


def _clock_then(moment: Moment) -> dict[str, str]:
    context = {"recent": moment.recent, "at_ms": moment.at_ms}
    return {"clock": render_to_string("frontend/partials/replay_clock.html", context)}


ALERT_EVENTS = frozenset({"alert.raised", "alert.updated"})
INCIDENT_EVENTS = frozenset(
    {"incident.opened", "incident.updated", "whistle.blown", "summons.updated", "order.updated"}
)

BOARD_WIDGETS: tuple[Widget, ...] = (
    Widget(
        name="alert_queue",
        slot="side",
        page=_queue_page,
        state=_queue_state,
        redraw_on=ALERT_EVENTS,
        item="alert_id",
        redraw=_queue_redraw,
        replay=_queue_then,
    ),
    Widget(
        name="map",
        slot="map",
        page=_map_page,
        state=_map_state,
        redraw_on=ALERT_EVENTS,
        replay=_map_then,
    ),
    Widget(
        name="incidents",
        slot="side",
        page=_incidents_page,
        state=_incidents_state,
        redraw_on=INCIDENT_EVENTS,
        replay=_incidents_then,
    ),
    Widget(
        name="figures",
        slot="strip",
        page=_figures_page,
        state=_figures_state,
        redraw_on=ALERT_EVENTS | INCIDENT_EVENTS,
    ),
    Widget(name="replay_clock", replay=_clock_then),
)


# Widgets whose redraw a board socket sends in a frame of its own, ahead of the others: a new
# alert's row is what the duty officer acts on, the map and the figures around it can follow.
FIRST = frozenset({"alert_queue"})


def _live() -> list[Widget]:
    # The registry is read at each call, not bound at import: a test can add a widget.
    return [widget for widget in BOARD_WIDGETS if widget.live]


def board_page(*, township: Township, language: str) -> list[str]:
    """The board page's widgets, in the order the layout places them."""
    placed = sorted(_live(), key=lambda widget: SLOTS.index(widget.slot or ""))
    return [widget.page(township, language) for widget in placed if widget.page]


def board_state(*, township: Township, language: str) -> list[Part]:
    """Everything the board shows, for a socket that has just (re)connected."""
    return [part for widget in _live() if widget.state for part in widget.state(township, language)]


def board_marks(event: dict[str, Any]) -> list[tuple[str, int | None]]:
    """What an event changes: (widget, the item it names or None) for each widget it redraws."""
    return [
        (widget.name, event.get(widget.item) if widget.item else None)
        for widget in BOARD_WIDGETS
        if event["type"] in widget.redraw_on
    ]


def board_batch(*, township: Township, language: str, batch: dict[str, set[int]]) -> list[Part]:
    """The parts of one frame: each widget marked since the last one, redrawn, in registry
    order."""
    return [
        part
        for widget in BOARD_WIDGETS
        if widget.name in batch
        for part in widget.changed(township, language, batch[widget.name])
    ]


def board_replay(moment: Moment) -> dict[str, str]:
    """A replay frame's parts, by their name in the player page, on the township's clock."""
    parts: dict[str, str] = {}
    with localtime.shown_in(moment.township):
        for widget in BOARD_WIDGETS:
            if widget.replay is not None:
                parts |= widget.replay(moment)
    return parts
