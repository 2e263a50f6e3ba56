"""The simulated district: seed_district's townships, and `whistle simulate --district`
publishing its schedule through the project's Mosquitto (each township logged in as itself) into
a real ingest worker, checked row by row."""

from __future__ import annotations

import shutil
import threading
import uuid
from collections import Counter
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from command.org.models import Device, Grid, Township, User
from demo.district import DISTRICT_NAME, seed_district, township_code
from streams.simulate import DistrictPlan, DistrictSimulator, load_district, reading_time_ms
from tests.conftest import wait_for

pytestmark = pytest.mark.django_db


def test_seed_district_makes_the_townships_once() -> None:
    from alerts.models import AlertRule

    summary = seed_district(townships=3, sensors=40, cameras=6, duty_password="district-pass-1")
    assert summary.townships == ["sim-01", "sim-02", "sim-03"]
    assert summary.created > 0
    townships = Township.objects.filter(code__in=summary.townships)
    assert {t.district.name for t in townships} == {DISTRICT_NAME}
    for township in townships:
        kinds = Counter(Device.objects.filter(township=township).values_list("kind", flat=True))
        assert kinds[Device.Kind.SENSOR] == 40
        assert kinds[Device.Kind.CAMERA] == 6
        assert kinds[Device.Kind.GATEWAY] == summary.gateways
        assert Grid.objects.filter(township=township).count() == 50
        # Camera events raise alerts there as in the demo township.
        assert AlertRule.objects.filter(township=township, labels__contains=["flood"]).exists()
        duty = User.objects.get(username=f"duty-{township.code}")
        assert (duty.role, duty.township_id) == (User.Role.DUTY_OFFICER, township.pk)
        assert duty.check_password("district-pass-1")
    # Every sensor and camera hangs off a gateway and sits in a grid of its township.
    leaves = Device.objects.filter(township__code="sim-01").exclude(kind=Device.Kind.GATEWAY)
    assert not leaves.filter(gateway=None).exists()
    assert not leaves.exclude(grid__township__code="sim-01").exists()

    again = seed_district(townships=3, sensors=40, cameras=6, duty_password="district-pass-1")
    assert again.created == 0
    assert Device.objects.filter(township__code__in=summary.townships).count() == 3 * (
        46 + summary.gateways
    )


def test_plan_spreads_the_readings_evenly() -> None:
    """3,000 msg/s means 3,000 every second, not 30,000 every tenth one: each tenth of the
    interval holds a tenth of the readings, and consecutive slots change township."""
    from streams.simulate import DistrictTownship

    townships = tuple(
        DistrictTownship(
            code=f"t{n}",
            sensors=tuple((f"s-{i}", "water_level") for i in range(300)),
            cameras=(),
            gateways=(),
        )
        for n in range(10)
    )
    plan = DistrictPlan(townships=townships, sensor_interval=10.0)
    slots = sorted((plan.phase_ms(t, s), t) for t in range(10) for s in range(300))
    per_second = Counter(phase // 1000 for phase, _t in slots)
    assert set(per_second) == set(range(10))
    assert max(per_second.values()) - min(per_second.values()) <= 30  # within 1 % of 3,000
    changes = sum(1 for (_a, x), (_b, y) in pairwise(slots) if x != y)
    assert changes > 0.8 * len(slots)
    assert plan.offered_rate == 300.0


@pytest.mark.services
def test_district_simulator_is_stored_row_by_row(
    tmp_path: Path, settings: Any, transactional_db: None
) -> None:
    if not (shutil.which("mosquitto") or Path("/usr/sbin/mosquitto").exists()):
        pytest.skip("mosquitto is not installed")
    from streams.ingest import directory
    from streams.models import DeviceEvent, Reading
    from streams.mqtt.client import IngestWorker
    from tests.brokers import mosquitto_broker

    seed_district(townships=2, sensors=30, cameras=4)
    codes = [township_code(1), township_code(2)]
    users = {"whistle-ingest": "ingest-" + uuid.uuid4().hex, **dict.fromkeys(codes, "gw-secret")}
    with mosquitto_broker(tmp_path, users) as broker:
        settings.MQTT_URL = broker.url_for("whistle-ingest")
        settings.MQTT_PROTOCOL = "5"
        directory.forget()
        worker = IngestWorker(f"test-ingest-{uuid.uuid4().hex[:6]}")
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        try:
            assert worker.wait_subscribed(10)
            # Each township's gateways log in as the township (the ACL allows nothing else).
            settings.MQTT_URL = broker.url_for(codes[0])
            plan = DistrictPlan(
                townships=load_district(codes),
                sensor_interval=1.0,
                burst_every=0.5,
                township_logins=True,
            )
            simulator = DistrictSimulator(plan, processes=2)
            reports = simulator.run(duration=2.5)
            published = simulator.report_json()
            assert published["errors"] == [] and len(reports) == 2
            assert published["acked"] == published["published"] > 2 * 60
            assert published["refused"] == 0
            readings = published["readings"]
            events = published["camera_events"]
            assert events, "no camera burst in 2.5 s at one every 0.5 s per township"
            expected = {
                (township, code, reading_time_ms(published["start_ms"], phase, k, 1000))
                for township, code, count, phase in readings
                for k in range(count)
            }

            def stored() -> list[tuple[str, str, int]]:
                return [
                    (t, d, int(moment.timestamp() * 1000))
                    for t, d, moment in Reading.objects.filter(
                        device__township__code__in=codes
                    ).values_list("device__township__code", "device__code", "time")
                ]

            wait_for(lambda: len(stored()) >= len(expected), what="every reading stored")
            rows = stored()
            assert len(rows) == len(set(rows)), "a reading stored twice"
            assert set(rows) == expected
            wait_for(
                lambda: (
                    DeviceEvent.objects.filter(event_id__in=[e[2] for e in events]).count()
                    >= len(events)
                ),
                what="every camera event stored",
            )
            kept = DeviceEvent.objects.filter(event_id__in=[e[2] for e in events])
            assert sorted(kept.values_list("event_id", flat=True)) == sorted(e[2] for e in events)
            # Bursts: several events of one camera within a few seconds.
            per_camera = Counter((e[0], e[1]) for e in events)
            assert max(per_camera.values()) >= 2
            first = datetime.fromtimestamp(published["start_ms"] / 1000, UTC)
            assert all(moment >= first for moment in kept.values_list("time", flat=True))
        finally:
            worker.stop()
            thread.join(10)
