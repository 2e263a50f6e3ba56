"""督办 reaching people in a browser: a console notification arrives live on the department's
console (the browser's notification, a sound, the title flashing while the tab is in the
background, read once looked at); the link of an SMS or e-mail signs in, marks read and lands
on the summons; the supervisor console redraws live; a person sets how they are reached."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import translation
from django.utils.translation import gettext

from alerts.delivery import people
from alerts.models import Notification
from command import clock
from command.org.models import Category, Department, Grid, Township, User
from command.timeline.models import TimelineEntry
from frontend.notifications import reason_label
from incidents.models import EscalationStep, Summons, Whistle
from incidents.services.deadlines import summons_escalate
from incidents.services.incidents import incident_open
from incidents.services.orders import order_issue
from incidents.services.whistles import SummonedDepartment, whistle_blow
from tests.conftest import DEMO_PASSWORDS, wait_for
from tests.e2e.conftest import screenshot
from tests.e2e.test_contrast import LOW_CONTRAST

pytestmark = [pytest.mark.e2e, pytest.mark.services]

with translation.override("zh-hans"):
    ON_CALL = reason_label("on_call")  # as the Chinese-speaking page reads it

# The tab's visibility as the test says (window.__hidden), and every browser notification and
# sound the page makes, recorded (and still made).
WATCHED = """() => {
    window.__hidden = true;
    Object.defineProperty(document, "hidden", { configurable: true, get: () => window.__hidden });
    Object.defineProperty(document, "visibilityState", {
        configurable: true, get: () => (window.__hidden ? "hidden" : "visible"),
    });
    window.__notes = [];
    const Original = window.Notification;
    window.Notification = class extends Original {
        constructor(title, options) {
            super(title, options);
            window.__notes.push({ title, body: options.body, sticky: options.requireInteraction });
        }
    };
    Object.defineProperty(window.Notification, "permission", { get: () => "granted" });
    window.__beeps = 0;
    const beep = Whistle.beep;
    Whistle.beep = () => { window.__beeps += 1; beep(); };
}"""


CHAIN = [
    {"action": "notify_on_call"},
    {"action": "wait", "minutes": 5},
    {"action": "notify_backup"},
    {"action": "wait", "minutes": 5},
    {"action": "notify_head", "all_channels": True},
]


def summons_for(title: str, department: str = "chengguan") -> Summons:
    duty = User.objects.get(username="duty")
    incident = incident_open(
        actor=duty,
        township=Township.objects.get(code="qingshui"),
        category=Category.objects.get(code="parking"),
        severity="major",
        title=title,
        grid=Grid.objects.get(code="110112-QS-007"),
    )
    whistle = whistle_blow(
        actor=duty,
        incident=incident,
        kind=Whistle.Kind.EMERGENCY,
        purpose=Whistle.Purpose.JOINT_ENFORCEMENT,
        departments=[SummonedDepartment(Department.objects.get(code=department), "test")],
    )
    return whistle.summonses.get()


def page_person(summons: Summons, username: str, reason: str, text: str) -> Notification:
    incident = summons.whistle.incident
    with transaction.atomic():
        (console, *_rest) = people.page(
            people.Cause(
                township_id=incident.township_id,
                subject_type="summons",
                subject_id=summons.pk,
                incident_id=incident.pk,
                text=text,
                link=f"/console/{summons.department.code}/",
                key=f"e2e:{summons.pk}:{reason}",
                step=1,
            ),
            [people.Recipient(User.objects.get(username=username), reason)],
        )
    return console


def test_a_notification_arrives_live_and_flashes_the_background_tab(
    daphne_server, demo_committed, board_page
):
    page = board_page("chengguan")
    page.context.grant_permissions(["notifications"])
    assert page.url.endswith("/console/chengguan/")
    page.evaluate(WATCHED)
    page.wait_for_selector("#live-status.live", timeout=10_000)
    title = page.title()
    summons = summons_for("滨河路违停堵塞")
    note = page_person(summons, "chengguan", "on_call", "【紧急】滨河路违停堵塞：请立即到场报到")

    entry = page.wait_for_selector(f"#notification-{note.pk}.unread", timeout=10_000)
    assert "滨河路违停堵塞" in entry.inner_text() and ON_CALL in entry.inner_text()
    assert page.is_visible("#notification-tray")
    # The summons itself notifies too (a background tab); the 督办 is its own notification.
    page.wait_for_function(
        "window.__notes.some(n => n.title.startsWith('【督办】'))", timeout=10_000
    )
    (shown,) = page.evaluate("window.__notes.filter(n => n.title.startsWith('【督办】'))")
    assert "滨河路违停堵塞" in shown["title"]
    assert shown["sticky"] is True and shown["body"] == ON_CALL
    assert page.evaluate("window.__beeps") == 1
    # In the background: the title flashes, and nobody has seen it yet.
    page.wait_for_function("document.title.startsWith('【督办】')", timeout=5_000)
    page.wait_for_function("!document.title.startsWith('【督办】')", timeout=5_000)
    assert page.evaluate("document.body.dataset.titleFlashing") == "1"
    assert Notification.objects.get(pk=note.pk).read_at is None
    screenshot(page, "console-notification")
    assert page.evaluate(LOW_CONTRAST) == []

    # Looked at: the flashing stops and it is read (its timeline row says so).
    page.evaluate(
        "() => { window.__hidden = false; document.dispatchEvent(new Event('visibilitychange')); }"
    )
    page.wait_for_function(
        "!document.body.dataset.titleFlashing && !document.title.startsWith('【督办】')",
        timeout=5_000,
    )
    assert page.title() == title
    wait_for(
        lambda: Notification.objects.get(pk=note.pk).read_at is not None,
        what="the notification to be read",
    )
    page.wait_for_selector(f"#notification-{note.pk}.read", timeout=5_000)
    assert TimelineEntry.objects.filter(
        subject_type="summons", subject_id=summons.pk, action="summons.page_read"
    ).exists()
    # Dismissed by keyboard: gone from the page, the tray with it.
    page.focus(f"#notification-{note.pk}")
    page.keyboard.press("Escape")
    page.wait_for_selector("#notification-tray", state="hidden", timeout=5_000)


def test_the_link_signs_in_marks_read_and_lands_on_the_summons(
    daphne_server, demo_committed, browser
):
    summons = summons_for("东沟村山火")
    console = page_person(summons, "chengguan", "backup", "东沟村山火：值班人员未响应")
    sms = Notification.objects.create(
        key=f"e2e-sms:{summons.pk}",
        user=console.user,
        township_id=console.township_id,
        subject_type="summons",
        subject_id=summons.pk,
        incident_id=console.incident_id,
        reason="backup",
        channel=Notification.Channel.SMS,
        text=console.text,
        link=console.link,
        status=Notification.Status.SENT,
        sent_at=clock.now(),
    )
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
    try:
        page = context.new_page()
        page.goto(f"{daphne_server}/n/{people.link_token(sms.pk)}")
        assert "/login/" in page.url  # signing in first, then back to the link
        page.fill("#id_username", "chengguan")
        page.fill("#id_password", DEMO_PASSWORDS["chengguan"])
        with page.expect_navigation():
            page.click("button[type=submit].primary")
        page.wait_for_url(f"**/console/chengguan/#summons-{summons.pk}", timeout=10_000)
        row = page.wait_for_selector(f"#summons-{summons.pk}.highlighted", timeout=10_000)
        assert "东沟村山火" in row.inner_text()
        wait_for(lambda: Notification.objects.get(pk=sms.pk).read_at is not None, what="read")
        # The SMS's link read the SMS; the console's entry, shown on the page, reads itself.
        read = TimelineEntry.objects.filter(
            subject_type="summons", subject_id=summons.pk, action="summons.page_read"
        )
        wait_for(lambda: read.count() == 2, what="both notifications read")
        assert sorted(row.after["channel"] for row in read) == ["console", "sms"]
        # Acknowledging there is what the chain waits for.
        page.click(f"#summons-{summons.pk} [data-api-post$='/acknowledge']")
        wait_for(
            lambda: Summons.objects.get(pk=summons.pk).status == Summons.Status.ACKNOWLEDGED,
            what="the acknowledgement",
        )
    finally:
        context.close()


def test_the_supervisor_console_follows_overdue_work_and_notifications(
    daphne_server, demo_committed, board_page
):
    page = board_page("supervisor")
    page.goto(f"{daphne_server}/supervise/console/")
    page.wait_for_selector("#live-status.live", timeout=10_000)
    assert page.is_visible("#nav-supervisor-console")
    summons = summons_for("采石场夜间作业", department="police")
    Whistle.objects.filter(pk=summons.whistle_id).update(escalation_chain=CHAIN)
    # The deadline passes; the deadline service escalates, and the board's group hears it.
    Summons.objects.filter(pk=summons.pk).update(
        check_in_deadline=clock.now() - timedelta(minutes=12),
        page_at=clock.now() + timedelta(minutes=5),
        page_step=2,
    )
    summons_escalate(summons_id=summons.pk, level=1)
    row = page.wait_for_selector(f"#overdue-arrivals-{summons.pk}", timeout=10_000)
    assert "采石场夜间作业" in row.inner_text() and "12" in row.inner_text()
    chain = page.inner_text(f"#escalations-{summons.pk}")
    with translation.override("zh-hans"):
        assert "2 / 3" in chain and str(EscalationStep.Action.NOTIFY_HEAD.label) in chain

    # The supervisor issues a 督办单 (here through the service; the timeline page has its form).
    order = order_issue(
        actor=User.objects.get(username="supervisor"),
        incident=summons.whistle.incident,
        department=summons.department,
        instruction="立即派员到场制止夜间作业",
        due_at=clock.now() + timedelta(hours=1),
    )
    ordered = page.wait_for_selector(f"#orders-{order.pk}[data-status='issued']", timeout=10_000)
    assert "立即派员到场" in ordered.inner_text()
    note = page_person(summons, "supervisor", "district_supervisors", "采石场夜间作业：超时未报到")
    sent = page.wait_for_selector(f"#notifications-{note.pk}[data-read='0']", timeout=10_000)
    assert "李建华" in sent.inner_text()
    # The supervisor's own notification shows on this page too; looking at it reads it.
    page.wait_for_selector(f"#notification-{note.pk}", timeout=10_000)
    page.wait_for_selector(f"#notifications-{note.pk}[data-read='1']", timeout=10_000)
    page.mouse.move(0, 0)
    screenshot(page, "supervisor-console")
    assert page.evaluate(LOW_CONTRAST) == []

    # By keyboard: the first row's link to the incident's timeline.
    link = page.locator(f"#overdue-arrivals-{summons.pk} a.timeline-link")
    link.focus()
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert f"/incidents/{summons.whistle.incident_id}/" in page.url


def test_a_person_chooses_how_they_are_reached_on_a_phone(
    daphne_server, demo_committed, board_page
):
    page = board_page("chengguan", viewport=(390, 844))
    page.click("#nav-my-notifications")
    page.wait_for_selector("#reach-form")
    page.select_option("#id_channel_1", "email")
    page.select_option("#id_channel_2", "sms")
    page.select_option("#id_channel_3", "")
    page.select_option("#id_channel_4", "")
    page.fill("#id_phone", "13800138000")
    with page.expect_navigation():
        page.click("#reach-form button[type=submit]")
    page.wait_for_selector("#reach-saved")
    user = User.objects.get(username="chengguan")
    assert user.notify_by == ["email", "sms"] and user.phone == "13800138000"
    assert page.input_value("#id_channel_1") == "email"
    states = dict(
        page.eval_on_selector_all(
            "#reach-status tr[data-channel]",
            "rows => rows.map(r => [r.dataset.channel, r.dataset.state])",
        )
    )
    assert states["console"] == "always" and states["system"] in ("reaches", "cannot")
    screenshot(page, "my-notifications-phone")
    page.locator("#reach-status").scroll_into_view_if_needed()
    screenshot(page, "my-notifications-phone-channels")
    assert page.evaluate(LOW_CONTRAST) == []
    assert page.evaluate("document.documentElement.scrollWidth") <= 390

    # The same channel twice is refused, and nothing changes.
    page.select_option("#id_channel_1", "sms")
    page.select_option("#id_channel_2", "sms")
    with page.expect_navigation():
        page.click("#reach-form button[type=submit]")
    with translation.override("zh-hans"):
        assert gettext("Name each channel once.") in page.inner_text("#reach-errors")
    assert User.objects.get(username="chengguan").notify_by == ["email", "sms"]


def test_the_duty_board_shows_its_officers_notification(daphne_server, demo_committed, board_page):
    page = board_page("duty")
    page.wait_for_selector("#live-status.live", timeout=10_000)
    summons = summons_for("夜间施工扰民")
    note = page_person(
        summons, "duty", "township_supervisors", "夜间施工扰民：城管执法局超时未报到"
    )
    page.wait_for_selector(f"#notification-{note.pk}", timeout=10_000)
    # Shown on a visible page: read at once, and it stays until dismissed.
    wait_for(lambda: Notification.objects.get(pk=note.pk).read_at is not None, what="read")
    page.wait_for_selector(f"#notification-{note.pk}.read", timeout=5_000)
    page.mouse.move(0, 0)
    screenshot(page, "board-notification")
    assert page.evaluate(LOW_CONTRAST) == []
    page.click(f"#notification-{note.pk} [data-dismiss-notification]")
    page.wait_for_selector("#notification-tray", state="hidden", timeout=5_000)
