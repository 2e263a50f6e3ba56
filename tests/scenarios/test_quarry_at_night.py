"""The whole loop, through MQTT and the API: an excavator at the closed quarry at night → alert →
incident → emergency whistle to three departments → two report on site in time, one is late
and escalated → all done and accepted → resolved → closed with feedback; the timeline holds
every step.

Half an hour passes on the services' clock (command.clock): nothing sleeps and no stored row is
rewritten; the deadline sweep, the backstop that runs every due step in the worker, runs then."""

from __future__ import annotations

import json
from datetime import UTC, timedelta

import pytest
from django.test import Client
from django.utils import timezone

from alerts.models import Alert
from command import clock
from command.org.models import Department, User
from command.org.tokens import api_token_create
from incidents.models import Incident, Summons
from incidents.services.deadlines import summons_deadlines_sweep
from tests.conftest import wait_for

pytestmark = [pytest.mark.services, pytest.mark.timeout(120)]


def api(token: str, method: str, path: str, body: dict | None = None) -> dict:
    response = getattr(Client(), method)(
        f"/api/v1{path}",
        data=json.dumps(body) if body is not None else None,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert response.status_code < 300, (path, response.status_code, response.content)
    return response.json()


def member(code: str) -> str:
    user, _ = User.objects.get_or_create(
        username=f"member-{code}",
        defaults={
            "role": User.Role.DEPARTMENT_MEMBER,
            "department": Department.objects.get(code=code),
        },
    )
    return api_token_create(user=user, name="scenario")[1]


def test_excavator_at_the_closed_quarry_at_night(demo_committed, ingest_worker, publish_mqtt):
    duty = api_token_create(user=User.objects.get(username="duty"), name="scenario")[1]
    # 1. The quarry camera sees an excavator in the pit at 23:30 Beijing time.
    now_local = timezone.now().astimezone(timezone.get_default_timezone())
    night = now_local.replace(hour=23, minute=30, second=0, microsecond=0)
    if night > now_local:
        night -= timedelta(days=1)
    event = {
        "id": "quarry-1",
        "ts": int(night.astimezone(UTC).timestamp() * 1000),
        "label": "excavator",
        "score": 0.92,
        "zones": ["quarry-pit"],
    }
    publish_mqtt("whistle/qingshui/camera/cam-quarry/event", json.dumps(event))
    alert = wait_for(lambda: Alert.objects.filter(device__code="cam-quarry").first())
    assert (alert.severity, alert.category.code) == ("critical", "illegal-mining")
    assert alert.title.startswith("关停矿区夜间作业")

    # 2. The duty officer opens an incident from it and blows an emergency whistle.
    incident = api(
        duty,
        "post",
        "/incidents",
        {
            "township": "qingshui",
            "category": "illegal-mining",
            "severity": "critical",
            "title": "关停矿区夜间盗采",
            "alerts": [alert.pk],
        },
    )["id"]
    suggested = [
        d["code"] for d in api(duty, "get", f"/incidents/{incident}/suggested-departments")
    ]
    assert suggested[0] == "natural-resources"
    whistle = api(
        duty,
        "post",
        f"/incidents/{incident}/whistles",
        {
            "kind": "emergency",
            "purpose": "emergency_response",
            "departments": [{"department": c} for c in ("natural-resources", "police", "qs-zhifa")],
        },
    )
    summons = {s["department"]: s["id"] for s in whistle["summonses"]}
    tokens = {code: member(code) for code in summons}

    # 3. Two departments acknowledge and report on site within the 30 minutes.
    for code in ("natural-resources", "qs-zhifa"):
        api(tokens[code], "post", f"/summonses/{summons[code]}/acknowledge")
        api(
            tokens[code],
            "post",
            f"/summonses/{summons[code]}/check-in",
            {"latitude": 40.25, "longitude": 116.63},
        )
    api(tokens["police"], "post", f"/summonses/{summons['police']}/acknowledge")

    # 4. Half an hour passes: the police station is overdue and escalated (督办).
    with clock.moved(by=timedelta(minutes=31)):
        assert summons_deadlines_sweep() >= 1
        late = Summons.objects.get(pk=summons["police"])
        assert late.overdue and late.escalation_level == 1
        for code in ("natural-resources", "qs-zhifa"):
            on_time = Summons.objects.get(pk=summons[code])
            assert not on_time.overdue and on_time.escalation_level == 0

        # 5. The police arrive late; everyone reports done; resolve; close with feedback.
        api(tokens["police"], "post", f"/summonses/{summons['police']}/check-in")
        for code, note in (
            ("natural-resources", "已查封设备"),
            ("qs-zhifa", "已立案处罚"),
            ("police", "已控制现场人员"),
        ):
            api(tokens[code], "post", f"/summonses/{summons[code]}/done", {"note": note})
            api(duty, "post", f"/summonses/{summons[code]}/accept")  # 验收
        api(duty, "post", f"/incidents/{incident}/resolve")
        closed = api(
            duty,
            "post",
            f"/incidents/{incident}/close",
            {"feedback": "矿区已封停，设备已查扣", "settled_level": "county"},
        )
        assert closed["status"] == Incident.Status.CLOSED
        # Nothing further is due: the police checked in, the other steps have run once.
        assert summons_deadlines_sweep() == 0

    # 6. The timeline holds every step, in order.
    steps = [
        (e["subject_type"], e["action"])
        for e in api(duty, "get", f"/incidents/{incident}/timeline")
    ]
    expected_order = [
        ("alert", "alert.raised"),
        ("incident", "incident.opened"),
        ("alert", "alert.escalated"),
        ("whistle", "whistle.blown"),
        ("incident", "incident.dispatched"),
        ("summons", "summons.checked_in"),
        ("incident", "incident.on_site"),
        ("summons", "summons.overdue"),
        ("summons", "summons.escalated"),
        ("summons", "summons.done"),
        ("summons", "summons.accepted"),
        ("incident", "incident.resolved"),
        ("incident", "incident.closed"),
    ]
    position = 0
    for step in steps:
        if position < len(expected_order) and step == expected_order[position]:
            position += 1
    assert position == len(expected_order), steps
    assert steps.count(("summons", "summons.notified")) == 3
    assert steps.count(("summons", "summons.checked_in")) == 3
    assert steps.count(("summons", "summons.done")) == 3
    assert steps.count(("summons", "summons.escalated")) == 1
    # The police's check-in was written half an hour on, past its deadline: late on the record.
    on_time = {
        e["subject_id"]: e["after"]["on_time"]
        for e in api(duty, "get", f"/incidents/{incident}/timeline")
        if e["action"] == "summons.checked_in"
    }
    assert on_time == {
        summons["natural-resources"]: True,
        summons["qs-zhifa"]: True,
        summons["police"]: False,
    }
