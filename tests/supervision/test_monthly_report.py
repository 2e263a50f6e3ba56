"""The monthly report (月度报表): its figures and workbook on a small known month, when it is
due on the township's clock, sending it once to the supervisors (console and e-mail with the
workbook, through a real SMTP server), the CLI, and its pages."""

from __future__ import annotations

import io
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import translation

from alerts.delivery import people
from alerts.models import Alert, Notification
from command import clock
from command.org.models import Category, Department, Grid, Township, User
from command.timeline.models import TimelineEntry
from incidents.models import Incident, Summons, Whistle
from incidents.services.incidents import incident_open
from incidents.services.orders import order_issue
from incidents.services.whistles import SummonedDepartment, whistle_blow
from intake.reports import report_file
from supervision import monthly, reports
from supervision.models import MonthlyReport
from tests.alerts.channel_servers import smtp_server
from tests.conftest import ARTIFACTS, raise_alert, wait_for

SHANGHAI = ZoneInfo("Asia/Shanghai")
OCTOBER = reports.Month(2026, 10)
G7, G12 = "110112-QS-007", "110112-QS-012"
H = timedelta(hours=1)


def _day(day: int, hour: float = 0) -> datetime:
    return datetime(2026, 10, day, tzinfo=SHANGHAI) + hour * H


def _alert(key, at, *, category="parking", grid=G7, source="camera"):
    qingshui = Township.objects.get(code="qingshui")
    with clock.frozen(at=at):
        return raise_alert(qingshui.pk, key, category=category, source=source, title=key,
                           time=at, grid_id=Grid.objects.get(code=grid).pk)  # fmt: skip


def _open(title, at, *, category="parking", grid=G7, alerts=()):
    with clock.frozen(at=at):
        incident = incident_open(
            actor=User.objects.get(username="duty"),
            township=Township.objects.get(code="qingshui"),
            category=Category.objects.get(code=category),
            severity="major",
            title=title,
            grid=Grid.objects.get(code=grid),
            alerts=list(Alert.objects.filter(pk__in=alerts)),
        )
    Incident.objects.filter(pk=incident.pk).update(opened_at=at)
    return Incident.objects.get(pk=incident.pk)


def _close(incident, at, level):
    Incident.objects.filter(pk=incident.pk).update(
        status=Incident.Status.CLOSED, closed_at=at, settled_level=level
    )


@pytest.fixture
def october(demo):
    """October 2026 in qingshui: 5 camera alerts on parking in grid 7 (one the night of the
    31st to the 1st of November on the township's clock, which is not October's), a sensor's
    smoke alert in grid 12, a grid officer's report, a merged duplicate; 4 incidents closed
    (2 in the grid, 1 in the township, 1 up to the county), one opened by hand; the police
    summoned twice (once late), a supervision order answered late."""
    made = {}
    cams = [_alert(f"cam-{n}", _day(n + 1, 9)) for n in range(4)]
    # 23:30 on 31 October in Shanghai is 15:30 UTC: October's. 00:30 on 1 November is not.
    _alert("cam-late", _day(31, 23.5))
    _alert("cam-november", datetime(2026, 11, 1, 0, 30, tzinfo=SHANGHAI))
    _alert("smoke-1", _day(3, 20), category="fire", grid=G12, source="sensor")
    dup = _alert("cam-dup", _day(2, 10))
    Alert.objects.filter(pk=dup).update(status=Alert.Status.MERGED)
    with clock.frozen(at=_day(5, 11)):
        report_file(reporter=User.objects.get(username="grid01"),
                    category=Category.objects.get(code="garbage"), description="垃圾堆积",
                    grid=Grid.objects.get(code=G7))  # fmt: skip
    Alert.objects.filter(source="report").update(first_seen=_day(5, 11))
    a = _open("违停一", _day(1, 9.5), alerts=[cams[0]])
    b = _open("违停二", _day(2, 9.5), alerts=[cams[1]])
    c = _open("违停三", _day(3, 9.5), alerts=[cams[2]])
    d = _open("邻里纠纷", _day(6, 16), category="dispute", grid=G12)  # by hand
    police = Department.objects.get(code="police")
    for incident, late in ((a, False), (b, True)):
        with clock.frozen(at=incident.opened_at + 0.1 * H):
            whistle = whistle_blow(
                actor=User.objects.get(username="duty"),
                incident=incident,
                kind=Whistle.Kind.GENERAL,
                purpose=Whistle.Purpose.JOINT_ENFORCEMENT,
                departments=[SummonedDepartment(police, "needed")],
            )
        summons = whistle.summonses.get()
        Summons.objects.filter(pk=summons.pk).update(
            checked_in_at=summons.check_in_deadline + (H if late else -H),
            overdue=late,
            escalation_level=1 if late else 0,
        )
    with clock.frozen(at=_day(2, 12)):
        order = order_issue(
            actor=User.objects.get(username="duty"),
            incident=b,
            department=police,
            instruction="限期到场",
            due_at=_day(3, 12),
        )
    order.answered_at = _day(4, 12)
    order.save(update_fields=["answered_at"])
    _close(a, _day(4), "grid")
    _close(b, _day(5), "grid")
    _close(c, _day(6), "township")
    _close(d, _day(7), "county")
    made.update(a=a, b=b, c=c, d=d, order=order)
    return made


