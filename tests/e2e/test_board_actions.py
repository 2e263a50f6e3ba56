"""Everything the API does to an incident, done from the board by clicking: open an incident by
hand, blow a joint whistle that the neighbouring township confirms on its own board, return
work and accept it (验收), release a department, resolve, close with feedback and the 631
level; then the callback on the incident's page, "not satisfied", reopens it."""

import pytest

from command.org.models import Department, Grid, Township, User
from command.timeline.models import TimelineEntry
from incidents.models import Incident, Summons, Whistle
from incidents.services.summonses import summons_check_in, summons_done
from tests.conftest import DEMO_PASSWORDS, wait_for
from tests.e2e.conftest import screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.services]


@pytest.fixture
def neighbour(demo_committed, monkeypatch):
    """Beishan, the neighbouring township, with its own office and duty officer."""
    beishan = Township.objects.create(code="beishan", name="北山镇", name_en="Beishan")
    Grid.objects.create(township=beishan, code="110112-BS-001", kind="comprehensive", name="北")
    Department.objects.create(code="bs-office", name="北山镇办", kind="office", township=beishan)
    officer = User.objects.create(
        username="duty_bs", role=User.Role.DUTY_OFFICER, township=beishan, last_name="周"
    )
    officer.set_password("beishan-duty-pw")
    officer.save()
    monkeypatch.setitem(DEMO_PASSWORDS, "duty_bs", "beishan-duty-pw")
    return beishan


def answer_prompts(page, text: str) -> None:
    page.on("dialog", lambda dialog: dialog.accept(text))


def test_the_incident_loop_from_the_board(daphne_server, neighbour, board_page):
    officer = board_page("duty")
    officer.wait_for_selector("#live-status.live", timeout=10_000)
    other = board_page("duty_bs")
    other.wait_for_selector("#live-status.live", timeout=10_000)

    # 立案 by hand: the incident arrives on the board through the socket.
    officer.click("#new-incident")
    officer.wait_for_selector("#incident-dialog[open]", timeout=10_000)
    officer.select_option("#incident-dialog select[name=category]", "illegal-mining")
    officer.select_option("#incident-dialog select[name=severity]", "critical")
    officer.click("#incident-dialog button[type=submit]")
    # Without a title the browser holds the form back and says why.
    assert officer.query_selector("#incident-dialog input[name=title]:invalid") is not None
    assert not Incident.objects.filter(category__code="illegal-mining").exists()
    officer.fill("#incident-dialog input[name=title]", "北山交界河道夜间采砂")
    screenshot(officer, "board-open-incident-dialog")
    officer.click("#incident-dialog button[type=submit]")
    officer.wait_for_selector("#incident-dialog", state="detached", timeout=10_000)
    incident = Incident.objects.get(title="北山交界河道夜间采砂")
    officer.wait_for_selector(f"#incident-{incident.pk}", timeout=10_000)

    # A joint whistle with Beishan: choosing it offers Beishan's own office.
    officer.click(f"#incident-{incident.pk} .whistle-open")
    officer.wait_for_selector("#whistle-dialog[open]", timeout=10_000)
    officer.select_option("#whistle-dialog select[name=joint_township]", "beishan")
    officer.wait_for_selector(
        "#whistle-dialog[open] input[name=departments][value=bs-office]", timeout=10_000
    )
    officer.check("#whistle-dialog input[name=kind][value=emergency]")
    for box in officer.query_selector_all("#whistle-dialog input[name=departments]:checked"):
        box.uncheck()
    officer.check("#whistle-dialog input[name=departments][value=natural-resources]")
    officer.check("#whistle-dialog input[name=departments][value=bs-office]")
    officer.fill("#whistle-dialog input[name=reason]", "河道在两镇交界")
    screenshot(officer, "board-joint-whistle-dialog")
    officer.click("#whistle-dialog button[type=submit]")
    officer.wait_for_selector("#whistle-dialog", state="detached", timeout=10_000)
    whistle = Whistle.objects.get(incident=incident)
    assert (whistle.joint_township, whistle.joint_status) == (neighbour, "pending")

    # Beishan confirms on its own board; the incident then shows there too.
    other.wait_for_selector(f"#joint-{whistle.pk}", timeout=10_000)
    screenshot(other, "board-joint-awaiting")
    other.click(f"#joint-{whistle.pk} button.primary")
    other.wait_for_selector(f"#incident-{incident.pk} .joint-tag", timeout=10_000)
    assert other.query_selector(f"#joint-{whistle.pk}") is None
    # It is Qingshui's incident: Beishan's board shows it without Qingshui's controls.
    assert other.query_selector(f"#incident-{incident.pk} .incident-actions") is None
    assert other.query_selector(f"#incident-{incident.pk} a.nav-link") is None  # its page too
    office = Summons.objects.get(whistle=whistle, department__code="bs-office")
    mining = Summons.objects.get(whistle=whistle, department__code="natural-resources")

    # The department reports done; the township returns it once, then accepts it.
    member = User.objects.create(
        username="nr-member",
        role=User.Role.DEPARTMENT_MEMBER,
        department=Department.objects.get(code="natural-resources"),
    )
    summons_check_in(actor=member, summons=mining)
    summons_done(actor=member, summons=mining, note="采砂船已驱离")
    accept = f"#countdown-{mining.pk} [data-api-post$='/accept']"
    officer.wait_for_selector(accept, timeout=10_000)
    answer_prompts(officer, "岸边还有采砂设备未清")
    officer.click(f"#countdown-{mining.pk} [data-api-post$='/return']")
    officer.wait_for_selector(f"#countdown-{mining.pk}[data-status=checked_in]", timeout=10_000)
    assert "退回" in officer.inner_text(f"#countdown-{mining.pk}")
    summons_done(actor=member, summons=Summons.objects.get(pk=mining.pk), note="设备已清")
    officer.click(accept)
    officer.wait_for_selector(f"#countdown-{mining.pk}[data-status=accepted]", timeout=10_000)

    # Resolving is refused while Beishan's office is still summoned: the refusal shows.
    officer.click(f"#incident-{incident.pk} [data-api-post$='/resolve']")
    officer.wait_for_selector(f"#incident-{incident.pk} .incident-actions .problem:not(:empty)")
    assert "北山镇办" in officer.inner_text(f"#incident-{incident.pk} .incident-actions .problem")
    officer.click(f"#countdown-{office.pk} [data-api-post$='/release']")
    officer.wait_for_selector(f"#countdown-{office.pk}[data-status=released]", timeout=10_000)
    officer.click(f"#incident-{incident.pk} [data-api-post$='/resolve']")
    officer.wait_for_selector(f"#incident-{incident.pk}.status-resolved", timeout=10_000)

    # Closing asks for feedback and the 631 level; township is offered (a department came).
    officer.click(f"#incident-{incident.pk} [hx-get$='/close/']")
    officer.wait_for_selector("#close-dialog[open]", timeout=10_000)
    assert officer.is_checked("#close-dialog input[name=settled_level][value=township]")
    officer.fill("#close-dialog textarea[name=feedback]", "采砂船与设备已清离，河道恢复")
    screenshot(officer, "board-close-dialog")
    officer.click("#close-dialog button[type=submit]")
    officer.wait_for_selector(f"#incident-{incident.pk}", state="detached", timeout=10_000)
    incident.refresh_from_db()
    assert (incident.status, incident.settled_level) == ("closed", "township")

    # 回访 on the incident's page: not satisfied, reopened.
    officer.goto(f"{daphne_server}/supervise/qingshui/incidents/{incident.pk}/")
    officer.check("#callback-form input[name=satisfaction][value=unsatisfied]")
    officer.fill("#callback-form input[name=note]", "夜里又有船来")
    officer.check("#callback-form input[name=reopen]")
    screenshot(officer, "timeline-callback-form")
    with officer.expect_navigation():
        officer.click("#callback-form button[type=submit]")
    wait_for(lambda: Incident.objects.get(pk=incident.pk).status == "open", what="reopened")
    assert Incident.objects.get(pk=incident.pk).reopened_count == 1
    actions = list(
        TimelineEntry.objects.filter(subject_type="incident", subject_id=incident.pk)
        .order_by("time", "pk")
        .values_list("action", flat=True)
    )
    assert (
        actions[-5:]
        == [
            "incident.on_site",
            "incident.resolved",
            "incident.closed",
            "incident.called_back",
            "incident.reopened",
        ][-5:]
    )
    summons_actions = list(
        TimelineEntry.objects.filter(subject_type="summons", subject_id=mining.pk)
        .order_by("time", "pk")
        .values_list("action", flat=True)
    )
    assert summons_actions[-4:] == [
        "summons.done",
        "summons.returned",
        "summons.done",
        "summons.accepted",
    ]


