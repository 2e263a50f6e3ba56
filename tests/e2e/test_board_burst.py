"""A burst of a thousand alerts: the board keeps up by coalescing, and ends on the true state."""

import pytest
from django.utils import timezone

from alerts.models import Alert
from alerts.rules import AlertSpec
from alerts.services import alert_raise
from command.org.models import Township
from tests.e2e.conftest import screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.services]

BURST = 1000


def test_a_thousand_alerts_arrive_as_few_frames_and_the_final_state_is_right(
    daphne_server, demo_committed, board_page
):
    page = board_page("duty")
    page.wait_for_selector("#live-status.live", timeout=10_000)
    page.evaluate(
        """() => {
            window.__frames = 0;
            document.addEventListener("htmx:wsAfterMessage", () => { window.__frames += 1; });
        }"""
    )
    township = Township.objects.get(code="qingshui")
    # Each alert commits on its own, as a thousand sensors crossing a threshold would.
    for n in range(BURST):
        alert_raise(
            spec=AlertSpec(
                township_id=township.pk,
                category_code="garbage",
                severity="warning",
                source="rule",
                title=f"突发 {n}",
                dedupe_key=f"burst:{n}",
                time=timezone.now(),
            )
        )
    newest = Alert.objects.order_by("-last_seen", "-id").first()
    page.wait_for_function(
        "n => document.getElementById('open-count').textContent.trim() === String(n)",
        arg=BURST,
        timeout=30_000,
    )
    page.wait_for_selector(f"#alert-{newest.pk}", timeout=10_000)
    # The newest on top, the queue bounded, the figures right.
    assert page.get_attribute("#alert-queue li.alert:first-child", "id") == f"alert-{newest.pk}"
    assert page.locator("#alert-queue li.alert").count() == 50
    # Three fragments per alert would be 3,000 frames; coalesced, the board got a few per
    # second of the burst.
    frames = page.evaluate("window.__frames")
    assert frames < BURST / 5, f"{frames} frames for {BURST} alerts: not coalesced"
    screenshot(page, "board-after-burst")
