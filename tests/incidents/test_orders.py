"""Supervision orders (督办单): who may issue, acknowledge and answer them, every refusal, the
status moves, the timeline rows, the broadcasts and the people paged."""

from datetime import time, timedelta

import pytest

from alerts.models import Notification
from command import clock
from command.errors import ActionForbidden, TransitionNotAllowed
from command.org.models import Category, Department, OnCallShift, Township, User
from command.timeline.models import TimelineEntry
from incidents.models import Incident, Summons, SupervisionOrder, Whistle
from incidents.selectors import incident_timeline, open_orders
from incidents.services.incidents import incident_open
from incidents.services.orders import order_acknowledge, order_answer, order_issue
from incidents.services.summonses import summons_acknowledge
from incidents.services.whistles import SummonedDepartment, whistle_blow

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(demo):
    # Each test sets the rota it pages from: none of the demo's round-the-clock shifts.
    OnCallShift.objects.all().delete()
    return {u.username: u for u in User.objects.all()}


@pytest.fixture
def qingshui(demo):
    return Township.objects.get(code="qingshui")


@pytest.fixture
def chengguan(demo):
    return Department.objects.get(code="chengguan")


@pytest.fixture
def incident(people, qingshui, chengguan):
    """An incident with 城管 summoned (still only notified) and 交警 not summoned."""
    opened = incident_open(
        actor=people["duty"],
        township=qingshui,
        category=Category.objects.get(code="parking"),
        severity="major",
        title="滨河路违停堵塞",
    )
    whistle_blow(
        actor=people["duty"],
        incident=opened,
        kind=Whistle.Kind.GENERAL,
        purpose=Whistle.Purpose.JOINT_ENFORCEMENT,
        departments=[SummonedDepartment(chengguan)],
    )
    return opened


def issue(actor, incident, department, **fields):
    values = {
        "instruction": "两小时内清理滨河路违停车辆并回复",
        "due_at": clock.now() + timedelta(hours=2),
    }
    return order_issue(actor=actor, incident=incident, department=department, **(values | fields))


def rows(order):
    return list(
        TimelineEntry.objects.filter(subject_type="order", subject_id=order.pk)
        .order_by("time", "pk")
        .values_list("action", flat=True)
    )


def make_user(username, **fields):
    return User.objects.create(username=username, first_name=username, **fields)


# --- issuing ---------------------------------------------------------------------------------


def test_a_supervisor_issues_an_order_to_a_summoned_department(
    people, incident, chengguan, capture_broadcasts, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        order = issue(people["supervisor"], incident, chengguan)
    order.refresh_from_db()
    summons = Summons.objects.get(whistle__incident=incident)
    assert order.status == SupervisionOrder.Status.ISSUED
    assert (order.township_id, order.summons_id, order.issued_by) == (
        incident.township_id,
        summons.pk,
        people["supervisor"],
    )
    issued = TimelineEntry.objects.get(
        subject_type="order", subject_id=order.pk, action="order.issued"
    )
    assert issued.actor == people["supervisor"]
    assert issued.after == {
        "status": "issued",
        "department": "chengguan",
        "summons": summons.pk,
        "instruction": "两小时内清理滨河路违停车辆并回复",
        "due_at": order.due_at.isoformat(),
    }
    # Nobody is on call at 城管 in the demo: the timeline says so.
    assert rows(order) == ["order.issued", "order.nobody_to_page"]
    nobody = TimelineEntry.objects.get(subject_id=order.pk, action="order.nobody_to_page")
    assert nobody.after == {"reason": "nobody_on_call"}
    sent = {(group, event["type"], event.get("order_id")) for group, event in capture_broadcasts}
    assert ("dept.chengguan", "order.updated", order.pk) in sent
    assert ("board.qingshui", "order.updated", order.pk) in sent
    # The order's rows are the incident's too (timeline page, API, replay).
    assert "order.issued" in [e.action for e in incident_timeline(incident=incident)]


def test_the_township_duty_officer_may_issue_and_a_district_supervisor_anywhere(
    people, incident, chengguan
):
    assert issue(people["duty"], incident, chengguan).pk
    district = people["supervisor"]
    assert district.township_id is None
    assert issue(district, incident, chengguan).pk


def test_who_may_not_issue(people, incident, chengguan, qingshui):
    beishan = Township.objects.create(code="beishan", name="北山镇")
    refused = [
        people["chengguan"],  # a department member
        people["grid01"],
        make_user("sup_b", role=User.Role.SUPERVISOR, township=beishan),  # another township's
        make_user("duty_b", role=User.Role.DUTY_OFFICER, township=beishan),
        make_user("off", role=User.Role.SUPERVISOR, township=qingshui, is_active=False),
    ]
    for actor in refused:
        with pytest.raises(ActionForbidden):
            issue(actor, incident, chengguan)
    own = make_user("sup_q", role=User.Role.SUPERVISOR, township=qingshui)
    assert issue(own, incident, chengguan).pk
    assert SupervisionOrder.objects.count() == 1


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"instruction": "   "}, "instruction_missing"),
        ({"due_at": "past"}, "due_in_past"),
        ({"due_at": "far"}, "due_too_far"),
    ],
)
def test_refusals_of_what_the_order_says(people, incident, chengguan, fields, code):
    if fields.get("due_at") == "past":
        fields = {"due_at": clock.now() - timedelta(minutes=1)}
    elif fields.get("due_at") == "far":
        fields = {"due_at": clock.now() + timedelta(days=400)}
    with pytest.raises(TransitionNotAllowed) as refused:
        issue(people["supervisor"], incident, chengguan, **fields)
    assert refused.value.code == code
    assert not SupervisionOrder.objects.exists()
    assert not TimelineEntry.objects.filter(subject_type="order").exists()


