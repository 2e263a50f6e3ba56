"""A console with 5,000 open summonses and a board with 2,000 open alerts, in a real browser
on the real server: the first page shows, "show more" brings the next, pushes still arrive."""

import pytest

from command.org.models import Category, Department, Township, User
from incidents.models import Whistle
from incidents.services.incidents import incident_open
from incidents.services.whistles import SummonedDepartment, whistle_blow
from tests.conftest import raise_alert
from tests.e2e.conftest import screenshot
from tests.frontend.test_frames import bulk_alerts, bulk_summonses

pytestmark = [pytest.mark.e2e, pytest.mark.services]
PAGE = 50  # WHISTLE_PAGE_SIZE's default


def open_with_state(page, selector: str) -> None:
    """Load the page again, counting the socket's frames, and wait until the socket's state
    (which replaces the lists the HTTP page drew) is in: a click before it would be undone."""
    page.context.add_init_script(
        "document.addEventListener('htmx:wsAfterMessage', () => {"
        " window.__frames = (window.__frames || 0) + 1; })"
    )
    page.reload()
    page.wait_for_selector("#live-status.live", timeout=15_000)
    page.wait_for_function(
        f"(window.__frames || 0) >= 1 && document.querySelector('{selector}') !== null",
        timeout=15_000,
    )


def test_a_console_with_5000_open_summonses(daphne_server, demo_committed, board_page):
    bulk_summonses("chengguan", 5000)
    page = board_page("chengguan", viewport=(1280, 800))
    open_with_state(page, "#summons-open-count")
    rows = "#summons-inbox > li.summons"
    page.wait_for_function(f"document.querySelectorAll('{rows}').length === {PAGE}")
    assert page.inner_text("#summons-open-count") == "5000"
    assert page.inner_text("#summons-inbox-more .more-count") == str(5000 - PAGE)
    assert "还有" in page.inner_text("#summons-inbox-more")

    page.click("#summons-inbox-more button")
    page.wait_for_function(f"document.querySelectorAll('{rows}').length === {2 * PAGE}")
    page.wait_for_function(
        f"document.querySelector('#summons-inbox-more .more-count').textContent === "
        f"'{5000 - 2 * PAGE}'"
    )
    ids = page.eval_on_selector_all(rows, "rows => rows.map(r => r.id)")
    assert len(set(ids)) == 2 * PAGE

    duty = User.objects.get(username="duty")
    incident = incident_open(
        actor=duty,
        township=Township.objects.get(code="qingshui"),
        category=Category.objects.get(code="parking"),
        severity="critical",
        title="积压之后的违停",
    )
    whistle = whistle_blow(
        actor=duty,
        incident=incident,
        kind=Whistle.Kind.EMERGENCY,
        purpose=Whistle.Purpose.JOINT_ENFORCEMENT,
        departments=[SummonedDepartment(Department.objects.get(code="chengguan"))],
    )
    summons = whistle.summonses.get()
    row = page.wait_for_selector(f"#summons-{summons.pk}", timeout=10_000)
    assert "积压之后的违停" in row.inner_text()
    page.wait_for_function("document.querySelector('#summons-open-count').textContent === '5001'")
    # The new row is shown as well: what is left to page through stays the same.
    assert page.inner_text("#summons-inbox-more .more-count") == str(5000 - 2 * PAGE)
    screenshot(page, "console-backlog")


def test_a_board_with_2000_open_alerts(daphne_server, demo_committed, board_page):
    bulk_alerts(2000)
    page = board_page("duty")
    open_with_state(page, "#board-figures")
    rows = "#alert-queue > li.alert"
    page.wait_for_function(f"document.querySelectorAll('{rows}').length === {PAGE}")
    assert page.inner_text("#open-count") == "2000"
    assert page.inner_text("#alert-queue-more .more-count") == str(2000 - PAGE)

    page.click("#alert-queue-more button")
    page.wait_for_function(f"document.querySelectorAll('{rows}').length === {2 * PAGE}")

    township = Township.objects.get(code="qingshui")
    alert_id = raise_alert(township.pk, "after-the-backlog", title="积压之后", severity="critical")
    page.wait_for_selector(f"#alert-queue > li#alert-{alert_id}:first-child", timeout=10_000)
    page.wait_for_function("document.querySelector('#open-count').textContent === '2001'")
    # The pages the officer asked for stay; the oldest row shown makes way for the new one,
    # and remains one "show more" away.
    assert page.locator(rows).count() == 2 * PAGE
    page.wait_for_function(
        f"document.querySelector('#alert-queue-more .more-count').textContent === "
        f"'{2001 - 2 * PAGE}'"
    )
    screenshot(page, "board-backlog")
