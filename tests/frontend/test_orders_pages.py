"""Supervision orders on the pages: the incident's timeline (the form for those who may issue,
the list, rows that read in the reader's words), the department's console (its open orders,
redrawn by the socket's pushes) and the board's countdowns."""

from datetime import time, timedelta

import pytest
from django.utils import translation

from command import clock
from command.org.models import Category, Department, OnCallShift, Township, User
from frontend import rendering
from incidents.models import Incident, SupervisionOrder, Whistle
from incidents.services.incidents import incident_open
from incidents.services.orders import order_acknowledge, order_answer, order_issue
from incidents.services.whistles import SummonedDepartment, whistle_blow
from tests.conftest import signed_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def incident(demo):
    # Each test sets the rota it pages from: none of the demo's round-the-clock shifts.
    OnCallShift.objects.all().delete()
    duty = User.objects.get(username="duty")
    opened = incident_open(
        actor=duty,
        township=Township.objects.get(code="qingshui"),
        category=Category.objects.get(code="parking"),
        severity="major",
        title="滨河路违停堵塞",
    )
    whistle_blow(
        actor=duty,
        incident=opened,
        kind=Whistle.Kind.GENERAL,
        purpose=Whistle.Purpose.JOINT_ENFORCEMENT,
        departments=[
            SummonedDepartment(Department.objects.get(code="chengguan")),
            SummonedDepartment(Department.objects.get(code="traffic")),
        ],
    )
    return opened


def issue(incident, department="chengguan", instruction="两小时内清理违停车辆并回复"):
    return order_issue(
        actor=User.objects.get(username="supervisor"),
        incident=incident,
        department=Department.objects.get(code=department),
        instruction=instruction,
        due_at=clock.now() + timedelta(hours=2),
    )


def timeline(incident, username="supervisor", language="zh"):
    return signed_in(username).get(
        f"/supervise/qingshui/incidents/{incident.pk}/", HTTP_ACCEPT_LANGUAGE=language
    )


def test_the_order_form_offers_the_summoned_departments_to_who_may_issue(incident):
    for username in ("supervisor", "duty", "admin"):
        response = timeline(incident, username)
        form = response.context["order_form"]
        assert form is not None, username
        assert [d.code for d in form["departments"]] == ["chengguan", "traffic"]
        html = response.content.decode()
        assert f'data-api-form="/api/v1/incidents/{incident.pk}/orders"' in html
        assert 'type="datetime-local" name="due_at"' in html
    # Department members do not see the page at all; a closed incident takes no orders.
    assert timeline(incident, "chengguan").status_code == 403
    Incident.objects.filter(pk=incident.pk).update(status=Incident.Status.CLOSED)
    response = timeline(incident)
    assert response.context["order_form"] is None
    assert 'id="order-form"' not in response.content.decode()


def test_orders_and_their_rows_read_in_the_readers_words(incident):
    chengguan = Department.objects.get(code="chengguan")
    on_call = User.objects.create(
        username="cg_a", first_name="立", last_name="周", role=User.Role.DEPARTMENT_MEMBER,
        department=chengguan,
    )  # fmt: skip
    OnCallShift.objects.create(
        department=chengguan, starts=time(0, 0), ends=time(0, 0), primary=on_call
    )
    order = issue(incident)
    order_answer(actor=User.objects.get(username="chengguan"), order=order, answer="已清理 12 辆")
    issue(incident, "traffic", "疏导交通")  # 交警 has nobody on call

    response = timeline(incident, language="en")
    html = response.content.decode()
    assert f'id="order-{order.pk}" data-status="answered"' in html
    assert "两小时内清理违停车辆并回复" in html and "已清理 12 辆" in html
    rows = response.context["rows"]

    def row(action, who=chengguan.display_name):
        (found,) = [r for r in rows if r.entry.action == action and r.who == who]
        return found

    zone = Township.objects.get(code="qingshui").zone
    with translation.override("en"):
        cg_name = chengguan.display_name
    issued = dict(row("order.issued", cg_name).details)
    assert issued["department"] == cg_name
    assert issued["by when"] == order.due_at.astimezone(zone).strftime("%m-%d %H:%M")
    assert issued["what is to be done"] == "两小时内清理违停车辆并回复"
    paged = dict(row("order.paged", cg_name).details)
    assert (paged["person"], paged["reason"], paged["channel"]) == (
        "周立",
        "on call (A)",
        "Console",
    )
    assert "user" not in paged  # the person is named; their id says nothing more
    with translation.override("en"):
        traffic_name = Department.objects.get(code="traffic").display_name
    nobody = dict(row("order.nobody_to_page", traffic_name).details)
    assert nobody["reason"] == "the department has no one on call, no backup and no head"
    assert dict(row("order.answered", cg_name).details)["answer"] == "已清理 12 辆"
    assert "Supervision order issued" in html and "Supervision order answered" in html


