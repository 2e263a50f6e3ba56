"""The JSON API: every action, token and session auth, precise 4xx, scoping."""

import json

import pytest
from django.test import Client

from alerts.models import Alert
from command import clock
from command.org.models import Category, Department, Township, User
from command.org.tokens import api_token_create
from tests.conftest import DEMO_PASSWORDS

pytestmark = pytest.mark.django_db


@pytest.fixture
def token(demo):
    def make(username):
        _, raw = api_token_create(user=User.objects.get(username=username), name="test")
        return raw

    return make


def call(method, path, raw_token=None, body=None, client=None):
    client = client or Client()
    headers = {"HTTP_AUTHORIZATION": f"Bearer {raw_token}"} if raw_token else {}
    return getattr(client, method)(
        f"/api/v1{path}",
        data=json.dumps(body) if body is not None else None,
        content_type="application/json",
        **headers,
    )


def test_api_needs_credentials_and_answers_401_not_a_login_redirect(demo):
    assert call("get", "/alerts").status_code == 401
    assert call("get", "/alerts", "nope.nope").status_code == 401


def test_openapi_document_lists_every_action(demo):
    schema = Client().get("/api/v1/openapi.json").json()
    paths = set(schema["paths"])
    for path in (
        "/api/v1/alerts/{alert_id}/acknowledge",
        "/api/v1/alerts/{alert_id}/dismiss",
        "/api/v1/incidents",
        "/api/v1/incidents/{incident_id}/whistles",
        "/api/v1/summonses/{summons_id}/acknowledge",
        "/api/v1/summonses/{summons_id}/check-in",
        "/api/v1/summonses/{summons_id}/done",
        "/api/v1/summonses/{summons_id}/release",
        "/api/v1/summonses/{summons_id}/accept",
        "/api/v1/summonses/{summons_id}/return",
        "/api/v1/incidents/{incident_id}/resolve",
        "/api/v1/incidents/{incident_id}/reopen",
        "/api/v1/incidents/{incident_id}/callback",
        "/api/v1/incidents/{incident_id}/close",
    ):
        assert path in paths, path


def test_operation_ids_do_not_move_with_the_views(demo):
    """Generated clients call operations by id; the ids of the one-module API stay."""
    schema = Client().get("/api/v1/openapi.json").json()
    ids = {
        (method, path): operation["operationId"]
        for path, item in schema["paths"].items()
        for method, operation in item.items()
    }
    assert ids[("post", "/api/v1/incidents/{incident_id}/whistles")] == "command_api_blow_whistle"
    assert ids[("get", "/api/v1/summonses")] == "command_api_list_summonses"
    assert ids[("post", "/api/v1/photos")] == "command_api_upload_photo"
    assert all(operation_id.startswith("command_api_") for operation_id in ids.values())
    assert len(set(ids.values())) == len(ids)


