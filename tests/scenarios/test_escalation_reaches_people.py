"""督办 reaches people, end to end (issue: the 30-minute rule must not depend on someone having
the console open at 2 a.m.).

Real daphne, the job worker, PostgreSQL, Redis, an SMTP server (aiosmtpd), an SMS gateway
speaking Alibaba Cloud's SendSms (it checks every request's signature) and chromium:

a night emergency whistle → the police's on-call is paged (a console notification in the
browser, with the browser's Notification API, and an SMS) → nobody acknowledges → the backup
is paged → still nobody → the head by SMS and e-mail → the township's supervisor sees it live on
the supervisor console and issues a 督办单 → the department acknowledges it from the link in its
SMS → the chain stops before the district is paged; the incident's page shows every
notification with its channel and outcome. The same run with the SMS gateway failing shows the
failure rows and the e-mail sent instead.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, time
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.db import transaction

from alerts.models import Notification
from command.org.models import Category, Department, OnCallShift, Township, User, township_zone
from command.timeline.models import TimelineEntry
from incidents.models import EscalationChain, EscalationStep, Summons, SupervisionOrder, Whistle
from incidents.services.incidents import incident_open
from incidents.services.whistles import SummonedDepartment, whistle_blow
from tests.alerts.channel_servers import AliyunSmsGateway, smtp_server
from tests.browser import screenshot
from tests.conftest import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(300)]

PASSWORD = "督办-test-passw0rd"
Step = EscalationStep.Action
# The township's emergency chain as an administrator sets it (whole minutes) …
CHAIN = [
    (Step.NOTIFY_ON_CALL, None, False),
    (Step.WAIT, 1, False),
    (Step.NOTIFY_BACKUP, None, False),
    (Step.WAIT, 1, False),
    (Step.NOTIFY_HEAD, None, True),
    (Step.WAIT, 1, False),
    (Step.NOTIFY_TOWNSHIP_SUPERVISORS, None, False),
    (Step.WAIT, 10, False),
    (Step.NOTIFY_DISTRICT_SUPERVISORS, None, True),
]
# … run faster here: the whistle's copy waits seconds where the chain waits minutes, and the
# district is paged only if the chain is still running ten minutes on.
FAST_WAITS = [0.1, 0.1, 0.1, 10]


def night_zone() -> str:
    """A zone where it is now about 2 a.m.: the whistle is blown in the township's night."""
    hours_ahead = (2 - datetime.now(UTC).hour) % 24
    if hours_ahead > 14:
        hours_ahead -= 24
    return f"Etc/GMT{-hours_ahead:+d}" if hours_ahead else "Etc/UTC"


def night_shift() -> tuple[time, time]:
    """The police's night shift as its rota keeps it: a district department's rota runs on
    the deployment's clock (settings.TIME_ZONE), not on the township's moved one, so the
    twelve hours around now there are its night, whatever the hour the test runs at."""
    hour = datetime.now(township_zone(settings.TIME_ZONE)).hour
    return time((hour - 6) % 24), time((hour + 6) % 24)


def person(username: str, **fields: Any) -> User:
    user = User(username=username, is_active=True, **fields)
    user.set_password(PASSWORD)
    user.save()
    return user


@pytest.fixture
def night(demo_committed) -> dict[str, Any]:
    qingshui = Township.objects.get(code="qingshui")
    qingshui.time_zone = night_zone()
    qingshui.save(update_fields=["time_zone"])
    police = Department.objects.get(code="police")
    member = {"role": User.Role.DEPARTMENT_MEMBER, "department": police}
    people = {
        "night_a": person("police-night-a", first_name="晓峰", last_name="林", phone="13800000001",
                          email="lin@police.example", notify_by=["sms", "email"], **member),
        "night_b": person("police-night-b", first_name="建国", last_name="许", phone="13800000002",
                          notify_by=["sms"], **member),
        "day": person("police-day", first_name="敏", last_name="何", phone="13800000009",
                      **member),
        "head": person("police-head", first_name="卫东", last_name="郑", phone="13800000003",
                       email="zheng@police.example", notify_by=["sms", "email"], **member),
        "supervisor": person("qs-supervisor", first_name="静", last_name="宋",
                             phone="13800000004", role=User.Role.SUPERVISOR, township=qingshui,
                             notify_by=["sms"]),
        "district": User.objects.get(username="supervisor"),
    }  # fmt: skip
    police.head = people["head"]
    police.save(update_fields=["head"])
    OnCallShift.objects.filter(department=police).delete()
    night_starts, night_ends = night_shift()
    OnCallShift.objects.create(department=police, starts=night_ends, ends=night_starts,
                               primary=people["day"])  # fmt: skip
    OnCallShift.objects.create(department=police, starts=night_starts, ends=night_ends,
                               primary=people["night_a"], backup=people["night_b"])  # fmt: skip
    chain = EscalationChain.objects.create(township=qingshui, kind="emergency", name="夜间紧急")
    for position, (action, minutes, every) in enumerate(CHAIN):
        EscalationStep.objects.create(chain=chain, position=position, action=action,
                                      minutes=minutes, all_channels=every)  # fmt: skip
    return people


