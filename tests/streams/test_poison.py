"""Ingest never blocks: any bytes on any subscribed topic are stored or dead-lettered with a
reason, the good messages around them are stored, and nothing but a lost database connection is
retried (issue: one message used to stop ingest for every township, restart after restart)."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerts.models import Alert
from command import clock
from streams.adapters import frigate, native
from streams.adapters.base import Rejected
from streams.ingest import InboundMessage, directory, store_batch_isolating
from streams.models import DeadLetter, DeviceEvent, Reading

CAMERA = "whistle/qingshui/camera/cam-quarry/event"
SENSOR = "whistle/qingshui/sensor/wl-01/telemetry"
GATEWAY = "whistle/qingshui/gateway/gw-01/status"
FRIGATE = "frigate/qingshui/events"
FRIGATE_REVIEWS = "frigate/qingshui/reviews"
HUGE = "1" + "0" * 400  # an integer no float holds
DEEP = "[" * 5000 + "]" * 5000


def good_reading(value: float) -> InboundMessage:
    ts = int(time.time() * 1000) - int(value * 1000) % 50_000
    return InboundMessage(SENSOR, json.dumps({"ts": ts, "values": {"rainfall": value}}).encode())


def good_event() -> tuple[str, InboundMessage]:
    event_id = f"ok-{uuid.uuid4().hex[:12]}"
    payload = json.dumps({"id": event_id, "label": "person", "score": 0.5}).encode()
    return event_id, InboundMessage(CAMERA, payload)


def camera(extra: str) -> bytes:
    """A camera event's JSON with ``extra`` written into it as raw text (so it can hold what
    json.dumps would never write)."""
    return f'{{"id": "evt-{uuid.uuid4().hex[:8]}", "label": "person", {extra}}}'.encode()


def frigate_new(**after: object) -> bytes:
    start = time.time() - 5
    base = {"id": f"{start:.6f}-p", "camera": "quarry", "label": "person", "start_time": start}
    return json.dumps({"type": "new", "after": {**base, **after}}).encode()


# (name, topic, payload, what the dead letter's reason says)
POISON = [
    ("deep JSON on a camera topic", CAMERA, DEEP.encode(), "nested too deeply"),
    ("deep JSON on a sensor topic", SENSOR, DEEP.encode(), "nested too deeply"),
    ("deep JSON on Frigate's topic", FRIGATE, DEEP.encode(), "nested too deeply"),
    ("deep but decodable payload", CAMERA, camera('"x": ' + "[" * 300 + "]" * 300), "deeper"),
    ("400-digit value", SENSOR, f'{{"values": {{"rainfall": {HUGE}}}}}'.encode(), "finite"),
    ("400-digit score", CAMERA, camera(f'"score": {HUGE}'), "'score'"),
    ("400-digit ts", SENSOR, f'{{"ts": {HUGE}, "values": {{"rainfall": 1}}}}'.encode(), "range"),
    ("400-digit camera ts", CAMERA, camera(f'"ts": {HUGE}'), "range"),
    (
        "ISO ts past year 9999 in UTC",
        SENSOR,
        b'{"ts": "9999-12-31T23:59:59-12:00", "values": {"rainfall": 1}}',
        "range",
    ),
    ("lone surrogate in an id", CAMERA, b'{"id": "evt-\\ud800", "label": "person"}', "surrogate"),
    ("lone surrogate in a label", CAMERA, b'{"id": "evt-s", "label": "pe\\udc00"}', "surrogate"),
    ("lone surrogate in a metric", SENSOR, b'{"values": {"rain\\ud83d": 1}}', "surrogate"),
    ("1e400 in a stored payload", CAMERA, camera('"extra": 1e400'), "too large for a float"),
    ("1e400 as a value", SENSOR, b'{"values": {"rainfall": 1e400}}', "finite"),
    (
        "label that grows when lowercased",
        CAMERA,
        camera('"x": 1').replace(b"person", "İ".encode() * 48),
        "1–48",
    ),
    ("NUL", CAMERA, b'{"id": "a\\u0000", "label": "person"}', "NUL"),
    ("not UTF-8", SENSOR, b'{"values": {"rainfall": 1}}\xff', "UTF-8"),
    (
        "Frigate 400-digit start_time",
        FRIGATE,
        frigate_new().replace(b'"start_time"', b'"start_time": %s, "x"' % HUGE.encode()),
        "epoch",
    ),
    ("Frigate 400-digit score", FRIGATE, frigate_new(top_score=10**400), "after.top_score"),
    (
        "Frigate surrogate camera",
        FRIGATE,
        frigate_new().replace(b'"quarry"', b'"q\\ud800"'),
        "surrogate",
    ),
    (
        "Frigate before as a list",
        FRIGATE,
        json.dumps({"type": "new", "before": [], "after": {}}).encode(),
        "'before'",
    ),
    ("Frigate sub_label score huge", FRIGATE, frigate_new(sub_label=["x", 10**400]), "sub_label"),
    (
        "Frigate review without data",
        FRIGATE_REVIEWS,
        json.dumps(
            {
                "type": "new",
                "after": {
                    "id": "r",
                    "camera": "quarry",
                    "severity": "alert",
                    "start_time": time.time(),
                },
            }
        ).encode(),
        "data",
    ),
    ("status that is an array", GATEWAY, b"[1, 2]", "online"),
    (
        "topic of an unknown device",
        "whistle/qingshui/sensor/" + "x" * 64 + "/telemetry",
        b"{}",
        "unknown device",
    ),
    (
        "topic too long to be a device",
        "whistle/qingshui/sensor/" + "x" * 65 + "/telemetry",
        b"{}",
        "topic",
    ),
]


@pytest.fixture(autouse=True)
def fresh_directory():
    directory.forget()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [case[1:] for case in POISON],
    ids=[case[0] for case in POISON],
)
def test_poison_is_a_dead_letter_and_the_messages_around_it_are_stored(
    demo, topic, payload, reason
):
    first = good_reading(1.5)
    event_id, event = good_event()
    result = store_batch_isolating([first, InboundMessage(topic, payload), event])
    assert result.messages == 3
    assert result.dead_letters == 1
    letter = DeadLetter.objects.get()
    assert bytes(letter.payload) == payload
    assert reason in letter.reason, letter.reason
    # The adapters catch it: the database is never asked to refuse it (no bisection).
    assert not letter.reason.startswith(("database refused", "storing this message failed"))
    assert Reading.objects.filter(metric="rainfall", value=1.5).exists()
    assert DeviceEvent.objects.filter(event_id=event_id).exists()


@pytest.mark.django_db
def test_mistyped_township_time_zone_does_not_stop_the_rules(demo):
    """A zone an administrator mistyped (saved before validation, or by SQL) falls back to the
    default zone instead of failing every camera event of the township."""
    from command.org.models import Township

    Township.objects.filter(code="qingshui").update(time_zone="Asia/Shang hai")
    from alerts.rules import rulebook

    rulebook.forget()
    night = datetime.now(UTC).replace(hour=16, minute=0)  # midnight in Shanghai
    if night > datetime.now(UTC):
        night -= timedelta(days=1)
    payload = json.dumps(
        {"id": "exc-1", "ts": night.isoformat(), "label": "excavator", "score": 0.9}
    ).encode()
    result = store_batch_isolating([InboundMessage(CAMERA, payload)])
    assert result.dead_letters == 0
    assert result.alerts_raised == 1
    rulebook.forget()


def test_time_zone_is_validated_where_it_is_typed():
    from django.core.exceptions import ValidationError

    from command.org.models import validate_time_zone

    validate_time_zone("Asia/Urumqi")
    with pytest.raises(ValidationError):
        validate_time_zone("Asia/Shang hai")


@pytest.mark.django_db
def test_long_rule_name_cuts_the_alert_title_instead_of_losing_the_reading(demo):
    from alerts.models import AlertRule
    from command.org.models import Device

    device = Device.objects.get(code="wl-01")
    device.pk, device.code = None, "d" * 64  # the longest code a device may have
    device.save()
    metric = "m" * 48
    AlertRule.objects.create(
        township=device.township,
        name="长" * 120,
        kind=AlertRule.Kind.THRESHOLD,
        category=AlertRule.objects.filter(kind=AlertRule.Kind.THRESHOLD).first().category,
        severity="major",
        metric=metric,
        operator=AlertRule.Operator.ABOVE,
        threshold=1.0,
        hold_seconds=0,
    )
    from alerts.rules import rulebook

    rulebook.forget()
    topic = f"whistle/qingshui/sensor/{device.code}/telemetry"
    message = InboundMessage(topic, json.dumps({"values": {metric: 5.0}}).encode())
    result = store_batch_isolating([message])
    assert result.dead_letters == 0 and result.readings == 1
    alert = Alert.objects.get(pk=result.alert_ids[0])
    assert len(alert.title) == 200 and alert.title.endswith("…")
    rulebook.forget()


@pytest.mark.django_db
def test_a_message_that_breaks_the_write_path_is_isolated(demo, monkeypatch):
    """Fault injected into the rules: whatever one message provokes after parsing (not a lost
    connection) costs that message, not the batch, and never a retry loop."""
    # The rules run behind streams.handoff; alerts.evaluation is where they are called.
    import alerts.evaluation as evaluation

    real = evaluation.camera_rule_alert

    def explode_on_bomb(**kwargs):
        if kwargs["label"] == "bomb":
            raise ZeroDivisionError("a bug one payload reaches")
        return real(**kwargs)

    monkeypatch.setattr(evaluation, "camera_rule_alert", explode_on_bomb)
    bomb = InboundMessage(CAMERA, b'{"id": "b-1", "label": "bomb"}')
    goods = [good_reading(float(i)) for i in range(1, 6)]
    result = store_batch_isolating([*goods[:3], bomb, *goods[3:]])
    assert result.dead_letters == 1
    assert "ZeroDivisionError" in DeadLetter.objects.get().reason
    assert Reading.objects.filter(metric="rainfall").count() == 5


# --- property: any bytes on any topic ------------------------------------------------------------

TOPICS = [
    CAMERA,
    SENSOR,
    GATEWAY,
    FRIGATE,
    FRIGATE_REVIEWS,
    "frigate/events",
    "frigate/dongshan/events",
    "whistle/qingshui/camera/no-such/event",
    "whistle/other/sensor/wl-01/telemetry",
    "whistle/qingshui/bogus/x/y",
]

# Strings with what firmware gets wrong: surrogate halves, NUL, controls, astral characters.
texts = st.text(max_size=60) | st.text(
    alphabet=st.characters(categories=["Cs", "Cc", "Lu", "So"]), max_size=8
)
numbers = (
    st.integers(min_value=-(10**420), max_value=10**420)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([0, -1, 1e308, 1763900000, 1763900000000, 2**63])
)
times = (
    numbers
    | texts
    | st.sampled_from(
        ["9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+14:00", "2026-11-27T00:00:00", "now"]
    )
)
scalars = st.none() | st.booleans() | numbers | texts
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=12,
)


def adversarial_documents() -> st.SearchStrategy[object]:
    """Shapes each adapter expects, with any field possibly wrong."""
    camera_doc = st.fixed_dictionaries(
        {"id": texts | values, "label": texts | values},
        optional={"ts": times, "score": numbers | values, "zones": values, "snapshot": texts},
    )
    telemetry_doc = st.fixed_dictionaries({"values": st.dictionaries(texts, numbers | values)}) | (
        st.fixed_dictionaries({"ts": times, "values": st.dictionaries(texts, numbers | values)})
    )
    after = st.fixed_dictionaries(
        {"id": texts, "camera": st.sampled_from(["quarry", "nope"]) | texts},
        optional={
            "label": texts,
            "start_time": times,
            "frame_time": times,
            "end_time": times,
            "top_score": numbers,
            "score": numbers,
            "false_positive": values,
            "entered_zones": values,
            "current_zones": values,
            "sub_label": values,
            "snapshot": values,
            "severity": st.sampled_from(["alert", "detection"]) | texts,
            "data": values
            | st.fixed_dictionaries({"objects": values, "zones": values, "audio": values}),
        },
    )
    frigate_doc = st.fixed_dictionaries(
        {"type": st.sampled_from(["new", "update", "end"]) | texts, "after": after | values},
        optional={"before": after | values},
    )
    return camera_doc | telemetry_doc | frigate_doc | values


def encoded(document: object) -> bytes:
    # ensure_ascii writes a lone surrogate as its \\uXXXX escape, as firmware would.
    return json.dumps(document, ensure_ascii=True).encode()


raw_payloads = (
    st.binary(max_size=200)
    | adversarial_documents().map(encoded)
    | st.sampled_from([payload for _, _, payload, _ in POISON])
    | st.builds(lambda n: b"[" * n + b"]" * n, st.integers(0, 3000))
    | st.sampled_from([b"online", b"OFFLINE", b"", b"null", b"1e400", b'{"values":{"a":-1e999}}'])
)


def adapter_verdict(topic: str, payload: bytes, now: datetime) -> bool:
    """Whether the pure adapter accepts ``payload`` (the oracle for what must not be a dead
    letter on a known device's topic)."""
    parse = {
        CAMERA: native.parse_camera_event,
        SENSOR: native.parse_telemetry,
        GATEWAY: native.parse_status,
        FRIGATE: frigate.parse_frigate_event,
        FRIGATE_REVIEWS: frigate.parse_frigate_review,
    }[topic]
    return not isinstance(parse(payload, now), Rejected)


@pytest.mark.django_db
@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batch=st.lists(st.tuples(st.sampled_from(TOPICS), raw_payloads), min_size=1, max_size=6))
def test_any_bytes_on_any_topic_are_stored_or_dead_lettered(demo, batch):
    with transaction.atomic():
        value = float(uuid.uuid4().int % 10_000) + 0.25
        event_id, event = good_event()
        messages = [good_reading(value), *(InboundMessage(t, p) for t, p in batch), event]
        result = store_batch_isolating(messages)  # never raises: nothing is retried
        assert result.messages == len(messages)
        letters = list(DeadLetter.objects.all())
        assert len(letters) == result.dead_letters
        assert all(letter.reason for letter in letters)
        # What the database would refuse the adapters refuse first: no message is found bad
        # only by bisecting a failed transaction.
        refused = [
            letter.reason
            for letter in letters
            if letter.reason.startswith(("database refused", "storing this message failed"))
        ]
        assert not refused, refused
        dead = {(letter.topic, bytes(letter.payload)) for letter in letters}
        now = datetime.now(UTC)
        for topic, payload in batch:
            if topic in (CAMERA, SENSOR, GATEWAY, FRIGATE, FRIGATE_REVIEWS):
                accepted = adapter_verdict(topic, payload, now)
                if not accepted:
                    assert (topic, payload) in dead
                elif topic in (CAMERA, SENSOR, GATEWAY):
                    # A known device and a payload its adapter takes: stored, not a letter.
                    assert (topic, payload) not in dead, topic
            else:
                assert (topic, payload) in dead  # no such device, township or format
        # The good messages around the bad ones are stored.
        assert Reading.objects.filter(metric="rainfall", value=value).exists()
        assert DeviceEvent.objects.filter(event_id=event_id).exists()
        transaction.set_rollback(True)