def _sheet_rows(sheet):
    return [list(row) for row in sheet.iter_rows(values_only=True)]


@pytest.mark.django_db
def test_the_workbook_has_a_sheet_per_section_with_the_months_figures(october):
    qingshui = Township.objects.get(code="qingshui")
    with translation.override("en"):
        figures = reports.monthly_figures(township=qingshui, month=OCTOBER)
        book = openpyxl.load_workbook(io.BytesIO(reports.workbook(figures)))
    assert book.sheetnames == [
        "Summary", "Intake", "631", "Departments", "Overdue and orders", "Hot spots",
    ]  # fmt: skip
    summary = dict(_sheet_rows(book["Summary"])[1:])
    # 6 alerts in October (cam-1..4, cam-late, smoke-1; not November's, not the merged one),
    # the grid officer's report, and the dispute opened by hand.
    assert summary["Intake items"] == 8
    assert summary["Incidents opened"] == 4 and summary["Incidents closed"] == 4
    assert summary["Settled in the grid / village"] == 0.5
    assert summary["Went up to the county"] == 0.25
    assert summary["Check-in overdue"] == 1 and summary["Supervision orders issued"] == 1
    assert book["Summary"]["B8"].number_format == "0.0%"

    intake = book["Intake"]
    assert intake.freeze_panes == "A2"
    assert intake["A1"].value == "Day" and intake["A1"].font.bold
    per_day = intake.iter_rows(min_row=2, max_col=2, values_only=True)
    days = {row[0].date(): row[1] for row in per_day if row[0]}
    assert len(days) == 31 and days[date(2026, 10, 31)] == 1 and days[date(2026, 10, 6)] == 1
    assert intake["A2"].number_format == "yyyy-mm-dd"
    channels = {r[3]: r[4] for r in intake.iter_rows(min_row=2, values_only=True) if r[3]}
    assert channels["Camera"] == 5 and channels["Opened by hand"] == 1
    assert sum(channels.values()) == 8
    assert len(intake._charts) == 2  # intake per day (line) and by channel (bars)

    settled = _sheet_rows(book["631"])
    assert settled[0][:4] == ["Settled at", "Incidents", "Share", "Target"]
    assert [row[1] for row in settled[1:4]] == [2, 1, 1]
    assert [row[2] for row in settled[1:4]] == [0.5, 0.25, 0.25]
    assert [row[3] for row in settled[1:4]] == [0.6, 0.3, 0.1]
    assert [row[4] for row in settled[1:4]] == ["no", "no", "no"]
    assert book["631"]["C2"].number_format == "0.0%"
    assert len(book["631"]._charts) == 1

    departments = _sheet_rows(book["Departments"])
    header = departments[0]
    police = dict(zip(header, next(r for r in departments[1:] if r[0] == "police"), strict=True))
    assert police["Summoned"] == 2 and police["On time"] == 1 and police["On-time rate"] == 0.5
    assert police["Check-in overdue"] == 1 and police["Escalated"] == 1
    assert police["Supervision orders"] == 1 and police["Orders answered on time"] == 0
    assert book["Departments"].freeze_panes == "C2"
    # The assessment's scores: from the figures alone; no combined score until rated.
    assert 0 < police["Score from the figures"] < 100 and police["Combined score"] is None

    orders = _sheet_rows(book["Overdue and orders"])
    assert orders[0][:3] == ["Issued at", "Department", "Incident"]
    assert orders[1][0] == datetime(2026, 10, 2, 12, 0)  # the township's wall clock
    assert orders[1][6] == "no"  # answered a day after its deadline

    hot = _sheet_rows(book["Hot spots"])
    grids = {row[0]: (row[2], row[3]) for row in hot[1:] if row[0]}
    assert grids[G7][0] >= 5 and grids[G12] == (1, 1)
    # Parking in grid 7: 4 incidents/alerts as matters (3 incidents + cam-4 + cam-late).
    repeats = [row[5:8] for row in hot[1:] if row[5]]
    assert repeats and repeats[0][2] >= 3


