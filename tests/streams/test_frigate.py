"""Frigate NVR's frigate/events and frigate/reviews messages (pure: no database)."""

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from streams.adapters.base import Rejected
from streams.adapters.frigate import (
    FrigateDetection,
    parse_frigate_event,
    parse_frigate_review,
)

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
START = NOW.timestamp() - 60 + 0.475377  # the object showed up a minute ago
OBJECT_ID = f"{START:.6f}-mxklsc"


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def tracked_object(**fields: Any) -> dict[str, Any]:
    """One side of a frigate/events message as Frigate 0.14–0.16 sends it."""
    state: dict[str, Any] = {
        "id": OBJECT_ID,
        "camera": "quarry_gate",
        "frame_time": START + 6.362598,
        "snapshot": {
            "frame_time": START + 4.500086,
            "box": [415, 489, 528, 700],
            "area": 12728,
            "region": [260, 446, 660, 846],
            "score": 0.77546,
            "attributes": [],
        },
        "label": "Person",
        "sub_label": None,
        "top_score": 0.958984375,
        "false_positive": False,
        "start_time": START,
        "end_time": None,
        "score": 0.87890625,
        "box": [432, 496, 544, 854],
        "area": 40096,
        "ratio": 1.251397,
        "region": [218, 440, 693, 915],
        "current_zones": ["driveway", "yard"],
        "entered_zones": ["yard"],
        "thumbnail": None,
        "has_snapshot": True,
        "has_clip": True,
        "active": True,
        "stationary": False,
        "motionless_count": 0,
        "position_changes": 2,
        "attributes": {"face": 0.86},
        "current_attributes": [{"label": "face", "box": [442, 506, 534, 524], "score": 0.86}],
    }
    state.update(fields)
    return state


def older_object(**fields: Any) -> dict[str, Any]:
    """Frigate 0.13 sends a bare ``snapshot_time`` instead of the ``snapshot`` object."""
    state = tracked_object(**fields)
    snapshot = state.pop("snapshot")
    state.setdefault("snapshot_time", snapshot["frame_time"])
    return state


def message(kind: str, after: dict[str, Any], before: dict[str, Any] | None = None) -> bytes:
    previous = before if before is not None else copy.deepcopy(after)
    return json.dumps({"type": kind, "before": previous, "after": after}).encode()


def event(payload: bytes) -> FrigateDetection:
    result = parse_frigate_event(payload, NOW)
    assert isinstance(result, FrigateDetection), result
    return result


def review_item(**fields: Any) -> dict[str, Any]:
    state: dict[str, Any] = {
        "id": f"{START:.6f}-fqk5ka",
        "camera": "quarry_gate",
        "start_time": START,
        "end_time": None,
        "severity": "alert",
        "thumb_path": f"/media/frigate/clips/review/thumb-quarry_gate-{START:.6f}-fqk5ka.webp",
        "data": {
            "detections": [OBJECT_ID, f"{START + 2:.6f}-g92ztx"],
            "objects": ["person-verified", "car"],
            "sub_labels": ["Bob"],
            "zones": ["yard", "driveway"],
            "audio": [],
        },
    }
    state.update(fields)
    return state


def review(payload: bytes) -> FrigateDetection:
    result = parse_frigate_review(payload, NOW)
    assert isinstance(result, FrigateDetection), result
    return result


# frigate/events


def test_new_event_raises_an_alert_at_its_start_time():
    detection = event(message("new", tracked_object(), before=tracked_object(false_positive=True)))
    assert detection.camera == "quarry_gate"
    assert detection.raise_alert is True
    assert detection.event.event_id == f"frigate:{OBJECT_ID}:new"
    assert detection.event.time == at(START)
    assert detection.event.label == "person"
    assert detection.event.score == pytest.approx(0.958984375)
    assert detection.event.zones == ("yard", "driveway")


