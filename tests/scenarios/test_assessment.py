"""考核, from the screens: a month of activity in two townships served by the district's police
(and Qingshui's urban management) → each township rates the police on its own criteria → the
combined score follows the district's weights (hand-computed below) → the police object in
writing, Qingshui upholds the objection with a revised mark → the district supervisor's view
ranks the departments as computed and marks the township drifting above 631 → the job worker
sends Qingshui's monthly report on the first working day of the next month (not before), and
its workbook holds the month's figures and scores.

Real daphne (its own process, on the real clock: the month rated is the last full one), the job
worker (in this process, on this process's clock, moved to the report's hour), PostgreSQL,
Redis and chromium; the month's whistles are written through the services with the clock moved
to each moment, then given the outcomes the plan below says.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal

import openpyxl
import pytest
from django.conf import settings
from django.db import transaction
from django.utils import translation
from django.utils.translation import gettext as _

from alerts.models import Notification
from command import clock, jobs
from command.org.models import Category, Department, Grid, Township, User
from incidents.models import Incident, Summons, SupervisionOrder, Whistle
from incidents.services.incidents import incident_open
from incidents.services.whistles import SummonedDepartment, whistle_blow
from supervision import assessment, monthly
from supervision.models import AssessmentScheme, DepartmentRating, MonthlyReport, RatingObjection
from supervision.reports import Month
from tests.conftest import DEMO_PASSWORDS, wait_for
from tests.e2e.conftest import screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.services, pytest.mark.timeout(300)]


@dataclass(frozen=True)
class Work:
    """One summons of the month and how it went."""

    on_time: bool = True
    finished_late: bool = False
    accepted: bool = True
    returned: int = 0
    callback: str = ""  # the raiser's satisfaction
    settled: str = "grid"  # where the incident was settled
    order: bool = False  # a 督办单 was issued to the department


# Qingshui's police: 10 summonses, 8 on time; 1 late finishing; 6 accepted, 5 first time; 4
# callbacks, 3 satisfied; 1 supervision order.
QS_POLICE = [
    Work(callback="satisfied"),
    Work(callback="basic"),
    Work(callback="satisfied"),
    Work(callback="unsatisfied", returned=1),
    Work(),
    Work(),
    Work(on_time=False, accepted=False, finished_late=True, order=True),
    Work(on_time=False, accepted=False),
    Work(accepted=False),
    Work(accepted=False),
]
# Beishan's police: 5 summonses, all on time, accepted first time; nobody called back yet.
BS_POLICE = [Work(settled="county") for _ in range(3)] + [Work() for _ in range(2)]
# Qingshui's urban management: 4 summonses, 2 on time, all accepted first time, 2 callbacks
# both satisfied.
QS_CHENGGUAN = [Work(callback="satisfied")] * 2 + [Work(on_time=False)] * 2

# By hand, on the district's scheme (the townships' marks weigh 40% in this district; the
# measured weights .30/.25/.20/.15/.10, 20 points off per order):
# Qingshui's police: arrival 80, finishing 90, first time 5/6 = 83.333…, satisfaction 75,
#   orders 80 → measured = 24 + 22.5 + 16.666… + 11.25 + 8 = 82.41666…
#   marks 90 (配合度, weight 2) and 70 (办理质量, weight 1) → 83.333…
#   score = .6 × 82.41666… + .4 × 83.333… = 49.45 + 33.333… = 82.78333… → 82.78
#   after the objection, 配合度 96: (192 + 70) / 3 = 87.333… → 49.45 + 34.9333… = 84.38333…
QS_POLICE_SCORE, QS_POLICE_REVISED = Decimal("82.78"), Decimal("84.38")
# Beishan's police: arrival 100, finishing 100, first time 100, satisfaction left out, orders
#   100 → measured 100; marks 60 and 60 (equal weights) → 60; .6 × 100 + .4 × 60 = 84.00
BS_POLICE_SCORE = Decimal("84.00")
# Qingshui's urban management: arrival 50, finishing 100, first time 100, satisfaction 100,
#   orders 100 → (15 + 25 + 20 + 15 + 10) / 1 = 85; marks 80 and 80 → 80; 51 + 32 = 83.00
QS_CHENGGUAN_SCORE = Decimal("83.00")
# The district: police (84.38 + 84.00) / 2 = 84.19 before chengguan's 83.00.
POLICE_DISTRICT = Decimal("84.19")


def month_of_work(township: Township, department: Department, plan: list[Work], month) -> None:
    """The plan's whistles, blown through the services one every two days of ``month``."""
    duty = User.objects.get(username="duty")
    category = Category.objects.get(code="parking")
    grid = Grid.objects.filter(township=township).first()
    for n, work in enumerate(plan):
        at = datetime.combine(month + timedelta(days=1 + 2 * n), datetime.min.time(), township.zone)
        at += timedelta(hours=9)
        with clock.frozen(at=at):
            incident = incident_open(
                actor=duty if township.code == "qingshui" else User.objects.get(username="admin"),
                township=township,
                category=category,
                severity="major",
                title=f"{township.code} {department.code} {n}",
                grid=grid,
            )
            whistle = whistle_blow(
                actor=duty if township.code == "qingshui" else User.objects.get(username="admin"),
                incident=incident,
                kind=Whistle.Kind.GENERAL,
                purpose=Whistle.Purpose.JOINT_ENFORCEMENT,
                departments=[SummonedDepartment(department, "needed")],
            )
        summons = whistle.summonses.get()
        deadline = summons.check_in_deadline
        Summons.objects.filter(pk=summons.pk).update(
            acknowledged_at=at + timedelta(minutes=2),
            checked_in_at=deadline
            + (timedelta(minutes=5) if not work.on_time else -timedelta(minutes=5)),
            overdue=not work.on_time,
            finish_overdue=work.finished_late,
            returned_count=work.returned,
            status=Summons.Status.ACCEPTED if work.accepted else Summons.Status.DONE,
        )
        Incident.objects.filter(pk=incident.pk).update(
            status=Incident.Status.CLOSED,
            closed_at=at + timedelta(days=1),
            settled_level=work.settled,
            satisfaction=work.callback,
        )
        if work.order:
            SupervisionOrder.objects.create(
                township=township,
                incident=incident,
                summons=summons,
                department=department,
                instruction="限期到场",
                due_at=at + timedelta(hours=4),
                issued_at=at + timedelta(hours=1),
            )