@pytest.mark.django_db
def test_the_workbook_reads_in_chinese_by_default(october):
    qingshui = Township.objects.get(code="qingshui")
    report = monthly.monthly_report_generate(township=qingshui, month=OCTOBER)
    book = openpyxl.load_workbook(io.BytesIO(bytes(report.workbook)))
    assert report.language == "zh-hans" and len(book.sheetnames) == 6
    assert report.figures["intake"]["total"] == 8
    (police,) = report.figures["scores"]
    assert police["code"] == "police" and police["score"] is None  # not rated by the township
    assert 0 < police["measured"] < 100
    entry = TimelineEntry.objects.get(subject_type="report", subject_id=report.pk)
    assert entry.action == "report.generated" and entry.after["month"] == "2026-10"


def test_the_first_working_day_skips_the_weekend_and_holidays(settings):
    # August 2026 begins on a Saturday: Monday the 3rd.
    assert monthly.first_working_day(reports.Month(2026, 8)) == date(2026, 8, 3)
    assert monthly.first_working_day(reports.Month(2026, 10)) == date(2026, 10, 1)
    settings.WHISTLE_REPORT_HOLIDAYS = ["2026-10-01", "2026-10-02", "2026-10-05"]
    assert monthly.first_working_day(reports.Month(2026, 10)) == date(2026, 10, 6)
    assert reports.Month(2026, 1).previous() == reports.Month(2025, 12)
    assert reports.Month(2026, 12).next() == reports.Month(2027, 1)
    with pytest.raises(ValueError):
        reports.Month.parse("2026-13")


@pytest.mark.django_db
def test_the_report_is_due_on_the_townships_clock(settings):
    settings.WHISTLE_REPORT_HOUR = 8
    township = Township(code="t", name="t", time_zone="Asia/Shanghai")
    utc = ZoneInfo("UTC")
    # Sunday 2 August, 23:59 in Shanghai: not yet; Monday 07:59: not yet; 08:00: July's.
    assert monthly.month_due(township, datetime(2026, 8, 2, 23, 59, tzinfo=SHANGHAI)) is None
    assert monthly.month_due(township, datetime(2026, 8, 3, 7, 59, tzinfo=SHANGHAI)) is None
    assert monthly.month_due(township, datetime(2026, 8, 3, 0, 0, tzinfo=utc)) == reports.Month(
        2026, 7
    )
    # From midnight on: Sunday 16:30 UTC is already Monday 00:30 in Shanghai.
    settings.WHISTLE_REPORT_HOUR = 0
    assert monthly.month_due(township, datetime(2026, 8, 2, 16, 30, tzinfo=utc)) == reports.Month(
        2026, 7
    )
    assert monthly.month_due(township, datetime(2026, 8, 2, 15, 30, tzinfo=utc)) is None
    # Later in the month it is still due (a worker down on the day catches up).
    assert monthly.month_due(township, datetime(2026, 8, 20, tzinfo=SHANGHAI)) == reports.Month(
        2026, 7
    )


