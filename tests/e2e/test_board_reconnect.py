"""Network drop and reconnect: the board shows what was raised while it was away."""

import json
import time
from urllib.parse import urlsplit

import pytest

from alerts.models import Alert
from tests.conftest import wait_for
from tests.e2e.conftest import screenshot
from tests.netproxy import CuttableProxy

pytestmark = [pytest.mark.e2e, pytest.mark.services]


@pytest.fixture
def network(daphne_server):
    address = urlsplit(daphne_server)
    proxy = CuttableProxy((address.hostname, address.port))
    yield proxy
    proxy.close()


def test_board_shows_alerts_raised_while_the_network_was_down(
    network, demo_committed, ingest_worker, publish_mqtt, board_page
):
    page = board_page("duty", base=network.url)
    page.wait_for_selector("#live-status.live", timeout=10_000)
    page.evaluate("window.__notReloaded = true")

    network.cut()
    page.wait_for_selector("#live-status.connecting", timeout=10_000)
    assert page.get_attribute("body", "data-live") == "0"
    assert page.is_visible("#offline-banner")

    # Raised while the board cannot hear: its socket is closed, so no push reaches it.
    now = int(time.time() * 1000)
    for n, (camera, label) in enumerate([("cam-quarry", "excavator"), ("cam-03", "fire")]):
        payload = {"id": f"drop-{n}", "ts": now, "label": label, "score": 0.9}
        publish_mqtt(f"whistle/qingshui/camera/{camera}/event", json.dumps(payload))
    alerts = wait_for(
        lambda: (found := list(Alert.objects.order_by("pk"))) and len(found) == 2 and found,
        what="both alerts to be stored",
    )
    screenshot(page, "board-reconnecting")
    assert page.locator("#alert-queue li.alert").count() == 0

    network.restore()
    # htmx's ws extension retries with backoff; on connect the server sends the full state.
    page.wait_for_selector("#live-status.live", timeout=40_000)
    for alert in alerts:
        page.wait_for_selector(f"#alert-{alert.pk}", timeout=10_000)
    assert page.inner_text("#open-count") == "2"
    assert not page.is_visible("#offline-banner")
    assert page.evaluate("window.__notReloaded") is True
