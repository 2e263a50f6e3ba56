"""One batch of MQTT messages → parsed → stored in one transaction → alerts raised.

The caller acknowledges the messages to the broker only after :func:`store_batch` returns, that
is after the commit: a crash before it means the broker redelivers, and the natural keys make
the redelivery change nothing (at-least-once in, exactly-once stored).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple, TypeVar

import psycopg
from django.conf import settings
from django.db import (
    DataError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    connection,
    transaction,
)
from django.db.models import Q
from psycopg.types.json import Jsonb

from command import clock
from command.org.models import Device
from streams.adapters.base import CameraEvent, Detection, Reading, Rejected, short_repr
from streams.adapters.payload_format import Becomes, PayloadFormat
from streams.adapters.registry import FORMATS, UNKNOWN_TOPIC, TopicMatch
from streams.devices import presence_event_id
from streams.handoff import DeviceRef, Stored, stored
from streams.models import DeadLetter

log = logging.getLogger("whistle.ingest")
_T = TypeVar("_T")


class InboundMessage(NamedTuple):
    topic: str
    payload: bytes
    mid: int = 0
    qos: int = 1


@dataclass
class BatchResult:
    messages: int = 0
    events: int = 0
    duplicates: int = 0
    readings: int = 0
    dead_letters: int = 0
    alerts_raised: int = 0
    alert_ids: list[int] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (topic, reason)


class DeviceDirectory:
    """(township code, device code) → device, and (metadata key, township code, name) → the
    township's device whose metadata names it; cached, and the misses of a batch are looked up
    in one query (one per metadata key)."""

    # An administrator's fix (a new device, a device moved to another grid) shows within this.
    TTL = 60.0

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str], DeviceRef | None] = {}
        self._named: dict[tuple[str, str, str], DeviceRef | str] = {}
        self._lock = threading.Lock()
        self._loaded_at = time.monotonic()

    def _expire(self) -> None:
        """Under the lock: drop both maps once they are older than TTL."""
        if time.monotonic() - self._loaded_at > self.TTL:
            self._cache.clear()
            self._named.clear()
            self._loaded_at = time.monotonic()

    def resolve(self, keys: set[tuple[str, str]]) -> dict[tuple[str, str], DeviceRef | None]:
        with self._lock:
            self._expire()
            missing = [key for key in keys if key not in self._cache]
        if missing:
            found: dict[tuple[str, str], DeviceRef | None] = dict.fromkeys(missing)
            # Each township numbers its own devices (every township of a district has a
            # cam-01): the codes are looked up within their township, or a district's batch
            # would read each code of every township.
            by_township: dict[str, set[str]] = {}
            for township_code, code in missing:
                by_township.setdefault(township_code, set()).add(code)
            wanted = Q()
            for township_code, codes in by_township.items():
                wanted |= Q(township__code=township_code, code__in=codes)
            rows = Device.objects.filter(wanted).values_list(
                "id", "township_id", "grid_id", "kind", "code", "township__code"
            )
            for device_id, township_id, grid_id, kind, code, township_code in rows:
                key = (township_code, code)
                if key in found:
                    found[key] = DeviceRef(device_id, township_id, grid_id, kind, code)
            with self._lock:
                self._cache.update(found)
        with self._lock:
            return {key: self._cache.get(key) for key in keys}

    def resolve_named(
        self, keys: set[tuple[str, str, str]]
    ) -> dict[tuple[str, str, str], DeviceRef | str]:
        """(metadata key, township code, name) → that township's device whose
        ``metadata[key]`` is the name (a Frigate camera's name under ``frigate_camera``), or why
        there is none. A name is looked up only in the township its topic names, so one
        township's NVR cannot raise alerts in another's."""
        with self._lock:
            self._expire()
            missing = [key for key in keys if key not in self._named]
        if missing:
            found: dict[tuple[str, str, str], DeviceRef | str] = {
                (field, township, name): f"no device of {township} has {field} {short_repr(name)}"
                for field, township, name in missing
            }
            for field in {field for field, _, _ in missing}:
                matches: dict[tuple[str, str, str], list[DeviceRef]] = {}
                rows = Device.objects.filter(
                    township__code__in={t for f, t, _ in missing if f == field},
                    **{f"metadata__{field}__in": {n for f, _, n in missing if f == field}},
                ).values_list(
                    "id",
                    "township_id",
                    "grid_id",
                    "kind",
                    "code",
                    "township__code",
                    f"metadata__{field}",
                )
                for device_id, township_id, grid_id, kind, code, township, name in rows:
                    if (field, township, name) in found:
                        matches.setdefault((field, township, name), []).append(
                            DeviceRef(device_id, township_id, grid_id, kind, code)
                        )
                for key, refs in matches.items():
                    found[key] = (
                        refs[0]
                        if len(refs) == 1
                        else f"{field} {short_repr(key[2])} is set on {len(refs)} devices"
                    )
            with self._lock:
                self._named.update(found)
        with self._lock:
            return {key: self._named[key] for key in keys}

    def forget(self) -> None:
        with self._lock:
            self._cache.clear()
            self._named.clear()
        _presence.forget()


directory = DeviceDirectory()


class PresenceThrottle:
    """Which devices' last-seen is worth writing: a change of online state always, a refresh
    of last-seen at most every ``REFRESH`` seconds. At thousands of messages a second from the
    same devices, rewriting their rows every batch costs as much as storing the readings, and
    heartbeat timeouts are minutes long."""

    REFRESH = 10.0

    def __init__(self) -> None:
        self._written: dict[int, tuple[float, bool]] = {}
        self._online: set[int] = set()
        self._quiet_until = 0.0
        self._lock = threading.Lock()

    def changes(self, seen: dict[int, tuple[datetime, bool]]) -> dict[int, tuple[datetime, bool]]:
        now = time.monotonic()
        due: dict[int, tuple[datetime, bool]] = {}
        with self._lock:
            if (
                now < self._quiet_until
                and seen.keys() <= self._online
                and all(online for _, online in seen.values())
            ):
                # The common case at high rate: known, online devices written a moment ago.
                return due
            self._quiet_until = now + self.REFRESH / 2
            for device_id, (moment, online) in seen.items():
                last = self._written.get(device_id)
                if last is None or last[1] != online or now - last[0] >= self.REFRESH:
                    due[device_id] = (moment, online)
                    self._written[device_id] = (now, online)
                    if online:
                        self._online.add(device_id)
                    else:
                        self._online.discard(device_id)
        return due

    def forget(self) -> None:
        with self._lock:
            self._written.clear()
            self._online.clear()
            self._quiet_until = 0.0


_presence = PresenceThrottle()

_INSERT_EVENTS = """
INSERT INTO streams_deviceevent
    (device_id, time, event_id, township_id, label, score, zones, payload, received_at)
SELECT * FROM unnest(%s::bigint[], %s::timestamptz[], %s::text[], %s::bigint[], %s::text[],
                     %s::float8[], %s::jsonb[], %s::jsonb[], %s::timestamptz[])
ON CONFLICT DO NOTHING
RETURNING device_id, time, event_id
"""

# Readings are COPYed, PostgreSQL's fastest way in. A redelivered message (the same device,
# metric and time) must change nothing: when a batch holds one, it goes through a per-connection
# staging table and one INSERT … ON CONFLICT DO NOTHING instead (see _copy_readings).
_STAGING = """
CREATE TEMP TABLE IF NOT EXISTS ingest_reading
    (device_id bigint, metric text, time timestamptz, value float8) ON COMMIT DELETE ROWS
"""
_COPY_READINGS = "COPY ingest_reading (device_id, metric, time, value) FROM STDIN (FORMAT BINARY)"
_COPY_DIRECT = "COPY streams_reading (device_id, metric, time, value) FROM STDIN (FORMAT BINARY)"
_MERGE_READINGS = """
INSERT INTO streams_reading (device_id, metric, time, value)
SELECT device_id, metric, time, value FROM ingest_reading
ON CONFLICT DO NOTHING
"""

_TOUCH_DEVICES = """
UPDATE org_device AS d
SET last_seen = GREATEST(d.last_seen, s.seen), online = s.online
FROM unnest(%s::bigint[], %s::timestamptz[], %s::boolean[]) AS s(id, seen, online)
WHERE d.id = s.id
"""


def store_batch(
    messages: Sequence[InboundMessage], *, now: datetime | None = None, keep_dead: bool = True
) -> BatchResult:
    """Parse and store ``messages``; bad ones become dead letters in the same transaction
    (or, with ``keep_dead=False``, are only reported in ``result.rejected``)."""
    return write_batch(prepare_batch(messages, now=now), keep_dead=keep_dead)


@dataclass
class PreparedBatch:
    """A batch parsed and checked, ready to write: the part of ingest that needs no database
    (but for looking up devices it has not seen yet)."""

    messages: Sequence[InboundMessage]
    now: datetime
    dead: list[DeadLetter]
    # (device, event, whether it may raise an alert)
    events: list[tuple[DeviceRef, CameraEvent, bool]]
    readings: list[tuple[DeviceRef, Reading]]
    seen: dict[int, tuple[datetime, bool]]


def prepare_batch(
    messages: Sequence[InboundMessage], *, now: datetime | None = None
) -> PreparedBatch:
    """Each message's format is looked up by its topic in streams.adapters.registry; the
    format says how to parse it, how to find its device and what it is stored as."""
    now = now or clock.now()
    router = FORMATS.router()
    dead: list[DeadLetter] = []
    matched: list[tuple[InboundMessage, TopicMatch]] = []
    for message in messages:
        match = router.match(message.topic)
        if match is None:
            dead.append(_dead(message, UNKNOWN_TOPIC, now))
        else:
            matched.append((message, match))

    # A payload that names its device (an NVR's camera name) is parsed before the device is known.
    named: dict[int, tuple[tuple[str, str, str], Detection]] = {}
    for index, (message, match) in enumerate(matched):
        payload_format = match.format
        if not payload_format.named:
            continue
        lookup = payload_format.device
        township = match.township or (
            lookup.township_setting and getattr(settings, lookup.township_setting, "")
        )
        if not township:
            dead.append(_dead(message, lookup.without_township, now))
            continue
        detection = _parsed(payload_format.parse, message, now)
        if isinstance(detection, Rejected):
            dead.append(_dead(message, detection.reason, now))
        elif detection is None:
            continue  # valid, nothing to store
        elif not isinstance(detection, Detection):
            dead.append(_dead(message, _broken(payload_format, detection), now))
        else:
            named[index] = ((lookup.metadata_key, township, detection.camera), detection)
    refs = directory.resolve({(m.township, m.device) for _, m in matched if not m.format.named})
    by_name = directory.resolve_named({key for key, _ in named.values()})
    # (device, event, whether it may raise an alert)
    events: list[tuple[DeviceRef, CameraEvent, bool]] = []
    readings: list[tuple[DeviceRef, Reading]] = []
    seen: dict[int, tuple[datetime, bool]] = {}
    for index, (message, match) in enumerate(matched):
        payload_format = match.format
        if payload_format.named:
            found = named.get(index)
            if found is None:
                continue  # dead-lettered or nothing to store, above
            key, detection = found
            camera = by_name[key]
            if isinstance(camera, str):
                dead.append(_dead(message, camera, now))
                continue
            events.append((camera, detection.event, detection.raise_alert))
            seen[camera.id] = (now, True)
            continue
        ref = refs.get((match.township, match.device))
        if ref is None:
            dead.append(_dead(message, f"unknown device {match.township}/{match.device}", now))
            continue
        parsed = _parsed(payload_format.parse, message, now)
        if isinstance(parsed, Rejected):
            dead.append(_dead(message, parsed.reason, now))
            continue
        if parsed is None:
            continue  # valid, nothing to store
        if not isinstance(parsed, payload_format.returns):
            dead.append(_dead(message, _broken(payload_format, parsed), now))
            continue
        online = True
        becomes = payload_format.becomes
        if becomes is Becomes.READINGS:
            for reading in parsed:
                readings.append((ref, reading))
        elif becomes is Becomes.EVENTS:
            events.append((ref, parsed, True))
        else:
            online = parsed.online
            label = "online" if online else "offline"
            # Presence is kept as an event too, so rules see a gateway's last will like a
            # camera's detection.
            events.append(
                (
                    ref,
                    CameraEvent(
                        event_id=presence_event_id(label, parsed.time),
                        time=parsed.time,
                        label=label,
                        score=None,
                        zones=(),
                        payload={"reason": "status message"},
                    ),
                    False,
                )
            )
        seen[ref.id] = (now, online)

    return PreparedBatch(messages, now, dead, events, readings, seen)


def _broken(payload_format: PayloadFormat, parsed: object) -> str:
    """A parser that returned something it does not declare: its bug, kept as a dead letter
    (as when one raises) so the batch goes on."""
    log.error("adapter of %s returned a %s", payload_format, type(parsed).__name__)
    return f"the parser returned a {type(parsed).__name__} this format does not store"


def _parsed(parse: Callable[[bytes, datetime], _T], message: InboundMessage, now: datetime) -> _T:
    """The adapters never raise by contract; should one break it on some input, that message
    is a dead letter with the reason, and the batch around it goes on."""
    try:
        return parse(message.payload, now)
    except Exception as exc:
        log.exception("adapter %s raised on a message of %s", parse.__name__, message.topic)
        return Rejected(f"the parser failed on this payload ({type(exc).__name__})")  # type: ignore[return-value]


def write_batch(prepared: PreparedBatch, *, keep_dead: bool = True) -> BatchResult:
    """Store a prepared batch in one transaction and raise its alerts."""
    now, dead, events, readings = prepared.now, prepared.dead, prepared.events, prepared.readings
    result = BatchResult(messages=len(prepared.messages))
    result.rejected = [(letter.topic, letter.reason) for letter in dead]
    with transaction.atomic():
        if dead and keep_dead:
            DeadLetter.objects.bulk_create(dead)
        result.dead_letters = len(dead)
        with connection.cursor() as cursor:
            new_keys: set[tuple[int, datetime, str]] = set()
            if events:
                cursor.execute(
                    _INSERT_EVENTS,
                    [
                        [ref.id for ref, *_ in events],
                        [event.time for _, event, _ in events],
                        [event.event_id for _, event, _ in events],
                        [ref.township_id for ref, *_ in events],
                        [event.label for _, event, _ in events],
                        [event.score for _, event, _ in events],
                        [Jsonb(list(event.zones)) for _, event, _ in events],
                        [Jsonb(event.payload) for _, event, _ in events],
                        [now] * len(events),
                    ],
                )
                new_keys = {(row[0], row[1], row[2]) for row in cursor.fetchall()}
            if readings:
                result.readings = _copy_readings(cursor.cursor, readings)
            seen = _presence.changes(prepared.seen)
            if seen:
                ids = sorted(seen)
                cursor.execute(
                    _TOUCH_DEVICES,
                    [ids, [seen[i][0] for i in ids], [seen[i][1] for i in ids]],
                )
        result.events = len(new_keys)
        result.duplicates = len(events) - len(new_keys)
        raised = stored(
            Stored(
                # a redelivered event's alert was raised the first time
                events=[
                    (ref, event, may_alert)
                    for ref, event, may_alert in events
                    if (ref.id, event.time, event.event_id) in new_keys
                ],
                readings=readings,
                source="mqtt",
            )
        )
        result.alert_ids += raised.alert_ids
        result.alerts_raised += raised.new
    return result


def _copy_readings(cursor: psycopg.Cursor, readings: list[tuple[DeviceRef, Reading]]) -> int:
    """COPY the readings in; returns how many were new.

    Optimistic: straight into the table, which is about twice as fast as going through the
    staging table. A redelivered reading breaks the primary key; then (rarely: after a crash or
    a reconnect) the savepoint is rolled back and the batch is merged through the staging
    table, where ``ON CONFLICT DO NOTHING`` skips what is already stored.
    """
    try:
        with transaction.atomic():
            _copy(cursor, _COPY_DIRECT, readings)
        return len(readings)
    except psycopg.errors.UniqueViolation:
        pass
    cursor.execute(_STAGING)
    _copy(cursor, _COPY_READINGS, readings)
    cursor.execute(_MERGE_READINGS)
    return max(cursor.rowcount, 0)


def _copy(
    cursor: psycopg.Cursor, statement: str, readings: list[tuple[DeviceRef, Reading]]
) -> None:
    with cursor.copy(statement) as copy:
        copy.set_types(["int8", "text", "timestamptz", "float8"])
        write = copy.write_row
        for ref, reading in readings:
            write((ref.id, reading.metric, reading.time, reading.value))


def _dead(message: InboundMessage, reason: str, now: datetime) -> DeadLetter:
    log.warning("dead letter on %s: %s", message.topic, reason)
    return DeadLetter(
        topic=storable_text(message.topic, 512),
        payload=bytes(message.payload),
        reason=storable_text(reason, 500),
        received_at=now,
    )


def storable_text(text: str, limit: int) -> str:
    """``text`` as PostgreSQL can keep it in a column of ``limit`` characters: no NUL, no lone
    surrogate (both come from the sender's bytes and would make the dead letter itself fail)."""
    if not text.isascii():
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text.replace("\x00", "\ufffd")[:limit]


def dead_letters_replay(*, ids: Sequence[int]) -> tuple[int, int]:
    """Feed dead letters through ingest again (after an administrator fixed the cause).

    Each letter that now stores is marked replayed; one that still fails keeps its row with the
    new reason. Returns ``(replayed, still_failing)``.
    """
    directory.forget()
    replayed = failing = 0
    for letter in DeadLetter.objects.filter(pk__in=ids, replayed_at__isnull=True).order_by("pk"):
        message = InboundMessage(letter.topic, bytes(letter.payload))
        with transaction.atomic():
            try:
                with transaction.atomic():
                    result = store_batch([message], keep_dead=False)
            except Exception as exc:
                if _connection_lost(exc):
                    raise
                reason = f"{type(exc).__name__}: {_first_line(exc)}"
                result = BatchResult(messages=1, rejected=[(letter.topic, reason)])
            if result.rejected:
                letter.reason = storable_text(result.rejected[0][1], 500)
                letter.save(update_fields=["reason"])
                failing += 1
            else:
                letter.replayed_at = clock.now()
                letter.save(update_fields=["replayed_at"])
                replayed += 1
    return replayed, failing


def dead_letters_expire(*, batch: int = 5_000) -> int:
    """Delete dead letters older than ``DEAD_LETTER_RETENTION_DAYS``: they hold raw payloads
    from outside, which are kept for diagnosis and replay, not for ever. Returns how many."""
    cutoff = clock.now() - timedelta(days=settings.DEAD_LETTER_RETENTION_DAYS)
    deleted = 0
    while True:
        # In slices, so a backlog of millions never holds one long transaction.
        ids = list(
            DeadLetter.objects.filter(received_at__lt=cutoff).values_list("pk", flat=True)[:batch]
        )
        if not ids:
            return deleted
        deleted += DeadLetter.objects.filter(pk__in=ids).delete()[0]


def store_batch_isolating(messages: Sequence[InboundMessage]) -> BatchResult:
    """Like :func:`store_batch`, but a message the database refuses (a constraint, a value it
    cannot hold) becomes a dead letter instead of failing its whole batch forever.

    Connection failures still raise: the caller retries those, with nothing acked.
    """
    return write_batch_isolating(prepare_batch(messages))


def write_batch_isolating(prepared: PreparedBatch) -> BatchResult:
    """:func:`write_batch`, bisecting a batch that fails down to the message(s) that make it
    fail, which become dead letters; the rest is stored.

    Only a lost database connection (or a transient conflict on a single message) is raised for
    the caller to retry with nothing acked: anything else a message can provoke (a value the
    database refuses, a bug that one odd payload reaches) must not stop ingest for every
    township. A message that fails alone is kept as a dead letter with the reason and can be
    replayed once the cause is fixed.
    """
    try:
        return write_batch(prepared)
    except Exception as exc:
        if _connection_lost(exc):
            raise
        messages = prepared.messages
        if len(messages) == 1:
            if isinstance(exc, _TRANSIENT):
                raise  # a deadlock or a lock timeout says nothing about the message
            return _dead_alone(messages[0], exc, prepared.now)
        log.warning(
            "a batch of %d failed (%s: %s); isolating the message(s) that fail",
            len(messages),
            type(exc).__name__,
            _first_line(exc),
        )
        # Halves that store go through in one transaction each; the bad one is isolated.
        middle = len(messages) // 2
        left = write_batch_isolating(prepare_batch(messages[:middle], now=prepared.now))
        right = write_batch_isolating(prepare_batch(messages[middle:], now=prepared.now))
        return _merge(left, right)


# Conflicts between concurrent transactions: retried, never blamed on a message.
_TRANSIENT = (
    psycopg.errors.DeadlockDetected,
    psycopg.errors.SerializationFailure,
    psycopg.errors.LockNotAvailable,
)


def _connection_lost(exc: BaseException) -> bool:
    """Whether ``exc`` means the database went away (retry), not that a message is bad."""
    if isinstance(exc, InterfaceError):
        return True
    if isinstance(exc, OperationalError | psycopg.OperationalError):
        raw = connection.connection
        if raw is None or raw.closed or getattr(raw, "broken", False):
            return True
        cause = exc.__cause__ if isinstance(exc, OperationalError) else exc
        # The server going down answers with these before the socket closes.
        return isinstance(
            cause,
            psycopg.errors.AdminShutdown
            | psycopg.errors.CrashShutdown
            | psycopg.errors.CannotConnectNow
            | psycopg.errors.ConnectionException,
        )
    return False


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _dead_alone(message: InboundMessage, exc: BaseException, now: datetime) -> BatchResult:
    if isinstance(exc, DataError | IntegrityError):
        reason = f"database refused the message: {_first_line(exc)}"
    else:
        reason = f"storing this message failed: {type(exc).__name__}: {_first_line(exc)}"
        log.error("message on %s failed alone; kept as a dead letter", message.topic, exc_info=exc)
    letter = _dead(message, reason, now)
    letter.save()
    return BatchResult(messages=1, dead_letters=1, rejected=[(letter.topic, letter.reason)])


def _merge(a: BatchResult, b: BatchResult) -> BatchResult:
    return BatchResult(
        messages=a.messages + b.messages,
        events=a.events + b.events,
        duplicates=a.duplicates + b.duplicates,
        readings=a.readings + b.readings,
        dead_letters=a.dead_letters + b.dead_letters,
        alerts_raised=a.alerts_raised + b.alerts_raised,
        alert_ids=a.alert_ids + b.alert_ids,
        rejected=a.rejected + b.rejected,
    )