def _township_supervisor(qingshui: Township) -> User:
    return User.objects.create_user(
        username="qs-supervisor",
        password="x-test-pass",
        role=User.Role.SUPERVISOR,
        township=qingshui,
        email="qs-supervisor@qingshui.example",
    )


@pytest.mark.django_db
def test_publishing_is_once_only_even_when_run_twice_or_killed_midway(october, monkeypatch):
    qingshui = Township.objects.get(code="qingshui")
    mine = _township_supervisor(qingshui)
    november_3 = datetime(2026, 11, 2, 9, tzinfo=SHANGHAI)  # Monday 2 November, 09:00
    original = people.page

    def killed(*args, **kwargs):
        original(*args, **kwargs)
        raise SystemExit("worker killed")  # after the notifications were written

    monkeypatch.setattr(people, "page", killed)
    with pytest.raises(SystemExit):
        monthly.monthly_report_publish(township=qingshui, month=OCTOBER)
    # Nothing of the killed run stays: no report, no notification, no job.
    assert not MonthlyReport.objects.exists()
    assert not Notification.objects.filter(subject_type="report").exists()
    monkeypatch.setattr(people, "page", original)

    with clock.frozen(at=november_3):
        assert monthly.monthly_reports_due() == {"qingshui": "sent"}
        assert monthly.monthly_reports_due() == {}  # sent: not even tried again
    assert monthly.monthly_report_publish(township=qingshui, month=OCTOBER) == "already sent"
    report = MonthlyReport.objects.get()
    assert (report.month, report.status) == ("2026-10", MonthlyReport.Status.SENT)
    sent = Notification.objects.filter(subject_type="report", subject_id=report.pk)
    district = User.objects.get(username="supervisor")
    # Each supervisor once in the console and once by e-mail, whatever their own channels.
    assert sorted(sent.values_list("user__username", "channel")) == sorted(
        [
            (mine.username, "console"),
            (mine.username, "email"),
            (district.username, "console"),
            (district.username, "email"),
        ]
    )
    assert {n.reason for n in sent if n.user_id == mine.pk} == {"township_supervisors"}
    console = sent.filter(channel="console").first()
    assert console.link == "/supervise/qingshui/reports/2026-10/"
    # The tray's entry opens the report, not the supervisor console.
    from frontend.notifications import notification_target

    assert notification_target(console.user, console) == console.link
    # Generating again replaces the figures and sends nothing new.
    again = monthly.monthly_report_generate(township=qingshui, month=OCTOBER)
    assert again.pk == report.pk and again.status == MonthlyReport.Status.SENT
    assert sent.count() == 4


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(120)
def test_the_email_with_the_workbook_reaches_a_real_smtp_server(demo_committed, settings,
                                                                 job_worker):  # fmt: skip
    qingshui = Township.objects.get(code="qingshui")
    _township_supervisor(qingshui)
    with smtp_server() as (mailbox, port):
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
        settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
        settings.EMAIL_TIMEOUT = 2.0
        settings.DEFAULT_FROM_EMAIL = "whistle@qingshui.example"
        with clock.frozen(at=datetime(2026, 11, 2, 9, tzinfo=SHANGHAI)):
            assert monthly.monthly_reports_due() == {"qingshui": "sent"}
        job_worker.start()
        wait_for(lambda: len(mailbox.messages) >= 2, timeout=60, what="two e-mails")
    recipients = sorted(rcpt for _from, rcpts, _m in mailbox.messages for rcpt in rcpts)
    assert recipients == ["qs-supervisor@qingshui.example", "supervisor@qingshui.example"]
    message = mailbox.messages[0][2]
    # 【月报】 once the Chinese is in command/locale; the kind is named either way.
    assert message["Subject"].strip().startswith(("【月报】", "[Monthly report]"))
    assert "2026-10" in message["Subject"]
    (attachment,) = list(message.iter_attachments())
    assert attachment.get_filename() == "whistle-report-qingshui-2026-10.xlsx"
    assert attachment.get_content_type() == reports_xlsx()
    book = openpyxl.load_workbook(io.BytesIO(attachment.get_content()))
    assert len(book.sheetnames) == 6
    report = MonthlyReport.objects.get()
    wait_for(
        lambda: (
            Notification.objects.filter(
                subject_id=report.pk, channel="email", status="sent"
            ).count()
            == 2
        ),
        timeout=20,
        what="both e-mails marked sent",
    )
    assert TimelineEntry.objects.filter(
        subject_type="report", subject_id=report.pk, action="report.paged"
    ).count() == 4  # fmt: skip