def test_event_payload_is_compact_and_takes_the_snapshot_time_from_the_snapshot_object():
    payload = event(message("new", tracked_object(thumbnail="/9j/4AAQSkZJRg" * 500))).event.payload
    assert payload == {
        "id": OBJECT_ID,
        "type": "new",
        "camera": "quarry_gate",
        "label": "person",
        "sub_label": None,
        "sub_label_score": None,
        "top_score": 0.958984375,
        "score": 0.87890625,
        "start_time": START,
        "end_time": None,
        "current_zones": ["driveway", "yard"],
        "entered_zones": ["yard"],
        "has_snapshot": True,
        "has_clip": True,
        "false_positive": False,
        "snapshot_time": pytest.approx(START + 4.500086),
        "stationary": False,
    }
    json.dumps(payload)  # stored as JSON


def test_older_events_with_snapshot_time_are_accepted():
    detection = event(message("update", older_object()))
    assert "snapshot" not in older_object()
    assert detection.event.payload["snapshot_time"] == pytest.approx(START + 4.500086)
    assert detection.event.time == at(START + 6.362598)


def test_a_null_snapshot_leaves_the_snapshot_time_empty():
    detection = event(message("new", tracked_object(snapshot=None, has_snapshot=False)))
    assert detection.event.payload["snapshot_time"] is None


def test_update_is_keyed_and_timed_by_its_frame_and_raises_nothing_by_itself():
    detection = event(message("update", tracked_object(frame_time=START + 6.25)))
    assert detection.event.event_id == f"frigate:{OBJECT_ID}:update:{START + 6.25:.6f}"
    assert detection.event.time == at(START + 6.25)
    assert detection.raise_alert is False


def test_update_that_enters_a_new_zone_raises_an_alert():
    before = tracked_object(entered_zones=["yard"], current_zones=["yard"])
    after = tracked_object(entered_zones=["yard", "quarry_pit"], current_zones=["quarry_pit"])
    detection = event(message("update", after, before))
    assert detection.raise_alert is True
    assert detection.event.zones == ("yard", "quarry_pit")


def test_update_that_only_leaves_a_zone_raises_nothing():
    before = tracked_object(entered_zones=["yard"], current_zones=["yard"])
    after = tracked_object(entered_zones=["yard"], current_zones=[])
    assert event(message("update", after, before)).raise_alert is False


def test_update_that_stops_being_a_false_positive_raises_an_alert():
    before = tracked_object(false_positive=True)
    assert event(message("update", tracked_object(), before)).raise_alert is True


def test_update_without_before_cannot_tell_what_changed():
    payload = json.dumps({"type": "update", "after": tracked_object()}).encode()
    assert event(payload).raise_alert is False


def test_end_is_stored_at_its_end_time_and_never_raises():
    after = tracked_object(end_time=START + 41.5, entered_zones=["yard", "quarry_pit"])
    detection = event(message("end", after, tracked_object(entered_zones=[])))
    assert detection.event.event_id == f"frigate:{OBJECT_ID}:end"
    assert detection.event.time == at(START + 41.5)
    assert detection.event.payload["end_time"] == START + 41.5
    assert detection.raise_alert is False


def test_end_without_end_time_falls_back_to_frame_time_then_to_now():
    assert event(message("end", tracked_object())).event.time == at(START + 6.362598)
    bare = tracked_object()
    del bare["frame_time"]
    assert event(message("end", bare)).event.time == NOW


def test_new_without_start_time_falls_back_to_frame_time():
    assert event(message("new", tracked_object(start_time=None))).event.time == at(START + 6.362598)


def test_false_positives_are_stored_without_an_alert():
    detection = event(message("new", tracked_object(false_positive=True)))
    assert detection.raise_alert is False
    assert detection.event.payload["false_positive"] is True
    update = message("update", tracked_object(false_positive=True, entered_zones=["pit"]))
    assert event(update).raise_alert is False


@pytest.mark.parametrize(
    ("sub_label", "name", "score"),
    [
        ("John Smith", "John Smith", None),
        (["John Smith", 0.79], "John Smith", pytest.approx(0.79)),
        (None, None, None),
        ("", None, None),
    ],
)
def test_sub_label_as_string_list_or_null(sub_label, name, score):
    payload = event(message("update", tracked_object(sub_label=sub_label))).event.payload
    assert payload["sub_label"] == name
    assert payload["sub_label_score"] == score


def test_score_falls_back_to_the_current_score():
    detection = event(message("new", tracked_object(top_score=None, score=0.5)))
    assert detection.event.score == pytest.approx(0.5)
    assert event(message("new", tracked_object(top_score=None, score=None))).event.score is None


