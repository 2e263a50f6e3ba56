"""The timeline's one writer: every row, single or bulk, is checked against the vocabulary."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from command import clock
from command.timeline.actions import Action, payload_check
from command.timeline.models import TimelineEntry


@dataclass(frozen=True)
class Row:
    """One row to write; ``time`` defaults to the clock's now."""

    township_id: int
    subject_type: str
    subject_id: int
    action: Action | str
    source: str
    actor_id: int | None = None
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    time: datetime | None = None

    def entry(self) -> TimelineEntry:
        action = payload_check(self.action, self.before, self.after)
        if action.subject != self.subject_type:
            raise ValueError(f"{action.value} is not an action on a {self.subject_type}")
        return TimelineEntry(
            time=self.time or clock.now(),
            township_id=self.township_id,
            subject_type=self.subject_type,
            subject_id=self.subject_id,
            action=action.value,
            source=self.source,
            actor_id=self.actor_id,
            before=self.before,
            after=self.after,
        )


def timeline_record(
    *,
    township_id: int,
    subject_type: str,
    subject_id: int,
    action: Action | str,
    source: str,
    actor_id: int | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    time: datetime | None = None,
) -> TimelineEntry:
    row = Row(
        township_id=township_id,
        subject_type=subject_type,
        subject_id=subject_id,
        action=action,
        source=source,
        actor_id=actor_id,
        before=before,
        after=after,
        time=time,
    )
    entry = row.entry()
    entry.save(force_insert=True)
    return entry


def timeline_record_many(rows: Sequence[Row]) -> list[TimelineEntry]:
    """One INSERT for many rows (a whistle's summonses): same checks as one by one."""
    return TimelineEntry.objects.bulk_create([row.entry() for row in rows])
