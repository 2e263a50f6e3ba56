"""Open311 GeoReport v2: services, filing and following requests, in JSON and XML, checked
against the specification's fields and error format."""

import pytest
from django.test import Client
from lxml import etree

from api.open311 import grid_at
from command.org.models import User
from command.org.tokens import api_token_create
from incidents.services.incidents import incident_close, incident_open, incident_resolve
from streams.models import GridReport

pytestmark = pytest.mark.django_db

REQUEST_FIELDS = {
    "service_request_id",
    "status",
    "status_notes",
    "service_name",
    "service_code",
    "description",
    "agency_responsible",
    "service_notice",
    "requested_datetime",
    "updated_datetime",
    "expected_datetime",
    "address",
    "address_id",
    "zipcode",
    "lat",
    "long",
    "media_url",
}


def key(username: str) -> str:
    return api_token_create(user=User.objects.get(username=username), name="311")[1]


def test_services_in_json_and_xml(demo):
    api_key = key("grid01")
    listed = Client().get("/open311/v2/services.json", {"api_key": api_key})
    assert listed.status_code == 200
    services = listed.json()
    garbage = next(s for s in services if s["service_code"] == "garbage")
    assert garbage == {
        "service_code": "garbage",
        "service_name": "垃圾堆物",
        "description": "Garbage & debris",
        "metadata": False,
        "type": "realtime",
        "keywords": "Garbage & debris",
        "group": "",
    }
    xml = etree.fromstring(Client().get("/open311/v2/services.xml", {"api_key": api_key}).content)
    assert xml.tag == "services"
    assert "garbage" in xml.xpath("service/service_code/text()")
    assert xml.xpath("service[service_code='garbage']/metadata/text()") == ["false"]
    definition = Client().get("/open311/v2/services/garbage.json", {"api_key": api_key})
    assert definition.json() == [{"service_code": "garbage", "attributes": ""}]
    missing = Client().get("/open311/v2/services/nope.xml", {"api_key": api_key})
    assert missing.status_code == 404
    error = etree.fromstring(missing.content)
    assert error.tag == "errors" and error.xpath("error/code/text()") == ["404"]


def test_a_311_client_files_a_request_and_follows_it(demo):
    api_key = key("grid01")
    filed = Client().post(
        "/open311/v2/requests.json",
        {
            "api_key": api_key,
            "service_code": "garbage",
            "lat": "40.2512",
            "long": "116.6401",
            "description": "桥下垃圾堆积",
        },
    )
    assert filed.status_code == 200, filed.content
    (receipt,) = filed.json()
    report = GridReport.objects.get(pk=receipt["service_request_id"])
    assert grid_at(report.township_id, 40.2512, 116.6401) is not None
    assert report.alert is not None and report.grid == grid_at(
        report.township_id, 40.2512, 116.6401
    )

    (request,) = Client().get(f"/open311/v2/requests/{report.pk}.json", {"api_key": api_key}).json()
    assert set(request) == REQUEST_FIELDS
    assert (request["status"], request["service_code"], request["lat"]) == (
        "open",
        "garbage",
        40.2512,
    )

    # The duty officer opens an incident from it, resolves and closes it: the request is closed.
    duty = User.objects.get(username="duty")
    incident = incident_open(
        actor=duty,
        township=report.township,
        category=report.category,
        severity="minor",
        title="桥下垃圾",
        alerts=[report.alert],
    )
    incident_resolve(actor=duty, incident=incident)
    incident_close(actor=duty, incident=incident, feedback="已清运", settled_level="grid")
    xml = etree.fromstring(
        Client()
        .get("/open311/v2/requests.xml", {"api_key": key("duty"), "service_request_id": report.pk})
        .content
    )
    assert xml.tag == "service_requests"
    assert xml.xpath("request/status/text()") == ["closed"]
    assert "已清运" in xml.xpath("request/status_notes/text()")[0]
    assert set(child.tag for child in xml.find("request")) == REQUEST_FIELDS
    listed = (
        Client()
        .get(
            "/open311/v2/requests.json",
            {"api_key": api_key, "status": "closed", "service_code": "garbage"},
        )
        .json()
    )
    assert [r["service_request_id"] for r in listed] == [report.pk]


def test_refusals_follow_the_specification(demo):
    client = Client()
    assert client.get("/open311/v2/services.json").status_code == 403
    api_key = key("grid01")
    unknown = client.post("/open311/v2/requests.json", {"api_key": api_key, "service_code": "x"})
    assert unknown.status_code == 400
    assert unknown.json()[0]["code"] == 400 and "service_code" in unknown.json()[0]["description"]
    nowhere = client.post(
        "/open311/v2/requests.json",
        {"api_key": api_key, "service_code": "garbage", "description": "x"},
    )
    assert nowhere.status_code == 400 and "location" in nowhere.json()[0]["description"]
    wrong = client.post(
        "/open311/v2/requests.json",
        {"api_key": api_key, "service_code": "garbage", "lat": "north", "long": "1"},
    )
    assert wrong.status_code == 400
    # Only grid officers file; others' requests are not visible to a grid officer.
    officer = client.post(
        "/open311/v2/requests.json",
        {"api_key": key("duty"), "service_code": "garbage", "lat": "40.25", "long": "116.64"},
    )
    assert officer.status_code == 403
    assert client.get("/open311/v2/requests/999999.json", {"api_key": api_key}).status_code == 404
    assert client.get("/open311/v2/requests.json", {"api_key": key("chengguan")}).json() == []
    assert client.get("/open311/v2/services.yaml", {"api_key": api_key}).status_code == 404