def test_zones_are_entered_then_current_without_repeats():
    after = tracked_object(entered_zones=["b", "a"], current_zones=["a", "c", "c"])
    assert event(message("update", after)).event.zones == ("b", "a", "c")
    assert (
        event(message("new", tracked_object(entered_zones=None, current_zones=[]))).event.zones
        == ()
    )


# idempotency


def test_the_same_message_parsed_twice_gives_the_same_key_and_time():
    for kind in ("new", "update", "end"):
        payload = message(kind, tracked_object(end_time=START + 30 if kind == "end" else None))
        first, second = event(payload), event(payload)
        assert first.event.event_id == second.event.event_id
        assert first.event.time == second.event.time
        assert first == second


def test_two_updates_of_one_object_get_different_keys():
    one = event(message("update", tracked_object(frame_time=START + 6.0)))
    two = event(message("update", tracked_object(frame_time=START + 6.2)))
    assert one.event.event_id != two.event.event_id


def test_an_integer_frame_time_keys_like_the_same_float():
    whole = float(int(START) + 6)
    one = event(message("update", tracked_object(frame_time=int(whole))))
    two = event(message("update", tracked_object(frame_time=whole)))
    assert one.event.event_id == two.event.event_id


def test_new_update_and_end_of_one_object_get_different_keys():
    keys = {
        event(message(kind, tracked_object(end_time=START + 30))).event.event_id
        for kind in ("new", "update", "end")
    }
    assert len(keys) == 3


def test_keys_over_64_characters_are_hashed_deterministically():
    long_id = f"{START:.6f}-" + "x" * 60
    payload = message("update", tracked_object(id=long_id))
    key = event(payload).event.event_id
    assert len(key) == 64
    assert key.startswith(f"frigate:{START:.6f}-xxx")
    assert key == event(payload).event.event_id
    other = event(message("update", tracked_object(id=long_id[:-1] + "y"))).event.event_id
    assert len(other) == 64
    assert other != key
    assert event(payload).event.payload["id"] == long_id  # the full id is kept with the event


def test_short_keys_are_kept_as_they_are():
    assert len(f"frigate:{OBJECT_ID}:update:{START:.6f}") <= 64
    key = event(message("update", tracked_object(frame_time=START))).event.event_id
    assert key == f"frigate:{OBJECT_ID}:update:{START:.6f}"


# rejections


def with_after(**fields: Any) -> bytes:
    return message("update", tracked_object(**fields))


