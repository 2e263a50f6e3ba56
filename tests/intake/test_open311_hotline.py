"""A hotline system files its tickets by Open311 POST /requests with its own API key: each one
an intake item of its township (channel and ticket from attributes, the caller from the
specification's first_name, last_name and phone), the same ticket again answers the same
service_request_id, and GET follows what became of it. Every JSON answer is validated against
the GeoReport v2 schemas."""

from __future__ import annotations

import pytest
from django.test import Client

from command.org.models import Grid, Township, User
from command.org.tokens import api_token_create
from demo.data import GRID_OFFICER_GRID
from incidents.services.incidents import incident_close, incident_open, incident_resolve
from streams.models import GridReport
from tests.schemas.georeport_v2 import validate_response

pytestmark = pytest.mark.django_db


@pytest.fixture
def hotline(demo):
    qingshui = Township.objects.get(code="qingshui")
    beishan = Township.objects.create(code="beishan", name="北山镇", name_en="Beishan")
    Grid.objects.create(township=beishan, code="BS-001", kind="comprehensive", name="北")
    users = {
        "qs": User.objects.create(username="h12345", role=User.Role.HOTLINE, township=qingshui),
        "bs": User.objects.create(username="h_bs", role=User.Role.HOTLINE, township=beishan),
        "stray": User.objects.create(username="h_none", role=User.Role.HOTLINE),
    }
    return {name: api_token_create(user=user, name="12345")[1] for name, user in users.items()}


def post(data: dict):
    response = Client().post("/open311/v2/requests.json", data)
    validate_response("post", "/open311/v2/requests.json", response)
    return response


def get(path: str, data: dict):
    response = Client().get(path, data)
    validate_response("get", path, response)
    return response


TICKET = {
    "service_code": "garbage",
    "address_id": GRID_OFFICER_GRID,
    "description": "市民来电：桥下垃圾堆积三天",
    "first_name": "三",
    "last_name": "张",
    "phone": "13812345678",
    "attribute[ticket]": "BJ12345-20261127-0042",
}


def test_a_hotline_ticket_becomes_an_intake_item_of_its_township(hotline):
    filed = post({"api_key": hotline["qs"], **TICKET})
    assert filed.status_code == 200, filed.content
    (receipt,) = filed.json()
    report = GridReport.objects.select_related("alert", "township").get(
        pk=int(receipt["service_request_id"])
    )
    assert (report.channel, report.external_id, report.township.code) == (
        "12345",
        "BJ12345-20261127-0042",
        "qingshui",
    )
    assert (report.caller_name, report.caller_phone) == ("张三", "13812345678")
    assert report.grid.code == GRID_OFFICER_GRID
    assert report.alert.source == "intake" and report.alert.detail["caller"] == "张三 138****5678"

    # Filed again (a retry, a resend): the same request, no second item or alert.
    again = post({"api_key": hotline["qs"], **TICKET})
    assert again.json() == [receipt]
    assert GridReport.objects.count() == 1

    # 12315 by the attribute; an unknown channel is refused.
    other = post({"api_key": hotline["qs"], **TICKET, "attribute[channel]": "12315"})
    assert other.status_code == 200
    assert GridReport.objects.get(pk=int(other.json()[0]["service_request_id"])).channel == "12315"
    bad = post({"api_key": hotline["qs"], **TICKET, "attribute[channel]": "walk_in"})
    assert bad.status_code == 400 and "attribute[channel]" in bad.json()[0]["description"]


def test_a_hotline_follows_its_tickets_to_the_close(hotline):
    (receipt,) = post({"api_key": hotline["qs"], **TICKET}).json()
    pk = receipt["service_request_id"]
    (opened,) = get(f"/open311/v2/requests/{pk}.json", {"api_key": hotline["qs"]}).json()
    assert (opened["status"], opened["service_code"]) == ("open", "garbage")
    # Open311 answers carry no caller at all: nothing to leak.
    assert "13812345678" not in str(opened) and "张三" not in str(opened)

    report = GridReport.objects.get(pk=int(pk))
    duty = User.objects.get(username="duty")
    incident = incident_open(
        actor=duty,
        township=report.township,
        category=report.category,
        severity="major",
        title="桥下垃圾",
        alerts=[report.alert],
    )
    incident_resolve(actor=duty, incident=incident)
    incident_close(actor=duty, incident=incident, feedback="已清运，已回访", settled_level="grid")
    listed = get("/open311/v2/requests.json", {"api_key": hotline["qs"]}).json()
    assert [(r["service_request_id"], r["status"]) for r in listed] == [(pk, "closed")]
    assert "已清运，已回访" in listed[0]["status_notes"]
    # The other township's hotline does not see it.
    assert get("/open311/v2/requests.json", {"api_key": hotline["bs"]}).json() == []
    missing = get(f"/open311/v2/requests/{pk}.json", {"api_key": hotline["bs"]})
    assert missing.status_code == 404


def test_a_hotline_cannot_file_into_another_township(hotline):
    refused = post({"api_key": hotline["bs"], **TICKET})  # a grid of qingshui
    assert refused.status_code == 403
    # A hotline account without a township files nowhere.
    assert post({"api_key": hotline["stray"], **TICKET}).status_code == 403
    # A duty officer's key is not a hotline's.
    duty_key = api_token_create(user=User.objects.get(username="duty"), name="x")[1]
    assert post({"api_key": duty_key, **TICKET}).status_code == 403
    assert not GridReport.objects.exists()
    # Without a grid, into its own township.
    filed = post(
        {
            "api_key": hotline["bs"],
            **{k: v for k, v in TICKET.items() if k != "address_id"},
            "address_string": "北山村口",
        }
    )
    assert filed.status_code == 200
    assert GridReport.objects.get().township.code == "beishan"
