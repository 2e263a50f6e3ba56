"""Whistle's own payloads (docs/payloads.md). Pure functions: they never raise on bad input."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from streams.adapters.base import (
    CameraEvent,
    Presence,
    Reading,
    Rejected,
    check_stored_json,
    decode_json,
    finite_number,
    parse_time,
    short_repr,
)
from streams.adapters.payload_format import Becomes, DeviceInTopic, PayloadFormat


def parse_camera_event(payload: bytes, now: datetime) -> CameraEvent | Rejected:
    """``{"id": "evt-1", "ts": 1763900000000, "label": "excavator", "score": 0.91,
    "zones": ["quarry-pit"], "snapshot": "https://…"}``"""
    data = decode_json(payload)
    if isinstance(data, Rejected):
        return data
    if not isinstance(data, dict):
        return Rejected("camera event must be a JSON object")
    event_id = data.get("id")
    if not isinstance(event_id, str) or not event_id or len(event_id) > 64:
        return Rejected("camera event needs an 'id' string of 1–64 characters")
    label = data.get("label")
    if isinstance(label, str):
        label = label.lower()  # before the length check: a few letters grow when lowercased
    if not isinstance(label, str) or not label or len(label) > 48:
        return Rejected("camera event needs a 'label' string of 1–48 characters")
    time = parse_time(data.get("ts"), now) if "ts" in data else now
    if isinstance(time, Rejected):
        return time
    score: float | None = None
    if data.get("score") is not None:
        score = finite_number(data["score"])
        if score is None or not 0 <= score <= 1:
            return Rejected("'score' must be a number from 0 to 1")
    zones_raw = data.get("zones", [])
    if not isinstance(zones_raw, list) or not all(isinstance(z, str) for z in zones_raw):
        return Rejected("'zones' must be a list of strings")
    # The whole object is kept as the event's payload, so what it carries besides must be
    # storable too.
    unstorable = check_stored_json(data)
    if unstorable:
        return Rejected(unstorable)
    return CameraEvent(
        event_id=event_id,
        time=time,
        label=label,
        score=score,
        zones=tuple(zones_raw),
        payload=data,
    )


def parse_telemetry(payload: bytes, now: datetime) -> list[Reading] | Rejected:
    """``{"water_level": 2.4}``, ``{"ts": …, "values": {…}}`` or a list of the latter."""
    data = decode_json(payload)
    if isinstance(data, Rejected):
        return data
    items: list[Any] = data if isinstance(data, list) else [data]
    readings: list[Reading] = []
    for item in items:
        if not isinstance(item, dict):
            return Rejected("telemetry must be an object or a list of objects")
        if "values" in item:
            values = item["values"]
            time = parse_time(item["ts"], now) if "ts" in item else now
            if isinstance(time, Rejected):
                return time
        else:
            values, time = item, now
        if not isinstance(values, dict) or not values:
            return Rejected("telemetry 'values' must be a non-empty object")
        for metric, raw in values.items():
            value = finite_number(raw)
            if value is None:
                return Rejected(
                    f"telemetry value {short_repr(metric)} is not a finite number: "
                    f"{short_repr(raw)}"
                )
            if not metric or len(metric) > 48:
                return Rejected(f"metric name {short_repr(metric)} must be 1–48 characters")
            readings.append(Reading(time=time, metric=metric, value=value))
    if not readings:
        return Rejected("telemetry carries no readings")
    return readings


def parse_status(payload: bytes, now: datetime) -> Presence | Rejected:
    """``online`` / ``offline`` as plain text, or ``{"status": "online"}``."""
    text = payload.strip().lower()
    if text in (b"online", b"offline"):
        return Presence(online=text == b"online", time=now)
    data = decode_json(payload)
    if isinstance(data, Rejected):
        return data
    status = data.get("status") if isinstance(data, dict) else None
    if status not in ("online", "offline"):
        return Rejected("status must be 'online' or 'offline'")
    return Presence(online=status == "online", time=now)


FORMATS = (
    PayloadFormat(
        name="camera_event",
        topics=("{MQTT_TOPIC_PREFIX}/{township}/camera/{device}/event",),
        parse=parse_camera_event,
        device=DeviceInTopic(),
        becomes=Becomes.EVENTS,
        summary="a camera detection",
    ),
    PayloadFormat(
        name="telemetry",
        topics=("{MQTT_TOPIC_PREFIX}/{township}/sensor/{device}/telemetry",),
        parse=parse_telemetry,
        device=DeviceInTopic(),
        becomes=Becomes.READINGS,
        summary="sensor readings",
    ),
    PayloadFormat(
        name="gateway_status",
        topics=("{MQTT_TOPIC_PREFIX}/{township}/gateway/{device}/status",),
        parse=parse_status,
        device=DeviceInTopic(),
        becomes=Becomes.PRESENCE,
        summary="gateway presence (retained, also the last will)",
    ),
)
