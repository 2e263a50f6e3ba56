"""Open311 GeoReport v2: services, filing and following requests, in JSON and XML, checked
against the specification's fields and error format. Every JSON answer is validated against
the GeoReport v2 schemas of tests/schemas/georeport_v2.py."""

from datetime import datetime, timedelta

import pytest
from django.test import Client
from jsonschema import ValidationError
from lxml import etree

from alerts.services import alert_acknowledge, alert_dismiss
from api.open311 import grid_at
from command import clock
from command.org.models import User
from command.org.tokens import api_token_create
from incidents.services.incidents import incident_close, incident_open, incident_resolve
from streams.models import GridReport
from tests.schemas import georeport_v2
from tests.schemas.georeport_v2 import validate, validate_response

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
}
# media_url is there only when the report has a photo.
REQUEST_FIELDS_WITH_MEDIA = REQUEST_FIELDS | {"media_url"}


def key(username: str) -> str:
    return api_token_create(user=User.objects.get(username=username), name="311")[1]


def get(path: str, data: dict | None = None, **headers: str):
    response = Client().get(path, data or {}, **headers)
    validate_response("get", path, response)
    return response


def post(path: str, data: dict):
    response = Client().post(path, data)
    validate_response("post", path, response)
    return response


def file_request(api_key: str, **fields: str) -> GridReport:
    filed = post(
        "/open311/v2/requests.json",
        {
            "api_key": api_key,
            "service_code": "garbage",
            "lat": "40.2512",
            "long": "116.6401",
            "description": "桥下垃圾堆积",
            **fields,
        },
    )
    assert filed.status_code == 200, filed.content
    (receipt,) = filed.json()
    return GridReport.objects.get(pk=int(receipt["service_request_id"]))


def test_services_in_json_and_xml(demo):
    api_key = key("grid01")
    listed = get("/open311/v2/services.json", {"api_key": api_key})
    assert listed.status_code == 200
    services = listed.json()
    garbage = next(s for s in services if s["service_code"] == "garbage")
    assert garbage == {
        "service_code": "garbage",
        "service_name": "垃圾堆物",
        "description": "Garbage & debris",
        "metadata": True,
        "type": "realtime",
        "keywords": "Garbage & debris",
        "group": "",
    }
    xml = etree.fromstring(get("/open311/v2/services.xml", {"api_key": api_key}).content)
    assert xml.tag == "services"
    assert "garbage" in xml.xpath("service/service_code/text()")
    assert xml.xpath("service[service_code='garbage']/metadata/text()") == ["true"]
    missing = get("/open311/v2/services/nope.xml", {"api_key": api_key})
    assert missing.status_code == 404
    error = etree.fromstring(missing.content)
    assert error.tag == "errors" and error.xpath("error/code/text()") == ["404"]


def test_a_service_definition_is_one_object_with_an_attribute_list(demo):
    api_key = key("grid01")
    definition = get("/open311/v2/services/garbage.json", {"api_key": api_key})
    assert definition.status_code == 200
    found = definition.json()
    # A hotline system's two attributes: how the ticket came, and its number.
    assert found["service_code"] == "garbage"
    assert [(a["code"], a["datatype"], a["required"]) for a in found["attributes"]] == [
        ("channel", "singlevaluelist", False),
        ("ticket", "string", False),
    ]
    assert [v["key"] for v in found["attributes"][0]["values"]] == [
        "12315",
        "12345",
        "jiyu",
        "other",
    ]
    xml = etree.fromstring(get("/open311/v2/services/garbage.xml", {"api_key": api_key}).content)
    assert xml.tag == "service_definition"
    assert [child.tag for child in xml] == ["service_code", "attributes"]
    assert xml.findtext("service_code") == "garbage"
    assert xml.xpath("attributes/attribute/code/text()") == ["channel", "ticket"]
    assert xml.xpath("attributes/attribute[code='channel']/values/value/key/text()") == [
        "12315",
        "12345",
        "jiyu",
        "other",
    ]
    assert get("/open311/v2/services/nope.json", {"api_key": api_key}).status_code == 404


