"""Services that change alerts. Each writes a timeline row and broadcasts on commit."""

from __future__ import annotations

from typing import Any

from django.db import connection, transaction
from django.utils.translation import gettext as _
from psycopg.types.json import Jsonb

from alerts.models import SEVERITY_RANK, Alert, Severity
from alerts.rules import AlertSpec, Clear
from command import clock, realtime
from command.errors import TransitionNotAllowed
from command.text import bounded_key
from command.timeline.actions import Action
from command.timeline.records import timeline_record

_UPSERT = """
INSERT INTO alerts_alert (township_id, category_id, severity, status, source, title, device_id,
                          grid_id, dedupe_key, count, first_seen, last_seen, detail)
VALUES (%s, (SELECT id FROM org_category WHERE code = %s), %s, 'new', %s, %s, %s, %s, %s, 1,
        %s, %s, %s)
ON CONFLICT (township_id, dedupe_key) WHERE status IN ('new', 'acknowledged')
DO UPDATE SET count = alerts_alert.count + 1,
              last_seen = GREATEST(alerts_alert.last_seen, EXCLUDED.last_seen),
              detail = EXCLUDED.detail
RETURNING id, (xmax = 0) AS created, count, status,
          (SELECT code FROM org_township WHERE id = alerts_alert.township_id)
"""


_TOLD = (
    "metric",
    "value",
    "threshold",
    "rate",
    "label",
    "score",
    "report",
    "channel",
    "caller",
    "duplicate_of",
)


# Keys longer than the column keep their start and end in a digest (command.text.bounded_key).
_DEDUPE_KEY_MAX = Alert._meta.get_field("dedupe_key").max_length


def _bounded(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def alert_raise(*, spec: AlertSpec, source: str = "mqtt") -> tuple[int, bool]:
    """Raise an alert or count a repeat of the open one with the same key.

    Race-safe across ingest workers: the partial unique index decides, not a read-then-write.
    Returns ``(alert_id, created)``.
    """
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            _UPSERT,
            [
                spec.township_id,
                spec.category_code,
                spec.severity,
                spec.source,
                # A rule's name and a device's code can add up past the column: the title is
                # cut, not the reading that raised it dead-lettered.
                _bounded(spec.title, Alert._meta.get_field("title").max_length),
                spec.device_id,
                spec.grid_id,
                bounded_key(spec.dedupe_key, _DEDUPE_KEY_MAX),
                spec.time,
                spec.time,
                Jsonb(spec.detail or {}),
            ],
        )
        alert_id, created, count, status, township = cursor.fetchone()
        action = Action.ALERT_RAISED if created else Action.ALERT_UPDATED
        # The status as it is after the repeat (a repeat keeps an acknowledged alert
        # acknowledged): replay rebuilds the board from these rows.
        _changed(
            spec.township_id,
            township,
            alert_id,
            action,
            source=source,
            after={
                "status": status,
                "count": count,
                "severity": spec.severity,
                # What crossed the line (the reading and its threshold, the camera's label and
                # score, the intake item, its channel and masked caller): the timeline tells
                # why the alert was raised.
                **{k: v for k, v in (spec.detail or {}).items() if k in _TOLD},
            },
            time=spec.time,
            event=action.value,
        )
    return alert_id, created


def _changed(
    township_id: int,
    township_code: str,
    alert_id: int,
    action: Action,
    *,
    source: str,
    actor_id: int | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    time: Any = None,
    event: str = "alert.updated",
) -> None:
    """Every alert change: its timeline row, and the board's push on commit."""
    timeline_record(
        township_id=township_id,
        subject_type="alert",
        subject_id=alert_id,
        action=action,
        source=source,
        actor_id=actor_id,
        before=before,
        after=after,
        time=time,
    )
    realtime.broadcast_on_commit(
        realtime.board_group(township_code), {"type": event, "alert_id": alert_id}
    )


def _require_status(alert: Alert, allowed: tuple[str, ...] = Alert.OPEN_STATUSES) -> None:
    if alert.status not in allowed:
        raise TransitionNotAllowed(
            _("This alert is %(status)s.") % {"status": alert.get_status_display()},
            code=f"alert_{alert.status}",
        )


def _alert_change(
    alert_id: int,
    township_ids: set[int] | None,
    to: str,
    action: Action,
    *,
    actor_id: int | None,
    source: str,
    allowed_from: tuple[str, ...],
    fields: dict[str, Any] | None = None,
) -> Alert:
    with transaction.atomic():
        alert = Alert.objects.select_for_update().select_related("township").get(pk=alert_id)
        if township_ids is not None and alert.township_id not in township_ids:
            raise Alert.DoesNotExist
        _require_status(alert, allowed_from)
        before = alert.status
        now = clock.now()
        alert.status = to
        alert.closed_at = None if to in Alert.OPEN_STATUSES else now
        detail = dict(alert.detail or {})
        detail.update(fields or {})
        alert.detail = detail
        alert.save(update_fields=["status", "closed_at", "detail"])
        _changed(
            alert.township_id,
            alert.township.code,
            alert.pk,
            action,
            source=source,
            actor_id=actor_id,
            before={"status": before},
            after={"status": to, **(fields or {})},
            time=now,
        )
    return alert


def alert_acknowledge(
    *, alert_id: int, actor_id: int, township_ids: set[int] | None, source: str = "web"
) -> Alert:
    return _alert_change(
        alert_id,
        township_ids,
        Alert.Status.ACKNOWLEDGED,
        Action.ALERT_ACKNOWLEDGED,
        actor_id=actor_id,
        source=source,
        allowed_from=(Alert.Status.NEW,),
    )


