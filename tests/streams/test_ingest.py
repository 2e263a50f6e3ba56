import json
import time

import pytest
from django.utils import timezone

from alerts.models import Alert
from command.org.models import Device
from command.timeline.models import TimelineEntry
from streams.ingest import InboundMessage, directory, store_batch
from streams.models import DeadLetter, DeviceEvent, Reading

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_directory():
    directory.forget()


def camera_message(device="cam-01", event_id="evt-1", label="excavator", **extra):
    payload = {"id": event_id, "ts": int(time.time() * 1000), "label": label, "score": 0.9}
    payload.update(extra)
    return InboundMessage(f"whistle/qingshui/camera/{device}/event", json.dumps(payload).encode())


def test_camera_event_is_stored_and_raises_one_alert(
    demo, django_capture_on_commit_callbacks, capture_broadcasts
):
    with django_capture_on_commit_callbacks(execute=True):
        result = store_batch([camera_message()])
    assert (result.events, result.alerts_raised, result.dead_letters) == (1, 1, 0)
    event = DeviceEvent.objects.get()
    assert (event.device.code, event.label, event.event_id) == ("cam-01", "excavator", "evt-1")
    alert = Alert.objects.get()
    assert alert.category.code == "illegal-mining"
    assert alert.device_id == event.device_id and alert.status == Alert.Status.NEW
    ((group, sent),) = capture_broadcasts
    assert group == "board.qingshui"
    # The event names its board's township too, for the district boards that hear it.
    assert sent == {
        "type": "alert.raised",
        "alert_id": alert.pk,
        "id": sent["id"],
        "board": "qingshui",
    }
    assert len(sent["id"]) == 32  # each event its own id: sockets share its rendered frame
    assert (
        TimelineEntry.objects.filter(
            subject_type="alert", subject_id=alert.pk, action="alert.raised"
        ).count()
        == 1
    )


def test_redelivered_message_changes_nothing(demo):
    message = camera_message()
    store_batch([message])
    again = store_batch([message])
    assert (again.events, again.duplicates, again.alerts_raised) == (0, 1, 0)
    assert DeviceEvent.objects.count() == 1
    assert Alert.objects.get().count == 1


def test_repeats_count_up_on_the_open_alert(demo):
    store_batch([camera_message(event_id="a"), camera_message(event_id="b")])
    store_batch([camera_message(event_id="c")])
    alert = Alert.objects.get()
    assert alert.count == 3
    assert DeviceEvent.objects.count() == 3


def test_bad_messages_become_dead_letters_and_good_ones_in_the_batch_are_stored(demo):
    result = store_batch(
        [
            InboundMessage("whistle/qingshui/camera/cam-01/event", b"{oops"),
            camera_message(device="cam-404"),
            InboundMessage("whistle/qingshui/elevator/e-1/event", b"{}"),
            camera_message(event_id="good"),
            InboundMessage("whistle/qingshui/sensor/wl-01/telemetry", b'{"water_level": NaN}'),
        ]
    )
    assert result.events == 1 and result.dead_letters == 4
    reasons = sorted(DeadLetter.objects.values_list("reason", flat=True))
    assert any("malformed JSON" in r for r in reasons)
    assert "unknown device qingshui/cam-404" in reasons
    assert "topic matches no known format" in reasons
    assert any("NaN" in r for r in reasons)
    # The raw bytes are kept so an administrator can replay after fixing the cause.
    assert bytes(DeadLetter.objects.get(topic__endswith="cam-01/event").payload) == b"{oops"


def test_telemetry_is_stored_and_marks_the_device_online(demo):
    before = timezone.now()
    result = store_batch(
        [InboundMessage("whistle/qingshui/sensor/wl-01/telemetry", b'{"water_level": 2.75}')]
    )
    assert result.readings == 1
    reading = Reading.objects.get()
    assert (reading.metric, reading.value) == ("water_level", 2.75)
    device = Device.objects.get(code="wl-01")
    assert device.online and device.last_seen >= before


