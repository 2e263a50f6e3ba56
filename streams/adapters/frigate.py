"""Frigate NVR's own MQTT messages (docs/payloads.md, "Frigate NVR"). Pure: they never raise.

Frigate (0.13–0.16) publishes ``<prefix>/events`` for every tracked object and, from 0.14 on,
``<prefix>/reviews`` for review items; both are ``{"type": "new"|"update"|"end", "before": {…},
"after": {…}}``. Each valid message becomes one :class:`FrigateDetection`: the Frigate camera
name (ingest maps it to the device whose ``metadata["frigate_camera"]`` matches), a
:class:`CameraEvent` and whether the message should raise (or count on) an alert.

Nothing valid is skipped: both parsers return a detection or ``Rejected(reason)`` and never
``None`` today. ``None`` stays in the signature as "valid, nothing to store" so a later rule can
drop messages without changing callers; callers acknowledge it and store nothing.

Idempotency: ingest dedupes on (device, time, event_id) and raises alerts only for rows it newly
stored, so the key and the time are taken from the message alone (``now`` only when Frigate left
every usable time out) and every distinct message gets a distinct key:

events (``frigate/events``)
    ``frigate:{id}:new`` at ``start_time``; ``frigate:{id}:update:{frame_time:.6f}`` at
    ``frame_time`` (an update without ``frame_time`` is rejected); ``frigate:{id}:end`` at
    ``end_time``. ``new`` and ``end`` fall back to ``frame_time``, then ``now``. Label lowercased,
    score ``top_score`` (else ``score``), zones ``entered_zones`` then ``current_zones`` without
    repeats. Raises an alert for ``new`` unless it is a false positive, and for an ``update``
    that is not a false positive and either stopped being one (``before.false_positive`` true)
    or entered a zone ``before.entered_zones`` lacked. ``end`` never raises.
reviews (``frigate/reviews``)
    ``frigate-review:{id}:new`` and ``:end``; updates are
    ``frigate-review:{id}:update:{digest}``, the digest of what the update says (severity,
    detections, objects, sub labels, zones, audio, end time). One review gets many updates that
    all share ``start_time``; with a key of just ``:update`` the second would be taken for a
    redelivery of the first and a detection→alert escalation in it would be dropped. Time is
    ``start_time`` (``end_time`` for ``end``, else ``start_time``). Label is the first of
    ``data.objects`` without Frigate's ``-verified`` suffix, else the first of ``data.audio``
    (neither: rejected). Raises an alert
    for ``new`` with severity ``alert`` and for an ``update`` whose severity went from
    ``detection`` to ``alert``; detections are stored only.

A key over 64 characters (the column's size) keeps its first 47 characters and ends in ``~`` and
16 hex digits of the SHA-256 of the whole key, so it stays readable, stable and distinct.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from command.text import bounded_key
from streams.adapters.base import (
    CameraEvent,
    Detection,
    Rejected,
    decode_json,
    finite_number,
    parse_time,
    short_repr,
)
from streams.adapters.payload_format import Becomes, DeviceInPayload, PayloadFormat

MAX_EVENT_ID = 64  # streams.models.DeviceEvent.event_id
MAX_LABEL = 48  # streams.models.DeviceEvent.label
MESSAGE_TYPES = ("new", "update", "end")
SEVERITIES = ("alert", "detection")
# Frigate's review items name an object whose sub label is a recognised face or plate this way.
VERIFIED_SUFFIX = "-verified"


# The Frigate camera name, its event, whether it may raise an alert; ingest maps the camera name
# to a device (Device.metadata["frigate_camera"]).
FrigateDetection = Detection


class _Invalid(Exception):
    """Internal: a field failed validation; the public parsers turn it into ``Rejected``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_frigate_event(payload: bytes, now: datetime) -> FrigateDetection | Rejected | None:
    """A ``frigate/events`` message: one tracked object's new / update / end."""
    try:
        kind, before, after = _envelope(payload, "event")
        return _event(kind, before, after, now)
    except _Invalid as exc:
        return Rejected(exc.reason)