def test_evidence_is_added_on_the_incidents_page(daphne_server, demo_committed, board_page):
    from command.org.models import Category
    from incidents.services.incidents import incident_open
    from tests.e2e.conftest import png

    incident = incident_open(
        actor=User.objects.get(username="duty"),
        township=Township.objects.get(code="qingshui"),
        category=Category.objects.get(code="parking"),
        severity="major",
        title="人行道违停",
    )
    officer = board_page("duty")
    officer.goto(f"{daphne_server}/supervise/qingshui/incidents/{incident.pk}/")
    assert "暂无证据材料" in officer.inner_text("#evidence")
    officer.set_input_files(
        "#evidence-form input[name=photo]",
        files=[{"name": "scene.png", "mimeType": "image/png", "buffer": png(320, 240)}],
    )
    officer.fill("#evidence-form input[name=caption]", "现场照片")
    with officer.expect_navigation():
        officer.click("#evidence-form button[type=submit]")
    officer.fill("#evidence-form input[name=url]", "https://example.org/notice.pdf")
    officer.fill("#evidence-form input[name=caption]", "处罚告知书")
    with officer.expect_navigation():
        officer.click("#evidence-form button[type=submit]")
    incident.refresh_from_db()
    assert [(e["kind"], e["caption"]) for e in incident.evidence] == [
        ("photo", "现场照片"),
        ("link", "处罚告知书"),
    ]
    assert incident.evidence[0]["url"].startswith("/photos/")
    officer.wait_for_function(
        "() => { const img = document.querySelector('#evidence img');"
        " return img && img.complete && img.naturalWidth > 0; }",
        timeout=10_000,
    )
    screenshot(officer, "timeline-evidence")