@pytest.fixture(scope="module")
def servers(django_db_setup: Any, django_db_blocker: Any, redis_url: str):
    """The SMS gateway, the mail server, and a web server of this module's own that pages
    through them too: a supervisor's 督办单 is issued in the web process, which picks each
    person's channels, so it must know the gateway as the worker does."""
    from daphne.testing import DaphneProcess
    from django.db import connections

    gateway = AliyunSmsGateway()
    with smtp_server() as (mailbox, smtp_port):
        overrides = {
            "WEBHOOK_ALLOWED_NETWORKS": ["127.0.0.0/8"],
            "WHISTLE_NOTIFY_TIMEOUT": 2.0,
            "WHISTLE_SMS_PROVIDER": "aliyun",
            "WHISTLE_SMS_URL": gateway.url,
            "WHISTLE_SMS_KEY_ID": AliyunSmsGateway.KEY_ID,
            "WHISTLE_SMS_KEY_SECRET": AliyunSmsGateway.SECRET,
            "WHISTLE_SMS_SIGN_NAME": "清水镇指挥中心",
            "WHISTLE_SMS_TEMPLATE": "SMS_470000001",
            "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": smtp_port,
            "EMAIL_USE_TLS": False,
            "EMAIL_USE_SSL": False,
            "EMAIL_HOST_USER": "",
            "EMAIL_HOST_PASSWORD": "",
            "EMAIL_TIMEOUT": 2.0,
            "DEFAULT_FROM_EMAIL": "清水镇指挥中心 <duban@qingshui.example>",
        }

        def get_application() -> Any:
            from command.asgi import application

            return application

        def configure() -> None:
            from concurrent.futures import ThreadPoolExecutor

            from asgiref.sync import SyncToAsync
            from django.conf import settings

            django_db_blocker.unblock()
            SyncToAsync.single_thread_executor = ThreadPoolExecutor(max_workers=1)
            for name, value in overrides.items():
                setattr(settings, name, value)

        with django_db_blocker.unblock():
            connections.close_all()  # a forked child must not share our sockets
        web = DaphneProcess("127.0.0.1", get_application, setup=configure)
        web.daemon = True
        web.start()
        if not web.ready.wait(20):
            raise RuntimeError("daphne did not start in 20 s")
        base = f"http://127.0.0.1:{web.port.value}"
        try:
            yield base, overrides, gateway, mailbox
        finally:
            web.terminate()
            web.join(10)
            gateway.close()


@pytest.fixture
def channels(settings: Any, servers: Any) -> tuple[str, AliyunSmsGateway, Any]:
    """This test's worker (in this process) pages through the same gateway and mail server;
    links in the messages lead to the module's web server."""
    base, overrides, gateway, mailbox = servers
    for name, value in overrides.items():
        setattr(settings, name, value)
    settings.WHISTLE_BASE_URL = base
    gateway.mode = "ok"
    gateway.sent.clear()
    mailbox.messages.clear()
    mailbox.mode = "ok"
    return base, gateway, mailbox


def blow_at_night() -> Summons:
    """The duty officer blows an emergency whistle on a fire at the quarry; the whistle keeps
    the township's chain with its waits made seconds (in the same transaction, so no step
    runs on the minutes)."""
    duty = User.objects.get(username="duty")
    with transaction.atomic():
        incident = incident_open(
            actor=duty,
            township=Township.objects.get(code="qingshui"),
            category=Category.objects.get(code="illegal-mining"),
            severity="critical",
            title="夜间矿区挖掘机作业，有人员冲突",
        )
        whistle = whistle_blow(
            actor=duty,
            incident=incident,
            kind=Whistle.Kind.EMERGENCY,
            purpose=Whistle.Purpose.EMERGENCY_RESPONSE,
            departments=[SummonedDepartment(Department.objects.get(code="police"))],
        )
        waits = iter(FAST_WAITS)
        fast = [
            {**step, "minutes": next(waits)} if step["action"] == Step.WAIT else step
            for step in whistle.escalation_chain
        ]
        Whistle.objects.filter(pk=whistle.pk).update(escalation_chain=fast)
    return whistle.summonses.get()


def texts_to(gateway: AliyunSmsGateway, phone: str) -> list[dict[str, str]]:
    return [
        json.loads(sent["TemplateParam"]) for sent in gateway.sent if sent["PhoneNumbers"] == phone
    ]