def parse_frigate_review(payload: bytes, now: datetime) -> FrigateDetection | Rejected | None:
    """A ``frigate/reviews`` message: one review item's new / update / end."""
    try:
        kind, before, after = _envelope(payload, "review")
        return _review(kind, before, after, now)
    except _Invalid as exc:
        return Rejected(exc.reason)


def _event(
    kind: str, before: dict[str, Any] | None, after: dict[str, Any], now: datetime
) -> FrigateDetection:
    object_id = _text(after.get("id"), "after.id")
    camera = _text(after.get("camera"), "after.camera")
    # Lowercased before its length is checked: a few letters grow when lowercased (İ → i̇).
    label = _text(after.get("label"), "after.label").lower()
    if len(label) > MAX_LABEL:
        raise _Invalid(f"'after.label' must be at most {MAX_LABEL} characters")
    top_score = _score(after.get("top_score"), "after.top_score")
    score = _score(after.get("score"), "after.score")
    false_positive = _flag(after.get("false_positive"), "after.false_positive")
    start_time = _epoch(after.get("start_time"), "after.start_time")
    end_time = _epoch(after.get("end_time"), "after.end_time")
    frame_time = _epoch(after.get("frame_time"), "after.frame_time")
    entered = _strings(after.get("entered_zones"), "after.entered_zones")
    current = _strings(after.get("current_zones"), "after.current_zones")
    sub_label, sub_label_score = _sub_label(after.get("sub_label"))

    if kind == "update":
        if frame_time is None:
            # The frame time is what tells one update of an object from the next.
            raise _Invalid("an update needs 'after.frame_time'")
        event_id = f"frigate:{object_id}:update:{frame_time:.6f}"
        time = _moment(frame_time, "after.frame_time", now)
    elif kind == "new":
        event_id = f"frigate:{object_id}:new"
        time = _first_moment(
            now, ("after.start_time", start_time), ("after.frame_time", frame_time)
        )
    else:
        event_id = f"frigate:{object_id}:end"
        time = _first_moment(now, ("after.end_time", end_time), ("after.frame_time", frame_time))

    raise_alert = False
    if kind == "new":
        raise_alert = false_positive is not True
    elif kind == "update" and false_positive is not True and before is not None:
        was_false_positive = _flag(before.get("false_positive"), "before.false_positive")
        entered_before = _strings(before.get("entered_zones"), "before.entered_zones")
        raise_alert = was_false_positive is True or not set(entered) <= set(entered_before)

    compact = {
        "id": object_id,
        "type": kind,
        "camera": camera,
        "label": label,
        "sub_label": sub_label,
        "sub_label_score": sub_label_score,
        "top_score": top_score,
        "score": score,
        "start_time": start_time,
        "end_time": end_time,
        "current_zones": current,
        "entered_zones": entered,
        "has_snapshot": _flag(after.get("has_snapshot"), "after.has_snapshot"),
        "has_clip": _flag(after.get("has_clip"), "after.has_clip"),
        "false_positive": false_positive,
        "snapshot_time": _snapshot_time(after),
        "stationary": _flag(after.get("stationary"), "after.stationary"),
    }
    event = CameraEvent(
        event_id=bounded_key(event_id, MAX_EVENT_ID),
        time=time,
        label=label,
        score=top_score if top_score is not None else score,
        zones=_unique(entered + current),
        payload=compact,
    )
    return FrigateDetection(camera=camera, event=event, raise_alert=raise_alert)


