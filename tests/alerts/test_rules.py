"""A township's alert rules: camera detections in a time window, thresholds held for a duration
with hysteresis (state kept across restarts), devices going offline."""

import json
from datetime import UTC, datetime, time, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from alerts.models import Alert, AlertRule, RuleState
from alerts.rules import in_window, rulebook
from command.org.models import Category, Device, Township
from streams.ingest import InboundMessage, directory, store_batch

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_caches():
    directory.forget()
    rulebook.forget()
    yield
    rulebook.forget()


@pytest.fixture
def bare(demo):
    """The demo township without its seeded rules: each test states the rules it needs."""
    AlertRule.objects.all().delete()
    return demo


def rule(**fields):
    defaults = {
        "township": Township.objects.get(code="qingshui"),
        "category": Category.objects.get(code="illegal-mining"),
        "severity": "critical",
    }
    return AlertRule.objects.create(**{**defaults, **fields})


def camera(device, label, when, score=0.9, zones=()):
    payload = {
        "id": f"{label}-{when.timestamp()}",
        "ts": int(when.timestamp() * 1000),
        "label": label,
        "score": score,
        "zones": list(zones),
    }
    return InboundMessage(f"whistle/qingshui/camera/{device}/event", json.dumps(payload).encode())


def local(hour, minute=0):
    """Today (or yesterday, to stay in the past) at this Beijing time, as UTC."""
    now = timezone.now()
    moment = now.astimezone(timezone.get_default_timezone()).replace(
        hour=hour, minute=minute, second=0, microsecond=0
    )
    if moment > now:
        moment -= timedelta(days=1)
    return moment.astimezone(UTC)


def test_time_windows_span_midnight():
    night = (time(22, 0), time(6, 0))
    beijing = "Asia/Shanghai"
    assert in_window(datetime(2026, 11, 23, 15, 30, tzinfo=UTC), *night, beijing)  # 23:30
    assert in_window(datetime(2026, 11, 23, 21, 0, tzinfo=UTC), *night, beijing)  # 05:00
    assert not in_window(datetime(2026, 11, 23, 6, 0, tzinfo=UTC), *night, beijing)  # 14:00
    assert in_window(datetime(2026, 11, 23, 6, 0, tzinfo=UTC), None, None, beijing)


def test_excavator_at_the_closed_quarry_at_night_only(bare):
    rule(
        name="关停矿区夜间作业",
        kind=AlertRule.Kind.CAMERA_LABEL,
        labels=["excavator", "dump_truck"],
        min_score=0.6,
        zones=["quarry-pit"],
        active_from=time(22, 0),
        active_until=time(6, 0),
    )
    store_batch([camera("cam-quarry", "excavator", local(14), zones=["quarry-pit"])])
    assert not Alert.objects.exists(), "by day the quarry's machines raise nothing"
    store_batch([camera("cam-quarry", "excavator", local(23), score=0.5, zones=["quarry-pit"])])
    assert not Alert.objects.exists(), "below the minimum score"
    store_batch([camera("cam-quarry", "excavator", local(23), zones=["road"])])
    assert not Alert.objects.exists(), "outside the rule's zone"
    store_batch([camera("cam-quarry", "excavator", local(23, 30), zones=["quarry-pit"])])
    alert = Alert.objects.get()
    assert (alert.category.code, alert.severity) == ("illegal-mining", "critical")
    assert alert.title.startswith("关停矿区夜间作业")


def test_rules_are_validated(bare):
    bad = [
        AlertRule(kind=AlertRule.Kind.CAMERA_LABEL, labels=[], name="x"),
        AlertRule(kind=AlertRule.Kind.CAMERA_LABEL, labels=["fire"], min_score=3, name="x"),
        AlertRule(kind=AlertRule.Kind.CAMERA_LABEL, labels=["fire"], active_from=time(1), name="x"),
        AlertRule(kind=AlertRule.Kind.THRESHOLD, metric="", threshold=1, name="x"),
        AlertRule(kind=AlertRule.Kind.THRESHOLD, metric="wl", threshold=3, clear_at=4, name="x"),
        AlertRule(kind=AlertRule.Kind.DEVICE_OFFLINE, device_kinds=["toaster"], name="x"),
    ]
    for candidate in bad:
        with pytest.raises(ValidationError):
            candidate.clean()
    AlertRule(
        kind=AlertRule.Kind.THRESHOLD, metric="water_level", threshold=3.0, clear_at=2.5, name="x"
    ).clean()


def water(level, when):
    payload = {"ts": int(when.timestamp() * 1000), "values": {"water_level": level}}
    return InboundMessage("whistle/qingshui/sensor/wl-01/telemetry", json.dumps(payload).encode())