def sign_in(browser: Any, base: str, username: str, *, to: str = "/") -> Any:
    """A page of a browser of its own, signed in, with notifications allowed and the
    Notification API recorded (window.__notified)."""
    context = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN")
    context.grant_permissions(["notifications"], origin=base)
    context.add_init_script(
        """
        window.__notified = [];
        const Real = window.Notification;
        window.Notification = function (title, options) {
          window.__notified.push({ title: title, body: (options || {}).body || "" });
          return new Real(title, options);
        };
        window.Notification.permission = "granted";
        window.Notification.requestPermission = () => Promise.resolve("granted");
        """
    )
    page = context.new_page()
    page.goto(f"{base}{to}")
    if "/login/" in page.url:
        page.fill("#id_username", username)
        page.fill("#id_password", PASSWORD)
        with page.expect_navigation():
            page.click("button[type=submit].primary")
    return page


def paging_rows(summons: Summons) -> list[tuple[str, str, str]]:
    """(action, person, channel) of the summons' paging rows, in order."""
    return [
        (row.action, row.after.get("person") or row.after.get("reason"), row.after.get("channel"))
        for row in TimelineEntry.objects.filter(
            subject_type="summons", subject_id=summons.pk, action__contains="page"
        ).order_by("time", "pk")
    ]


def test_a_night_whistle_pages_people_until_the_department_answers(
    night, channels, job_worker, browser
):
    daphne_server, gateway, mailbox = channels
    on_call = sign_in(browser, daphne_server, "police-night-a")
    assert on_call.url.endswith("/console/police/")
    on_call.wait_for_selector("#live-status.live", timeout=10_000)
    console = sign_in(browser, daphne_server, "qs-supervisor", to="/supervise/console/")
    console.wait_for_selector("#live-status.live", timeout=10_000)

    summons = blow_at_night()
    job_worker.start()

    # 1. The on-call: on the console they have open (with the browser's notification) and by
    #    SMS, signed as Alibaba Cloud checks it.
    entry = on_call.wait_for_selector("#notification-list li.notification", timeout=15_000)
    assert "尚未接单" in entry.inner_text()
    wait_for(lambda: on_call.evaluate("window.__notified.length") >= 1, what="a notification")
    wait_for(lambda: texts_to(gateway, "13800000001"), what="the on-call's SMS")
    wait_for(
        lambda: Notification.objects.filter(
            user=night["night_a"], channel="console", read_at__isnull=False
        ).exists(),
        what="the on-call's console page read, seen on a visible page",
    )
    assert gateway.problems == []
    sms = texts_to(gateway, "13800000001")[0]
    assert "夜间矿区" in sms["title"] and sms["link"].startswith(f"{daphne_server}/n/")
    screenshot(on_call, "escalation-console-notification")

    # 2. Nobody acknowledges: the backup, then 3. the head by SMS and by e-mail.
    wait_for(lambda: texts_to(gateway, "13800000002"), timeout=30, what="the backup's SMS")
    wait_for(lambda: texts_to(gateway, "13800000003"), timeout=30, what="the head's SMS")
    wait_for(
        lambda: any("zheng@police.example" in to for _, to, _ in mailbox.messages),
        timeout=30,
        what="the head's e-mail",
    )
    (_, _, mail) = next(m for m in mailbox.messages if "zheng@police.example" in m[1])
    assert "夜间矿区" in mail["Subject"] and f"{daphne_server}/n/" in mail.get_body().get_content()
    assert not texts_to(gateway, "13800000009"), "the day shift is not on call at night"

    # 4. The township's supervisor: live on the supervisor console, with its SMS.
    wait_for(lambda: texts_to(gateway, "13800000004"), timeout=30, what="the supervisor's SMS")
    console.wait_for_selector(f"#escalations-{summons.pk}[data-step='4']", timeout=15_000)
    console.wait_for_selector("#notification-list li.notification", timeout=15_000)
    screenshot(console, "escalation-supervisor-console")

    # 5. The supervisor issues a 督办单 from the incident's page.
    console.click(f"#escalations-{summons.pk} a.timeline-link")
    console.wait_for_selector("#order-form")
    console.select_option("#order-form select[name=department]", "police")
    console.fill("#order-form textarea[name=instruction]", "立即派员到场处置并回复现场情况")
    console.click("#order-form button[type=submit]")
    console.wait_for_selector("#order-list tr[data-status='issued']", timeout=10_000)
    order = SupervisionOrder.objects.get()

    # 6. The backup acknowledges it from the link in the order's SMS, on their phone.
    wait_for(
        lambda: any(t["title"].startswith("【督办单】") for t in texts_to(gateway, "13800000002")),
        timeout=30,
        what="the order's SMS to the backup",
    )
    link = next(t["link"] for t in texts_to(gateway, "13800000002") if "督办单" in t["title"])
    phone = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
    page = phone.new_page()
    page.goto(link)
    assert "/login/" in page.url  # every page asks who it is first
    page.fill("#id_username", "police-night-b")
    page.fill("#id_password", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit].primary")
    assert urlsplit(page.url).path == "/console/police/"
    acknowledge = f"#order-{order.pk} [data-api-post$='/acknowledge']"
    page.wait_for_selector(acknowledge)
    screenshot(page, "escalation-link-on-phone")
    page.locator(acknowledge).click()  # found again at the click: the row may be redrawn live
    page.wait_for_selector(f"#order-{order.pk}[data-status='acknowledged']", timeout=10_000)

    # 7. The chain stops: the summons is acknowledged, no step is due, the district never paged.
    wait_for(
        lambda: Summons.objects.get(pk=summons.pk).status == Summons.Status.ACKNOWLEDGED,
        what="the summons acknowledged with the order",
    )
    assert Summons.objects.get(pk=summons.pk).page_at is None
    console.wait_for_selector(f"#escalations-{summons.pk}", state="detached", timeout=15_000)
    assert not Notification.objects.filter(user=night["district"]).exists()
    read = Notification.objects.filter(subject_type="order", user=night["night_b"], channel="sms")
    assert read.get().read_at is not None

    # 8. The incident's page: every notification with its channel and outcome, in order.
    rows = paging_rows(summons)
    # The open console may read its page before the SMS gateway has answered, so the on-call's
    # read row can fall between the two pages: order is asserted among the pages themselves.
    pages = [r for r in rows if r[0] == "summons.paged"]
    assert pages[:2] == [
        ("summons.paged", "林晓峰", "console"),
        ("summons.paged", "林晓峰", "sms"),
    ], rows
    assert rows.index(("summons.page_read", "林晓峰", "console")) > 0, rows
    for expected in [
        ("summons.paged", "许建国", "console"),
        ("summons.paged", "许建国", "sms"),
        ("summons.paged", "郑卫东", "sms"),
        ("summons.paged", "郑卫东", "email"),
        ("summons.paged", "宋静", "sms"),
    ]:
        assert expected in rows, (expected, rows)
    assert not [r for r in rows if r[0] == "summons.page_failed"]
    console.goto(f"{daphne_server}/supervise/qingshui/incidents/{summons.whistle.incident_id}/")
    timeline = console.inner_text("#timeline")
    for words in ("林晓峰", "许建国", "郑卫东", "宋静", "短信", "电子邮件", "督办单"):
        assert words in timeline, words
    screenshot(console, "escalation-timeline")