def test_the_loop_through_the_api_with_tokens(token):
    duty, chengguan, police = token("duty"), token("chengguan"), token("police")
    opened = call(
        "post",
        "/incidents",
        duty,
        {
            "township": "qingshui",
            "category": "parking",
            "severity": "major",
            "title": "滨河路违停",
            "grid": "110112-QS-001",
        },
    )
    assert opened.status_code == 201, opened.content
    incident = opened.json()["id"]
    assert (
        call("get", f"/incidents/{incident}/suggested-departments", duty).json()[0]["code"]
        == "traffic"
    )

    refused = call(
        "post",
        f"/incidents/{incident}/whistles",
        duty,
        {
            "kind": "emergency",
            "purpose": "joint_enforcement",
            "departments": [{"department": "fire-rescue"}],
        },
    )
    assert refused.status_code == 409 and refused.json()["code"] == "not_on_list"
    assert call(
        "post",
        f"/incidents/{incident}/whistles",
        chengguan,
        {
            "kind": "emergency",
            "purpose": "joint_enforcement",
            "departments": [{"department": "chengguan"}],
        },
    ).status_code in (403, 404)
    blown = call(
        "post",
        f"/incidents/{incident}/whistles",
        duty,
        {
            "kind": "emergency",
            "purpose": "joint_enforcement",
            "departments": [{"department": "chengguan"}],
        },
    )
    assert blown.status_code == 201, blown.content
    summons = blown.json()["summonses"][0]["id"]

    # Another department neither sees nor touches it.
    assert call("post", f"/summonses/{summons}/acknowledge", police).status_code == 404
    assert call("get", "/summonses", police).json() == []
    assert [s["id"] for s in call("get", "/summonses", chengguan).json()] == [summons]

    assert (
        call("post", f"/summonses/{summons}/acknowledge", chengguan).json()["status"]
        == "acknowledged"
    )
    again = call("post", f"/summonses/{summons}/acknowledge", chengguan)
    assert again.status_code == 409 and again.json()["code"] == "summons_not_notified"
    early = call("post", f"/incidents/{incident}/resolve", duty)
    assert early.status_code == 409 and early.json()["code"] == "summons_open"
    assert (
        call(
            "post",
            f"/summonses/{summons}/check-in",
            chengguan,
            {"latitude": 40.24, "longitude": 116.66},
        ).json()["status"]
        == "checked_in"
    )
    assert (
        call(
            "post",
            f"/summonses/{summons}/done",
            chengguan,
            {"note": "已疏导", "photos": ["https://x.example/after.jpg"]},
        ).json()["status"]
        == "done"
    )
    evidence = call("get", f"/incidents/{incident}", duty).json()["evidence"]
    assert evidence[-1]["url"] == "https://x.example/after.jpg"
    unaccepted = call("post", f"/incidents/{incident}/resolve", duty)
    assert (unaccepted.status_code, unaccepted.json()["code"]) == (409, "summons_unaccepted")
    assert call("post", f"/summonses/{summons}/accept", chengguan).status_code == 403
    returned = call("post", f"/summonses/{summons}/return", duty, {"reason": "护栏未复位"}).json()
    assert (returned["status"], returned["returned_count"]) == ("checked_in", 1)
    again = call("post", f"/summonses/{summons}/done", chengguan, {"note": "护栏已复位"})
    assert again.status_code == 200
    assert call("post", f"/summonses/{summons}/accept", duty).json()["status"] == "accepted"
    assert call("post", f"/incidents/{incident}/resolve", duty).json()["status"] == "resolved"
    bad_close = call("post", f"/incidents/{incident}/close", duty, {"feedback": "ok"})
    assert bad_close.status_code == 422  # settled_level missing: a malformed body
    closed = call(
        "post",
        f"/incidents/{incident}/close",
        duty,
        {"feedback": "道路恢复通行", "settled_level": "township"},
    )
    assert closed.json()["status"] == "closed"

    actions = [e["action"] for e in call("get", f"/incidents/{incident}/timeline", duty).json()]
    assert actions == [
        "incident.opened",
        "whistle.blown",
        "summons.notified",
        "incident.dispatched",
        "summons.acknowledged",
        "summons.checked_in",
        "incident.on_site",
        "summons.done",
        "incident.evidence_added",
        "summons.returned",
        "summons.done",
        "summons.accepted",
        "incident.resolved",
        "incident.closed",
    ]
    sources = {e["source"] for e in call("get", f"/incidents/{incident}/timeline", duty).json()}
    assert sources == {"api"}
    # The incident as one JSON document, its timeline included on request.
    document = call("get", f"/incidents/{incident}?timeline=true", duty).json()
    assert [e["action"] for e in document["timeline"]] == actions
    assert document["feedback"] == "道路恢复通行" and document["closed_at"] is not None
    assert call("get", f"/incidents/{incident}", duty).json()["timeline"] is None