def test_only_to_a_department_summoned_to_the_incident(people, incident, chengguan, qingshui):
    traffic = Department.objects.get(code="traffic")
    with pytest.raises(TransitionNotAllowed) as refused:
        issue(people["supervisor"], incident, traffic)
    assert refused.value.code == "department_not_summoned"
    # A summons named must be of the incident and of the department.
    other = incident_open(
        actor=people["duty"],
        township=qingshui,
        category=Category.objects.get(code="parking"),
        severity="minor",
        title="另一起",
    )
    elsewhere = whistle_blow(
        actor=people["duty"],
        incident=other,
        kind=Whistle.Kind.GENERAL,
        purpose=Whistle.Purpose.KEY_TASK,
        departments=[SummonedDepartment(chengguan), SummonedDepartment(traffic, "x")],
    )
    with pytest.raises(TransitionNotAllowed) as refused:
        issue(
            people["supervisor"],
            incident,
            chengguan,
            summons=elsewhere.summonses.get(department=chengguan),
        )
    assert refused.value.code == "summons_other_incident"
    with pytest.raises(TransitionNotAllowed) as refused:
        issue(
            people["supervisor"],
            other,
            chengguan,
            summons=elsewhere.summonses.get(department=traffic),
        )
    assert refused.value.code == "summons_other_department"


def test_not_on_a_closed_incident(people, incident, chengguan):
    Incident.objects.filter(pk=incident.pk).update(status=Incident.Status.CLOSED)
    incident.refresh_from_db()
    with pytest.raises(TransitionNotAllowed) as refused:
        issue(people["supervisor"], incident, chengguan)
    assert refused.value.code == "incident_closed"


def test_a_time_without_offset_is_the_townships(people, incident, chengguan, qingshui):
    local = (
        (clock.now() + timedelta(hours=3))
        .astimezone(qingshui.zone)
        .replace(tzinfo=None, second=0, microsecond=0)
    )
    order = issue(people["supervisor"], incident, chengguan, due_at=local)
    assert order.due_at.astimezone(qingshui.zone).replace(tzinfo=None) == local


# --- paging ----------------------------------------------------------------------------------