def without(field: str, kind: str = "update") -> bytes:
    after = tracked_object()
    del after[field]
    return message(kind, after)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{not json", "malformed JSON"),
        (b"\xff\xfe\x00", "not UTF-8"),
        (b"x" * (300 * 1024), "over the"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"type": "new", "after": {"id": "a", "score": NaN}}', "NaN"),
        (b'{"type": "new", "after": {"top_score": Infinity}}', "Infinity"),
        (json.dumps({"after": tracked_object()}).encode(), "'type'"),
        (json.dumps({"type": "destroy", "after": tracked_object()}).encode(), "'type'"),
        (json.dumps({"type": "new", "before": tracked_object()}).encode(), "needs 'after'"),
        (json.dumps({"type": "new", "after": None}).encode(), "needs 'after'"),
        (json.dumps({"type": "new", "after": [1]}).encode(), "needs 'after'"),
        (
            json.dumps({"type": "update", "before": "x", "after": tracked_object()}).encode(),
            "'before'",
        ),
        (without("camera"), "'after.camera'"),
        (with_after(camera=""), "'after.camera'"),
        (with_after(camera=7), "'after.camera'"),
        (with_after(camera="gate\x00"), "NUL"),
        (without("id"), "'after.id'"),
        (with_after(id=1718211234.123), "'after.id'"),
        (without("label"), "'after.label'"),
        (with_after(label="x" * 49), "'after.label'"),
        (with_after(top_score=1.5), "'after.top_score'"),
        (with_after(top_score=-0.1), "'after.top_score'"),
        (with_after(top_score=True), "'after.top_score'"),
        (with_after(score="high"), "'after.score'"),
        (with_after(false_positive="no"), "'after.false_positive'"),
        (with_after(has_clip="yes"), "'after.has_clip'"),
        (with_after(stationary=1), "'after.stationary'"),
        (with_after(entered_zones="yard"), "'after.entered_zones'"),
        (with_after(current_zones=["yard", 3]), "'after.current_zones'"),
        (with_after(sub_label=7), "'after.sub_label'"),
        (with_after(sub_label=[1, 0.5]), "'after.sub_label'"),
        (with_after(sub_label=["Bob", 3]), "'after.sub_label score'"),
        (with_after(snapshot="best.jpg"), "'after.snapshot'"),
        (with_after(snapshot={"frame_time": "now"}), "'after.snapshot.frame_time'"),
        (message("update", older_object(snapshot_time="now")), "'after.snapshot_time'"),
        (with_after(start_time="2026-11-23T12:00:00+00:00"), "'after.start_time'"),
        (with_after(end_time=[1]), "'after.end_time'"),
        (without("frame_time"), "an update needs 'after.frame_time'"),
        (with_after(frame_time=START + 3600), "'after.frame_time': timestamp"),
        (with_after(frame_time=START + 3600), "in the future"),
        (message("new", tracked_object(start_time=START - 40 * 86400)), "too far in the past"),
        (message("new", tracked_object(start_time=START - 40 * 86400)), "'after.start_time'"),
        (message("end", tracked_object(end_time=START + 3600)), "'after.end_time'"),
        (
            message("update", tracked_object(), before={"false_positive": "maybe"}),
            "'before.false_positive'",
        ),
        (
            message("update", tracked_object(), before={"entered_zones": "yard"}),
            "'before.entered_zones'",
        ),
    ],
)
def test_bad_events_are_rejected_with_a_reason_naming_the_field(payload, reason):
    result = parse_frigate_event(payload, NOW)
    assert isinstance(result, Rejected)
    assert reason in result.reason


def test_parsers_never_raise_on_odd_json():
    for text in ("null", "0", '"x"', "{}", '{"type": "new", "after": {}}', '{"type": []}'):
        assert isinstance(parse_frigate_event(text.encode(), NOW), Rejected)
        assert isinstance(parse_frigate_review(text.encode(), NOW), Rejected)


# frigate/reviews


def test_new_alert_review_raises_an_alert_labelled_by_its_first_object():
    detection = review(message("new", review_item()))
    assert detection.camera == "quarry_gate"
    assert detection.raise_alert is True
    assert detection.event.event_id == f"frigate-review:{START:.6f}-fqk5ka:new"
    assert detection.event.label == "person"  # "-verified" is Frigate's mark of a known face
    assert detection.event.time == at(START)
    assert detection.event.zones == ("yard", "driveway")
    assert detection.event.score is None
    assert detection.event.payload == {
        "id": f"{START:.6f}-fqk5ka",
        "type": "new",
        "camera": "quarry_gate",
        "severity": "alert",
        "start_time": START,
        "end_time": None,
        "detections": [OBJECT_ID, f"{START + 2:.6f}-g92ztx"],
        "objects": ["person-verified", "car"],
        "sub_labels": ["Bob"],
        "zones": ["yard", "driveway"],
        "audio": [],
    }


def test_detection_reviews_are_stored_without_an_alert():
    detection = review(message("new", review_item(severity="detection")))
    assert detection.raise_alert is False
    assert detection.event.payload["severity"] == "detection"


def test_review_label_is_lowercased_and_plain_objects_are_kept():
    data = dict(review_item()["data"], objects=["Car", "person"])
    assert review(message("new", review_item(data=data))).event.label == "car"


def test_review_update_from_detection_to_alert_raises_an_alert():
    before = review_item(severity="detection")
    assert review(message("update", review_item(), before)).raise_alert is True


def test_review_update_that_stays_an_alert_or_a_detection_raises_nothing():
    assert review(message("update", review_item(), review_item())).raise_alert is False
    detection = review_item(severity="detection")
    assert review(message("update", detection, detection)).raise_alert is False
    no_before = json.dumps({"type": "update", "after": review_item()}).encode()
    assert review(no_before).raise_alert is False


