"""The payload-format registry: a format declared once is parsed, stored, subscribed to and
documented; a new camera vendor is one module and one line (here: a module's worth in a test)."""

import json
import re
import time
from datetime import datetime
from pathlib import Path

import pytest

from alerts.models import Alert
from command.org.models import Device
from streams.adapters.base import CameraEvent, Detection, Reading, Rejected, decode_json, parse_time
from streams.adapters.payload_format import (
    Becomes,
    DeviceInPayload,
    DeviceInTopic,
    PayloadFormat,
)
from streams.adapters.registry import FORMATS, UNKNOWN_TOPIC
from streams.ingest import InboundMessage, directory, store_batch
from streams.models import DeadLetter, DeviceEvent
from streams.models import Reading as StoredReading

DOCS = Path(__file__).resolve().parents[2] / "docs" / "payloads.md"


# --- a toy camera vendor, as its module in streams/adapters would declare it ---------------------


def parse_acme_alarm(payload: bytes, now: datetime) -> Detection | Rejected:
    """``{"channel": "gate", "id": "a-1", "kind": "smoke", "ts": 1763900000}``"""
    data = decode_json(payload)
    if isinstance(data, Rejected):
        return data
    if not isinstance(data, dict):
        return Rejected("Acme alarm must be a JSON object")
    channel, alarm_id, kind = data.get("channel"), data.get("id"), data.get("kind")
    if not all(isinstance(v, str) and 0 < len(v) <= 40 for v in (channel, alarm_id, kind)):
        return Rejected("Acme alarm needs 'channel', 'id' and 'kind' strings")
    moment = parse_time(data["ts"], now) if "ts" in data else now
    if isinstance(moment, Rejected):
        return moment
    event = CameraEvent(
        event_id=f"acme:{alarm_id}",
        time=moment,
        label=kind.lower(),
        score=None,
        zones=(),
        payload={"channel": channel, "id": alarm_id, "kind": kind},
    )
    return Detection(camera=channel, event=event, raise_alert=True)


ACME = PayloadFormat(
    name="acme_alarm",
    topics=("acme/{township}/alarm",),
    parse=parse_acme_alarm,
    device=DeviceInPayload(metadata_key="acme_channel"),
    becomes=Becomes.EVENTS,
    summary="Acme NVR alarms",
)


@pytest.fixture
def acme():
    FORMATS.register(ACME)
    try:
        yield ACME
    finally:
        FORMATS.unregister(ACME.name)


@pytest.fixture(autouse=True)
def fresh_directory():
    directory.forget()


def alarm(channel: str, alarm_id: str, kind: str = "smoke") -> bytes:
    return json.dumps(
        {"channel": channel, "id": alarm_id, "kind": kind, "ts": time.time()}
    ).encode()


@pytest.mark.django_db
def test_a_registered_camera_vendor_is_stored_through_ingest(demo, acme, settings):
    camera = Device.objects.get(code="cam-01")
    camera.metadata = {**camera.metadata, "acme_channel": "gate"}
    camera.save(update_fields=["metadata"])
    topic = "acme/qingshui/alarm"
    result = store_batch(
        [
            InboundMessage(topic, alarm("gate", "a-1")),
            InboundMessage(topic, b"{oops"),
            InboundMessage(topic, alarm("back", "a-2")),
            InboundMessage("acme/dongshan/alarm", alarm("gate", "a-3")),
        ]
    )
    assert (result.events, result.alerts_raised, result.dead_letters) == (1, 1, 3)
    event = DeviceEvent.objects.get()
    assert (event.device_id, event.event_id, event.label) == (camera.pk, "acme:a-1", "smoke")
    assert Alert.objects.get().category.code == "fire"
    reasons = set(DeadLetter.objects.values_list("reason", flat=True))
    assert "no device of qingshui has acme_channel 'back'" in reasons
    # The camera is looked up in the topic's township only.
    assert "no device of dongshan has acme_channel 'gate'" in reasons
    assert any("malformed JSON" in reason for reason in reasons)
    # whistle ingest subscribes to it.
    settings.MQTT_URL = "mqtt://127.0.0.1:1883"
    from streams.mqtt.client import IngestWorker

    assert "acme/+/alarm" in IngestWorker("test-acme", share_group="").topics()
    # A format of events goes to the lane of camera events (whistle ingest's second session).
    assert "acme/+/alarm" in IngestWorker("test-acme", share_group="", events=True).topics()
    assert "acme/+/alarm" not in IngestWorker("test-acme", share_group="", events=False).topics()


@pytest.mark.django_db
def test_an_unregistered_format_is_an_unknown_topic_again(demo):
    FORMATS.register(ACME)
    FORMATS.unregister(ACME.name)
    store_batch([InboundMessage("acme/qingshui/alarm", alarm("gate", "a-1"))])
    assert DeadLetter.objects.get().reason == UNKNOWN_TOPIC
    assert "acme/+/alarm" not in FORMATS.subscriptions()