def test_a_311_client_files_a_request_and_follows_it(demo):
    api_key = key("grid01")
    report = file_request(api_key)
    assert grid_at(report.township_id, 40.2512, 116.6401) is not None
    assert report.alert is not None and report.grid == grid_at(
        report.township_id, 40.2512, 116.6401
    )

    (request,) = get(f"/open311/v2/requests/{report.pk}.json", {"api_key": api_key}).json()
    assert set(request) == REQUEST_FIELDS
    assert (request["service_request_id"], request["status"]) == (str(report.pk), "open")
    assert (request["service_code"], request["lat"]) == ("garbage", 40.2512)

    # The duty officer opens an incident from it, resolves and closes it: the request is closed.
    duty = User.objects.get(username="duty")
    with clock.moved(by=timedelta(minutes=10)):
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
    incident.refresh_from_db()
    xml = etree.fromstring(
        get(
            "/open311/v2/requests.xml", {"api_key": key("duty"), "service_request_id": report.pk}
        ).content
    )
    assert xml.tag == "service_requests"
    assert xml.xpath("request/service_request_id/text()") == [str(report.pk)]
    assert xml.xpath("request/status/text()") == ["closed"]
    assert "已清运" in xml.xpath("request/status_notes/text()")[0]
    assert set(child.tag for child in xml.find("request")) == REQUEST_FIELDS
    assert xml.xpath("request/updated_datetime/text()") == [
        incident.closed_at.isoformat(timespec="seconds")
    ]
    listed = get(
        "/open311/v2/requests.json",
        {"api_key": api_key, "status": "closed", "service_code": "garbage"},
    ).json()
    assert [r["service_request_id"] for r in listed] == [str(report.pk)]


def test_updated_datetime_is_the_last_change_of_the_alert(demo):
    api_key = key("grid01")
    report = file_request(api_key)
    path = f"/open311/v2/requests/{report.pk}.json"
    (filed,) = get(path, {"api_key": api_key}).json()
    assert filed["updated_datetime"] == filed["requested_datetime"]

    duty = User.objects.get(username="duty")
    with clock.moved(by=timedelta(minutes=5)):
        alert_acknowledge(alert_id=report.alert_id, actor_id=duty.pk, township_ids=None)
        acknowledged_at = clock.now()
    (seen,) = get(path, {"api_key": api_key}).json()
    assert seen["status"] == "open"
    # Seconds are what the document carries; the change happened within the second read.
    updated = datetime.fromisoformat(seen["updated_datetime"])
    assert timedelta(0) <= acknowledged_at - updated < timedelta(seconds=2)

    with clock.moved(by=timedelta(minutes=20)):
        alert = alert_dismiss(
            alert_id=report.alert_id, actor_id=duty.pk, township_ids=None, reason="已自行清理"
        )
    (dismissed,) = get(path, {"api_key": api_key}).json()
    assert dismissed["status"] == "closed"
    assert dismissed["updated_datetime"] == alert.closed_at.isoformat(timespec="seconds")
    assert dismissed["updated_datetime"] > dismissed["requested_datetime"]


def test_media_url_is_a_uri_or_left_out(demo):
    api_key = key("grid01")
    report = file_request(api_key)
    (bare,) = get(f"/open311/v2/requests/{report.pk}.json", {"api_key": api_key}).json()
    assert "media_url" not in bare
    xml = etree.fromstring(
        get(f"/open311/v2/requests/{report.pk}.xml", {"api_key": api_key}).content
    )
    assert xml.find("request/media_url") is None

    GridReport.objects.filter(pk=report.pk).update(photos=["/photos/p1", "/photos/p2"])
    (shown,) = get(f"/open311/v2/requests/{report.pk}.json", {"api_key": api_key}).json()
    assert set(shown) == REQUEST_FIELDS_WITH_MEDIA
    assert shown["media_url"] == "http://testserver/photos/p1"
    xml = etree.fromstring(
        get(f"/open311/v2/requests/{report.pk}.xml", {"api_key": api_key}).content
    )
    assert xml.findtext("request/media_url") == "http://testserver/photos/p1"


