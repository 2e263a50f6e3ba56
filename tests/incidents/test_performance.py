"""Department performance for a period: the figures departments are assessed on, and CSV."""

import csv
import io
from datetime import timedelta

import pytest
from django.utils import timezone

from command import clock
from command.org.models import Category, Department, Grid, Township, User
from incidents.models import Summons, Whistle
from incidents.services.incidents import incident_close, incident_open, incident_resolve
from incidents.services.summonses import summons_accept, summons_check_in, summons_done
from incidents.services.whistles import SummonedDepartment, whistle_blow
from tests.conftest import signed_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def history(demo):
    """Three whistles to 城管 two days ago: checked in after 10 and 40 minutes (30-minute
    deadline: one on time, one late and escalated), and one never reached."""
    duty = User.objects.get(username="duty")
    chengguan = User.objects.get(username="chengguan")
    blown = timezone.now() - timedelta(days=2)
    for n, arrival in enumerate([10, 40, None]):
        incident = incident_open(
            actor=duty,
            township=Township.objects.get(code="qingshui"),
            category=Category.objects.get(code="parking"),
            severity="major",
            title=f"违停 {n}",
            grid=Grid.objects.get(code="110112-QS-007"),
        )
        with clock.frozen(at=blown):
            summons = whistle_blow(
                actor=duty,
                incident=incident,
                kind=Whistle.Kind.EMERGENCY,
                purpose=Whistle.Purpose.JOINT_ENFORCEMENT,
                departments=[SummonedDepartment(Department.objects.get(code="chengguan"))],
            ).summonses.get()
        if arrival is not None:
            summons_check_in(actor=chengguan, summons=summons)
            Summons.objects.filter(pk=summons.pk).update(
                checked_in_at=blown + timedelta(minutes=arrival),
                overdue=arrival > 30,
                escalation_level=1 if arrival > 30 else 0,
            )
        if n == 0:
            summons_done(actor=chengguan, summons=summons, note="已处理")
            summons_accept(actor=duty, summons=summons)
            incident_resolve(actor=duty, incident=incident)
            incident_close(actor=duty, incident=incident, feedback="好", settled_level="grid")


def test_department_figures_for_the_period(history):
    response = signed_in("supervisor").get("/supervise/qingshui/", HTTP_ACCEPT_LANGUAGE="zh")
    assert response.status_code == 200
    (row,) = [r for r in response.context["departments"] if r.code == "chengguan"]
    assert (row.received, row.checked_in, row.on_time, row.done) == (3, 2, 1, 1)
    assert row.on_time_rate == pytest.approx(1 / 3)
    assert row.median_check_in == timedelta(minutes=25)
    assert row.p90_check_in == timedelta(minutes=37)
    assert (row.overdue, row.escalated) == (1, 1)
    grids = {g.code: g for g in response.context["grids"]}
    assert grids["110112-QS-007"].incidents == 3
    html = response.content.decode()
    assert 'data-department="chengguan"' in html and "33%" in html


def test_each_table_as_csv(history):
    client = signed_in("supervisor")
    body = client.get("/supervise/qingshui/", {"csv": "departments"}).content.decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(body)))
    chengguan = next(r for r in rows if r["department"] == "chengguan")
    assert chengguan["received"] == "3" and chengguan["median_check_in_min"] == "25.0"
    assert chengguan["on_time_rate"] == "0.3333"
    settled = client.get("/supervise/qingshui/", {"csv": "settled"}).content.decode("utf-8-sig")
    assert list(csv.reader(io.StringIO(settled)))[1:] == [
        ["grid", "1"],
        ["township", "0"],
        ["county", "0"],
    ]
    grids = client.get("/supervise/qingshui/", {"csv": "grids"})
    assert grids["Content-Type"].startswith(
        "text/csv"
    ) and "110112-QS-007,东岭村,0,3" in grids.content.decode("utf-8-sig")


def test_a_period_outside_the_history_is_empty_and_a_bad_one_is_refused(history):
    client = signed_in("supervisor")
    old = client.get("/supervise/qingshui/", {"start": "2020-01-01", "end": "2020-01-31"})
    assert old.context["departments"] == []
    backwards = client.get("/supervise/qingshui/", {"start": "2026-02-01", "end": "2026-01-01"})
    assert backwards.status_code == 400
    assert signed_in("chengguan").get("/supervise/qingshui/").status_code == 403


def test_supervision_orders_received_and_answered_on_time(history):
    """Three orders to 城管 in the period: one answered by its deadline, one after it, one not
    yet; one to 交警, whose only whistle was blown before the period, still makes its row."""
    from incidents.models import Incident
    from incidents.services.orders import order_answer, order_issue

    supervisor = User.objects.get(username="supervisor")
    chengguan = Department.objects.get(code="chengguan")
    member = User.objects.get(username="chengguan")
    incidents = list(Incident.objects.filter(title__startswith="违停").order_by("pk"))

    def issue(incident, department, hours=2):
        return order_issue(
            actor=supervisor,
            incident=incident,
            department=department,
            instruction="限时清理并回复",
            due_at=clock.now() + timedelta(hours=hours),
        )

    on_time = issue(incidents[1], chengguan)
    order_answer(actor=member, order=on_time, answer="已清理")
    late = issue(incidents[2], chengguan, hours=1)
    with clock.moved(by=timedelta(hours=2)):
        order_answer(actor=member, order=late, answer="迟了")
    issue(incidents[1], chengguan)  # not answered

    traffic = Department.objects.get(code="traffic")
    old = incident_open(
        actor=User.objects.get(username="duty"),
        township=Township.objects.get(code="qingshui"),
        category=Category.objects.get(code="parking"),
        severity="major",
        title="旧案",
    )
    with clock.frozen(at=timezone.now() - timedelta(days=60)):
        whistle_blow(
            actor=User.objects.get(username="duty"),
            incident=old,
            kind=Whistle.Kind.TOUGH,
            purpose=Whistle.Purpose.KEY_TASK,
            departments=[SummonedDepartment(traffic)],
        )
    issue(old, traffic)

    response = signed_in("supervisor").get("/supervise/qingshui/")
    rows = {r.code: r for r in response.context["departments"]}
    cg = rows["chengguan"]
    assert (cg.received, cg.orders, cg.orders_answered, cg.orders_on_time) == (3, 3, 2, 1)
    assert cg.orders_on_time_rate == pytest.approx(1 / 3)
    assert (rows["traffic"].received, rows["traffic"].orders) == (0, 1)
    html = response.content.decode()
    assert 'data-department="traffic"' in html

    body = signed_in("supervisor").get("/supervise/qingshui/", {"csv": "departments"})
    text = body.content.decode("utf-8-sig")
    csv_rows = {r["department"]: r for r in csv.DictReader(io.StringIO(text))}
    cg_csv = csv_rows["chengguan"]
    assert (cg_csv["orders"], cg_csv["orders_answered_on_time"]) == ("3", "1")
    assert cg_csv["orders_on_time_rate"] == "0.3333"
    assert csv_rows["traffic"]["received"] == "0"

    # An earlier period holds none of them.
    earlier = signed_in("supervisor").get(
        "/supervise/qingshui/", {"start": "2020-01-01", "end": "2020-01-31"}
    )
    assert earlier.context["departments"] == []
