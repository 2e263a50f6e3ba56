"""Services that write the timeline. Every other service calls these inside its transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils import timezone

from command.incidents.models import TimelineEntry


def timeline_record(
    *,
    township_id: int,
    subject_type: str,
    subject_id: int,
    action: str,
    source: str,
    actor_id: int | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    time: datetime | None = None,
) -> TimelineEntry:
    return TimelineEntry.objects.create(
        time=time or timezone.now(),
        township_id=township_id,
        subject_type=subject_type,
        subject_id=subject_id,
        action=action,
        source=source,
        actor_id=actor_id,
        before=before,
        after=after,
    )