def test_issuing_pages_the_on_call_backup_and_head(people, incident, chengguan):
    on_call = make_user("cg_a", role=User.Role.DEPARTMENT_MEMBER, department=chengguan)
    backup = make_user("cg_b", role=User.Role.DEPARTMENT_MEMBER, department=chengguan)
    head = make_user("cg_head", role=User.Role.DEPARTMENT_MEMBER, department=chengguan)
    away = make_user("cg_off", role=User.Role.DEPARTMENT_MEMBER, department=chengguan)
    # All day, every day; another department's rota does not matter.
    OnCallShift.objects.create(
        department=chengguan, starts=time(0, 0), ends=time(0, 0), primary=on_call, backup=backup
    )
    OnCallShift.objects.create(
        department=Department.objects.get(code="traffic"),
        starts=time(0, 0),
        ends=time(0, 0),
        primary=away,
    )
    chengguan.head = head
    chengguan.save(update_fields=["head"])

    order = issue(people["supervisor"], incident, chengguan)

    console = Notification.objects.filter(
        subject_type="order", subject_id=order.pk, channel=Notification.Channel.CONSOLE
    )
    assert {(n.user.username, n.reason) for n in console} == {
        ("cg_a", "on_call"),
        ("cg_b", "backup"),
        ("cg_head", "head"),
    }
    for notification in console:
        assert notification.incident_id == incident.pk
        assert notification.township_id == incident.township_id
        assert notification.link == f"/console/chengguan/#order-{order.pk}"
        assert f"#{order.pk}" in notification.text
        assert "两小时内清理滨河路违停车辆并回复" in notification.text
        due = order.due_at.astimezone(incident.township.zone)
        assert due.strftime("%H:%M") in notification.text
    paged = TimelineEntry.objects.filter(subject_id=order.pk, action="order.paged")
    assert sorted(p.after["reason"] for p in paged) == ["backup", "head", "on_call"]
    assert "order.nobody_to_page" not in rows(order)


def test_the_same_person_as_on_call_and_head_is_paged_once(people, incident, chengguan):
    person = make_user("cg_both", role=User.Role.DEPARTMENT_MEMBER, department=chengguan)
    OnCallShift.objects.create(
        department=chengguan, starts=time(0, 0), ends=time(0, 0), primary=person
    )
    chengguan.head = person
    chengguan.save(update_fields=["head"])
    order = issue(people["supervisor"], incident, chengguan)
    console = Notification.objects.filter(subject_type="order", subject_id=order.pk)
    assert [(n.user_id, n.reason) for n in console] == [(person.pk, "on_call")]


def test_an_inactive_head_alone_is_nobody(people, incident, chengguan):
    chengguan.head = make_user("cg_gone", is_active=False, department=chengguan)
    chengguan.save(update_fields=["head"])
    order = issue(people["supervisor"], incident, chengguan)
    assert rows(order) == ["order.issued", "order.nobody_to_page"]
    assert not Notification.objects.filter(subject_type="order").exists()


# --- acknowledging and answering ----------------------------------------------------------------


def test_acknowledge_then_answer(people, incident, chengguan, capture_broadcasts,
                                 django_capture_on_commit_callbacks):  # fmt: skip
    order = issue(people["supervisor"], incident, chengguan)
    member = people["chengguan"]
    with django_capture_on_commit_callbacks(execute=True):
        order = order_acknowledge(actor=member, order=order)
    assert order.status == SupervisionOrder.Status.ACKNOWLEDGED
    assert (order.acknowledged_by, order.acknowledged_at is not None) == (member, True)
    ack = TimelineEntry.objects.get(subject_id=order.pk, action="order.acknowledged")
    assert (ack.before, ack.after, ack.actor) == (
        {"status": "issued"},
        {"status": "acknowledged"},
        member,
    )
    # The summons still only notified is acknowledged with it: its chain stops.
    summons = Summons.objects.get(pk=order.summons_id)
    assert summons.status == Summons.Status.ACKNOWLEDGED
    assert TimelineEntry.objects.filter(
        subject_type="summons", subject_id=summons.pk, action="summons.acknowledged"
    ).exists()
    assert ("dept.chengguan", "order.updated") in {
        (group, event["type"]) for group, event in capture_broadcasts
    }

    with pytest.raises(TransitionNotAllowed) as refused:
        order_acknowledge(actor=member, order=order)
    assert refused.value.code == "order_not_issued"
    with pytest.raises(TransitionNotAllowed) as refused:
        order_answer(actor=member, order=order, answer="  ")
    assert refused.value.code == "answer_missing"

    order = order_answer(actor=member, order=order, answer="已清理违停车辆 12 辆")
    assert order.status == SupervisionOrder.Status.ANSWERED
    assert (order.answer, order.answered_by) == ("已清理违停车辆 12 辆", member)
    answered = TimelineEntry.objects.get(subject_id=order.pk, action="order.answered")
    assert (answered.before, answered.after) == (
        {"status": "acknowledged"},
        {"status": "answered", "answer": "已清理违停车辆 12 辆"},
    )
    assert rows(order) == [
        "order.issued",
        "order.nobody_to_page",
        "order.acknowledged",
        "order.answered",
    ]
    with pytest.raises(TransitionNotAllowed) as refused:
        order_answer(actor=member, order=order, answer="again")
    assert refused.value.code == "order_answered"
    with pytest.raises(TransitionNotAllowed) as refused:
        order_acknowledge(actor=member, order=order)
    assert refused.value.code == "order_not_issued"


