"""From stored events to alert specifications. The per-township rule editor arrives with the
alert-rules work; until then camera labels map to categories through this table."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.utils.translation import gettext_lazy as _

from alerts.models import Severity

# label → (category code, severity). Labels are Frigate's / the gateways' own words.
CAMERA_LABELS: dict[str, tuple[str, str]] = {
    "excavator": ("illegal-mining", Severity.MAJOR),
    "dump_truck": ("illegal-mining", Severity.MAJOR),
    "fire": ("fire", Severity.CRITICAL),
    "smoke": ("fire", Severity.CRITICAL),
    "straw_burning": ("straw-burning", Severity.MAJOR),
    "crowd": ("public-order", Severity.MAJOR),
    "fight": ("public-order", Severity.CRITICAL),
    "illegal_parking": ("parking", Severity.MINOR),
    "garbage": ("garbage", Severity.MINOR),
    "debris": ("garbage", Severity.WARNING),
    "street_vendor": ("unlicensed-business", Severity.WARNING),
    "flood": ("flood", Severity.CRITICAL),
}


# How a detection label reads on the board, in the user's language.
LABEL_NAMES = {
    "excavator": _("excavator"),
    "dump_truck": _("dump truck"),
    "fire": _("open fire"),
    "smoke": _("smoke"),
    "straw_burning": _("straw burning"),
    "crowd": _("crowd gathering"),
    "fight": _("fight"),
    "illegal_parking": _("illegal parking"),
    "garbage": _("garbage"),
    "debris": _("piled debris"),
    "street_vendor": _("street vendor"),
    "flood": _("flooding"),
}


def label_name(label: str) -> str:
    return str(LABEL_NAMES.get(label, label))


@dataclass(frozen=True, slots=True)
class AlertSpec:
    township_id: int
    category_code: str
    severity: str
    source: str
    title: str
    dedupe_key: str
    time: datetime
    device_id: int | None = None
    grid_id: int | None = None
    detail: dict[str, Any] | None = None


def camera_event_alert(
    *,
    township_id: int,
    device_id: int,
    device_code: str,
    grid_id: int | None,
    event_id: str,
    label: str,
    score: float | None,
    zones: tuple[str, ...],
    time: datetime,
) -> AlertSpec | None:
    rule = CAMERA_LABELS.get(label)
    if rule is None:
        return None
    category_code, severity = rule
    return AlertSpec(
        township_id=township_id,
        category_code=category_code,
        severity=severity,
        source="camera",
        title=f"{label} @ {device_code}",
        # One open alert per camera and category: a stream of detections of the same thing
        # counts up on one row instead of flooding the queue.
        dedupe_key=f"camera:{device_id}:{category_code}",
        time=time,
        device_id=device_id,
        grid_id=grid_id,
        detail={"label": label, "score": score, "zones": list(zones), "event_id": event_id},
    )
