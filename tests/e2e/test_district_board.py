"""The district board: the district's duty officer sees every township of the district on one
screen, live: an alert in any township, a department late in another, without a reload; a
township of another district is not on it."""

import json
import time
from datetime import timedelta

import pytest

from alerts.models import Alert
from command import clock
from command.org.models import Category, Department, District, Grid, Township, User
from incidents.models import Summons, Whistle
from incidents.services.deadlines import summons_deadlines_sweep
from incidents.services.incidents import incident_open
from incidents.services.whistles import SummonedDepartment, whistle_blow
from tests.conftest import raise_alert, wait_for
from tests.e2e.conftest import screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.services]


def _square(lon: float, lat: float, size: float = 0.02) -> dict:
    ring = [[lon, lat], [lon + size, lat], [lon + size, lat + size], [lon, lat + size], [lon, lat]]
    return {"type": "Polygon", "coordinates": [ring]}


def _township(code: str, name: str, name_en: str, district: District, lon: float) -> Township:
    township = Township.objects.create(code=code, name=name, name_en=name_en, district=district)
    Grid.objects.create(
        township=township,
        code=f"{code}-001",
        name=f"{name}一网格",
        kind=Grid.Kind.COMPREHENSIVE,
        polygon=_square(lon, 40.22),
    )
    return township


def test_district_board_shows_every_township_live(
    daphne_server, demo_committed, ingest_worker, publish_mqtt, board_page
):
    qingshui = Township.objects.get(code="qingshui")
    district = qingshui.district
    beishan = _township("beishan", "北山镇", "Beishan Town", district, 116.70)
    nanhe = _township("nanhe", "南河镇", "Nanhe Town", district, 116.74)
    elsewhere = District.objects.create(code="baiyun", name="白云区")
    other = _township("baiyun-town", "白云镇", "Baiyun Town", elsewhere, 116.80)
    raise_alert(other.pk, "other-district", title="ALERT-BY", severity="critical")

    page = board_page("district")
    # The district's duty officer lands on the district board.
    assert page.url.endswith("/district/qingshan/"), page.url
    page.wait_for_selector("#live-status.live", timeout=10_000)
    page.evaluate("window.__notReloaded = true")
    rows = page.locator("#district-queues tbody tr[data-township]")
    assert sorted(rows.evaluate_all("rs => rs.map(r => r.dataset.township)")) == [
        "beishan",
        "nanhe",
        "qingshui",
    ]
    assert page.locator("#district-overlay .township-badge").count() == 3
    assert "白云镇" not in page.inner_text("body")

    # A camera event in qingshui, over MQTT through ingest: on the district board at once.
    payload = {"id": "d-1", "ts": int(time.time() * 1000), "label": "excavator", "score": 0.9}
    publish_mqtt("whistle/qingshui/camera/cam-quarry/event", json.dumps(payload))
    alert = wait_for(lambda: Alert.objects.filter(device__code="cam-quarry").first())
    row = page.wait_for_selector(f"#district-alert-{alert.pk}", timeout=10_000)
    assert "清水镇" in row.inner_text()
    page.wait_for_selector(
        "#district-overlay .township-badge[data-township='qingshui'][data-open='1']",
        timeout=10_000,
    )

    # A critical alert in beishan: its row, its badge and the district's figures.
    raise_alert(beishan.pk, "bs-fire", title="火情", category="fire", severity="critical")
    page.wait_for_selector(
        "#district-row-beishan.state-alert td[data-col='open']:text('1')", timeout=10_000
    )
    page.wait_for_function(
        "() => document.querySelector(\"#district-figures [data-figure='open_alerts']\")"
        ".textContent === '2'",
        timeout=10_000,
    )

    # A department late to arrive in nanhe: the escalations list and nanhe's row turn red.
    parking = Category.objects.get(code="parking")
    officer = User.objects.get(username="district")  # commands every township of the district
    with clock.moved(by=-timedelta(hours=3)):
        incident = incident_open(
            actor=officer,
            township=nanhe,
            category=parking,
            severity="major",
            title="南河镇违停",
            grid=Grid.objects.get(township=nanhe),
        )
        whistle_blow(
            actor=officer,
            incident=incident,
            kind=Whistle.Kind.GENERAL,
            purpose=Whistle.Purpose.JOINT_ENFORCEMENT,
            departments=[SummonedDepartment(Department.objects.get(code="chengguan"))],
        )
    summons_deadlines_sweep()
    assert Summons.objects.filter(whistle__incident=incident, overdue=True).exists()
    page.wait_for_selector("#district-row-nanhe.state-late", timeout=10_000)
    escalations = page.wait_for_selector(
        "#district-escalations tr.late", state="attached", timeout=10_000
    )
    assert "南河镇" in escalations.inner_text()
    assert page.evaluate("window.__notReloaded") is True
    assert "白云镇" not in page.inner_text("body")
    screenshot(page, "district-board")

    # Each township links to its own board, which the district's duty officer may open.
    page.click("#district-row-beishan th a")
    page.wait_for_url("**/board/beishan/", timeout=10_000)
    page.wait_for_selector("#live-status.live", timeout=10_000)
    assert page.locator("#alert-queue li.alert").count() == 1
