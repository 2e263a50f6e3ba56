"""A department member's console gets the summons the moment the whistle is blown, and checking
in on site there shows up as the summons' new state."""

import pytest

from command.incidents import services
from command.incidents.models import Summons, Whistle
from command.org.models import Category, Department, Township, User
from tests.conftest import wait_for
from tests.e2e.conftest import screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.services]


def test_summons_arrives_live_and_the_department_checks_in(
    daphne_server, demo_committed, board_page
):
    page = board_page("chengguan", viewport=(1280, 800))
    assert page.url.endswith("/console/chengguan/")
    page.wait_for_selector("#live-status.live", timeout=10_000)
    page.evaluate("window.__notReloaded = true")

    duty = User.objects.get(username="duty")
    incident = services.incident_open(
        actor=duty,
        township=Township.objects.get(code="qingshui"),
        category=Category.objects.get(code="parking"),
        severity="major",
        title="滨河路违停堵塞",
    )
    whistle = services.whistle_blow(
        actor=duty,
        incident=incident,
        kind=Whistle.Kind.EMERGENCY,
        purpose=Whistle.Purpose.JOINT_ENFORCEMENT,
        departments=[services.SummonedDepartment(Department.objects.get(code="chengguan"))],
    )
    summons = whistle.summonses.get()
    row = page.wait_for_selector(f"#summons-{summons.pk}", timeout=10_000)
    assert "滨河路违停堵塞" in row.inner_text()
    screenshot(page, "console-summons-arrived")

    page.click(f"#summons-{summons.pk} [data-api-post$='/check-in']")
    wait_for(
        lambda: Summons.objects.get(pk=summons.pk).status == Summons.Status.CHECKED_IN,
        what="the check-in to be stored",
    )
    page.wait_for_selector(f"#summons-{summons.pk}[data-status='checked_in']", timeout=10_000)
    assert page.evaluate("window.__notReloaded") is True
    screenshot(page, "console-checked-in")