def alert_dismiss(
    *,
    alert_id: int,
    actor_id: int,
    township_ids: set[int] | None,
    reason: str,
    source: str = "web",
) -> Alert:
    """A false alarm: closed with the reason, kept for the record."""
    if not reason.strip():
        raise TransitionNotAllowed(_("Dismissing needs a reason."), code="reason_missing")
    return _alert_change(
        alert_id,
        township_ids,
        Alert.Status.DISMISSED,
        Action.ALERT_DISMISSED,
        actor_id=actor_id,
        source=source,
        allowed_from=Alert.OPEN_STATUSES,
        fields={"dismiss_reason": reason.strip()},
    )


def alert_hand_up(
    *, alert_id: int, actor_id: int, actor_name: str, note: str, source: str = "web"
) -> Alert:
    """A grid officer cannot settle it in the grid: it stays on the duty board with their note,
    raised to at least major so the township sees it among the first. The caller has checked
    that the officer may (command.org.policy.can_settle_in_grid); it holds the lock."""
    note = note.strip()
    if not note:
        raise TransitionNotAllowed(_("Say why the grid cannot settle it."), code="note_missing")
    with transaction.atomic():
        alert = Alert.objects.select_for_update().select_related("township").get(pk=alert_id)
        _require_status(alert)
        if (alert.detail or {}).get("handed_up_by"):
            raise TransitionNotAllowed(
                _("This matter has been handed up to the township already."),
                code="alert_handed_up",
            )
        before = alert.severity
        if SEVERITY_RANK[Severity(before)] > SEVERITY_RANK[Severity.MAJOR]:
            alert.severity = Severity.MAJOR
        alert.detail = {
            **(alert.detail or {}),
            "handed_up_by": actor_name,
            "handed_up_note": note[:500],
        }
        alert.save(update_fields=["severity", "detail"])
        _changed(
            alert.township_id,
            alert.township.code,
            alert.pk,
            Action.ALERT_HANDED_UP,
            source=source,
            actor_id=actor_id,
            before={"severity": before},
            after={"severity": alert.severity, "note": note[:500]},
        )
    return alert


def alert_clear(
    *, township_id: int, dedupe_key: str, reason: str, source: str = "mqtt"
) -> int | None:
    """The condition behind an open alert has ended (value back to normal, device back online):
    the alert is cleared. Returns its id, or None when none was open."""
    with transaction.atomic():
        alert = (
            Alert.objects.select_for_update()
            .select_related("township")
            .filter(
                township_id=township_id,
                dedupe_key=bounded_key(dedupe_key, _DEDUPE_KEY_MAX),
                status__in=Alert.OPEN_STATUSES,
            )
            .first()
        )
        if alert is None:
            return None
        before = alert.status
        alert.status = Alert.Status.CLEARED
        alert.closed_at = clock.now()
        alert.detail = {**(alert.detail or {}), "cleared": reason}
        alert.save(update_fields=["status", "closed_at", "detail"])
        _changed(
            township_id,
            alert.township.code,
            alert.pk,
            Action.ALERT_CLEARED,
            source=source,
            before={"status": before},
            after={"status": alert.status, "reason": reason},
            time=alert.closed_at,
        )
    return alert.pk


def alert_outcomes_apply(outcomes: list, *, source: str = "mqtt") -> tuple[list[int], int]:
    """Raise the specs and clear the clears that rules produced; returns (alert ids, raised)."""
    ids: list[int] = []
    raised = 0
    for outcome in outcomes:
        if isinstance(outcome, AlertSpec):
            alert_id, created = alert_raise(spec=outcome, source=source)
            ids.append(alert_id)
            raised += int(created)
        elif isinstance(outcome, Clear):
            cleared = alert_clear(
                township_id=outcome.township_id,
                dedupe_key=outcome.dedupe_key,
                reason=outcome.reason,
                source=source,
            )
            if cleared:
                ids.append(cleared)
    return ids, raised


def alert_merge(
    *,
    alert_id: int,
    into_id: int,
    actor_id: int,
    township_ids: set[int] | None,
    source: str = "web",
) -> Alert:
    """Fold a duplicate alert into another open one of the same township; its occurrences count
    on the one kept. Returns the alert kept."""
    if alert_id == into_id:
        raise TransitionNotAllowed(_("An alert cannot be merged into itself."), code="same")
    with transaction.atomic():
        locked = {
            a.pk: a
            for a in Alert.objects.select_for_update()
            .select_related("township")
            .filter(pk__in=[alert_id, into_id])
            .order_by("pk")
        }
        if len(locked) != 2 or (
            township_ids is not None
            and not {a.township_id for a in locked.values()} <= township_ids
        ):
            raise Alert.DoesNotExist
        merged, kept = locked[alert_id], locked[into_id]
        if merged.township_id != kept.township_id:
            raise TransitionNotAllowed(
                _("Alerts of different townships cannot be merged."), code="other_township"
            )
        _require_status(merged)
        _require_status(kept)
        now = clock.now()
        merged.status = Alert.Status.MERGED
        merged.closed_at = now
        merged.detail = {**(merged.detail or {}), "merged_into": kept.pk}
        merged.save(update_fields=["status", "closed_at", "detail"])
        kept.count += merged.count
        kept.first_seen = min(kept.first_seen, merged.first_seen)
        kept.last_seen = max(kept.last_seen, merged.last_seen)
        kept.save(update_fields=["count", "first_seen", "last_seen"])
        for alert, action, after in (
            (merged, Action.ALERT_MERGED, {"status": merged.status, "into": kept.pk}),
            (kept, Action.ALERT_ABSORBED, {"count": kept.count, "from": merged.pk}),
        ):
            _changed(
                alert.township_id,
                alert.township.code,
                alert.pk,
                action,
                source=source,
                actor_id=actor_id,
                after=after,
                time=now,
            )
    return kept
