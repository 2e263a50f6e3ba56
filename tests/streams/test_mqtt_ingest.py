"""The first road over a real broker: gateway publishes → ingest stores → alert raised."""

import json
import time

import pytest

from alerts.models import Alert
from streams.models import DeadLetter, DeviceEvent
from tests.conftest import wait_for

pytestmark = pytest.mark.services


def test_camera_event_over_mqtt_becomes_an_alert(demo_committed, ingest_worker, publish_mqtt):
    payload = {"id": "mqtt-1", "ts": int(time.time() * 1000), "label": "fire", "score": 0.88}
    publish_mqtt("whistle/qingshui/camera/cam-02/event", json.dumps(payload))
    alert = wait_for(
        lambda: Alert.objects.filter(device__code="cam-02").first(), what="alert from MQTT"
    )
    assert alert.category.code == "fire" and alert.severity == "critical"
    assert DeviceEvent.objects.filter(event_id="mqtt-1").count() == 1


def test_bad_payload_does_not_block_the_good_one_behind_it(
    demo_committed, ingest_worker, publish_mqtt
):
    publish_mqtt("whistle/qingshui/camera/cam-03/event", b"\x00\x01 not json")
    good = {"id": "after-bad", "ts": int(time.time() * 1000), "label": "garbage"}
    publish_mqtt("whistle/qingshui/camera/cam-03/event", json.dumps(good))
    wait_for(lambda: DeviceEvent.objects.filter(event_id="after-bad").exists(), what="good event")
    assert DeadLetter.objects.filter(topic="whistle/qingshui/camera/cam-03/event").count() == 1


def test_a_camera_event_is_stored_ahead_of_the_readings_of_its_batch(settings):
    """Not over a broker: the worker's batching, given messages as paho hands them over."""
    import paho.mqtt.client as mqtt

    from streams.mqtt.client import IngestWorker

    settings.MQTT_URL = "mqtt://127.0.0.1:1"  # never connected to
    worker = IngestWorker("test-batching")
    stored: list[list[str]] = []
    worker._store = lambda batch: stored.append([m.topic for _, m in batch])
    topics = [
        "whistle/qingshui/sensor/wl-01/telemetry",
        "whistle/qingshui/camera/cam-01/event",
        "whistle/qingshui/gateway/gw-01/status",
        "whistle/qingshui/sensor/wl-02/telemetry",
    ]
    for mid, topic in enumerate(topics, 1):
        message = mqtt.MQTTMessage(mid=mid, topic=topic.encode())
        message.payload, message.qos = b"{}", 1
        worker._on_message(None, None, message)
    assert worker._events_pending == 1
    worker._flush()
    assert stored == [[topics[1]], [topics[0], topics[2], topics[3]]]
    assert worker._events_pending == 0 and worker._pending == []

    # A batch of readings alone, or of events alone, is stored as it is.
    for mid, topic in enumerate(topics[:1] + topics[3:], 10):
        message = mqtt.MQTTMessage(mid=mid, topic=topic.encode())
        message.payload = b"{}"
        worker._on_message(None, None, message)
    worker._flush()
    assert stored[-1] == [topics[0], topics[3]]
