"""The alert rules run on what streams stored: camera events, presence changes and readings.

Registered with ``streams.handoff.on_stored`` when the app is ready; runs inside the
transaction that stored the batch, so the rows and the alerts they raise commit together.
"""

from __future__ import annotations

from alerts.rules import (
    SENSOR_KINDS,
    camera_rule_alert,
    offline_rule_alerts,
    rulebook,
    threshold_outcomes,
)
from alerts.services import alert_outcomes_apply
from streams.adapters.base import Reading
from streams.handoff import DeviceRef, Raised, Stored


def alerts_from_stored(batch: Stored) -> Raised:
    outcomes: list = []
    for ref, event, may_alert in batch.events:
        if event.label in ("online", "offline") and not may_alert:
            outcomes += offline_rule_alerts(
                township_id=ref.township_id,
                device_id=ref.id,
                device_code=ref.code,
                device_kind=ref.kind,
                grid_id=ref.grid_id,
                online=event.label == "online",
                time=event.time,
            )
            continue
        if not may_alert:
            continue
        spec = camera_rule_alert(
            township_id=ref.township_id,
            device_id=ref.id,
            device_code=ref.code,
            grid_id=ref.grid_id,
            event_id=event.event_id,
            label=event.label,
            score=event.score,
            zones=event.zones,
            time=event.time,
            snapshot=_snapshot_url(event.payload),
        )
        if spec is not None:
            outcomes.append(spec)
    if batch.readings:
        outcomes += _threshold_outcomes(batch.readings)
    if not outcomes:
        return Raised()
    alert_ids, new = alert_outcomes_apply(outcomes, source=batch.source)
    return Raised(alert_ids=alert_ids, new=new)


def _snapshot_url(payload: object) -> str | None:
    snapshot = payload.get("snapshot") if isinstance(payload, dict) else None
    if isinstance(snapshot, str) and snapshot.startswith(("http://", "https://")):
        return snapshot[:500]
    return None


def _threshold_outcomes(readings: list[tuple[DeviceRef, Reading]]) -> list:
    """Only readings of metrics some township rule watches are stepped through the rules."""
    watched: dict[int, set[str]] = {}
    for township_id in {ref.township_id for ref, _ in readings}:
        rules, _zone = rulebook.for_township(township_id)
        metrics = {r.metric for r in rules if r.kind in SENSOR_KINDS}
        if metrics:
            watched[township_id] = metrics
    by_township: dict[int, list] = {township_id: [] for township_id in watched}
    for ref, reading in readings:
        metrics = watched.get(ref.township_id)
        if metrics and reading.metric in metrics:
            by_township[ref.township_id].append(
                (ref.id, ref.code, ref.grid_id, reading.metric, reading.time, reading.value)
            )
    # Every township of the batch at once: one read and one write of the rules' states.
    return threshold_outcomes({t: rows for t, rows in by_township.items() if rows})