def test_review_end_is_stored_at_its_end_time_and_never_raises():
    detection = review(message("end", review_item(end_time=START + 150)))
    assert detection.raise_alert is False
    assert detection.event.event_id == f"frigate-review:{START:.6f}-fqk5ka:end"
    assert detection.event.time == at(START + 150)
    assert review(message("end", review_item())).event.time == at(START)


def test_review_updates_are_keyed_by_what_they_say():
    first = message("update", review_item(severity="detection"), review_item(severity="detection"))
    escalation = message("update", review_item(), review_item(severity="detection"))
    # Same review, same start time: only the key tells these apart, so the escalation is not
    # mistaken for a redelivery of the first update and its alert is not lost.
    assert review(first).event.event_id != review(escalation).event.event_id
    assert review(escalation).event.event_id == review(escalation).event.event_id
    assert review(escalation).event.event_id.startswith(
        f"frigate-review:{START:.6f}-fqk5ka:update:"
    )
    assert len(review(escalation).event.event_id) <= 64


def test_review_update_key_does_not_depend_on_list_order():
    # Frigate builds detections and objects from sets, so their order may differ between sends.
    data = review_item()["data"]
    shuffled = dict(data, detections=data["detections"][::-1], objects=data["objects"][::-1])
    one = review(message("update", review_item()))
    two = review(message("update", review_item(data=shuffled)))
    assert one.event.event_id == two.event.event_id


def test_review_keys_over_64_characters_are_hashed():
    detection = review(message("new", review_item(id="r" * 80)))
    assert len(detection.event.event_id) == 64
    assert (
        detection.event.event_id == review(message("new", review_item(id="r" * 80))).event.event_id
    )


def review_data(**fields: Any) -> dict[str, Any]:
    return dict(review_item()["data"], **fields)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{", "malformed JSON"),
        (b'"alert"', "must be a JSON object"),
        (json.dumps({"type": "new"}).encode(), "needs 'after'"),
        (json.dumps({"type": "open", "after": review_item()}).encode(), "'type'"),
        (message("new", review_item(camera=None)), "'after.camera'"),
        (message("new", review_item(camera="")), "'after.camera'"),
        (message("new", review_item(id=None)), "'after.id'"),
        (message("new", review_item(severity="critical")), "'after.severity'"),
        (message("new", review_item(severity=None)), "'after.severity'"),
        (message("new", review_item(data=None)), "'after.data'"),
        (message("new", review_item(data=["person"])), "'after.data'"),
        (message("new", review_item(data=review_data(objects=[]))), "no objects"),
        (message("new", review_item(data=review_data(objects="person"))), "'after.data.objects'"),
        (
            message("new", review_item(data=review_data(objects=["-verified"]))),
            "review label",
        ),
        (message("new", review_item(data=review_data(zones=[1]))), "'after.data.zones'"),
        (message("new", review_item(data=review_data(detections={}))), "'after.data.detections'"),
        (
            message("new", review_item(data=review_data(sub_labels="Bob"))),
            "'after.data.sub_labels'",
        ),
        (message("new", review_item(data=review_data(audio=[None]))), "'after.data.audio'"),
        (message("new", review_item(start_time=None)), "'after.start_time'"),
        (message("new", review_item(start_time="yesterday")), "'after.start_time'"),
        (message("new", review_item(start_time=START + 3600)), "in the future"),
        (message("end", review_item(end_time=START - 40 * 86400)), "'after.end_time'"),
        (message("update", review_item(), review_item(severity="urgent")), "'before.severity'"),
    ],
)
def test_bad_reviews_are_rejected_with_a_reason_naming_the_field(payload, reason):
    result = parse_frigate_review(payload, NOW)
    assert isinstance(result, Rejected)
    assert reason in result.reason


def test_now_is_only_a_fallback():
    later = NOW + timedelta(minutes=5)
    payload = message("new", tracked_object())
    assert parse_frigate_event(payload, later) == parse_frigate_event(payload, NOW)


def test_audio_only_review_takes_its_label_from_the_sound():
    payload = message("new", review_item(data=review_data(objects=[], audio=["Scream"])))
    detection = parse_frigate_review(payload, NOW)
    assert not isinstance(detection, Rejected)
    assert detection.event.label == "scream"