def _review(
    kind: str, before: dict[str, Any] | None, after: dict[str, Any], now: datetime
) -> FrigateDetection:
    review_id = _text(after.get("id"), "after.id")
    camera = _text(after.get("camera"), "after.camera")
    severity = _severity(after.get("severity"), "after.severity")
    if severity is None:
        raise _Invalid("review needs 'after.severity' ('alert' or 'detection')")
    data = after.get("data")
    if not isinstance(data, dict):
        raise _Invalid("review needs 'after.data' as an object")
    objects = _strings(data.get("objects"), "after.data.objects")
    audio = _strings(data.get("audio"), "after.data.audio")
    # An audio-only review (a scream, a siren) is a real review: its label is the sound.
    labels = objects or audio
    if not labels:
        raise _Invalid("review has no objects in 'after.data.objects' nor sounds in 'audio'")
    label = labels[0].removesuffix(VERIFIED_SUFFIX).lower()
    if not label or len(label) > MAX_LABEL:
        raise _Invalid(f"review label {short_repr(labels[0])} must be 1–{MAX_LABEL} characters")
    detections = _strings(data.get("detections"), "after.data.detections")
    sub_labels = _strings(data.get("sub_labels"), "after.data.sub_labels")
    zones = _strings(data.get("zones"), "after.data.zones")
    start_time = _epoch(after.get("start_time"), "after.start_time")
    if start_time is None:
        raise _Invalid("review needs 'after.start_time'")
    end_time = _epoch(after.get("end_time"), "after.end_time")

    if kind == "end" and end_time is not None:
        time = _moment(end_time, "after.end_time", now)
    else:
        time = _moment(start_time, "after.start_time", now)

    if kind == "update":
        # Sorted, because Frigate builds these lists from sets: the same update, the same key.
        lists = (detections, objects, sub_labels, zones, audio)
        said: list[Any] = [severity, *(sorted(items) for items in lists), end_time]
        digest = hashlib.sha256(json.dumps(said).encode()).hexdigest()[:12]
        event_id = f"frigate-review:{review_id}:update:{digest}"
    else:
        event_id = f"frigate-review:{review_id}:{kind}"

    raise_alert = False
    if kind == "new":
        raise_alert = severity == "alert"
    elif kind == "update" and severity == "alert" and before is not None:
        raise_alert = _severity(before.get("severity"), "before.severity") == "detection"

    compact = {
        "id": review_id,
        "type": kind,
        "camera": camera,
        "severity": severity,
        "start_time": start_time,
        "end_time": end_time,
        "detections": detections,
        "objects": objects,
        "sub_labels": sub_labels,
        "zones": zones,
        "audio": audio,
    }
    event = CameraEvent(
        event_id=bounded_key(event_id, MAX_EVENT_ID),
        time=time,
        label=label,
        score=None,  # a review carries no score of its own
        zones=_unique(zones),
        payload=compact,
    )
    return FrigateDetection(camera=camera, event=event, raise_alert=raise_alert)


def _envelope(payload: bytes, what: str) -> tuple[str, dict[str, Any] | None, dict[str, Any]]:
    data = decode_json(payload)
    if isinstance(data, Rejected):
        raise _Invalid(data.reason)
    if not isinstance(data, dict):
        raise _Invalid(f"Frigate {what} must be a JSON object")
    kind = data.get("type")
    if kind not in MESSAGE_TYPES:
        raise _Invalid(f"'type' must be 'new', 'update' or 'end', not {short_repr(kind)}")
    after = data.get("after")
    if not isinstance(after, dict):
        raise _Invalid(f"Frigate {what} needs 'after' as an object")
    # 'before' only tells what changed; without it no change can raise an alert.
    before = data.get("before")
    if before is not None and not isinstance(before, dict):
        raise _Invalid("'before' must be an object")
    return kind, before, after


def _text(value: Any, field: str, *, max_length: int | None = None) -> str:
    if not isinstance(value, str) or not value:
        raise _Invalid(f"'{field}' must be a non-empty string")
    if max_length is not None and len(value) > max_length:
        raise _Invalid(f"'{field}' must be at most {max_length} characters")
    return value


