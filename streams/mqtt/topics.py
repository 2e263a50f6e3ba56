"""Topic names of docs/payloads.md, matched without regular expressions on the hot path."""

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


# Longest codes the organisation's tables hold (org.Township.code, org.Device.code): a longer
# segment names nothing, so it is refused here rather than looked up.
MAX_TOWNSHIP = 40
MAX_DEVICE = 64


def _fits(segment: str, limit: int) -> bool:
    return 0 < len(segment) <= limit and "\x00" not in segment and "/" not in segment


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
        # A township's Frigate publishes under its own prefix (Frigate's mqtt.topic_prefix set to
        # ``frigate/<township>``), which the broker's ACL confines to that township's credential.
        own += [f"{frigate_prefix}/+/events", f"{frigate_prefix}/+/reviews"]
        own += [f"{frigate_prefix}/events", f"{frigate_prefix}/reviews"]
    return own


@functools.lru_cache(maxsize=65_536)
def match(
    topic: str, prefix: str = "whistle", frigate_prefix: str = "frigate"
) -> TopicMatch | None:
    if frigate_prefix and topic.startswith(frigate_prefix + "/"):
        township, _, leaf = topic[len(frigate_prefix) + 1 :].rpartition("/")
        if township and not _fits(township, MAX_TOWNSHIP):
            return None
        if leaf == "events":
            return TopicMatch(FRIGATE_EVENT, township, "")
        if leaf == "reviews":
            return TopicMatch(FRIGATE_REVIEW, township, "")
        return None
    parts = topic.split("/")
    if (
        len(parts) != 5
        or parts[0] != prefix
        or not _fits(parts[1], MAX_TOWNSHIP)
        or not _fits(parts[3], MAX_DEVICE)
    ):
        return None
    if parts[2] == "gateway" and parts[4] == "status":
        return TopicMatch(GATEWAY_STATUS, parts[1], parts[3])
    kind = _NATIVE.get((parts[2], parts[4]))
    if kind is None:
        return None
    return TopicMatch(kind, parts[1], parts[3])


def dispatch_topic(township: str, department: str, prefix: str = "whistle") -> str:
    return f"{prefix}/{township}/dispatch/{department}"