# --- the real thing: Mosquitto and a `whistle ingest` process ------------------------------------


@pytest.mark.services
@pytest.mark.timeout(180)
def test_poison_over_mqtt_neither_blocks_ingest_nor_comes_back_after_a_restart(
    demo_committed, mqtt_settings, publish_mqtt
):
    """Every listed poison, published by the township's own gateway credential between good
    readings, to a real `whistle ingest` process on the project's Mosquitto: all good readings
    are stored, each poison is one dead letter, and after a restart of the process (persistent
    session) none of them is delivered again."""
    from command.org.models import Township
    from tests.conftest import wait_for
    from tests.streams.test_ingest_delivery import IngestProcess

    if mqtt_settings.protocol != "5":
        pytest.skip("needs Mosquitto with the project's ACL (the embedded broker has none)")
    # A zone an administrator mistyped, read by the camera rules on every event.
    Township.objects.filter(code="qingshui").update(time_zone="Asia/Shang hai")
    client_id = f"test-poison-{uuid.uuid4().hex[:6]}"
    worker = IngestProcess(mqtt_settings, client_id)
    try:
        for i, (_, topic, payload, _) in enumerate(POISON):
            publish_mqtt(*good_reading(100.0 + i)[:2])
            publish_mqtt(topic, payload)
        publish_mqtt(CAMERA, b'{"id": "exc-zone", "label": "excavator", "score": 0.9}')
        last = good_reading(999.0)
        publish_mqtt(*last[:2])
        wait_for(
            lambda: Reading.objects.filter(metric="rainfall", value=999.0).exists(),
            timeout=30,
            what="the reading published after every poison",
        )
        wait_for(lambda: DeadLetter.objects.count() >= len(POISON), timeout=15)
        stored = set(Reading.objects.filter(metric="rainfall").values_list("value", flat=True))
        assert stored >= {100.0 + i for i in range(len(POISON))}
        assert DeadLetter.objects.count() == len(POISON)
        assert DeviceEvent.objects.filter(event_id="exc-zone").exists()
        assert worker.process.poll() is None, worker.output()
    finally:
        worker.stop()
    restarted = IngestProcess(mqtt_settings, client_id)
    try:
        publish_mqtt(*good_reading(1000.0)[:2])
        wait_for(
            lambda: Reading.objects.filter(metric="rainfall", value=1000.0).exists(),
            timeout=30,
            what="a reading after the restart",
        )
        # Acked after their dead letters committed: the session holds none of them any more.
        assert DeadLetter.objects.count() == len(POISON)
    finally:
        restarted.stop()


