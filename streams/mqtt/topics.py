"""Topic names of DESIGN.md §6, matched without regular expressions on the hot path."""

from __future__ import annotations

import functools
from dataclasses import dataclass

CAMERA_EVENT = "camera_event"
TELEMETRY = "telemetry"
GATEWAY_STATUS = "gateway_status"
FRIGATE_EVENT = "frigate_event"
FRIGATE_REVIEW = "frigate_review"
FRIGATE_KINDS = (FRIGATE_EVENT, FRIGATE_REVIEW)

# kind segment and last segment → topic kind
_NATIVE = {("camera", "event"): CAMERA_EVENT, ("sensor", "telemetry"): TELEMETRY}


@dataclass(frozen=True, slots=True)
class TopicMatch:
    kind: str
    township: str
    device: str


def subscriptions(prefix: str = "whistle", frigate_prefix: str = "frigate") -> list[str]:
    own = [
        f"{prefix}/+/camera/+/event",
        f"{prefix}/+/sensor/+/telemetry",
        f"{prefix}/+/gateway/+/status",
    ]
    if frigate_prefix:
        own += [f"{frigate_prefix}/events", f"{frigate_prefix}/reviews"]
    return own


@functools.lru_cache(maxsize=65_536)
def match(
    topic: str, prefix: str = "whistle", frigate_prefix: str = "frigate"
) -> TopicMatch | None:
    if frigate_prefix and topic.startswith(frigate_prefix + "/"):
        leaf = topic[len(frigate_prefix) + 1 :]
        if leaf == "events":
            return TopicMatch(FRIGATE_EVENT, "", "")
        if leaf == "reviews":
            return TopicMatch(FRIGATE_REVIEW, "", "")
        return None
    parts = topic.split("/")
    if len(parts) != 5 or parts[0] != prefix or not parts[1] or not parts[3]:
        return None
    if parts[2] == "gateway" and parts[4] == "status":
        return TopicMatch(GATEWAY_STATUS, parts[1], parts[3])
    kind = _NATIVE.get((parts[2], parts[4]))
    if kind is None:
        return None
    return TopicMatch(kind, parts[1], parts[3])


def dispatch_topic(township: str, department: str, prefix: str = "whistle") -> str:
    return f"{prefix}/{township}/dispatch/{department}"
