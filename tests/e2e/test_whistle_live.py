"""The officer blows a whistle; the department, in a second browser, gets the summons live and
checks in; the officer's countdown for that department turns to "on site"."""

import pytest

from command.org.models import Category, Township, User
from incidents.models import Summons, Whistle
from incidents.services.incidents import incident_open
from tests.conftest import wait_for
from tests.e2e.conftest import screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.services]


def test_countdown_turns_to_on_site_when_the_department_checks_in(
    daphne_server, demo_committed, board_page
):
    officer = board_page("duty")
    officer.wait_for_selector("#live-status.live", timeout=10_000)
    department = board_page("chengguan", viewport=(1280, 800))
    department.wait_for_selector("#live-status.live", timeout=10_000)

    duty = User.objects.get(username="duty")
    incident = incident_open(
        actor=duty,
        township=Township.objects.get(code="qingshui"),
        category=Category.objects.get(code="parking"),
        severity="major",
        title="滨河路违停堵塞",
    )
    # The officer blows it from the board: the dialog offers the responsibility list ticked;
    # a department off the list needs a reason, which the dialog asks for.
    officer.click(f"#incident-{incident.pk} .whistle-open")
    officer.wait_for_selector("#whistle-dialog[open]", timeout=10_000)
    officer.check("#whistle-dialog input[name=kind][value=emergency]")
    officer.uncheck("#whistle-dialog input[name=departments][value=qs-pingan]")
    officer.check("#whistle-dialog input[name=departments][value=police]")
    screenshot(officer, "board-whistle-dialog")
    officer.click("#whistle-dialog button[type=submit]")
    officer.wait_for_selector("#whistle-dialog .error", timeout=10_000)
    assert "派出所" in officer.inner_text("#whistle-dialog .error")
    assert not Whistle.objects.filter(incident=incident).exists()
    officer.fill("#whistle-dialog input[name=reason]", "滨河路路口需要民警疏导")
    officer.click("#whistle-dialog button[type=submit]")
    officer.wait_for_selector("#whistle-dialog", state="detached", timeout=10_000)
    whistle = Whistle.objects.get(incident=incident)
    assert whistle.kind == Whistle.Kind.EMERGENCY
    assert sorted(whistle.summonses.values_list("department__code", flat=True)) == [
        "chengguan",
        "police",
        "traffic",
    ]
    assert (
        whistle.summonses.get(department__code="police").off_list_reason == "滨河路路口需要民警疏导"
    )
    summons = whistle.summonses.get(department__code="chengguan")

    countdown = officer.wait_for_selector(f"#countdown-{summons.pk}", timeout=10_000)
    officer.wait_for_selector(f"#countdown-{summons.pk}.ok", timeout=5_000)  # 30 min: green
    assert "滨河路违停堵塞" in officer.inner_text(f"#incident-{incident.pk}")

    department.wait_for_selector(f"#summons-{summons.pk}", timeout=10_000)
    department.click(f"#summons-{summons.pk} [data-api-post$='/check-in']")
    wait_for(
        lambda: Summons.objects.get(pk=summons.pk).status == Summons.Status.CHECKED_IN,
        what="the check-in to be stored",
    )
    assert Summons.objects.get(pk=summons.pk).check_in_latitude == pytest.approx(40.245)
    officer.wait_for_selector(f"#countdown-{summons.pk}[data-status='checked_in']", timeout=10_000)
    countdown = officer.query_selector(f"#countdown-{summons.pk}")
    assert "已到场" in countdown.inner_text()
    # The other department is still counting down.
    other = whistle.summonses.get(department__code="traffic")
    assert officer.query_selector(f"#countdown-{other.pk} .remaining") is not None
    screenshot(officer, "board-incident-on-site")
