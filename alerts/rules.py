"""From stored events and readings to alerts, by each township's rules (admin: alert rules).

Camera detections match label, score, zone and a local time window; sensor readings must stay
past a threshold for a while, and clear only once back past a second value (hysteresis), with
the timing kept in the database so it survives a restart; a device going offline raises an
alert and coming back clears it. A township without camera rules falls back to the built-in
label table below, so a new installation is not silent.
"""

from __future__ import annotations

import threading
import time as monotonic_time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import time as clock_time
from typing import Any

from alerts.models import SEVERITY_RANK, AlertRule, RuleState, Severity
from alerts.titles import stored_title
from command.org.models import township_zone

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
    detail = {
        "label": label,
        "score": score,
        "zones": list(zones),
        "event_id": event_id,
        "device_code": device_code,
    }
    return AlertSpec(
        township_id=township_id,
        category_code=category_code,
        severity=severity,
        source="camera",
        title=stored_title(detail, device_code=device_code),
        # One open alert per camera and category: a stream of detections of the same thing
        # counts up on one row instead of flooding the queue.
        dedupe_key=f"camera:{device_id}:{category_code}",
        time=time,
        device_id=device_id,
        grid_id=grid_id,
        detail=detail,
    )


def rule_facts(rule: AlertRule, device_code: str) -> dict[str, Any]:
    """What an alert keeps of the rule that raised it, for its title in either language: the
    rule's names as they were then, so renaming a rule does not rewrite history."""
    return {
        "rule": rule.pk,
        "rule_name": rule.name,
        "rule_name_en": rule.name_en,
        "device_code": device_code,
    }


# --- the township's rules, cached briefly ---------------------------------------------------


class RuleBook:
    """Enabled rules per township, re-read every ``TTL`` seconds so admin edits take effect."""

    TTL = 30.0

    def __init__(self) -> None:
        self._rules: dict[int, tuple[float, list[AlertRule], str]] = {}
        self._lock = threading.Lock()

    def for_township(self, township_id: int) -> tuple[list[AlertRule], str]:
        now = monotonic_time.monotonic()
        with self._lock:
            cached = self._rules.get(township_id)
        if cached and now - cached[0] < self.TTL:
            return cached[1], cached[2]
        rules = list(
            AlertRule.objects.filter(township_id=township_id, enabled=True)
            .select_related("category", "township")
            .order_by("pk")
        )
        # Most severe first: when two camera rules match, the graver one speaks.
        rules.sort(key=lambda r: SEVERITY_RANK.get(r.severity, 9))
        zone = rules[0].township.time_zone if rules else "Asia/Shanghai"
        with self._lock:
            self._rules[township_id] = (now, rules, zone)
        return rules, zone

    def forget(self) -> None:
        with self._lock:
            self._rules.clear()


rulebook = RuleBook()


def in_window(
    moment: datetime, start: clock_time | None, end: clock_time | None, zone: str
) -> bool:
    """Whether ``moment`` falls in the local daily window [start, end); the window spans
    midnight when end <= start (22:00-06:00: a closed mine at night)."""
    if start is None or end is None:
        return True
    local = moment.astimezone(township_zone(zone)).time()
    if start < end:
        return start <= local < end
    return local >= start or local < end


def camera_rule_alert(
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
    snapshot: str | None = None,
) -> AlertSpec | None:
    rules, zone = rulebook.for_township(township_id)
    camera_rules = [r for r in rules if r.kind == AlertRule.Kind.CAMERA_LABEL]
    if not camera_rules:
        return camera_event_alert(
            township_id=township_id,
            device_id=device_id,
            device_code=device_code,
            grid_id=grid_id,
            event_id=event_id,
            label=label,
            score=score,
            zones=zones,
            time=time,
        )
    for rule in camera_rules:
        if rule.device_id and rule.device_id != device_id:
            continue
        if label not in rule.labels:
            continue
        if rule.min_score is not None and (score is None or score < rule.min_score):
            continue
        if rule.zones and not set(rule.zones) & set(zones):
            continue
        if not in_window(time, rule.active_from, rule.active_until, zone):
            continue
        detail = {
            "label": label,
            "score": score,
            "zones": list(zones),
            "event_id": event_id,
            **rule_facts(rule, device_code),
            **({"snapshot": snapshot} if snapshot else {}),
        }
        return AlertSpec(
            township_id=township_id,
            category_code=rule.category.code,
            severity=rule.severity,
            source="camera",
            title=stored_title(detail, device_code=device_code),
            dedupe_key=f"rule:{rule.pk}:{device_id}",
            time=time,
            device_id=device_id,
            grid_id=grid_id,
            detail=detail,
        )
    return None


