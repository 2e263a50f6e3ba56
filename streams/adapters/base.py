"""Records the adapters produce. Adapters are pure: bytes in, records or a reason out."""

from __future__ import annotations

import functools
import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from command.text import all_storable

MAX_PAYLOAD_BYTES = 256 * 1024
# Gateways with a drifting clock are common; a reading from further out than this is a bug.
MAX_FUTURE = timedelta(minutes=10)
MAX_PAST = timedelta(days=30)
# Deeper than any real payload; a stored payload is rendered and re-encoded, so it is bounded.
MAX_DEPTH = 16
# A JSON escape of a UTF-16 surrogate. A pair is one character once decoded; a lone half (firmware
# that cut a string in two) is not text: PostgreSQL cannot store it. Checked precisely only when
# this cheap scan finds one.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


@dataclass(frozen=True, slots=True)
class CameraEvent:
    event_id: str
    time: datetime
    label: str
    score: float | None
    zones: tuple[str, ...]
    payload: dict[str, Any] = field(hash=False, compare=False)


class Reading(NamedTuple):
    # A tuple, not a frozen dataclass: ingest makes one per reading, and a frozen dataclass's
    # __init__ costs several times more.
    time: datetime
    metric: str
    value: float


@dataclass(frozen=True, slots=True)
class Presence:
    online: bool
    time: datetime


@dataclass(frozen=True, slots=True)
class Detection:
    """A camera event from a payload that names its camera (an NVR's message): ingest maps the
    name to a device (see ``DeviceInPayload`` in streams.adapters.payload_format)."""

    camera: str  # the name the sender gives the camera
    event: CameraEvent  # event_id and time chosen so a redelivery is idempotent
    raise_alert: bool  # whether this message should raise/count an alert


@dataclass(frozen=True, slots=True)
class Rejected:
    reason: str


def decode_json(payload: bytes) -> Any | Rejected:
    if len(payload) > MAX_PAYLOAD_BYTES:
        return Rejected(f"payload of {len(payload)} bytes is over the {MAX_PAYLOAD_BYTES} limit")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Rejected(f"payload is not UTF-8: {exc.reason} at byte {exc.start}")
    if "\x00" in text or "\\u0000" in text:
        return Rejected("payload contains a NUL character, which PostgreSQL cannot store")
    try:
        data = _DECODER.decode(text)
    except RecursionError:
        return Rejected("JSON is nested too deeply")
    except ValueError as exc:
        return Rejected(f"malformed JSON: {exc}")
    if _SURROGATE_ESCAPE.search(text) and not all_storable(data):
        return Rejected("payload contains a lone UTF-16 surrogate (a string cut in half)")
    return data


def check_stored_json(data: Any) -> str | None:
    """Why ``data`` cannot be kept as a jsonb payload (too deep, a number that is not finite),
    or None. Walks without recursion: the depth is what is being checked."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if value.__class__ is float:
            if not math.isfinite(value):
                return "payload holds a number too large for a float (JSON allows no Infinity)"
        elif isinstance(value, dict | list):
            if depth > MAX_DEPTH:
                return f"payload is nested deeper than {MAX_DEPTH} levels"
            items = value.values() if isinstance(value, dict) else value
            stack.extend((item, depth + 1) for item in items)
    return None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


# NaN and Infinity are not JSON; Python accepts them unless told otherwise. One decoder for all
# messages: json.loads with an option builds a new decoder on every call.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


@functools.lru_cache(maxsize=8)
def _window(now: datetime) -> tuple[datetime, datetime]:
    return now - MAX_PAST, now + MAX_FUTURE


def parse_time(value: Any, now: datetime) -> datetime | Rejected:
    """Epoch seconds or milliseconds, or ISO 8601 with a zone; checked against ``now``."""
    if isinstance(value, bool):
        return Rejected(f"timestamp {value!r} is not a time")
    if isinstance(value, (int, float)):
        try:
            if not math.isfinite(value):
                return Rejected("timestamp is not finite")
            seconds = value / 1000 if value > 1e11 else value
            moment = datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return Rejected(f"timestamp {short_repr(value)} is out of range")
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return Rejected(f"timestamp {short_repr(value)} is not ISO 8601")
        if moment.tzinfo is None:
            return Rejected(f"timestamp {short_repr(value)} has no time zone")
        try:
            # 9999-12-31T23:59:59-12:00 is a valid ISO time that no datetime can hold in UTC.
            moment = moment.astimezone(UTC)
        except (OverflowError, ValueError):
            return Rejected(f"timestamp {short_repr(value)} is out of range")
    else:
        return Rejected(f"timestamp {short_repr(value)} is not a number or a string")
    earliest, latest = _window(now)
    if moment > latest:
        return Rejected(f"timestamp {moment.isoformat()} is in the future")
    if moment < earliest:
        return Rejected(f"timestamp {moment.isoformat()} is too far in the past")
    return moment


def finite_number(value: Any) -> float | None:
    if value.__class__ is float:  # the common case first, without the isinstance chain
        return value if math.isfinite(value) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:  # an integer of hundreds of digits
        return None
    return number if math.isfinite(number) else None


def short_repr(value: Any, limit: int = 60) -> str:
    """``repr`` for a reason text: bounded, so a huge value cannot bloat a dead letter's reason."""
    if isinstance(value, int) and value.bit_length() > 200:
        return "<huge integer>"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