def test_the_console_lists_open_orders_and_pushes_each_change(incident):
    chengguan = Department.objects.get(code="chengguan")
    member = User.objects.get(username="chengguan")
    order = issue(incident)
    page = signed_in("chengguan").get("/console/chengguan/", HTTP_ACCEPT_LANGUAGE="zh")
    html = page.content.decode()
    assert f'id="order-{order.pk}"' in html
    assert f'data-api-post="/api/v1/orders/{order.pk}/acknowledge"' in html
    assert f'data-order-answer="/api/v1/orders/{order.pk}/answer"' in html
    assert '<span id="order-open-count" class="count">1</span>' in html
    # Another department's console does not show it.
    police = signed_in("police").get("/console/police/").content.decode()
    assert f'id="order-{order.pk}"' not in police and 'id="order-inbox-empty"' in police

    new = rendering.order_push_html(department=chengguan, order_id=order.pk, new=True,
                                    language="zh-hans")  # fmt: skip
    assert 'hx-swap-oob="beforeend:#order-inbox"' in new
    order_acknowledge(actor=member, order=order)
    changed = rendering.order_push_html(department=chengguan, order_id=order.pk, new=False,
                                        language="zh-hans")  # fmt: skip
    assert f'id="order-{order.pk}"' in changed and 'hx-swap-oob="true"' in changed
    assert "/acknowledge" not in changed  # acknowledged: only the answer is left
    other = issue(incident)
    order_answer(actor=member, order=order, answer="已处理")
    gone = rendering.order_push_html(department=chengguan, order_id=order.pk, new=False,
                                     language="zh-hans")  # fmt: skip
    assert f'<li id="order-{order.pk}" hx-swap-oob="delete">' in gone
    order_answer(actor=member, order=other, answer="已处理")
    last = rendering.order_push_html(department=chengguan, order_id=other.pk, new=False,
                                     language="zh-hans")  # fmt: skip
    assert 'id="order-inbox-empty"' in last  # the last one: the list says it is empty
    # Another department's order is not pushed to this console.
    traffic_order = issue(incident, "traffic")
    assert rendering.order_push_html(department=chengguan, order_id=traffic_order.pk, new=True,
                                     language="zh-hans") == ""  # fmt: skip


def test_the_board_shows_open_orders_beside_the_departments_countdown(incident):
    order = issue(incident)
    board = signed_in("duty").get("/board/qingshui/", HTTP_ACCEPT_LANGUAGE="en")
    assert "1 supervision order open" in board.content.decode()
    order_answer(actor=User.objects.get(username="chengguan"), order=order, answer="ok")
    board = signed_in("duty").get("/board/qingshui/", HTTP_ACCEPT_LANGUAGE="en")
    assert "supervision order open" not in board.content.decode()
    assert SupervisionOrder.objects.get().status == "answered"


def test_a_replay_tells_the_order_and_whose_it_is(incident):
    from urllib.parse import quote

    order = issue(incident)
    order_answer(actor=User.objects.get(username="chengguan"), order=order, answer="已处理")
    at = quote((clock.now() + timedelta(seconds=1)).isoformat())
    frame = signed_in("supervisor").get(
        f"/supervise/qingshui/incidents/{incident.pk}/replay/frame?at={at}",
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert frame.status_code == 200
    html = frame.content.decode()
    with translation.override("en"):
        name = Department.objects.get(code="chengguan").display_name
    assert (
        '<li data-action="order.answered"><time>' in html
        and f'Supervision order answered</span> <span class="muted">{name}</span>' in html
    )
