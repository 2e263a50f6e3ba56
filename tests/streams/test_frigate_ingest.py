"""Frigate's own topics through ingest: camera name → device, alerts only where Frigate says."""

import copy
import json
import time

import pytest

from alerts.models import Alert
from command.org.models import Device
from streams.ingest import InboundMessage, directory, store_batch
from streams.models import DeadLetter, DeviceEvent
from tests.conftest import wait_for


def frigate_event(kind: str, *, camera="quarry", label="excavator", zones=(), before=None):
    start = time.time() - 5
    after = {
        "id": f"{start:.6f}-abc123",
        "camera": camera,
        "frame_time": start + 2,
        "snapshot": {"frame_time": start + 1, "box": [1, 2, 3, 4], "area": 4, "score": 0.8},
        "label": label,
        "sub_label": None,
        "top_score": 0.87,
        "false_positive": False,
        "start_time": start,
        "end_time": start + 4 if kind == "end" else None,
        "score": 0.85,
        "current_zones": list(zones),
        "entered_zones": list(zones),
        "has_snapshot": True,
        "has_clip": True,
        "stationary": False,
        "thumbnail": "aGVsbG8=",
    }
    previous = before if before is not None else copy.deepcopy(after)
    return json.dumps({"type": kind, "before": previous, "after": after}).encode()


# A township's Frigate publishes under its own prefix (Frigate's mqtt.topic_prefix).
TOPIC = "frigate/qingshui/events"


@pytest.fixture(autouse=True)
def fresh_directory():
    directory.forget()


@pytest.mark.django_db
def test_new_frigate_event_on_the_quarry_camera_raises_an_alert(demo):
    quarry = Device.objects.get(metadata__frigate_camera="quarry")
    result = store_batch([InboundMessage(TOPIC, frigate_event("new"))])
    assert (result.events, result.alerts_raised, result.dead_letters) == (1, 1, 0)
    event = DeviceEvent.objects.get()
    assert event.device_id == quarry.pk and event.event_id.endswith(":new")
    assert "thumbnail" not in event.payload
    assert Alert.objects.get().category.code == "illegal-mining"


@pytest.mark.django_db
def test_frigate_end_is_stored_without_an_alert_and_redelivery_changes_nothing(demo):
    message = InboundMessage(TOPIC, frigate_event("end"))
    assert store_batch([message]).alerts_raised == 0
    assert store_batch([message]).duplicates == 1
    assert DeviceEvent.objects.count() == 1 and not Alert.objects.exists()


@pytest.mark.django_db
def test_unmapped_frigate_camera_is_a_dead_letter_and_replays_once_mapped(demo):
    from streams.ingest import dead_letters_replay

    store_batch([InboundMessage(TOPIC, frigate_event("new", camera="back_gate"))])
    letter = DeadLetter.objects.get()
    assert letter.reason == "no device of qingshui has frigate_camera 'back_gate'"
    camera = Device.objects.get(code="cam-01")
    camera.metadata = {**camera.metadata, "frigate_camera": "back_gate"}
    camera.save(update_fields=["metadata"])
    assert dead_letters_replay(ids=[letter.pk]) == (1, 0)
    assert DeviceEvent.objects.get().device_id == camera.pk


@pytest.mark.django_db
def test_frigate_camera_on_two_devices_is_refused(demo):
    for code in ("cam-01", "cam-02"):
        device = Device.objects.get(code=code)
        device.metadata = {"frigate_camera": "twin"}
        device.save(update_fields=["metadata"])
    store_batch([InboundMessage(TOPIC, frigate_event("new", camera="twin"))])
    assert DeadLetter.objects.get().reason == "frigate_camera 'twin' is set on 2 devices"


@pytest.mark.services
def test_frigate_over_mqtt(demo_committed, ingest_worker, publish_mqtt, mqtt_settings):
    if "qingshui" not in mqtt_settings.users:
        pytest.skip("the embedded broker has no per-user ACL to exercise")
    # The township's own credential, as its Frigate uses it.
    publish_mqtt(TOPIC, frigate_event("new", label="smoke"), user="qingshui")
    alert = wait_for(lambda: Alert.objects.filter(device__code="cam-quarry").first())
    assert alert.category.code == "fire"


@pytest.mark.django_db
def test_frigate_of_one_township_cannot_raise_alerts_in_another(demo):
    """The camera name is looked up only in the township of the topic: another township's
    Frigate (or anyone publishing under its prefix) naming qingshui's camera reaches nothing."""
    from command.org.models import Township

    Township.objects.create(code="dongshan", name="东山镇")
    store_batch([InboundMessage("frigate/dongshan/events", frigate_event("new"))])
    assert not Alert.objects.exists()
    assert not DeviceEvent.objects.exists()
    assert DeadLetter.objects.get().reason == ("no device of dongshan has frigate_camera 'quarry'")


@pytest.mark.django_db
def test_unprefixed_frigate_topic_needs_a_township(demo, settings):
    settings.FRIGATE_TOWNSHIP = ""
    store_batch([InboundMessage("frigate/events", frigate_event("new"))])
    assert not Alert.objects.exists()
    assert "names no township" in DeadLetter.objects.get().reason
    # A one-township deployment names it once.
    settings.FRIGATE_TOWNSHIP = "qingshui"
    result = store_batch([InboundMessage("frigate/events", frigate_event("new", label="smoke"))])
    assert result.alerts_raised == 1


@pytest.mark.services
def test_broker_keeps_each_township_to_its_own_frigate_prefix(
    demo_committed, ingest_worker, publish_mqtt, mqtt_settings
):
    """Mosquitto's ACL: a township's credential may publish Frigate messages under its own
    prefix only; under another township's they are dropped by the broker."""
    if "qingshui" not in mqtt_settings.users:
        pytest.skip("the embedded broker has no per-user ACL to exercise")
    publish_mqtt("frigate/dongshan/events", frigate_event("new", label="smoke"), user="qingshui")
    publish_mqtt(TOPIC, frigate_event("end"), user="qingshui")  # a marker that does arrive
    wait_for(lambda: DeviceEvent.objects.filter(event_id__endswith=":end").exists())
    assert not DeadLetter.objects.filter(topic__startswith="frigate/dongshan").exists()
