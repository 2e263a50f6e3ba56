"""The board's whistle dialog: what it offers, what it refuses, who may use it."""

import pytest

from command.org.models import Category, Township, User
from incidents.models import Whistle
from incidents.services.incidents import incident_open, incident_resolve
from tests.conftest import signed_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def incident(demo):
    return incident_open(
        actor=User.objects.get(username="duty"),
        township=Township.objects.get(code="qingshui"),
        category=Category.objects.get(code="parking"),
        severity="critical",
        title="滨河路违停",
    )


def url(incident) -> str:
    return f"/board/qingshui/incidents/{incident.pk}/whistle/"


def test_dialog_ticks_the_responsibility_list_and_proposes_an_emergency(incident):
    response = signed_in("duty").get(url(incident), HTTP_ACCEPT_LANGUAGE="zh-CN")
    assert response.status_code == 200
    html = response.content.decode()
    for code in ("traffic", "chengguan", "qs-pingan"):
        assert f'value="{code}" id="id_departments_' in html

    def ticked(code: str) -> bool:
        tag = html.split(f'value="{code}" id="id_departments_')[1].split(">")[0]
        return "checked" in tag

    assert [c for c in ("traffic", "chengguan", "qs-pingan", "police") if ticked(c)] == [
        "traffic",
        "chengguan",
        "qs-pingan",
    ]
    assert "30 分钟" in html  # the emergency deadline, in the officer's language


def test_off_list_department_without_reason_is_refused_and_nothing_is_blown(incident):
    response = signed_in("duty").post(
        url(incident),
        {"kind": "emergency", "purpose": "joint_enforcement", "departments": ["traffic", "police"]},
    )
    assert response.status_code == 200
    assert "清水派出所" in response.content.decode()
    assert not Whistle.objects.filter(incident=incident).exists()


def test_blowing_from_the_dialog_summons_and_closes_it(incident):
    response = signed_in("duty").post(
        url(incident),
        {
            "kind": "general",
            "purpose": "joint_enforcement",
            "departments": ["traffic", "police"],
            "reason": "路口需要民警",
        },
    )
    assert response.status_code == 200 and response.content == b""
    whistle = Whistle.objects.get(incident=incident)
    assert whistle.kind == "general"
    assert whistle.summonses.get(department__code="police").off_list_reason == "路口需要民警"


def test_service_refusal_is_shown_in_the_dialog(incident):
    incident_resolve(actor=User.objects.get(username="duty"), incident=incident)
    response = signed_in("duty").post(
        url(incident), {"kind": "general", "purpose": "key_task", "departments": ["traffic"]}
    )
    assert response.status_code == 200
    assert 'role="alert"' in response.content.decode()
    assert not Whistle.objects.filter(incident=incident).exists()


def test_department_members_cannot_open_the_dialog(incident):
    assert signed_in("chengguan").get(url(incident)).status_code == 403


def test_unknown_incident_is_not_found(incident):
    response = signed_in("duty").get(f"/board/qingshui/incidents/{incident.pk + 10_000}/whistle/")
    assert response.status_code == 404