def test_alert_acknowledge_and_dismiss(token):
    duty = token("duty")
    alert = Alert.objects.create(
        township=Township.objects.get(code="qingshui"),
        severity="minor",
        source="camera",
        title="garbage @ cam-03",
        dedupe_key="g",
        category=Category.objects.get(code="garbage"),
    )
    assert call("post", f"/alerts/{alert.pk}/acknowledge", duty).json()["status"] == "acknowledged"
    no_reason = call("post", f"/alerts/{alert.pk}/dismiss", duty, {"reason": " "})
    assert no_reason.status_code == 409 and no_reason.json()["code"] == "reason_missing"
    assert (
        call("post", f"/alerts/{alert.pk}/dismiss", duty, {"reason": "误报：影子"}).json()["status"]
        == "dismissed"
    )
    assert call("post", f"/alerts/{alert.pk}/acknowledge", duty).status_code == 409
    assert call("post", f"/alerts/{alert.pk}/acknowledge", token("chengguan")).status_code == 403
    other = Township.objects.create(code="elsewhere", name="别处镇")
    foreign = Alert.objects.create(
        township=other, severity="minor", source="camera", title="x", dedupe_key="x"
    )
    assert call("post", f"/alerts/{foreign.pk}/acknowledge", duty).status_code == 404
    assert [a["id"] for a in call("get", "/alerts?status=all", duty).json()] == [alert.pk]


def test_session_auth_needs_the_csrf_token(demo):
    client = Client(enforce_csrf_checks=True)
    assert client.login(username="duty", password=DEMO_PASSWORDS["duty"])
    assert client.get("/api/v1/alerts").status_code == 200
    body = {"township": "qingshui", "category": "parking", "severity": "minor", "title": "x"}
    assert call("post", "/incidents", body=body, client=client).status_code == 403
    client.get("/login/")  # sets the csrftoken cookie
    created = client.post(
        "/api/v1/incidents",
        data=json.dumps(body),
        content_type="application/json",
        HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value,
    )
    assert created.status_code == 201, created.content


def test_merge_folds_a_duplicate_into_the_alert_kept(token):
    duty = token("duty")
    township = Township.objects.get(code="qingshui")
    first, second = (
        Alert.objects.create(
            township=township,
            severity="minor",
            source="camera",
            title=f"garbage {n}",
            dedupe_key=f"g{n}",
            count=n + 1,
            category=Category.objects.get(code="garbage"),
        )
        for n in range(2)
    )
    kept = call("post", f"/alerts/{second.pk}/merge", duty, {"into": first.pk})
    assert kept.status_code == 200 and kept.json()["count"] == 3
    second.refresh_from_db()
    assert second.status == "merged" and second.detail["merged_into"] == first.pk
    again = call("post", f"/alerts/{second.pk}/merge", duty, {"into": first.pk})
    assert again.status_code == 409
    assert call("post", f"/alerts/{first.pk}/merge", duty, {"into": first.pk}).status_code == 409


def test_grid_officer_report_becomes_an_alert_and_is_followed(token):
    grid01, duty = token("grid01"), token("duty")
    filed = call(
        "post",
        "/reports",
        grid01,
        {
            "category": "garbage",
            "description": "东沟村口垃圾堆积 / rubbish piled at the village gate",
            "latitude": 40.26,
            "longitude": 116.61,
        },
    )
    assert filed.status_code == 201, filed.content
    report = filed.json()
    alert = Alert.objects.get(pk=report["alert"])
    assert (alert.source, alert.severity, alert.category.code) == ("report", "major", "garbage")
    assert alert.grid is not None and alert.grid.code == "110112-QS-001"
    # The duty officer sees it among the alerts; the officer follows what became of it.
    assert report["alert"] in [a["id"] for a in call("get", "/alerts", duty).json()]
    call("post", f"/alerts/{alert.pk}/acknowledge", duty)
    mine = call("get", "/reports", grid01).json()
    assert [(r["id"], r["alert_status"]) for r in mine] == [(report["id"], "acknowledged")]
    assert call("get", "/reports", token("chengguan")).json() == []
    refused = call("post", "/reports", duty, {"category": "garbage", "description": "x"})
    assert refused.status_code == 403
    empty = call("post", "/reports", grid01, {"category": "garbage", "description": " "})
    assert empty.status_code == 409