@dataclass(frozen=True, slots=True)
class Clear:
    """An open alert whose condition has ended: it is auto-cleared."""

    township_id: int
    dedupe_key: str
    time: datetime
    reason: str


def offline_rule_alerts(
    *,
    township_id: int,
    device_id: int,
    device_code: str,
    device_kind: str,
    grid_id: int | None,
    online: bool,
    time: datetime,
) -> list[AlertSpec | Clear]:
    rules, _zone = rulebook.for_township(township_id)
    outcomes: list[AlertSpec | Clear] = []
    for rule in rules:
        if rule.kind != AlertRule.Kind.DEVICE_OFFLINE or device_kind not in rule.device_kinds:
            continue
        if rule.device_id and rule.device_id != device_id:
            continue
        key = f"rule:{rule.pk}:{device_id}"
        if online:
            outcomes.append(Clear(township_id, key, time, "device back online"))
        else:
            detail = {"label": "offline", **rule_facts(rule, device_code)}
            outcomes.append(
                AlertSpec(
                    township_id=township_id,
                    category_code=rule.category.code,
                    severity=rule.severity,
                    source="device",
                    title=stored_title(detail, device_code=device_code),
                    dedupe_key=key,
                    time=time,
                    device_id=device_id,
                    grid_id=grid_id,
                    detail=detail,
                )
            )
    return outcomes


ThresholdReading = tuple[int, str, int | None, str, datetime, float]
SENSOR_KINDS = (AlertRule.Kind.THRESHOLD, AlertRule.Kind.RATE_OF_CHANGE)


def _rate(state: RuleState, moment: datetime, value: float, per_seconds: int) -> float | None:
    """The change since the previous reading, scaled to ``per_seconds``."""
    if state.last_value is None or state.updated_at is None:
        return None
    elapsed = (moment - state.updated_at).total_seconds()
    if elapsed <= 0:
        return None
    return (value - state.last_value) * per_seconds / elapsed


def threshold_outcomes(
    readings: Mapping[int, Iterable[ThresholdReading]],
) -> list[AlertSpec | Clear]:
    """Step each threshold rule's per-device state through the batch's readings, in time order.

    ``readings``: per township id, (device id, device code, grid id, metric, time, value). Runs
    inside the batch's transaction: the state rows are locked, updated and committed with the
    readings. The states of every township of the batch are read with one query and written
    with one: a district's batch holds readings of thirty townships, and two queries per
    township made ingest fall behind 3,000 readings a second (docs/benchmarks.md, District).
    """
    work: list[tuple[int, dict[str, list[AlertRule]], list[ThresholdReading]]] = []
    for township_id, township_readings in readings.items():
        rules, _zone = rulebook.for_township(township_id)
        by_metric: dict[str, list[AlertRule]] = {}
        for rule in rules:
            if rule.kind in SENSOR_KINDS:
                by_metric.setdefault(rule.metric, []).append(rule)
        if not by_metric:
            continue
        relevant = sorted((r for r in township_readings if r[3] in by_metric), key=lambda r: r[4])
        if relevant:
            work.append((township_id, by_metric, relevant))
    if not work:
        return []
    rule_ids = {rule.pk for _t, by_metric, _r in work for rs in by_metric.values() for rule in rs}
    device_ids = {r[0] for _t, _m, relevant in work for r in relevant}
    states = {
        (s.rule_id, s.device_id): s
        # In one order, so two ingest workers locking overlapping states wait, not deadlock.
        for s in RuleState.objects.select_for_update()
        .filter(rule_id__in=rule_ids, device_id__in=device_ids)
        .order_by("pk")
    }
    outcomes: list[AlertSpec | Clear] = []
    touched: dict[tuple[int, int], RuleState] = {}
    for township_id, by_metric, relevant in work:
        _step_township(township_id, by_metric, relevant, states, outcomes, touched)
    _write_states(touched)
    return outcomes


