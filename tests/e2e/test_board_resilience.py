"""What a board does as time passes."""

from datetime import timedelta

import pytest

from command import clock
from command.org.models import Category, Department, Township, User
from incidents.models import Whistle
from incidents.services.incidents import incident_open
from incidents.services.whistles import SummonedDepartment, whistle_blow
from tests.e2e.conftest import screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.services]


def test_countdown_turns_red_when_the_summons_is_overdue(daphne_server, demo_committed, board_page):
    page = board_page("duty")
    page.wait_for_selector("#live-status.live", timeout=10_000)
    duty = User.objects.get(username="duty")
    incident = incident_open(
        actor=duty,
        township=Township.objects.get(code="qingshui"),
        category=Category.objects.get(code="fire"),
        severity="critical",
        title="东沟村山火",
    )
    # Blown 40 minutes ago: the 30-minute deadline has passed for one department, while a
    # general whistle blown now leaves the other green.
    with clock.moved(by=-timedelta(minutes=40)):
        late = whistle_blow(
            actor=duty,
            incident=incident,
            kind=Whistle.Kind.EMERGENCY,
            purpose=Whistle.Purpose.EMERGENCY_RESPONSE,
            departments=[SummonedDepartment(Department.objects.get(code="fire-rescue"))],
        ).summonses.get()
    punctual = whistle_blow(
        actor=duty,
        incident=incident,
        kind=Whistle.Kind.GENERAL,
        purpose=Whistle.Purpose.EMERGENCY_RESPONSE,
        departments=[SummonedDepartment(Department.objects.get(code="qs-yingji"))],
    ).summonses.get()
    page.wait_for_selector(f"#countdown-{late.pk}.late", timeout=10_000)
    page.wait_for_selector(f"#countdown-{punctual.pk}.ok", timeout=10_000)
    # Pushes re-render the panel; the countdown is re-applied within a second, so wait for it.
    page.wait_for_function(
        """id => {
            const item = document.getElementById(id);
            return item && item.classList.contains("late")
                && getComputedStyle(item).animationName === "flash"
                && item.querySelector(".remaining").textContent.startsWith("已超时");
        }""",
        arg=f"countdown-{late.pk}",
        timeout=10_000,
    )
    screenshot(page, "board-overdue")
