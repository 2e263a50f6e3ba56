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


def test_only_the_lane_of_readings_beats_for_the_health_check(
    mqtt_settings, transactional_db, monkeypatch
):
    """whistle ingest's lane of camera events is idle most of the time: were it to beat, the
    healthcheck would stay green while the lane of readings hung on the database."""
    import threading
    import uuid

    from command import health
    from streams.mqtt.client import IngestWorker

    beats: list[str] = []
    monkeypatch.setattr(health, "beat", lambda name: beats.append(threading.current_thread().name))
    suffix = uuid.uuid4().hex[:6]
    events = IngestWorker(f"test-beat-{suffix}-events", events=True)
    readings = IngestWorker(f"test-beat-{suffix}", events=False)
    threads = [
        threading.Thread(target=events.run, name="events", daemon=True),
        threading.Thread(target=readings.run, name="readings", daemon=True),
    ]
    try:
        threads[0].start()
        assert events.wait_subscribed(10), "the lane of camera events did not subscribe"
        threads[1].start()
        assert readings.wait_subscribed(10), "the lane of readings did not subscribe"
        # The events lane looped for as long as the other took to start, subscribe and beat.
        wait_for(lambda: "readings" in beats, what="the lane of readings to beat")
        assert "events" not in beats
    finally:
        events.stop()
        readings.stop()
        for thread in threads:
            thread.join(10)
