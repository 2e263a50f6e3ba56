import json
from datetime import UTC, datetime, timedelta

import pytest

from streams.adapters.base import Rejected
from streams.adapters.native import parse_camera_event, parse_status, parse_telemetry
from streams.mqtt import topics

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


def test_topics_match_the_native_layout():
    match = topics.match("whistle/qingshui/camera/cam-01/event")
    assert match == topics.TopicMatch(topics.CAMERA_EVENT, "qingshui", "cam-01")
    assert topics.match("whistle/qingshui/sensor/wl-01/telemetry").kind == topics.TELEMETRY
    assert topics.match("whistle/qingshui/gateway/gw-1/status").kind == topics.GATEWAY_STATUS
    assert topics.match("whistle/qingshui/camera/cam-01/snapshot") is None
    assert topics.match("other/qingshui/camera/cam-01/event") is None
    assert topics.match("whistle//camera/cam-01/event") is None
