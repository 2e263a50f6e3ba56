"""Records the adapters produce. Adapters are pure: bytes in, records or a reason out."""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

MAX_PAYLOAD_BYTES = 256 * 1024
# Gateways with a drifting clock are common; a reading from further out than this is a bug.
MAX_FUTURE = timedelta(minutes=10)
MAX_PAST = timedelta(days=30)


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
        return _DECODER.decode(text)
    except ValueError as exc:
        return Rejected(f"malformed JSON: {exc}")


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
        if not math.isfinite(value):
            return Rejected("timestamp is not finite")
        seconds = value / 1000 if value > 1e11 else value
        try:
            moment = datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return Rejected(f"timestamp {value!r} is out of range")
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return Rejected(f"timestamp {value!r} is not ISO 8601")
        if moment.tzinfo is None:
            return Rejected(f"timestamp {value!r} has no time zone")
        moment = moment.astimezone(UTC)
    else:
        return Rejected(f"timestamp {value!r} is not a number or a string")
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
    number = float(value)
    return number if math.isfinite(number) else None