def test_threshold_held_for_a_minute_with_hysteresis_across_restarts(bare):
    flood = Category.objects.get(code="flood")
    rule(
        name="河道水位超警",
        kind=AlertRule.Kind.THRESHOLD,
        category=flood,
        metric="water_level",
        operator="above",
        threshold=3.0,
        clear_at=2.5,
        hold_seconds=60,
    )
    t0 = timezone.now() - timedelta(minutes=5)

    def restart():
        # Nothing the worker kept in memory survives a restart; the rule state must.
        directory.forget()
        rulebook.forget()

    store_batch([water(3.2, t0), water(3.3, t0 + timedelta(seconds=30))])
    assert not Alert.objects.exists(), "not yet held for a minute"
    restart()
    store_batch([water(3.4, t0 + timedelta(seconds=61))])
    alert = Alert.objects.get()
    assert (alert.source, alert.category.code, alert.status) == ("sensor", "flood", "new")
    restart()
    store_batch([water(2.8, t0 + timedelta(seconds=90))])
    assert Alert.objects.get().status == "new", "between the two values: still flooding"
    store_batch([water(2.4, t0 + timedelta(seconds=120))])
    assert Alert.objects.get().status == "cleared"
    state = RuleState.objects.get()
    assert not state.active and state.breached_since is None and state.last_value == 2.4


def test_a_dip_below_the_threshold_restarts_the_duration(bare):
    rule(
        name="河道水位超警",
        kind=AlertRule.Kind.THRESHOLD,
        metric="water_level",
        threshold=3.0,
        hold_seconds=60,
        category=Category.objects.get(code="flood"),
    )
    t0 = timezone.now() - timedelta(minutes=5)
    store_batch(
        [
            water(3.2, t0),
            water(2.9, t0 + timedelta(seconds=40)),
            water(3.1, t0 + timedelta(seconds=70)),
        ]
    )
    assert not Alert.objects.exists()
    store_batch([water(3.1, t0 + timedelta(seconds=131))])
    assert Alert.objects.count() == 1


def test_gateway_offline_raises_and_online_clears(bare):
    rule(
        name="网关离线",
        kind=AlertRule.Kind.DEVICE_OFFLINE,
        device_kinds=["gateway"],
        category=Category.objects.get(code="public-order"),
        severity="major",
    )
    gateway = Device.objects.filter(kind="gateway").first()
    topic = f"whistle/qingshui/gateway/{gateway.code}/status"
    store_batch([InboundMessage(topic, b"offline")])
    alert = Alert.objects.get()
    assert (alert.source, alert.device_id, alert.status) == ("device", gateway.pk, "new")
    store_batch([InboundMessage(topic, b"online")])
    assert Alert.objects.get().status == "cleared"


def test_heartbeat_timeout_raises_the_offline_rule(bare):
    from streams.devices import devices_mark_stale

    rule(
        name="摄像头离线",
        kind=AlertRule.Kind.DEVICE_OFFLINE,
        device_kinds=["camera"],
        category=Category.objects.get(code="public-order"),
        severity="minor",
    )
    camera_device = Device.objects.get(code="cam-01")
    Device.objects.filter(pk=camera_device.pk).update(
        online=True, last_seen=timezone.now() - timedelta(hours=1)
    )
    assert devices_mark_stale() == 1
    assert Alert.objects.get().device_id == camera_device.pk


def test_water_rising_fast_raises_and_clears_when_it_steadies(bare):
    rule(
        name="水位快速上涨",
        kind=AlertRule.Kind.RATE_OF_CHANGE,
        category=Category.objects.get(code="flood"),
        metric="water_level",
        operator="above",
        threshold=0.3,
        clear_at=0.05,
        per_seconds=60,
    )
    t0 = timezone.now() - timedelta(minutes=10)
    store_batch([water(2.0, t0), water(2.1, t0 + timedelta(seconds=60))])
    assert not Alert.objects.exists(), "0.1 m a minute is within the rule"
    directory.forget()
    rulebook.forget()  # a restart between readings: the last value is in the database
    store_batch([water(2.3, t0 + timedelta(seconds=90))])  # 0.4 m a minute
    alert = Alert.objects.get()
    assert alert.detail["rate"] == pytest.approx(0.4)
    store_batch([water(2.33, t0 + timedelta(seconds=150))])  # 0.03 m a minute: steady
    assert Alert.objects.get().status == "cleared"


def test_rate_rules_are_validated(bare):
    with pytest.raises(ValidationError):
        AlertRule(kind=AlertRule.Kind.RATE_OF_CHANGE, metric="wl", threshold=-1, name="x").clean()
    with pytest.raises(ValidationError):
        AlertRule(
            kind=AlertRule.Kind.RATE_OF_CHANGE,
            metric="wl",
            threshold=0.3,
            clear_at=0.5,
            name="x",
        ).clean()