def reports_xlsx() -> str:
    return monthly.XLSX


@pytest.mark.django_db
def test_the_cli_writes_the_workbook_and_refuses_bad_input(october, tmp_path, capsys):
    out = tmp_path / "october.xlsx"
    call_command("report", "monthly", "--township", "qingshui", "--month", "2026-10",
                 "-o", str(out), "--language", "en")  # fmt: skip
    book = openpyxl.load_workbook(out)
    assert book.sheetnames[0] == "Summary" and book["Summary"]["B5"].value == 8
    printed = capsys.readouterr()
    assert "qingshui 2026-10, 8 intake items" in printed.out
    assert "Reading qingshui's figures for 2026-10" in printed.err
    with pytest.raises(CommandError, match=r"unknown township 'nowhere' \(known: qingshui\)"):
        call_command("report", "monthly", "--township", "nowhere", "--month", "2026-10",
                     "-o", str(out))  # fmt: skip
    with pytest.raises(CommandError, match=r"bad month '2026-1O': give it as YYYY-MM"):
        call_command("report", "monthly", "--township", "qingshui", "--month", "2026-1O",
                     "-o", str(out))  # fmt: skip
    with pytest.raises(CommandError, match="no folder"):
        call_command("report", "monthly", "--township", "qingshui", "--month", "2026-10",
                     "-o", str(tmp_path / "missing" / "x.xlsx"))  # fmt: skip


# `whistle report …` ends by closing the database connections, as every management command run
# from the command line does: a test transaction could not outlive it.
@pytest.mark.django_db(transaction=True)
def test_the_whistle_command_runs_it(october, tmp_path, capsys):
    from command import cli

    out = tmp_path / "cli.xlsx"
    cli.main(["report", "monthly", "--township", "qingshui", "--month", "2026-10", "-o",
              str(out)])  # fmt: skip
    assert openpyxl.load_workbook(out).sheetnames[2] == "631"
    with pytest.raises(SystemExit) as exit:
        cli.main(["report", "monthly", "--township", "qingshui", "--month", "soon", "-o",
                  str(out)])  # fmt: skip
    assert exit.value.code == 1
    assert "bad month 'soon'" in capsys.readouterr().err


