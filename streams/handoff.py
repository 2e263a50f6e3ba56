"""What streams hands to the layers above once a batch is stored.

Streams stores device events and readings; what they mean (rules, alerts) is decided above it.
The layer above registers a handler with ``on_stored`` when its app is ready (alerts does, in
``alerts.apps``), and ingest and the heartbeat sweep call ``stored`` inside the transaction
that wrote the batch, so a batch and the alerts it raises commit together or not at all.
Imports point down: streams never imports the handler.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from streams.adapters.base import CameraEvent, Reading


@dataclass(frozen=True, slots=True)
class DeviceRef:
    id: int
    township_id: int
    grid_id: int | None
    kind: str
    code: str


@dataclass(frozen=True)
class Stored:
    """The new rows of one stored batch (redeliveries left out)."""

    # (device, event, whether the event itself may raise an alert): presence changes are
    # stored as events labelled online/offline and are passed with False.
    events: Sequence[tuple[DeviceRef, CameraEvent, bool]] = ()
    readings: Sequence[tuple[DeviceRef, Reading]] = ()
    source: str = "mqtt"  # who wrote it, for the timeline: mqtt or system (a sweep)


@dataclass
class Raised:
    """What the handlers made of a batch: the alerts raised or repeated, and how many new."""

    alert_ids: list[int] = field(default_factory=list)
    new: int = 0


StoredHandler = Callable[[Stored], Raised]
_handlers: dict[str, StoredHandler] = {}


def on_stored(handler: StoredHandler) -> StoredHandler:
    """Register a handler (once per name: an app's ready() may run twice in tests)."""
    _handlers[f"{handler.__module__}.{handler.__qualname__}"] = handler
    return handler


def stored(batch: Stored) -> Raised:
    """Run every handler on a stored batch; called inside the batch's transaction."""
    raised = Raised()
    if not (batch.events or batch.readings):
        return raised
    for handler in _handlers.values():
        outcome = handler(batch)
        raised.alert_ids += outcome.alert_ids
        raised.new += outcome.new
    return raised