def parse_acme_levels(payload: bytes, now: datetime) -> list[Reading] | Rejected:
    values = decode_json(payload)
    if not isinstance(values, dict) or not all(isinstance(v, float) for v in values.values()):
        return Rejected("levels must be an object of numbers")
    return [Reading(now, metric, value) for metric, value in values.items()]


@pytest.mark.django_db
def test_a_format_that_names_its_device_in_the_topic_stores_readings(demo):
    levels = PayloadFormat(
        name="acme_levels",
        topics=("acme/{township}/{device}/levels",),
        parse=parse_acme_levels,
        device=DeviceInTopic(),
        becomes=Becomes.READINGS,
        summary="Acme level gauges",
    )
    FORMATS.register(levels)
    try:
        result = store_batch(
            [
                InboundMessage("acme/qingshui/wl-01/levels", b'{"water_level": 2.5}'),
                InboundMessage("acme/qingshui/wl-404/levels", b'{"water_level": 2.5}'),
            ]
        )
    finally:
        FORMATS.unregister(levels.name)
    assert (result.readings, result.dead_letters) == (1, 1)
    assert StoredReading.objects.get().device.code == "wl-01"
    assert DeadLetter.objects.get().reason == "unknown device qingshui/wl-404"


@pytest.mark.django_db
def test_a_parser_that_breaks_its_declaration_costs_its_message_only(demo):
    liar = PayloadFormat(
        name="acme_liar",
        topics=("acme/{township}/{device}/liar",),
        parse=lambda payload, now: {"not": "readings"},
        device=DeviceInTopic(),
        becomes=Becomes.READINGS,
        summary="a broken adapter",
    )
    FORMATS.register(liar)
    try:
        result = store_batch(
            [
                InboundMessage("acme/qingshui/wl-01/liar", b"{}"),
                InboundMessage("whistle/qingshui/sensor/wl-01/telemetry", b'{"rainfall": 1}'),
            ]
        )
    finally:
        FORMATS.unregister(liar.name)
    assert (result.readings, result.dead_letters) == (1, 1)
    assert "returned a dict" in DeadLetter.objects.get().reason


def test_a_format_is_declared_consistently():
    def parse(payload, now):
        return Rejected("never")

    with pytest.raises(ValueError, match="township"):
        PayloadFormat("x", ("x/{device}/y",), parse, DeviceInTopic(), Becomes.READINGS, "x")
    with pytest.raises(ValueError, match="names the device"):
        PayloadFormat("x", ("x/{device}",), parse, DeviceInPayload("k"), Becomes.EVENTS, "x")
    with pytest.raises(ValueError, match="event"):
        PayloadFormat("x", ("x/{township}",), parse, DeviceInPayload("k"), Becomes.READINGS, "x")
    with pytest.raises(ValueError, match="placeholder"):
        PayloadFormat("x", ("x/{camera}",), parse, DeviceInPayload("k"), Becomes.EVENTS, "x")
    with pytest.raises(ValueError, match="literal"):
        PayloadFormat("x", ("x/+/{device}",), parse, DeviceInTopic(), Becomes.READINGS, "x")
    with pytest.raises(ValueError, match="plain name"):
        DeviceInPayload("frigate camera")
    with pytest.raises(ValueError, match="exists"):
        FORMATS.register(FORMATS["telemetry"])


# --- docs/payloads.md prints the registry --------------------------------------------------------

TABLE = re.compile(
    r"<!-- payload formats: .*? -->\n(.*?)<!-- end of payload formats -->", re.DOTALL
)


def test_docs_list_every_registered_format(settings):
    settings.MQTT_TOPIC_PREFIX = "whistle"
    settings.FRIGATE_TOPIC_PREFIX = "frigate"
    found = TABLE.search(DOCS.read_text())
    assert found, "docs/payloads.md lost its table of payload formats"
    expected = FORMATS.table()
    assert found.group(1) == expected, f"paste this table into docs/payloads.md:\n{expected}"


def test_whistles_own_formats_and_frigates_are_registered():
    assert [f.name for f in FORMATS] == [
        "camera_event",
        "telemetry",
        "gateway_status",
        "frigate_event",
        "frigate_review",
    ]


def test_the_two_lanes_of_whistle_ingest_split_the_subscriptions_between_them(settings):
    """Camera events on a session of their own, everything else on the other: each filter in
    exactly one, none left out."""
    from streams.mqtt.client import IngestWorker

    settings.MQTT_URL = "mqtt://127.0.0.1:1883"
    settings.MQTT_SHARE_GROUP = "whistle-ingest"
    every = IngestWorker("test-lanes").topics()
    events = IngestWorker("test-lanes-events", events=True).topics()
    rest = IngestWorker("test-lanes-rest", events=False).topics()
    assert sorted(events + rest) == sorted(every) and not set(events) & set(rest)
    assert "$share/whistle-ingest/whistle/+/camera/+/event" in events
    assert "$share/whistle-ingest/whistle/+/sensor/+/telemetry" in rest
    assert "$share/whistle-ingest/whistle/+/gateway/+/status" in rest