def user(username: str, monkeypatch, **fields) -> User:
    account = User.objects.create(username=username, **fields)
    account.set_password(f"{username}-pass")
    account.save()
    monkeypatch.setitem(DEMO_PASSWORDS, username, f"{username}-pass")
    return account


def test_townships_rate_a_district_department_and_the_district_ranks_it(
    demo_committed, board_page, daphne_server, monkeypatch, job_worker
):
    qingshui = Township.objects.get(code="qingshui")
    beishan = Township.objects.create(code="beishan", name="北山镇", name_en="Beishan",
                                      district=qingshui.district)  # fmt: skip
    Grid.objects.create(township=beishan, code="110112-BS-001", name="北山一网格")
    police = Department.objects.get(code="police")
    chengguan = Department.objects.get(code="chengguan")
    AssessmentScheme.objects.create(district=qingshui.district, township_share=Decimal("0.40"))
    month = assessment.last_full_month(qingshui)
    name = f"{month:%Y-%m}"
    month_of_work(qingshui, police, QS_POLICE, month)
    month_of_work(beishan, police, BS_POLICE, month)
    month_of_work(qingshui, chengguan, QS_CHENGGUAN, month)
    user("qs-lead", monkeypatch, role=User.Role.SUPERVISOR, township=qingshui,
         last_name="陈", first_name="主任")  # fmt: skip
    user("bs-lead", monkeypatch, role=User.Role.SUPERVISOR, township=beishan)
    cooperation, quality = assessment.criteria_for(qingshui)
    cooperation.weight = Decimal(2)
    cooperation.save(update_fields=["weight"])

    # 1. Qingshui's supervisor rates the police on the form.
    page = board_page("qs-lead")
    page.goto(f"{daphne_server}/supervise/qingshui/ratings/?period={name}")
    row = page.locator("#rating-table tr[data-department='police']")
    assert row.locator("td").nth(1).inner_text() == "10"
    row.locator("a.rate-link").click()
    page.wait_for_selector("#rating-form")
    page.fill(f"#id_mark_{cooperation.pk}", "90")
    page.fill(f"#id_mark_{quality.pk}", "70")
    page.fill("#id_comment", "夜间到场及时，个别案件办结偏慢。")
    screenshot(page, "assessment-rating-form")
    page.click("#rating-form button[name=rate]")
    page.wait_for_selector("#rating-score")
    assert Decimal(page.inner_text("#rating-score")) == QS_POLICE_SCORE
    assert page.locator("tr[data-part='first_time'] td").nth(1).inner_text() == "5/6"
    screenshot(page, "assessment-rating-computed")

    # 2. Beishan rates the police, Qingshui its urban management (the same form).
    beishan_page = board_page("bs-lead")
    beishan_page.goto(f"{daphne_server}/supervise/beishan/ratings/{name}/police/")
    for mark in beishan_page.locator("#rating-form input.mark").all():
        mark.fill("60")
    beishan_page.click("#rating-form button[name=rate]")
    beishan_page.wait_for_selector("#rating-score")
    assert Decimal(beishan_page.inner_text("#rating-score")) == BS_POLICE_SCORE
    left_out = beishan_page.locator("tr[data-part='satisfaction']").inner_text()
    assert "left out" in left_out or "不计" in left_out, left_out
    page.goto(f"{daphne_server}/supervise/qingshui/ratings/{name}/chengguan/")
    for mark in page.locator("#rating-form input.mark").all():
        mark.fill("80")
    page.click("#rating-form button[name=rate]")
    page.wait_for_selector("#rating-score")
    assert Decimal(page.inner_text("#rating-score")) == QS_CHENGGUAN_SCORE

    # 3. The police read their marks and object in writing.
    member = board_page("police")
    member.click("#link-assessment")
    rating = DepartmentRating.objects.get(township=qingshui, department=police)
    section = member.locator(f"#rating-{rating.pk}")
    assert Decimal(section.locator("h2 .score").inner_text()) == QS_POLICE_SCORE
    section.locator("textarea[name=text]").fill(
        "第7件系交通管制无法通行，已附交管通知。配合度请复核。"
    )
    section.locator("button[type=submit]").click()
    member.wait_for_selector(f"#rating-{rating.pk} .objection[data-outcome=pending]")
    screenshot(member, "assessment-department-objection")

    # 4. Qingshui upholds it with a revised mark; the police see the answer.
    page.goto(f"{daphne_server}/supervise/qingshui/ratings/{name}/police/")
    answer = page.locator(".answer-form")
    answer.locator("input[value=upheld]").check()
    answer.locator(f"input[name=mark_{cooperation.pk}]").fill("96")
    answer.locator("textarea[name=answer]").fill("情况属实，配合度调整为96分。")
    answer.locator("button[name=answer-objection]").click()
    page.wait_for_selector(".objection[data-outcome=upheld]")
    assert Decimal(page.inner_text("#rating-score")) == QS_POLICE_REVISED
    objection = RatingObjection.objects.get()
    assert objection.outcome == "upheld" and objection.answered_by.username == "qs-lead"
    member.reload()
    assert "情况属实" in member.inner_text(f"#rating-{rating.pk}")

    # 5. The district supervisor's view: ranking, the townships' 631, drift.
    district = board_page("supervisor")
    district.click("#nav-district")
    district.goto(f"{daphne_server}/supervise/district/?period={name}")
    ranks = district.locator("#district-departments tbody tr")
    wait_for(lambda: ranks.count() == 2, what="two departments ranked")
    assert ranks.nth(0).get_attribute("data-department") == "police"
    assert Decimal(ranks.nth(0).locator("td.score").inner_text()) == POLICE_DISTRICT
    assert ranks.nth(1).get_attribute("data-department") == "chengguan"
    # Beishan sent 3 of 5 up to the county: drifting above the 10% of 631.
    assert district.locator("#district-631 tr[data-township='beishan'].drifting").count() == 1
    assert district.locator("#district-631 tr[data-township='qingshui'].drifting").count() == 0
    screenshot(district, "assessment-district")

    # 6. The worker's hourly report job: nothing before the first working day's hour, then
    #    Qingshui's report, sent to its supervisor and the district's, its workbook true.
    due = monthly.first_working_day(Month.of(month).next())
    hour = settings.WHISTLE_REPORT_HOUR
    run_report_job(job_worker, datetime.combine(due, time(hour - 1, 7), qingshui.zone))
    assert not MonthlyReport.objects.exists()
    run_report_job(job_worker, datetime.combine(due, time(hour, 7), qingshui.zone))
    report = MonthlyReport.objects.get(township=qingshui)
    assert report.month == name and report.status == MonthlyReport.Status.SENT
    told = Notification.objects.filter(
        subject_type="report", subject_id=report.pk, channel="console"
    )
    assert {n.user.username for n in told} >= {"qs-lead", "supervisor"}
    with translation.override("zh-hans"):
        sheets = [_("Summary"), _("Intake"), "631", _("Departments")]
        book = openpyxl.load_workbook(io.BytesIO(bytes(report.workbook)))
        assert book.sheetnames[:4] == sheets
        rows = [list(r) for r in book[_("Departments")].iter_rows(values_only=True)]
        header = rows[0]
        police_row = dict(zip(header, next(r for r in rows if r[0] == "police"), strict=True))
        chengguan_row = dict(zip(header, next(r for r in rows if r[0] == "chengguan"), strict=True))
        assert police_row[_("Summoned")] == len(QS_POLICE)
        assert Decimal(str(police_row[_("Combined score")])) == QS_POLICE_REVISED
        assert Decimal(str(chengguan_row[_("Combined score")])) == QS_CHENGGUAN_SCORE
        settled = [list(r) for r in book["631"].iter_rows(values_only=True)]
    # Qingshui closed 14 incidents in the month, all settled in the grid.
    assert settled[1][1] == len(QS_POLICE) + len(QS_CHENGGUAN) and settled[3][1] == 0
    page = board_page("qs-lead")
    page.goto(f"{daphne_server}/supervise/qingshui/reports/{name}/")
    screenshot(page, "assessment-monthly-report")


def run_report_job(job_worker, at: datetime) -> None:
    """Defer the hourly report job as the worker's schedule does, with the clock at ``at``, and
    wait for the worker to have run it."""
    from procrastinate.contrib.django.models import ProcrastinateJob

    from supervision.tasks import monthly_reports

    with clock.frozen(at=at):
        with transaction.atomic():
            jobs.defer(monthly_reports.name, timestamp=int(at.timestamp()))
        job_worker.start()
        try:
            wait_for(
                lambda: (
                    not ProcrastinateJob.objects.filter(
                        task_name=monthly_reports.name, status__in=["todo", "doing"]
                    ).exists()
                ),
                timeout=60,
                what="the report job run",
            )
        finally:
            job_worker.stop()
    failed = ProcrastinateJob.objects.filter(task_name=monthly_reports.name, status="failed")
    assert not failed.exists()
