import json
from datetime import UTC, datetime, timedelta

import pytest

from streams.adapters.base import Rejected
from streams.adapters.native import parse_camera_event, parse_status, parse_telemetry
from streams.adapters.registry import FORMATS, TopicMatch

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000)


def camera(**fields):
    payload = {"id": "evt-1", "ts": NOW_MS, "label": "Excavator", "score": 0.91, "zones": ["pit"]}
    payload.update(fields)
    return json.dumps(payload).encode()


def test_camera_event_is_parsed_with_its_time_and_a_lowercased_label():
    event = parse_camera_event(camera(), NOW)
    assert not isinstance(event, Rejected)
    assert event.event_id == "evt-1"
    assert event.time == NOW
    assert event.label == "excavator"
    assert event.score == pytest.approx(0.91)
    assert event.zones == ("pit",)


def test_camera_event_accepts_iso_time_with_zone():
    event = parse_camera_event(camera(ts="2026-11-23T20:00:00+08:00"), NOW)
    assert not isinstance(event, Rejected)
    assert event.time == NOW


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{not json", "malformed JSON"),
        (b"\xff\xfe\x00", "not UTF-8"),
        (b"[1, 2]", "must be a JSON object"),
        (camera(id=""), "'id'"),
        (camera(label=7), "'label'"),
        (camera(score=1.7), "'score'"),
        (b'{"id": "e", "label": "fire", "score": NaN}', "NaN"),
        (camera(ts=NOW_MS + 3_600_000), "in the future"),
        (camera(ts=NOW_MS - 90 * 86_400_000), "too far in the past"),
        (camera(ts="2026-11-23T12:00:00"), "no time zone"),
        (camera(zones="pit"), "'zones'"),
        (b"x" * (300 * 1024), "over the"),
    ],
)
def test_bad_camera_events_are_rejected_with_a_reason(payload, reason):
    result = parse_camera_event(payload, NOW)
    assert isinstance(result, Rejected)
    assert reason in result.reason


def test_telemetry_shapes():
    flat = parse_telemetry(b'{"water_level": 2.5, "battery": 87}', NOW)
    assert {(r.metric, r.value, r.time) for r in flat} == {
        ("water_level", 2.5, NOW),
        ("battery", 87.0, NOW),
    }
    earlier = NOW - timedelta(minutes=1)
    batch = json.dumps(
        [
            {"ts": int(earlier.timestamp() * 1000), "values": {"pm25": 41}},
            {"ts": NOW_MS, "values": {"pm25": 43}},
        ]
    ).encode()
    readings = parse_telemetry(batch, NOW)
    assert [(r.time, r.value) for r in readings] == [(earlier, 41.0), (NOW, 43.0)]


@pytest.mark.parametrize(
    "payload", [b'{"water_level": "high"}', b'{"values": {}}', b'{"x": Infinity}', b"[]", b"3"]
)
def test_bad_telemetry_is_rejected(payload):
    assert isinstance(parse_telemetry(payload, NOW), Rejected)


def test_status_plain_and_json():
    assert parse_status(b"online", NOW).online is True
    assert parse_status(b'{"status": "offline"}', NOW).online is False
    assert isinstance(parse_status(b"maybe", NOW), Rejected)


@pytest.fixture
def default_prefixes(settings):
    settings.MQTT_TOPIC_PREFIX = "whistle"
    settings.FRIGATE_TOPIC_PREFIX = "frigate"


def kind(topic: str) -> str | None:
    match = FORMATS.match(topic)
    return match and match.format.name


def test_topics_match_the_native_layout(default_prefixes):
    match = FORMATS.match("whistle/qingshui/camera/cam-01/event")
    assert match == TopicMatch(FORMATS["camera_event"], "qingshui", "cam-01")
    assert kind("whistle/qingshui/sensor/wl-01/telemetry") == "telemetry"
    assert kind("whistle/qingshui/gateway/gw-1/status") == "gateway_status"
    assert FORMATS.match("whistle/qingshui/camera/cam-01/snapshot") is None
    assert FORMATS.match("other/qingshui/camera/cam-01/event") is None
    assert FORMATS.match("whistle//camera/cam-01/event") is None
    assert FORMATS.match("whistle/" + "t" * 41 + "/camera/cam-01/event") is None
    assert kind("whistle/qingshui/sensor/" + "d" * 64 + "/telemetry") == "telemetry"
    assert FORMATS.match("whistle/qingshui/sensor/" + "d" * 65 + "/telemetry") is None
    assert FORMATS.match("whistle/qingshui/sensor/d\x00/telemetry") is None


def test_frigate_topics_name_the_township_or_none(default_prefixes):
    assert FORMATS.match("frigate/qingshui/events") == TopicMatch(
        FORMATS["frigate_event"], "qingshui", ""
    )
    assert FORMATS.match("frigate/qingshui/reviews").format.name == "frigate_review"
    # Unprefixed (and Frigate's topic_prefix "frigate/"): no township, FRIGATE_TOWNSHIP decides.
    assert FORMATS.match("frigate/events") == TopicMatch(FORMATS["frigate_event"], "", "")
    assert FORMATS.match("frigate//reviews") == TopicMatch(FORMATS["frigate_review"], "", "")
    assert FORMATS.match("frigate/a/b/events") is None
    assert FORMATS.match("frigate/" + "t" * 41 + "/events") is None
    assert FORMATS.match("frigate/qingshui/stats") is None


def test_subscriptions_follow_the_prefix_settings(settings, default_prefixes):
    assert sorted(FORMATS.subscriptions()) == sorted(
        [
            "whistle/+/camera/+/event",
            "whistle/+/sensor/+/telemetry",
            "whistle/+/gateway/+/status",
            "frigate/+/events",
            "frigate/+/reviews",
            "frigate/events",
            "frigate/reviews",
        ]
    )
    settings.MQTT_TOPIC_PREFIX = "site/whistle"
    settings.FRIGATE_TOPIC_PREFIX = ""  # no Frigate: not subscribed, not matched
    assert FORMATS.subscriptions() == [
        "site/whistle/+/camera/+/event",
        "site/whistle/+/sensor/+/telemetry",
        "site/whistle/+/gateway/+/status",
    ]
    assert kind("site/whistle/qingshui/camera/cam-01/event") == "camera_event"
    assert FORMATS.match("whistle/qingshui/camera/cam-01/event") is None
    assert FORMATS.match("frigate/qingshui/events") is None
