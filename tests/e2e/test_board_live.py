"""A camera event over MQTT appears on the duty officer's board without a reload."""

import json
import time

import pytest

from alerts.models import Alert
from tests.conftest import wait_for
from tests.e2e.conftest import screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.services]


def test_camera_event_appears_live_on_the_duty_board(
    daphne_server, demo_committed, ingest_worker, publish_mqtt, board_page
):
    page = board_page("duty")
    assert page.url.endswith("/board/qingshui/")
    page.wait_for_selector("#live-status.live", timeout=10_000)
    page.evaluate("window.__notReloaded = true")

    payload = {"id": "e2e-1", "ts": int(time.time() * 1000), "label": "excavator", "score": 0.93}
    publish_mqtt("whistle/qingshui/camera/cam-quarry/event", json.dumps(payload))

    alert = wait_for(lambda: Alert.objects.filter(device__code="cam-quarry").first())
    row = page.wait_for_selector(f"#alert-{alert.pk}", timeout=10_000)
    assert "盗采" in row.inner_text()
    assert page.evaluate("window.__notReloaded") is True
    assert page.inner_text("#open-count") == "1"

    # A repeat counts up on the same row instead of adding one.
    payload.update(id="e2e-2")
    publish_mqtt("whistle/qingshui/camera/cam-quarry/event", json.dumps(payload))
    page.wait_for_selector(f"#alert-{alert.pk} .repeat", timeout=10_000)
    assert page.locator("#alert-queue li.alert").count() == 1
    screenshot(page, "board-live-alert")

    # By keyboard, in place: choose the alert, acknowledge it, open an incident from it.
    page.keyboard.press("j")
    page.wait_for_selector(f"#alert-{alert.pk}.selected")
    # Another repeat replaces the row; the officer's choice stays on it.
    payload.update(id="e2e-3")
    publish_mqtt("whistle/qingshui/camera/cam-quarry/event", json.dumps(payload))
    page.wait_for_function(
        "id => document.querySelector(`#${id} .repeat`).textContent.includes('3')",
        arg=f"alert-{alert.pk}",
        timeout=10_000,
    )
    page.wait_for_selector(f"#alert-{alert.pk}.selected", timeout=5_000)
    page.keyboard.press("a")
    page.wait_for_selector(f"#alert-{alert.pk} .status", timeout=10_000)
    alert.refresh_from_db()
    assert alert.status == "acknowledged"
    page.keyboard.press("j")
    page.keyboard.press("i")
    page.wait_for_selector("#incident-panel li.incident", timeout=10_000)
    page.wait_for_selector(f"#alert-{alert.pk}", state="detached", timeout=10_000)
    alert.refresh_from_db()
    assert alert.status == "escalated" and alert.incident is not None
    assert "盗采" in page.inner_text("#incident-panel")
    assert page.evaluate("window.__notReloaded") is True


def test_department_member_cannot_open_the_board_or_its_socket(
    daphne_server, demo_committed, board_page
):
    page = board_page("chengguan")
    response = page.goto(f"{daphne_server}/board/qingshui/")
    assert response.status == 403
    # The socket is refused too, even from a page of our own origin with the member's cookie.
    outcome = page.evaluate(
        """() => new Promise(resolve => {
            const ws = new WebSocket(`ws://${location.host}/ws/board/qingshui/`);
            ws.onopen = () => resolve("open");
            ws.onerror = () => resolve("refused");
            setTimeout(() => resolve("timeout"), 5000);
        })"""
    )
    assert outcome == "refused"


def test_selected_device_shows_its_live_chart(daphne_server, demo_committed, board_page):
    from datetime import timedelta

    from django.utils import timezone

    from command.org.models import Device
    from streams.models import Reading

    gauge = Device.objects.get(code="wl-02")
    now = timezone.now()
    Reading.objects.bulk_create(
        Reading(
            device=gauge,
            metric="water_level",
            time=now - timedelta(minutes=m),
            value=2.0 + (40 - m) * 0.03,
        )
        for m in range(40, 0, -1)
    )
    page = board_page("duty")
    page.wait_for_selector("#live-status.live", timeout=10_000)
    page.click("#map-overlay [data-device='wl-02']")
    panel = page.wait_for_selector("#device-panel[data-device='wl-02']", timeout=10_000)
    assert "滨河桥水位计" in panel.inner_text()
    assert page.inner_text("#device-panel .latest") == "3.17"
    screenshot(page, "board-device-chart")

    # A new reading shows without anyone touching the board.
    Reading.objects.create(device=gauge, metric="water_level", time=timezone.now(), value=3.64)
    page.wait_for_function(
        "() => document.querySelector('#device-panel .latest').textContent === '3.64'",
        timeout=10_000,
    )
    page.keyboard.press("Escape")
    page.wait_for_selector("#device-panel", state="detached", timeout=5_000)