def test_gateway_status_offline_marks_it_offline(demo):
    gateway = Device.objects.filter(kind=Device.Kind.GATEWAY).first()
    topic = f"whistle/qingshui/gateway/{gateway.code}/status"
    store_batch([InboundMessage(topic, b"online")])
    assert Device.objects.get(pk=gateway.pk).online
    store_batch([InboundMessage(topic, b"offline")])
    assert not Device.objects.get(pk=gateway.pk).online
    labels = list(
        DeviceEvent.objects.filter(device=gateway).order_by("time").values_list("label", flat=True)
    )
    assert labels == ["online", "offline"]


def test_unknown_labels_are_stored_without_an_alert(demo):
    result = store_batch([camera_message(label="bicycle")])
    assert result.events == 1 and result.alerts_raised == 0
    assert not Alert.objects.exists()


def test_dead_letter_replays_after_the_device_is_registered(demo):
    from command.org.models import Township
    from streams.ingest import dead_letters_replay

    store_batch([camera_message(device="cam-new", event_id="late")])
    letter = DeadLetter.objects.get()
    assert letter.reason == "unknown device qingshui/cam-new"
    assert dead_letters_replay(ids=[letter.pk]) == (0, 1)

    Device.objects.create(
        township=Township.objects.get(code="qingshui"), code="cam-new", kind="camera", name="新"
    )
    assert dead_letters_replay(ids=[letter.pk]) == (1, 0)
    letter.refresh_from_db()
    assert letter.replayed_at is not None
    assert DeviceEvent.objects.filter(event_id="late").count() == 1
    assert DeadLetter.objects.count() == 1  # replay added no new letter


def test_nul_characters_are_refused_before_the_database_sees_them(demo):
    result = store_batch([camera_message(label="gar\u0000bage")])
    assert result.dead_letters == 1
    assert "NUL" in DeadLetter.objects.get().reason


def test_a_message_the_database_refuses_is_isolated_and_the_rest_stored(demo):
    from django.db import connection

    from streams.ingest import store_batch_isolating

    # A site's own constraint stands in for any value PostgreSQL refuses after parsing passed.
    with connection.cursor() as cursor:
        cursor.execute(
            "ALTER TABLE streams_deviceevent"
            " ADD CONSTRAINT test_no_poison CHECK (label <> 'poison')"
        )
    batch = [camera_message(event_id=f"ok-{i}") for i in range(5)]
    batch.insert(3, camera_message(event_id="bad", label="poison"))
    result = store_batch_isolating(batch)
    assert (result.events, result.dead_letters) == (5, 1)
    assert set(DeviceEvent.objects.values_list("event_id", flat=True)) == {
        f"ok-{i}" for i in range(5)
    }
    letter = DeadLetter.objects.get()
    assert "database refused the message" in letter.reason and "test_no_poison" in letter.reason


def test_redelivered_readings_in_a_batch_with_new_ones_store_only_the_new(demo):
    def telemetry(ts):
        return InboundMessage(
            "whistle/qingshui/sensor/wl-01/telemetry",
            json.dumps({"ts": ts, "values": {"water_level": ts % 1000 / 10}}).encode(),
        )

    base = int(time.time() * 1000) - 10_000
    first = store_batch([telemetry(base + i) for i in range(3)])
    assert first.readings == 3
    # A reconnect redelivers two of them alongside two new ones: the fast COPY meets the primary
    # key, and the batch goes through the merge that skips what is stored.
    again = store_batch([telemetry(base + i) for i in range(1, 5)])
    assert again.readings == 2
    assert Reading.objects.count() == 5


@pytest.mark.django_db
def test_a_district_batch_resolves_each_code_within_its_own_township():
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from demo.district import seed_district
    from streams.ingest import DeviceDirectory

    summary = seed_district(townships=3, sensors=4, cameras=2)
    first, second, _third = summary.townships
    keys = {(first, "cam-01"), (second, "cam-01"), (second, "cam-02"), (first, "nope")}
    with CaptureQueriesContext(connection) as queries:
        refs = DeviceDirectory().resolve(keys)
    assert len(queries.captured_queries) == 1
    for township, code in keys - {(first, "nope")}:
        device = Device.objects.get(township__code=township, code=code)
        assert refs[(township, code)].id == device.pk
    assert refs[(first, "nope")] is None
    # Only the devices asked for are read, not every township's cam-01 and cam-02.
    with connection.cursor() as cursor:
        cursor.execute(queries.captured_queries[0]["sql"])
        assert len(cursor.fetchall()) == 3