def test_supervisors_read_everything_and_act_on_nothing(token):
    duty, supervisor = token("duty"), token("supervisor")
    incident = call(
        "post",
        "/incidents",
        duty,
        {
            "township": "qingshui",
            "category": "parking",
            "severity": "minor",
            "title": "违停",
        },
    ).json()["id"]
    blown = call(
        "post",
        f"/incidents/{incident}/whistles",
        duty,
        {
            "kind": "general",
            "purpose": "key_task",
            "departments": [{"department": "chengguan"}],
        },
    ).json()
    summons = blown["summonses"][0]["id"]
    assert call("get", f"/incidents/{incident}", supervisor).status_code == 200
    assert call("get", f"/incidents/{incident}/timeline", supervisor).status_code == 200
    assert [s["id"] for s in call("get", "/summonses", supervisor).json()] == [summons]
    assert call("post", f"/incidents/{incident}/resolve", supervisor).status_code == 403
    assert call("post", f"/summonses/{summons}/check-in", supervisor).status_code == 403
    assert (
        call(
            "post",
            f"/incidents/{incident}/whistles",
            supervisor,
            {
                "kind": "general",
                "purpose": "key_task",
                "departments": [{"department": "police"}],
            },
        ).status_code
        == 403
    )


def test_evidence_from_the_alert_snapshot_and_from_a_summoned_department(token):
    from streams.ingest import InboundMessage, directory, store_batch

    directory.forget()
    duty, chengguan = token("duty"), token("chengguan")
    payload = {
        "id": "ev-1",
        "label": "illegal_parking",
        "score": 0.9,
        "snapshot": "https://nvr.example/snap/ev-1.jpg",
    }
    store_batch(
        [InboundMessage("whistle/qingshui/camera/cam-01/event", json.dumps(payload).encode())]
    )
    alert = Alert.objects.get()
    opened = call(
        "post",
        "/incidents",
        duty,
        {
            "township": "qingshui",
            "category": "parking",
            "severity": "minor",
            "title": "违停",
            "alerts": [alert.pk],
        },
    ).json()
    assert [e["url"] for e in opened["evidence"]] == ["https://nvr.example/snap/ev-1.jpg"]
    incident = opened["id"]
    # Not summoned yet: a department may not add to it.
    assert (
        call(
            "post", f"/incidents/{incident}/evidence", chengguan, {"url": "https://x.example/1.jpg"}
        ).status_code
        == 404
    )
    call(
        "post",
        f"/incidents/{incident}/whistles",
        duty,
        {
            "kind": "general",
            "purpose": "key_task",
            "departments": [{"department": "chengguan"}],
        },
    )
    added = call(
        "post",
        f"/incidents/{incident}/evidence",
        chengguan,
        {"url": "https://x.example/1.jpg", "caption": "现场照片"},
    )
    assert added.status_code == 200
    assert [e["caption"] for e in added.json()["evidence"]][-1] == "现场照片"
    bad = call("post", f"/incidents/{incident}/evidence", duty, {"url": "file:///etc/passwd"})
    assert bad.status_code == 409


def test_supervisors_list_of_overdue_summons(token):
    from datetime import timedelta

    from incidents.models import Summons, Whistle
    from incidents.services.deadlines import summons_escalate
    from incidents.services.incidents import incident_open
    from incidents.services.whistles import SummonedDepartment, whistle_blow

    duty_user = User.objects.get(username="duty")
    incident = incident_open(
        actor=duty_user,
        township=Township.objects.get(code="qingshui"),
        category=Category.objects.get(code="parking"),
        severity="minor",
        title="违停",
    )
    with clock.moved(by=-timedelta(hours=3)):
        whistle = whistle_blow(
            actor=duty_user,
            incident=incident,
            kind=Whistle.Kind.GENERAL,
            purpose=Whistle.Purpose.KEY_TASK,
            departments=[SummonedDepartment(Department.objects.get(code="chengguan"))],
        )
    summons = whistle.summonses.get()
    supervisor = token("supervisor")
    assert call("get", "/summonses?overdue_only=true", supervisor).json() == []
    assert summons_escalate(summons_id=summons.pk, level=1).startswith("escalated")
    overdue = call("get", "/summonses?overdue_only=true", supervisor).json()
    assert [(s["id"], s["escalation_level"]) for s in overdue] == [(summons.pk, 1)]
    assert Summons.objects.get(pk=summons.pk).overdue