def test_descriptions_fit_the_specification(demo):
    # The specification's 4,000 characters: a longer one is refused when filed by a 311
    # client; a longer report from the phone page (no limit there) is cut in the answer.
    api_key = key("grid01")
    refused = post(
        "/open311/v2/requests.json",
        {"api_key": api_key, "service_code": "garbage", "lat": "40.25", "long": "116.64",
         "description": "垃" * 4001},
    )  # fmt: skip
    assert refused.status_code == 400 and "4,000" in refused.json()[0]["description"]
    assert not GridReport.objects.filter(description__startswith="垃垃").exists()
    long = file_request(api_key, description="垃" * 4000)
    GridReport.objects.filter(pk=long.pk).update(description="垃" * 4500)
    (request,) = get(f"/open311/v2/requests/{long.pk}.json", {"api_key": api_key}).json()
    assert request["description"] == "垃" * 4000
    # A control character XML 1.0 cannot hold is left out of the XML, which still parses.
    odd = file_request(api_key, description="桥下\x01垃圾")
    xml = etree.fromstring(get(f"/open311/v2/requests/{odd.pk}.xml", {"api_key": api_key}).content)
    assert xml.findtext("request/description") == "桥下垃圾"


def test_refusals_follow_the_specification(demo):
    assert get("/open311/v2/services.json").status_code == 403
    api_key = key("grid01")
    unknown = post("/open311/v2/requests.json", {"api_key": api_key, "service_code": "x"})
    assert unknown.status_code == 400
    assert unknown.json()[0]["code"] == 400 and "service_code" in unknown.json()[0]["description"]
    nowhere = post(
        "/open311/v2/requests.json",
        {"api_key": api_key, "service_code": "garbage", "description": "x"},
    )
    assert nowhere.status_code == 400 and "location" in nowhere.json()[0]["description"]
    wrong = post(
        "/open311/v2/requests.json",
        {"api_key": api_key, "service_code": "garbage", "lat": "north", "long": "1"},
    )
    assert wrong.status_code == 400
    # Only grid officers file; others' requests are not visible to a grid officer.
    officer = post(
        "/open311/v2/requests.json",
        {"api_key": key("duty"), "service_code": "garbage", "lat": "40.25", "long": "116.64"},
    )
    assert officer.status_code == 403
    assert get("/open311/v2/requests/999999.json", {"api_key": api_key}).status_code == 404
    assert get("/open311/v2/requests.json", {"api_key": key("chengguan")}).json() == []


def test_an_unknown_format_answers_the_error_list(demo):
    api_key = key("grid01")
    yaml = get("/open311/v2/services.yaml", {"api_key": api_key})
    assert yaml.status_code == 404
    assert yaml["Content-Type"].startswith("application/json")
    (error,) = yaml.json()
    assert error["code"] == 404 and "yaml" in error["description"]
    # Without a suffix to go by, a client that asks for XML gets XML.
    xml = get("/open311/v2/requests/1.csv", {"api_key": api_key}, HTTP_ACCEPT="text/xml")
    assert xml.status_code == 404
    errors = etree.fromstring(xml.content)
    assert errors.tag == "errors"
    assert errors.xpath("error/code/text()") == ["404"]
    assert "csv" in errors.xpath("error/description/text()")[0]


def test_the_schemas_refuse_what_we_used_to_send():
    # The validation above bites: numbers for ids, "" for a URI, a list for a definition, a
    # date without its zone are all refused.
    request = {
        "service_request_id": "7",
        "status": "open",
        "service_code": "garbage",
        "requested_datetime": "2026-11-23T21:05:00+00:00",
        "media_url": "http://testserver/photos/p1",
    }
    validate(request, georeport_v2.REQUEST)
    for field, value in (
        ("service_request_id", 7),
        ("media_url", ""),
        ("requested_datetime", "2026-11-23T21:05:00"),
        ("requested_datetime", "2026-02-30T21:05:00Z"),
        ("status", "acknowledged"),
    ):
        with pytest.raises(ValidationError):
            validate({**request, field: value}, georeport_v2.REQUEST)
    with pytest.raises(ValidationError):
        validate([{"service_code": "garbage", "attributes": ""}], georeport_v2.SERVICE_DEFINITION)
    with pytest.raises(ValidationError):
        validate([], georeport_v2.ERRORS)


def test_a_method_the_endpoint_does_not_take_answers_the_error_list(demo):
    api_key = key("grid01")
    for path in ("/open311/v2/services.json", "/open311/v2/requests/1.json"):
        refused = post(path, {"api_key": api_key})
        assert refused.status_code == 405 and refused["Allow"] == "GET"
        (error,) = refused.json()
        assert error["code"] == 405 and "POST" in error["description"]
    xml = Client().delete("/open311/v2/requests.xml")
    assert xml.status_code == 405 and xml["Allow"] == "GET, POST"
    assert etree.fromstring(xml.content).xpath("error/code/text()") == ["405"]