def test_refused_subscription_stops_ingest_with_the_reason(mqtt_settings):
    """A broker that refuses ingest's subscriptions (EMQX and others answer SUBACK 0x87 where the
    ACL says no; Mosquitto grants and filters later): the worker names the topics, stops its
    loop, and `whistle ingest` exits 1 instead of running on, storing nothing, looking alive."""
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.reasoncodes import ReasonCode

    from streams.mqtt.client import IngestWorker

    worker = IngestWorker("test-refused")
    granted, refused = (
        ReasonCode(PacketTypes.SUBACK, identifier=1),
        ReasonCode(PacketTypes.SUBACK, identifier=0x87),
    )
    codes = [granted] * len(worker.topics())
    codes[1] = refused
    worker._on_subscribe(worker.client, None, 1, [*codes, granted], None)
    assert not worker.wait_subscribed(0)
    assert worker.failure and worker.topics()[1] in worker.failure
    assert "Not authorized" in worker.failure
    worker.run()  # returns at once: it was told to stop
    assert worker.failure


@pytest.mark.services
@pytest.mark.timeout(120)
def test_healthcheck_passes_while_ingest_runs(demo_committed, mqtt_settings, tmp_path, monkeypatch):
    import subprocess
    import sys
    from pathlib import Path

    from tests.conftest import wait_for
    from tests.streams.test_ingest_delivery import IngestProcess

    monkeypatch.setenv("WHISTLE_HEALTH_DIR", str(tmp_path))
    worker = IngestProcess(mqtt_settings, f"test-health-{uuid.uuid4().hex[:6]}")
    try:
        wait_for(lambda: (tmp_path / "whistle-ingest.alive").exists(), timeout=15)
        health = subprocess.run(
            [str(Path(sys.executable).parent / "whistle"), "healthcheck", "ingest"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert health.returncode == 0, health.stdout + health.stderr
        assert "alive" in health.stdout
    finally:
        worker.stop()


@pytest.mark.django_db
def test_dead_letters_expire_after_the_retention(settings):
    from streams.ingest import dead_letters_expire

    settings.DEAD_LETTER_RETENTION_DAYS = 30
    now = datetime.now(UTC)
    for age in (31, 45, 29, 0):
        DeadLetter.objects.create(
            topic="t", payload=b"x", reason=f"{age} days", received_at=now - timedelta(days=age)
        )
    with clock.frozen(at=now):
        assert dead_letters_expire(batch=1) == 2
    assert sorted(DeadLetter.objects.values_list("reason", flat=True)) == ["0 days", "29 days"]
