from decimal import Decimal

import pytest

from tests.conftest import DEMO_PASSWORDS

ADMIN_PAGES = [
    "/admin/",
    "/admin/org/township/",
    "/admin/org/grid/",
    "/admin/org/department/",
    "/admin/org/department/add/",
    "/admin/org/device/",
    "/admin/org/user/",
    "/admin/org/responsibility/",
    "/admin/org/category/",
    "/admin/streams/deadletter/",
    "/admin/streams/gridreport/",
    "/admin/alerts/alert/",
    "/admin/alerts/delivery/",
    "/admin/alerts/alertrule/",
    "/admin/alerts/alertrule/add/",
    "/admin/org/apitoken/",
    "/admin/alerts/notification/",
    "/admin/incidents/escalationchain/",
    "/admin/incidents/escalationchain/add/",
    "/admin/incidents/supervisionorder/",
    "/admin/supervision/assessmentscheme/",
    "/admin/supervision/assessmentscheme/add/",
    "/admin/supervision/assessmentcriterion/",
    "/admin/supervision/departmentrating/",
]


@pytest.mark.django_db
@pytest.mark.parametrize("path", ADMIN_PAGES)
def test_admin_pages_render_for_the_administrator(client, demo, path):
    client.login(username="admin", password=DEMO_PASSWORDS["admin"])
    assert client.get(path).status_code == 200


@pytest.mark.django_db
def test_admin_is_closed_to_a_duty_officer(client, demo):
    client.login(username="duty", password=DEMO_PASSWORDS["duty"])
    response = client.get("/admin/org/device/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def _inline_management(prefix: str, total: int) -> dict[str, str]:
    return {
        f"{prefix}-TOTAL_FORMS": str(total),
        f"{prefix}-INITIAL_FORMS": "0",
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }


@pytest.mark.django_db
def test_an_escalation_chain_is_edited_in_the_admin_and_checked(client, demo):
    from incidents.models import EscalationChain

    client.login(username="admin", password=DEMO_PASSWORDS["admin"])
    steps = [("notify_on_call", "", ""), ("repeat", "", "2"), ("wait", "5", "")]
    form = {"name": "夜间紧急", "township": "", "kind": "emergency"}
    form |= _inline_management("steps", len(steps))
    for i, (action, minutes, times) in enumerate(steps):
        form |= {f"steps-{i}-position": str(i), f"steps-{i}-action": action,
                 f"steps-{i}-minutes": minutes, f"steps-{i}-times": times}  # fmt: skip
    response = client.post("/admin/incidents/escalationchain/add/", form)
    assert response.status_code == 200
    assert "“重复”必须是最后一步" in response.content.decode()  # the admin speaks Chinese
    form["steps-1-position"], form["steps-2-position"] = "2", "1"
    form["steps-1-times"] = "0"
    response = client.post("/admin/incidents/escalationchain/add/", form)
    assert "重复 1 至 10 次。" in response.content.decode()
    form["steps-1-times"] = "2"
    response = client.post("/admin/incidents/escalationchain/add/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    chain = EscalationChain.objects.get(name="夜间紧急")
    assert chain.snapshot() == [
        {"action": "notify_on_call"},
        {"action": "wait", "minutes": 5},
        {"action": "repeat", "times": 2},
    ]


@pytest.mark.django_db
def test_the_rota_in_the_department_admin_takes_only_its_own_members(client, demo):
    from command.org.models import Department, OnCallShift, User

    client.login(username="admin", password=DEMO_PASSWORDS["admin"])
    police = Department.objects.get(code="police")
    member = User.objects.get(username="police")
    outsider = User.objects.get(username="chengguan")
    OnCallShift.objects.filter(department=police).delete()  # the demo's round-the-clock shift
    page = client.get(f"/admin/org/department/{police.pk}/change/")
    assert page.status_code == 200 and "on_call_shifts-TOTAL_FORMS" in page.content.decode()
    form = {
        "code": "police", "name": police.name, "name_en": police.name_en, "kind": police.kind,
        "township": police.township_id or "", "contact_name": "", "contact_phone": "",
        "webhook_url": "", "robot": "", "robot_url": "", "robot_secret": "", "head": member.pk,
    }  # fmt: skip
    for prefix in ("responsibility_set", "on_call_overrides"):
        form |= _inline_management(prefix, 0)
    form |= _inline_management("on_call_shifts", 1) | {
        "on_call_shifts-0-weekdays": "[1, 2, 3, 4, 5]",
        "on_call_shifts-0-starts": "18:00",
        "on_call_shifts-0-ends": "08:00",
        "on_call_shifts-0-primary": outsider.pk,
    }
    response = client.post(f"/admin/org/department/{police.pk}/change/", form)
    assert response.status_code == 200
    assert "不是本部门成员" in response.content.decode()
    form["on_call_shifts-0-primary"] = member.pk
    response = client.post(f"/admin/org/department/{police.pk}/change/", form)
    assert response.status_code == 302, response.content.decode()[:3000]
    shift = OnCallShift.objects.get(department=police)
    assert shift.weekdays == [1, 2, 3, 4, 5] and shift.primary == member
    assert Department.objects.get(pk=police.pk).head == member


@pytest.mark.django_db
def test_a_scheme_whose_weights_do_not_add_up_is_refused_in_the_admin(client, demo):
    from command.org.models import District
    from supervision.models import AssessmentScheme

    fengtai = District.objects.create(code="fengtai", name="丰台区")
    client.login(username="admin", password=DEMO_PASSWORDS["admin"])
    form = {"district": str(fengtai.pk), "township_share": "0.30", "on_time_arrival": "0.40",
            "on_time_finishing": "0.25", "first_time": "0.20", "satisfaction": "0.15",
            "orders": "0.10", "order_penalty": "20", "objection_days": "7"}  # fmt: skip
    response = client.post("/admin/supervision/assessmentscheme/add/", form)
    assert response.status_code == 200
    assert "1.10" in response.content.decode()  # the sum, said in the error
    form["on_time_arrival"] = "0.30"
    response = client.post("/admin/supervision/assessmentscheme/add/", form)
    assert response.status_code == 302
    assert AssessmentScheme.objects.get(district=fengtai).township_share == Decimal("0.30")