def _step_township(
    township_id: int,
    by_metric: dict[str, list[AlertRule]],
    relevant: list[ThresholdReading],
    states: dict[tuple[int, int], RuleState],
    outcomes: list[AlertSpec | Clear],
    touched: dict[tuple[int, int], RuleState],
) -> None:
    for device_id, device_code, grid_id, metric, moment, value in relevant:
        for rule in by_metric[metric]:
            if rule.device_id and rule.device_id != device_id:
                continue
            state = states.get((rule.pk, device_id))
            if state is None:
                state = RuleState(rule=rule, device_id=device_id)
                states[(rule.pk, device_id)] = state
            above = rule.operator == AlertRule.Operator.ABOVE
            key = f"rule:{rule.pk}:{device_id}"
            if rule.kind == AlertRule.Kind.RATE_OF_CHANGE:
                rate = _rate(state, moment, value, rule.per_seconds)
                state.last_value = value
                state.updated_at = moment
                touched[(rule.pk, device_id)] = state
                if rate is None:
                    continue  # the first reading, or one out of order: nothing to compare
                signed = rate if above else -rate
                calm = rule.clear_at if rule.clear_at is not None else rule.threshold
                if signed > rule.threshold and not state.active:
                    state.active = True
                    detail = {
                        "metric": metric,
                        "value": value,
                        "rate": rate,
                        "per_seconds": rule.per_seconds,
                        **rule_facts(rule, device_code),
                    }
                    outcomes.append(
                        AlertSpec(
                            township_id=township_id,
                            category_code=rule.category.code,
                            severity=rule.severity,
                            source="sensor",
                            title=stored_title(detail, device_code=device_code),
                            dedupe_key=key,
                            time=moment,
                            device_id=device_id,
                            grid_id=grid_id,
                            detail=detail,
                        )
                    )
                elif signed <= calm and state.active:
                    state.active = False
                    outcomes.append(Clear(township_id, key, moment, f"{metric} steady again"))
                continue
            clear_at = rule.clear_at if rule.clear_at is not None else rule.threshold
            breached = value > rule.threshold if above else value < rule.threshold
            cleared = value <= clear_at if above else value >= clear_at
            before = (state.breached_since, state.active)
            if breached:
                state.breached_since = state.breached_since or moment
                held = moment - state.breached_since >= timedelta(seconds=rule.hold_seconds)
                if held and not state.active:
                    state.active = True
                    detail = {
                        "metric": metric,
                        "value": value,
                        "threshold": rule.threshold,
                        **rule_facts(rule, device_code),
                    }
                    outcomes.append(
                        AlertSpec(
                            township_id=township_id,
                            category_code=rule.category.code,
                            severity=rule.severity,
                            source="sensor",
                            title=stored_title(detail, device_code=device_code),
                            dedupe_key=key,
                            time=moment,
                            device_id=device_id,
                            grid_id=grid_id,
                            detail=detail,
                        )
                    )
            else:
                # Back inside the threshold: the duration starts over; the alert stays until
                # the value is past the clearing point too.
                state.breached_since = None
                if cleared and state.active:
                    state.active = False
                    outcomes.append(Clear(township_id, key, moment, f"{metric} back to {value:g}"))
            state.last_value = value
            state.updated_at = moment
            # A threshold rule's state is where it stands (timing a breach, holding an alert),
            # not the last value: a reading that leaves it where it was writes nothing. Nearly
            # every reading is such a one, and writing each cost ingest ~1,100 upserts a
            # second at district load (docs/benchmarks.md, District).
            if (state.breached_since, state.active) != before:
                touched[(rule.pk, device_id)] = state


def _write_states(touched: dict[tuple[int, int], RuleState]) -> None:
    if touched:
        # One statement for the batch's states: one UPDATE per state was a third of ingest's
        # time under 2,000 readings a second.
        RuleState.objects.bulk_create(
            [
                RuleState(
                    rule_id=rule_id,
                    device_id=device_id,
                    breached_since=state.breached_since,
                    active=state.active,
                    last_value=state.last_value,
                    updated_at=state.updated_at,
                )
                for (rule_id, device_id), state in touched.items()
            ],
            update_conflicts=True,
            unique_fields=["rule", "device"],
            update_fields=["breached_since", "active", "last_value", "updated_at"],
        )
