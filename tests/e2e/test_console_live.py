"""A department member's console gets the summons the moment the whistle is blown, and checking
in on site there shows up as the summons' new state."""

import pytest

from command.org.models import Category, Department, Grid, Township, User
from incidents.models import Photo, Summons, Whistle
from incidents.services.incidents import incident_open
from incidents.services.summonses import summons_accept
from incidents.services.whistles import SummonedDepartment, whistle_blow
from tests.conftest import wait_for
from tests.e2e.conftest import png, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.services]


def test_summons_arrives_live_and_the_department_checks_in(
    daphne_server, demo_committed, board_page
):
    page = board_page("chengguan", viewport=(1280, 800))
    assert page.url.endswith("/console/chengguan/")
    page.wait_for_selector("#live-status.live", timeout=10_000)
    page.evaluate("window.__notReloaded = true")

    duty = User.objects.get(username="duty")
    incident = incident_open(
        actor=duty,
        township=Township.objects.get(code="qingshui"),
        category=Category.objects.get(code="parking"),
        severity="major",
        title="滨河路违停堵塞",
        description="滨河路东段双排停车，公交无法通过",
        grid=Grid.objects.get(code="110112-QS-007"),
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
    assert "滨河路违停堵塞" in row.inner_text()
    screenshot(page, "console-summons-arrived")

    page.click(f"#summons-{summons.pk} [data-api-post$='/check-in']")
    wait_for(
        lambda: Summons.objects.get(pk=summons.pk).status == Summons.Status.CHECKED_IN,
        what="the check-in to be stored",
    )
    page.wait_for_selector(f"#summons-{summons.pk}[data-status='checked_in']", timeout=10_000)
    assert page.evaluate("window.__notReloaded") is True

    # The incident's details, where it is on the map, and its evidence: fetched on opening.
    page.click(f"#summons-{summons.pk} .summons-details summary")
    page.wait_for_selector(f"#summons-{summons.pk} .details-body .facts", timeout=10_000)
    details = page.inner_text(f"#summons-{summons.pk} .details-body")
    assert "滨河路东段双排停车" in details and "110112-QS-007" in details
    assert page.is_visible(f"#summons-{summons.pk} .mini-map [data-grid='110112-QS-007'].picked")
    assert page.is_visible(f"#summons-{summons.pk} .mini-map .marker")
    screenshot(page, "console-checked-in")

    # Done, with a note and a photo of the finished work: the photo becomes evidence.
    page.fill(f"#summons-{summons.pk} .done-form textarea", "已劝离违停车辆 12 辆")
    page.set_input_files(
        f"#summons-{summons.pk} .done-form input[type=file]",
        files=[{"name": "done.png", "mimeType": "image/png", "buffer": png(800, 600)}],
    )
    page.click(f"#summons-{summons.pk} .done-form button[type=submit]")
    # Done waits for the township's acceptance (验收): the row stays, saying so.
    row = page.wait_for_selector(f"#summons-{summons.pk}[data-status=done]", timeout=10_000)
    assert "待验收" in row.inner_text()
    done = Summons.objects.get(pk=summons.pk)
    assert done.status == Summons.Status.DONE and done.done_note == "已劝离违停车辆 12 辆"
    incident.refresh_from_db()
    (photo,) = [item for item in incident.evidence if item["kind"] == "photo"]
    assert photo["url"].startswith("/photos/") and photo["caption"] == "已劝离违停车辆 12 辆"
    assert Photo.objects.get(pk=photo["url"].removeprefix("/photos/")).content_type == "image/jpeg"
    # Accepted on the board: the work leaves the department's console.
    summons_accept(actor=User.objects.get(username="duty"), summons=done)
    page.wait_for_selector(f"#summons-{summons.pk}", state="detached", timeout=10_000)


def test_a_summons_arriving_in_a_background_tab_notifies(daphne_server, demo_committed, board_page):
    page = board_page("chengguan", viewport=(1280, 800))
    page.context.grant_permissions(["notifications"])
    # The console tab is in the background; notifications it shows are recorded (and still
    # shown) so the test can read them.
    page.evaluate(
        """() => {
            Object.defineProperty(document, "hidden", { configurable: true, get: () => true });
            window.__notes = [];
            const Original = window.Notification;
            window.Notification = class extends Original {
                constructor(title, options) { super(title, options); window.__notes.push(title); }
            };
            Object.defineProperty(window.Notification, "permission", { get: () => "granted" });
        }"""
    )
    page.wait_for_selector("#live-status.live", timeout=10_000)
    duty = User.objects.get(username="duty")
    incident = incident_open(
        actor=duty,
        township=Township.objects.get(code="qingshui"),
        category=Category.objects.get(code="fire"),
        severity="critical",
        title="东沟村山火",
    )
    whistle_blow(
        actor=duty,
        incident=incident,
        kind=Whistle.Kind.EMERGENCY,
        purpose=Whistle.Purpose.EMERGENCY_RESPONSE,
        departments=[SummonedDepartment(Department.objects.get(code="chengguan"), "x")],
    )
    page.wait_for_function("window.__notes.length > 0", timeout=10_000)
    assert "东沟村山火" in page.evaluate("window.__notes[0]")
    assert page.title().startswith("(1) ")