@pytest.mark.django_db
def test_the_pages_are_scoped_and_serve_the_stored_workbook(october):
    qingshui = Township.objects.get(code="qingshui")
    with clock.frozen(at=datetime(2026, 11, 2, 9, tzinfo=SHANGHAI)):
        monthly.monthly_reports_due()
    supervisor = Client()
    supervisor.force_login(User.objects.get(username="supervisor"))
    listing = supervisor.get("/supervise/qingshui/reports/")
    assert listing.status_code == 200
    assert b'href="/supervise/qingshui/reports/2026-10/workbook.xlsx"' in listing.content
    page = supervisor.get("/supervise/qingshui/reports/2026-10/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="report-intake">8<' in html and 'id="report-closed">4<' in html
    assert "@page" not in html  # print rules live in the stylesheet
    download = supervisor.get("/supervise/qingshui/reports/2026-10/workbook.xlsx")
    assert download["Content-Type"] == monthly.XLSX
    stored = MonthlyReport.objects.get(township=qingshui, month="2026-10")
    assert download.content == bytes(stored.workbook)
    assert supervisor.get("/supervise/qingshui/reports/2026-13/").status_code == 400
    assert supervisor.get("/supervise/qingshui/reports/2999-01/").status_code == 400
    # A department's member does not supervise the township.
    member = Client()
    member.force_login(User.objects.get(username="police"))
    assert member.get("/supervise/qingshui/reports/").status_code == 403
    assert member.get("/supervise/qingshui/reports/2026-10/workbook.xlsx").status_code == 403
    assert Client().get("/supervise/qingshui/reports/").status_code == 302  # to log in


@pytest.mark.e2e
@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_the_printable_report_in_a_browser(october, daphne_server, board_page):
    from tests.browser import screenshot

    qingshui = Township.objects.get(code="qingshui")
    with clock.frozen(at=datetime(2026, 11, 2, 9, tzinfo=SHANGHAI)):
        monthly.monthly_reports_due()
    page = board_page("supervisor")
    page.goto(f"{daphne_server}/supervise/qingshui/reports/2026-10/")
    assert page.inner_text("#report-intake") == "8"
    assert page.locator("#report-631 tbody tr").count() == 4
    assert page.locator("#report-stored").is_visible()  # sent, with the time
    screenshot(page, "monthly-report")
    # Printed: A4 (210 mm at 96 dpi), without the site's bar and the page's buttons.
    page.set_viewport_size({"width": 794, "height": 1123})
    page.emulate_media(media="print")
    assert not page.locator("header.topbar").is_visible()
    assert not page.locator(".report-tools").is_visible()
    screenshot(page, "monthly-report-print")
    pdf = page.pdf(format="A4", print_background=True)
    assert pdf.startswith(b"%PDF")
    (ARTIFACTS / "monthly-report.pdf").write_bytes(pdf)
    page.emulate_media(media="screen")
    page.set_viewport_size({"width": 1920, "height": 1080})
    page.goto(f"{daphne_server}/supervise/qingshui/reports/")
    assert page.locator("#monthly-reports tr[data-month='2026-10']").is_visible()
    screenshot(page, "monthly-reports")
    assert MonthlyReport.objects.filter(township=qingshui).count() == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(120)
def test_the_worker_sends_the_report_from_its_hourly_job(october, job_worker):
    """The job the worker's hourly schedule defers, run by the real worker on the first working
    day: the report is stored and sent; the next hour's run changes nothing."""
    from django.db import transaction
    from procrastinate.contrib.django import app
    from procrastinate.contrib.django.models import ProcrastinateJob

    from command import jobs

    periodic = [
        p for p in app.periodic_registry.periodic_tasks.values()
        if p.periodic_id == "monthly-reports"
    ]  # fmt: skip
    assert len(periodic) == 1 and periodic[0].cron == "7 * * * *"
    task = periodic[0].task
    assert task.queue == "reports"
    with clock.frozen(at=datetime(2026, 11, 2, 9, 7, tzinfo=SHANGHAI)):
        with transaction.atomic():
            jobs.defer(task.name, timestamp=0)
        job_worker.start()
        report = wait_for(
            lambda: MonthlyReport.objects.filter(status=MonthlyReport.Status.SENT).first(),
            timeout=60,
            what="the report sent by the worker",
        )
        assert report.month == "2026-10" and report.figures["intake"]["total"] == 8
        with transaction.atomic():
            jobs.defer(task.name, timestamp=1)
        runs = ProcrastinateJob.objects.filter(task_name=task.name)
        wait_for(
            lambda: not runs.filter(status__in=["todo", "doing"]).exists(),
            timeout=60,
            what="the second run done",
        )
    # (The worker's own schedule may have deferred an hourly run meanwhile: one more run.)
    assert runs.filter(status="succeeded").count() >= 2
    assert not runs.exclude(status="succeeded").exists()
    assert MonthlyReport.objects.count() == 1
    assert Notification.objects.filter(subject_type="report", channel="console").count() == 1
