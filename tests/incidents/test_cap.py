"""An incident as a CAP 1.2 alert that validates against the OASIS schema."""

import json
from pathlib import Path

import pytest
from django.utils import timezone
from lxml import etree

from alerts.models import Alert
from alerts.rules import rulebook
from command.org.models import Category, Grid, Township, User
from incidents.services.incidents import (
    incident_add_evidence,
    incident_close,
    incident_open,
    incident_resolve,
)
from streams.ingest import InboundMessage, directory, store_batch
from tests.incidents.test_photos import JPEG, token, upload
from tests.test_api import call

pytestmark = pytest.mark.django_db

SCHEMA = etree.XMLSchema(etree.parse(str(Path(__file__).parents[1] / "schemas" / "CAP-v1.2.xsd")))
CAP = {"cap": "urn:oasis:names:tc:emergency:cap:1.2"}


def parse(body: bytes) -> etree._Element:
    document = etree.fromstring(body)
    SCHEMA.assertValid(document)
    return document


def test_incident_as_cap_validates_and_says_what_where_and_how_bad(demo):
    duty = User.objects.get(username="duty")
    incident = incident_open(
        actor=duty,
        township=Township.objects.get(code="qingshui"),
        category=Category.objects.get(code="fire"),
        severity="critical",
        title="东沟村山火 & 浓烟",
        description="山坡起火，火势向村庄蔓延",
        grid=Grid.objects.get(code="110112-QS-007"),
        latitude=40.2512,
        longitude=116.6401,
    )
    photo = upload(token("duty"), JPEG).json()
    incident_add_evidence(actor=duty, incident=incident, url=photo["url"], caption="火场")
    response = call("get", f"/incidents/{incident.pk}/cap", token("duty"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/cap+xml")
    alert = parse(response.content)

    def text(path: str, root=alert) -> str:
        return root.findtext(path, namespaces=CAP)

    assert text("cap:identifier") == f"whistle.qingshui.incident.{incident.pk}"
    assert (text("cap:status"), text("cap:msgType"), text("cap:scope")) == (
        "Actual",
        "Alert",
        "Restricted",
    )
    assert text("cap:sent").endswith("+08:00")  # the township's zone, as CAP writes it
    chinese, english = alert.findall("cap:info", CAP)
    assert text("cap:language", chinese) == "zh-CN" and text("cap:event", chinese) == "火情"
    assert text("cap:event", english) == "Fire & smoke"
    assert (text("cap:category", chinese), text("cap:severity", chinese)) == ("Fire", "Extreme")
    assert text("cap:urgency", chinese) == "Immediate"
    assert text("cap:headline", chinese) == "东沟村山火 & 浓烟"
    assert text("cap:resource/cap:uri", chinese) == f"http://testserver{photo['url']}"
    area = chinese.find("cap:area", CAP)
    points = text("cap:polygon", area).split()
    assert len(points) >= 4 and points[0] == points[-1]
    lat, lon = map(float, points[0].split(","))
    assert 39 < lat < 41 and 116 < lon < 117  # latitude first, as CAP wants
    assert text("cap:circle", area) == "40.251200,116.640100 0.1"


def test_closed_incident_is_an_update_and_others_cannot_read_it(demo):
    duty = User.objects.get(username="duty")
    incident = incident_open(
        actor=duty,
        township=Township.objects.get(code="qingshui"),
        category=Category.objects.get(code="unlicensed-business"),
        severity="minor",
        title="流动摊贩",
    )
    incident_resolve(actor=duty, incident=incident)
    incident_close(actor=duty, incident=incident, feedback="已劝离", settled_level="grid")
    alert = parse(call("get", f"/incidents/{incident.pk}/cap", token("duty")).content)
    assert alert.findtext("cap:msgType", namespaces=CAP) == "Update"
    assert "已劝离" in alert.findtext("cap:note", namespaces=CAP)
    assert alert.findtext("cap:info/cap:category", namespaces=CAP) == "Other"
    assert call("get", f"/incidents/{incident.pk}/cap", token("chengguan")).status_code == 404


def test_an_update_has_its_own_identifier_and_references_the_messages_before_it(demo):
    duty = User.objects.get(username="duty")
    incident = incident_open(
        actor=duty,
        township=Township.objects.get(code="qingshui"),
        category=Category.objects.get(code="parking"),
        severity="minor",
        title="违停",
    )
    base = f"whistle.qingshui.incident.{incident.pk}"

    def message() -> etree._Element:
        return parse(call("get", f"/incidents/{incident.pk}/cap", token("duty")).content)

    opened = message()
    assert opened.findtext("cap:identifier", namespaces=CAP) == base
    assert opened.find("cap:references", CAP) is None
    alert_sent = opened.findtext("cap:sent", namespaces=CAP)
    assert etree.tostring(message()) == etree.tostring(opened), "one state, one message"

    incident_resolve(actor=duty, incident=incident)
    resolved = message()
    assert resolved.findtext("cap:msgType", namespaces=CAP) == "Update"
    assert resolved.findtext("cap:identifier", namespaces=CAP) == f"{base}.resolved"
    assert resolved.findtext("cap:references", namespaces=CAP) == (
        f"whistle.qingshui,{base},{alert_sent}"
    )
    resolved_sent = resolved.findtext("cap:sent", namespaces=CAP)

    incident_close(actor=duty, incident=incident, feedback="已驶离", settled_level="grid")
    closed = message()
    assert closed.findtext("cap:identifier", namespaces=CAP) == f"{base}.closed"
    assert closed.findtext("cap:references", namespaces=CAP).split() == [
        f"whistle.qingshui,{base},{alert_sent}",
        f"whistle.qingshui,{base}.resolved,{resolved_sent}",
    ]


def test_what_xml_cannot_hold_or_cap_cannot_mean_stays_out(demo):
    """A control character in a title, a PNG, an address with spaces and Chinese, a position
    off the globe: the document still parses, validates and says only true things."""
    from tests.incidents.test_photos import PNG

    duty = User.objects.get(username="duty")
    incident = incident_open(
        actor=duty,
        township=Township.objects.get(code="qingshui"),
        category=Category.objects.get(code="fire"),
        severity="critical",
        title="山火\x07 & 浓烟\x1b[0m",
        description="第一行\n第二行\x01",
    )
    png = upload(token("duty"), PNG, "fire.png").json()
    incident_add_evidence(actor=duty, incident=incident, url=png["url"], caption="火场\x0b")
    outside = "https://cam.example.cn/快照 1.jpg"
    incident_add_evidence(actor=duty, incident=incident, url=outside, caption="外部")
    type(incident).objects.filter(pk=incident.pk).update(latitude=95.0, longitude=116.6)
    alert = parse(call("get", f"/incidents/{incident.pk}/cap", token("duty")).content)
    info = alert.find("cap:info", CAP)
    assert info.findtext("cap:headline", namespaces=CAP) == "山火 & 浓烟[0m"
    assert info.findtext("cap:description", namespaces=CAP) == "第一行\n第二行"
    resources = info.findall("cap:resource", CAP)
    assert resources[0].findtext("cap:mimeType", namespaces=CAP) == "image/png"
    assert resources[0].findtext("cap:resourceDesc", namespaces=CAP) == "火场"
    for resource in resources:
        uri = resource.findtext("cap:uri", namespaces=CAP)
        assert uri.isascii() and " " not in uri, uri
    assert resources[1].findtext("cap:uri", namespaces=CAP) == (
        "https://cam.example.cn/%E5%BF%AB%E7%85%A7%201.jpg"
    )
    assert resources[1].findtext("cap:mimeType", namespaces=CAP) == "image/jpeg"
    assert info.find("cap:area/cap:circle", CAP) is None  # latitude 95 is nowhere


def test_an_incident_from_a_rules_alert_has_each_infos_headline_in_its_language(demo):
    """One <info> per language, each wholly in it: the headline composed from the alert's facts
    and the snapshot's description too (issue 13: the rule's two names printed at once)."""
    directory.forget()
    rulebook.forget()
    payload = {
        "id": "cam-12-excavator",
        "ts": int(timezone.now().timestamp() * 1000),
        "label": "excavator",
        "score": 0.9,
        "zones": [],
        "snapshot": "https://cams.example/cam-12/1.jpg",
    }
    store_batch(
        [InboundMessage("whistle/qingshui/camera/cam-12/event", json.dumps(payload).encode())]
    )
    alert = Alert.objects.get()
    body = alert.incident_body
    incident = incident_open(
        actor=User.objects.get(username="duty"),
        township=alert.township,
        category=alert.category,
        severity=body["severity"],
        title=body["title"],
        alerts=[alert],
    )
    response = call("get", f"/incidents/{incident.pk}/cap", token("duty"))
    chinese, english = parse(response.content).findall("cap:info", CAP)
    assert chinese.findtext("cap:headline", namespaces=CAP) == "盗采机械：挖掘机 @ cam-12"
    assert english.findtext("cap:headline", namespaces=CAP) == (
        "Mining machinery: excavator @ cam-12"
    )
    assert chinese.findtext("cap:resource/cap:resourceDesc", namespaces=CAP) == (
        "盗采机械：挖掘机 @ cam-12"
    )
    assert english.findtext("cap:resource/cap:resourceDesc", namespaces=CAP) == (
        "Mining machinery: excavator @ cam-12"
    )
    rulebook.forget()