def test_when_the_sms_gateway_fails_the_timeline_says_so_and_e_mail_goes_instead(
    night, channels, job_worker
):
    _, gateway, mailbox = channels
    gateway.mode = "unavailable"
    summons = blow_at_night()
    job_worker.start()
    # The on-call's SMS: three attempts (2 and 4 s apart) answered 503, then their e-mail.
    wait_for(
        lambda: any("lin@police.example" in to for _, to, _ in mailbox.messages),
        timeout=45,
        what="the on-call's e-mail after the SMS failed",
    )
    failed = TimelineEntry.objects.get(
        subject_type="summons", subject_id=summons.pk, action="summons.page_failed",
        after__person="林晓峰",
    )  # fmt: skip
    assert failed.after["channel"] == "sms" and failed.after["then"] == "email"
    assert re.search(r"503", failed.after["error"]), failed.after
    sms = Notification.objects.get(user=night["night_a"], channel="sms", subject_id=summons.pk)
    assert (sms.status, sms.attempts) == ("failed", 3)
    # The worker records the e-mail as sent once the SMTP server has taken it: just after the
    # mailbox above has it.
    wait_for(
        lambda: Notification.objects.filter(
            user=night["night_a"], channel="email", subject_id=summons.pk, status="sent"
        ).exists(),
        timeout=15,
        what="the on-call's e-mail recorded as sent",
    )
    rows = paging_rows(summons)
    at = rows.index(("summons.page_failed", "林晓峰", "sms"))
    assert ("summons.paged", "林晓峰", "email") in rows[at + 1 :], rows
    # The backup has SMS only: its failure says so, with nothing to try next.
    wait_for(
        lambda: TimelineEntry.objects.filter(
            subject_type="summons", subject_id=summons.pk, action="summons.page_failed",
            after__person="许建国",
        ).exists(),
        timeout=45,
        what="the backup's SMS failing",
    )  # fmt: skip
    backup = TimelineEntry.objects.get(
        subject_type="summons", subject_id=summons.pk, action="summons.page_failed",
        after__person="许建国",
    )  # fmt: skip
    assert "then" not in backup.after
    assert len(gateway.sent) >= 3 and gateway.problems == []
