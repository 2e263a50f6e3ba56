"""The demo's first run in a browser: with its 90 days of past, the supervisor's pages, the case
library and an incident's timeline are full, not empty tables."""

import pytest

from demo.past import seed_demo_past
from incidents.models import SupervisionOrder
from tests.e2e.conftest import screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.services]


def test_the_supervisors_pages_show_the_past(daphne_server, demo_committed, board_page):
    past = seed_demo_past(refresh=False)
    assert past.written
    page = board_page("supervisor")

    page.goto(f"{daphne_server}/supervise/qingshui/")
    rows = page.locator("#department-table tbody tr[data-department]")
    rows.first.wait_for()
    assert rows.count() >= 5
    grid = page.locator("#settled-table tr[data-level='grid'] .settled-count").inner_text()
    assert int(grid) > 0
    screenshot(page, "demo-past-performance")

    page.goto(f"{daphne_server}/supervise/qingshui/review/")
    page.locator("#review-channels tr[data-channel]").first.wait_for()
    assert page.locator("#review-channels tr[data-channel]").count() >= 2
    screenshot(page, "demo-past-review")

    page.goto(f"{daphne_server}/supervise/district/")
    page.locator("tr[data-department][data-rank]").first.wait_for()
    screenshot(page, "demo-past-district")

    order = SupervisionOrder.objects.filter(status="answered").first()
    page.goto(f"{daphne_server}/supervise/qingshui/incidents/{order.incident_id}/")
    page.locator("tr[data-action='order.answered']").first.wait_for()
    screenshot(page, "demo-past-timeline")

    duty = board_page("duty")
    duty.goto(f"{daphne_server}/cases/")
    assert duty.locator("tr[data-incident]").count() == 50
    screenshot(duty, "demo-past-cases")
