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