def test_answering_an_issued_order_acknowledges_it(people, incident, chengguan):
    order = issue(people["supervisor"], incident, chengguan)
    order = order_answer(actor=people["chengguan"], order=order, answer="已处理")
    assert order.status == SupervisionOrder.Status.ANSWERED
    assert order.acknowledged_at == order.answered_at
    assert order.acknowledged_by == people["chengguan"]
    # One row for the answer, none for an acknowledgement of its own.
    assert rows(order) == ["order.issued", "order.nobody_to_page", "order.answered"]
    answered = TimelineEntry.objects.get(subject_id=order.pk, action="order.answered")
    assert answered.before == {"status": "issued"}
    assert Summons.objects.get(pk=order.summons_id).status == Summons.Status.ACKNOWLEDGED


def test_a_summons_already_past_notified_is_left_alone(people, incident, chengguan):
    summons = Summons.objects.get(whistle__incident=incident)
    summons_acknowledge(actor=people["chengguan"], summons=summons)
    order = issue(people["supervisor"], incident, chengguan)
    order_acknowledge(actor=people["chengguan"], order=order)
    assert (
        TimelineEntry.objects.filter(
            subject_type="summons", subject_id=summons.pk, action="summons.acknowledged"
        ).count()
        == 1
    )


def test_who_may_acknowledge_and_answer(people, incident, chengguan, qingshui):
    order = issue(people["supervisor"], incident, chengguan)
    refused = [
        people["supervisor"],
        people["duty"],
        people["police"],  # another department's member
        people["grid01"],
        make_user("admin_b", role=User.Role.ADMINISTRATOR,
                  township=Township.objects.create(code="beishan", name="北山镇")),
    ]  # fmt: skip
    for actor in refused:
        with pytest.raises(ActionForbidden):
            order_acknowledge(actor=actor, order=order)
        with pytest.raises(ActionForbidden):
            order_answer(actor=actor, order=order, answer="x")
    assert SupervisionOrder.objects.get(pk=order.pk).status == SupervisionOrder.Status.ISSUED
    # The township's administrator answers for the department; the summons is the
    # department's own to acknowledge, so it stays as it was.
    admin_q = make_user("admin_q", role=User.Role.ADMINISTRATOR, township=qingshui)
    order = order_answer(actor=admin_q, order=order, answer="代为回复")
    assert order.status == SupervisionOrder.Status.ANSWERED
    assert Summons.objects.get(pk=order.summons_id).status == Summons.Status.NOTIFIED


def test_open_orders_are_scoped_by_the_policy(people, incident, chengguan, qingshui):
    order = issue(people["supervisor"], incident, chengguan)
    assert [o.pk for o in open_orders(people["supervisor"])] == [order.pk]
    assert [o.pk for o in open_orders(people["chengguan"])] == [order.pk]
    assert [o.pk for o in open_orders(people["duty"])] == [order.pk]
    assert open_orders(people["police"]) == []
    assert open_orders(people["grid01"]) == []
    beishan = Township.objects.create(code="beishan", name="北山镇")
    assert open_orders(make_user("sup_b", role=User.Role.SUPERVISOR, township=beishan)) == []
    order_answer(actor=people["chengguan"], order=order, answer="done")
    assert open_orders(people["supervisor"]) == []