def test_joint_whistle_is_confirmed_by_the_other_township_through_the_api(token):
    neighbour = Township.objects.create(code="dongshan", name="东山镇", name_en="Dongshan")
    Department.objects.create(
        code="ds-zhifa", name="东山镇执法队", kind=Department.Kind.STATION, township=neighbour
    )
    User.objects.create(username="ds-duty", role=User.Role.DUTY_OFFICER, township=neighbour)
    duty, ds_duty = token("duty"), token("ds-duty")
    incident = call(
        "post",
        "/incidents",
        duty,
        {"township": "qingshui", "category": "parking", "severity": "major", "title": "交界违停"},
    ).json()["id"]
    blown = call(
        "post",
        f"/incidents/{incident}/whistles",
        duty,
        {
            "kind": "general",
            "purpose": "joint_enforcement",
            "joint_township": "dongshan",
            "departments": [
                {"department": "traffic"},
                {"department": "ds-zhifa", "reason": "交界"},
            ],
        },
    )
    assert blown.status_code == 201, blown.content
    whistle = blown.json()
    assert whistle["joint_status"] == "pending" and whistle["awaiting"] == ["ds-zhifa"]
    assert [s["department"] for s in whistle["summonses"]] == ["traffic"]
    # The neighbour sees what waits for it; the township that blew cannot confirm for it.
    pending = call("get", "/whistles/joint-pending", ds_duty).json()
    assert [w["id"] for w in pending] == [whistle["id"]]
    assert call("get", "/whistles/joint-pending", duty).json() == []
    assert call("post", f"/whistles/{whistle['id']}/joint/confirm", duty).status_code == 403
    confirmed = call("post", f"/whistles/{whistle['id']}/joint/confirm", ds_duty)
    assert confirmed.status_code == 200, confirmed.content
    assert confirmed.json()["joint_status"] == "confirmed"
    assert {s["department"] for s in confirmed.json()["summonses"]} == {"traffic", "ds-zhifa"}
    again = call("post", f"/whistles/{whistle['id']}/joint/confirm", ds_duty)
    assert again.status_code == 409


@pytest.mark.parametrize(
    "position",
    [
        {"latitude": float("nan"), "longitude": 116.4},
        {"latitude": 39.9, "longitude": float("inf")},
        {"latitude": 91, "longitude": 116.4},
        {"latitude": 39.9, "longitude": -180.5},
    ],
)
def test_positions_off_the_earth_are_refused_with_422(demo, token, position):
    """NaN is not JSON; Python writes it anyway, and stored it broke every later document of the
    report (webhooks failed with a 500 each time)."""
    raw = token("grid01")
    client = Client()
    body = json.dumps({"category": "garbage", "description": "垃圾", **position})
    response = client.post(
        "/api/v1/reports",
        data=body,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {raw}",
    )
    assert response.status_code == 422, response.content
    from streams.models import GridReport

    assert not GridReport.objects.exists()


def test_text_no_field_can_hold_is_refused_with_400(demo, token):
    """NUL and lone surrogates (found by fuzzing: each was a 500 from the database driver)."""
    raw = token("duty")
    assert call("get", "/alerts?status=open%00", raw).status_code == 400
    body = '{"category": "garbage", "description": "a\\u0000b"}'
    response = Client().post(
        "/api/v1/reports",
        data=body,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token('grid01')}",
    )
    assert response.status_code == 400
    assert response.json()["code"] == "unstorable_text"
    lone = '{"category": "garbage", "description": "cut \\ud800 in half"}'
    response = Client().post(
        "/api/v1/reports",
        data=lone,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token('grid01')}",
    )
    assert response.status_code == 400
    # A surrogate pair is one ordinary character (an emoji) and passes.
    pair = '{"category": "garbage", "description": "\\ud83d\\ude00 垃圾"}'
    response = Client().post(
        "/api/v1/reports",
        data=pair,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token('grid01')}",
    )
    assert response.status_code == 201, response.content
