"""Supervision orders (督办单) through the API: issue, list in scope, acknowledge, answer, and
the precise 4xx of each refusal."""

from datetime import timedelta

import pytest

from command import clock
from command.org.models import Township, User
from incidents.models import Summons, SupervisionOrder
from tests.test_api import call, token  # noqa: F401 - the fixture

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(token):  # noqa: F811
    """An incident of qingshui with 城管 summoned, and the tokens of everyone involved."""
    tokens = {name: token(name) for name in ("duty", "supervisor", "chengguan", "police", "grid01")}
    incident = call(
        "post",
        "/incidents",
        tokens["duty"],
        {"township": "qingshui", "category": "parking", "severity": "major", "title": "违停"},
    ).json()["id"]
    blown = call(
        "post",
        f"/incidents/{incident}/whistles",
        tokens["duty"],
        {"kind": "general", "purpose": "key_task", "departments": [{"department": "chengguan"}]},
    ).json()
    return {"tokens": tokens, "incident": incident, "summons": blown["summonses"][0]["id"]}


def due(hours=2):
    return (clock.now() + timedelta(hours=hours)).isoformat()


def order_body(**fields):
    return {"department": "chengguan", "instruction": "清理违停并回复", "due_at": due()} | fields


def test_issue_list_acknowledge_answer(world):
    tokens, incident = world["tokens"], world["incident"]
    issued = call("post", f"/incidents/{incident}/orders", tokens["supervisor"], order_body())
    assert issued.status_code == 201, issued.content
    order = issued.json()
    assert (order["department"], order["status"], order["summons"]) == (
        "chengguan",
        "issued",
        world["summons"],
    )
    assert (order["township"], order["issued_by"], order["on_time"]) == (
        "qingshui",
        "supervisor",
        None,
    )

    for name in ("supervisor", "duty", "chengguan"):
        listed = call("get", "/orders", tokens[name]).json()
        assert [o["id"] for o in listed] == [order["id"]], name
    for name in ("police", "grid01"):
        assert call("get", "/orders", tokens[name]).json() == [], name
    assert call("get", f"/orders?incident={incident + 1}", tokens["supervisor"]).json() == []

    acknowledged = call("post", f"/orders/{order['id']}/acknowledge", tokens["chengguan"])
    assert acknowledged.status_code == 200, acknowledged.content
    assert acknowledged.json()["status"] == "acknowledged"
    assert Summons.objects.get(pk=world["summons"]).status == Summons.Status.ACKNOWLEDGED
    again = call("post", f"/orders/{order['id']}/acknowledge", tokens["chengguan"])
    assert (again.status_code, again.json()["code"]) == (409, "order_not_issued")

    answered = call(
        "post", f"/orders/{order['id']}/answer", tokens["chengguan"], {"answer": "已清理 12 辆"}
    )
    assert answered.status_code == 200, answered.content
    assert (answered.json()["status"], answered.json()["on_time"]) == ("answered", True)
    assert call("get", "/orders?open_only=true", tokens["supervisor"]).json() == []
    assert len(call("get", "/orders", tokens["supervisor"]).json()) == 1

    timeline = call("get", f"/incidents/{incident}/timeline", tokens["supervisor"]).json()
    actions = [row["action"] for row in timeline]
    assert {"order.issued", "order.acknowledged", "order.answered"} <= set(actions)


def test_refusals_are_precise(world):
    tokens, incident = world["tokens"], world["incident"]
    path = f"/incidents/{incident}/orders"
    # Not in scope: the incident does not exist for the caller.
    for name in ("police", "grid01"):  # not summoned; not in the grid officer's grids
        assert call("post", path, tokens[name], order_body()).status_code == 404
    missing = call("post", "/incidents/999999/orders", tokens["supervisor"], order_body())
    assert missing.status_code == 404
    # In scope, not theirs to do.
    refused = call("post", path, tokens["chengguan"], order_body())
    assert (refused.status_code, refused.json()["code"]) == (403, "forbidden")
    # Unknown department, summons of another incident.
    unknown = call("post", path, tokens["supervisor"], order_body(department="nope"))
    assert (unknown.status_code, unknown.json()["code"]) == (404, "not_found")
    assert call("post", path, tokens["supervisor"], order_body(summons=999999)).status_code == 404
    # What the state or the content does not allow.
    for body, code in (
        (order_body(department="police"), "department_not_summoned"),
        (order_body(instruction=" "), "instruction_missing"),
        (order_body(due_at=due(-1)), "due_in_past"),
        (order_body(due_at=due(24 * 400)), "due_too_far"),
    ):
        response = call("post", path, tokens["supervisor"], body)
        assert (response.status_code, response.json()["code"]) == (409, code), body
    # Malformed bodies.
    assert call("post", path, tokens["supervisor"], {"department": "chengguan"}).status_code == 422
    bad_time = call("post", path, tokens["supervisor"], order_body(due_at="tomorrow"))
    assert bad_time.status_code == 422
    too_long = call("post", path, tokens["supervisor"], order_body(instruction="字" * 2001))
    assert too_long.status_code == 422
    assert not SupervisionOrder.objects.exists()

    order = call("post", path, tokens["supervisor"], order_body()).json()["id"]
    # A department member of another department does not see it; a supervisor sees, may not.
    assert call("post", f"/orders/{order}/acknowledge", tokens["police"]).status_code == 404
    refused = call("post", f"/orders/{order}/acknowledge", tokens["supervisor"])
    assert (refused.status_code, refused.json()["code"]) == (403, "forbidden")
    empty = call("post", f"/orders/{order}/answer", tokens["chengguan"], {"answer": " "})
    assert (empty.status_code, empty.json()["code"]) == (409, "answer_missing")
    assert call("post", f"/orders/{order}/answer", tokens["chengguan"], {}).status_code == 422
    missing = call("post", "/orders/999999/answer", tokens["chengguan"], {"answer": "x"})
    assert missing.status_code == 404


def test_a_form_time_without_offset_is_read_on_the_townships_clock(world):
    qingshui = Township.objects.get(code="qingshui")
    local = (clock.now() + timedelta(hours=3)).astimezone(qingshui.zone)
    wall = local.strftime("%Y-%m-%dT%H:%M")  # as an <input type=datetime-local> sends it
    response = call(
        "post",
        f"/incidents/{world['incident']}/orders",
        world["tokens"]["supervisor"],
        order_body(due_at=wall),
    )
    assert response.status_code == 201, response.content
    order = SupervisionOrder.objects.get()
    assert order.due_at.astimezone(qingshui.zone).strftime("%Y-%m-%dT%H:%M") == wall


def test_another_townships_supervisor_sees_none_of_them(world, token):  # noqa: F811
    beishan = Township.objects.create(code="beishan", name="北山镇")
    User.objects.create(username="sup_b", role=User.Role.SUPERVISOR, township=beishan)
    call(
        "post",
        f"/incidents/{world['incident']}/orders",
        world["tokens"]["supervisor"],
        order_body(),
    )
    other = token("sup_b")
    assert call("get", "/orders", other).json() == []
    order = SupervisionOrder.objects.get().pk
    assert call("post", f"/orders/{order}/acknowledge", other).status_code == 404
    issued = call("post", f"/incidents/{world['incident']}/orders", other, order_body())
    assert issued.status_code == 404