def _strings(value: Any, field: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _Invalid(f"'{field}' must be a list of strings")
    return value


def _flag(value: Any, field: str) -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise _Invalid(f"'{field}' must be true, false or null")
    return value


def _score(value: Any, field: str) -> float | None:
    if value is None:
        return None
    number = finite_number(value)
    if number is None or not 0 <= number <= 1:
        raise _Invalid(f"'{field}' must be a number from 0 to 1")
    return number


def _severity(value: Any, field: str) -> str | None:
    if value is not None and value not in SEVERITIES:
        raise _Invalid(f"'{field}' must be 'alert' or 'detection', not {short_repr(value)}")
    return value


def _epoch(value: Any, field: str) -> float | None:
    """Frigate's times are epoch seconds as floats; anything else is a wrong type."""
    if value is None:
        return None
    number = finite_number(value)
    if number is None:
        raise _Invalid(f"'{field}' must be epoch seconds")
    return number


def _moment(seconds: float, field: str, now: datetime) -> datetime:
    moment = parse_time(seconds, now)
    if isinstance(moment, Rejected):
        raise _Invalid(f"'{field}': {moment.reason}")
    return moment


def _first_moment(now: datetime, *candidates: tuple[str, float | None]) -> datetime:
    for field, seconds in candidates:
        if seconds is not None:
            return _moment(seconds, field, now)
    return now


def _sub_label(value: Any) -> tuple[str | None, float | None]:
    """Older Frigate sends a name, newer ``[name, score]``; both come out as name and score."""
    if value is None or value == "":  # Frigate clears a sub label to null, older ones to ""
        return None, None
    if isinstance(value, str):
        return _text(value, "after.sub_label"), None
    if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str):
        return _text(value[0], "after.sub_label"), _score(value[1], "after.sub_label score")
    raise _Invalid("'after.sub_label' must be a string, a [name, score] list or null")


def _snapshot_time(after: dict[str, Any]) -> float | None:
    """Newer Frigate nests the best snapshot as ``snapshot``; older sends ``snapshot_time``."""
    snapshot = after.get("snapshot")
    if snapshot is not None:
        if not isinstance(snapshot, dict):
            raise _Invalid("'after.snapshot' must be an object or null")
        return _epoch(snapshot.get("frame_time"), "after.snapshot.frame_time")
    return _epoch(after.get("snapshot_time"), "after.snapshot_time")


def _unique(zones: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(zones))


WITHOUT_TOWNSHIP = (
    "Frigate topic names no township: set the township's Frigate mqtt.topic_prefix to "
    "frigate/<township code> (or FRIGATE_TOWNSHIP for a one-township deployment)"
)
# A township's Frigate publishes under its own prefix (Frigate's mqtt.topic_prefix set to
# ``frigate/<township>``), which the broker's ACL confines to that township's credential; the
# unprefixed topics are read only where FRIGATE_TOWNSHIP names the one township.
_CAMERA = DeviceInPayload(
    metadata_key="frigate_camera",
    township_setting="FRIGATE_TOWNSHIP",
    without_township=WITHOUT_TOWNSHIP,
)

FORMATS = (
    PayloadFormat(
        name="frigate_event",
        topics=("{FRIGATE_TOPIC_PREFIX}/{township?}/events", "{FRIGATE_TOPIC_PREFIX}/events"),
        parse=parse_frigate_event,
        device=_CAMERA,
        becomes=Becomes.EVENTS,
        summary="Frigate NVR: one tracked object: `new`, then `update`s, then `end`",
    ),
    PayloadFormat(
        name="frigate_review",
        topics=("{FRIGATE_TOPIC_PREFIX}/{township?}/reviews", "{FRIGATE_TOPIC_PREFIX}/reviews"),
        parse=parse_frigate_review,
        device=_CAMERA,
        becomes=Becomes.EVENTS,
        summary="Frigate NVR (0.14 and later): one review item: `new`, `update`s, `end`",
    ),
)
