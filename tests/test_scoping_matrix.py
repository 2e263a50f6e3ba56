"""The scoping matrix (docs/api.md): every role × every page, API operation, Open311 call,
export and socket, allowed or refused, and no list showing rows out of the role's scope.

The endpoints are read from the URLconf, the OpenAPI document and the websocket routes: a new
endpoint without a row here fails :func:`test_every_endpoint_has_a_row`.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver

from alerts.delivery import people
from command import clock
from command.org.models import Category, Department, Device, District, Grid, Township, User
from command.org.tokens import api_token_create
from demo.data import GRID_OFFICER_GRID
from incidents.models import Incident, Whistle
from incidents.photos import photo_store
from incidents.services.incidents import incident_add_evidence, incident_open
from incidents.services.orders import order_issue
from incidents.services.whistles import SummonedDepartment, whistle_blow
from supervision.models import DepartmentRating, RatingObjection
from tests.conftest import raise_alert
from tests.schemas.georeport_v2 import validate_response

ADMIN, ADMIN_B, DUTY, SUPERVISOR = "admin", "admin_b", "duty", "supervisor"
MEMBER, GRID, DUTY_B, INACTIVE, ANON = "chengguan", "grid01", "duty_b", "inactive", "anonymous"
HOTLINE, HOTLINE_B = "hotline_qs", "hotline_bs"  # 12345 systems of qingshui and beishan
# The district's roles: qingshui and beishan are both of 青山区 (qingshan); its duty officer
# ("district", a demo account) and its supervisor (sup_d) watch both townships; a duty officer
# of another district (baiyun, with a township of its own) sees neither. The demo's
# "supervisor" has neither township nor district: every district (city-wide).
DISTRICT_DUTY, DISTRICT_SUPERVISOR, OTHER_DISTRICT = "district", "sup_d", "duty_d2"
ROLES = (
    ADMIN, ADMIN_B, DUTY, SUPERVISOR, MEMBER, GRID, DUTY_B, HOTLINE, HOTLINE_B,
    DISTRICT_DUTY, DISTRICT_SUPERVISOR, OTHER_DISTRICT, INACTIVE, ANON,
)  # fmt: skip
ACTIVE = frozenset(ROLES) - {INACTIVE, ANON}
EVERYONE = frozenset(ROLES)
BOARD_Q = frozenset({ADMIN, DUTY, SUPERVISOR})  # qingshui's board and supervision
COMMAND_Q = frozenset({ADMIN, DUTY})  # acts in qingshui
CONSOLE = frozenset({ADMIN, MEMBER})  # the chengguan department
JOINT_B = frozenset({ADMIN, ADMIN_B, DUTY_B})  # confirms for beishan
# Incident 1 (grid 001, chengguan summoned, a joint whistle with beishan) and incident 2
# (another grid, nobody summoned).
SEES_INCIDENT_1 = frozenset({ADMIN, DUTY, SUPERVISOR, MEMBER, GRID, DUTY_B, ADMIN_B})
SEES_INCIDENT_2 = BOARD_Q

# A caller's phone (a call filed at qingshui's desk): whole only to qingshui's duty officers.
CALLER_PHONE = "13912345678"
# What must never appear in a response to a role (titles and descriptions carry these marks).
FORBIDDEN_MARKS = {
    DUTY: ("ALERT-BS", "INC-BS", "REPORT-BS", "RATING-BS"),
    SUPERVISOR: (CALLER_PHONE,),
    MEMBER: ("ALERT-", "INC-QS-G2", "INC-BS", "REPORT-", CALLER_PHONE, "RATING-BS"),
    GRID: ("ALERT-QS-G2", "INC-QS-G2", "ALERT-BS", "INC-BS", "REPORT-BS", CALLER_PHONE, "RATING-"),
    DUTY_B: ("ALERT-QS", "INC-QS-G2", "REPORT-QS", CALLER_PHONE, "RATING-QS"),
    ADMIN_B: ("ALERT-QS", "INC-QS-G2", "REPORT-QS", CALLER_PHONE, "RATING-QS"),
    HOTLINE: ("ALERT-", "INC-", "REPORT-", "ORDER-", CALLER_PHONE, "RATING-"),
    HOTLINE_B: ("ALERT-", "INC-", "REPORT-", "ORDER-", CALLER_PHONE, "RATING-"),
    OTHER_DISTRICT: (
        "ALERT-QS",
        "ALERT-BS",
        "INC-QS",
        "INC-BS",
        "REPORT-",
        "ORDER-",
        CALLER_PHONE,
        "RATING-",
    ),
    DISTRICT_DUTY: ("ALERT-BY", "INC-BY"),
    DISTRICT_SUPERVISOR: ("ALERT-BY", "INC-BY", CALLER_PHONE),
}


@dataclass
class Case:
    key: str  # the URLconf route, "METHOD /api/v1/path" or "ws:route"
    path: str  # with {placeholders} filled from the world
    allowed: frozenset[str]
    method: str = "get"
    body: dict[str, Any] | None = None
    kind: str = "page"  # page | api | open311 | ws
    form: dict[str, Any] = field(default_factory=dict)
    public: bool = False  # any answer but 401/403/404 is "allowed" (a redirect to log in, too)


def api(method: str, route: str, path: str, allowed: frozenset[str], body=None) -> Case:
    return Case(f"{method.upper()} /api/v1{route}", f"/api/v1{path}", allowed, method, body, "api")


CASES = [
    # pages
    Case("", "/", ACTIVE),
    Case("login/", "/login/", EVERYONE),
    Case("logout/", "/logout/", EVERYONE, "post", public=True),
    Case("i18n/", "/i18n/setlang/", ACTIVE, "post", form={"language": "en"}),
    Case("healthz", "/healthz", EVERYONE),
    Case("metrics", "/metrics", EVERYONE),  # a scraper's, not a user's: local or its token
    Case("admin/", "/admin/", frozenset({ADMIN})),
    Case("board/<slug:township>/", "/board/qingshui/", BOARD_Q),
    Case(
        "board/<slug:township>/",
        "/board/baiyun-town/",
        frozenset({ADMIN, SUPERVISOR, OTHER_DISTRICT}),
    ),
    # The district board: every township of the district, for its duty officers and
    # supervisors (and city-wide roles); nobody of a township or of another district.
    Case(
        "district/<slug:district>/",
        "/district/qingshan/",
        frozenset({ADMIN, SUPERVISOR, DISTRICT_DUTY, DISTRICT_SUPERVISOR}),
    ),
    Case(
        "district/<slug:district>/",
        "/district/baiyun/",
        frozenset({ADMIN, SUPERVISOR, OTHER_DISTRICT}),
    ),
    Case(
        "board/<slug:township>/", "/board/beishan/", frozenset({ADMIN, ADMIN_B, DUTY_B, SUPERVISOR})
    ),
    Case(
        "board/<slug:township>/devices/<slug:device>/", "/board/qingshui/devices/{device}/", BOARD_Q
    ),
    Case(
        "board/<slug:township>/incidents/<int:incident>/whistle/",
        "/board/qingshui/incidents/{i1}/whistle/",
        COMMAND_Q,
    ),
    Case(
        "board/<slug:township>/incidents/<int:incident>/close/",
        "/board/qingshui/incidents/{i1}/close/",
        COMMAND_Q,
    ),
    Case("board/<slug:township>/incidents/new/", "/board/qingshui/incidents/new/", COMMAND_Q),
    Case("board/<slug:township>/intake/", "/board/qingshui/intake/", COMMAND_Q),
    Case(
        "board/<slug:township>/intake/",
        "/board/qingshui/intake/",
        COMMAND_Q,
        "post",
        form={"channel": "phone", "category": "parking", "description": "REPORT-QS-DESK"},
    ),
    Case("intake/<int:report>/", "/intake/{call}/", BOARD_Q),
    Case("intake/<int:report>/", "/intake/{report}/", BOARD_Q),
    Case("supervise/<slug:township>/", "/supervise/qingshui/", BOARD_Q),
    Case("supervise/<slug:township>/", "/supervise/qingshui/?csv=departments", BOARD_Q),
    Case("supervise/<slug:township>/review/", "/supervise/qingshui/review/", BOARD_Q),
    # The monthly report: read, listed and downloaded by whoever supervises the township.
    Case("supervise/<slug:township>/reports/", "/supervise/qingshui/reports/", BOARD_Q),
    Case(
        "supervise/<slug:township>/reports/<str:month>/",
        "/supervise/qingshui/reports/2026-10/",
        BOARD_Q,
    ),
    Case(
        "supervise/<slug:township>/reports/<str:month>/workbook.xlsx",
        "/supervise/qingshui/reports/2026-10/workbook.xlsx",
        BOARD_Q,
    ),
    Case("supervise/<slug:township>/trends/", "/supervise/qingshui/trends/", BOARD_Q),
    # The case library: every active role, each its own incidents (the marks check the rows).
    Case("cases/", "/cases/", ACTIVE),
    Case("cases/", "/cases/?format=csv", ACTIVE),
    Case(
        "supervise/<slug:township>/incidents/<int:incident>/",
        "/supervise/qingshui/incidents/{i1}/",
        BOARD_Q,
    ),
    Case(
        "supervise/<slug:township>/incidents/<int:incident>/replay/",
        "/supervise/qingshui/incidents/{i1}/replay/",
        BOARD_Q,
    ),
    Case(
        "supervise/<slug:township>/incidents/<int:incident>/replay/frame",
        "/supervise/qingshui/incidents/{i1}/replay/frame?at={opened}",
        BOARD_Q,
    ),
    Case("board/<slug:township>/alerts/", "/board/qingshui/alerts/", BOARD_Q),
    Case("console/<slug:department>/", "/console/chengguan/", CONSOLE),
    Case("console/<slug:department>/summonses/", "/console/chengguan/summonses/", CONSOLE),
    Case(
        "console/<slug:department>/summonses/<int:summons>/",
        "/console/chengguan/summonses/{s1}/",
        CONSOLE,
    ),
    Case("report/", "/report/", frozenset({GRID})),
    # 督办 reaching people: each person's own notifications and how they are reached; the
    # supervisor console for supervisors (the district's here) and superusers.
    Case("me/notifications/", "/me/notifications/", ACTIVE),
    Case(
        "me/notifications/",
        "/me/notifications/",
        ACTIVE,
        "post",
        form={"channel_1": "email", "channel_2": "sms", "email": "x@example.org"},
    ),
    Case(
        "notifications/<int:notification>/read",
        "/notifications/{notification}/read",
        frozenset({MEMBER}),
        "post",
    ),
    Case("n/<str:token>", "/n/{notification_token}", frozenset({MEMBER})),
    Case("supervise/console/", "/supervise/console/", frozenset({ADMIN, SUPERVISOR})),
    # Assessment: the township's ratings are read by whoever supervises it and given by its
    # supervisors and administrators (a district supervisor reads, the township rates); the
    # department reads its own; the district view is the district roles'.
    Case("supervise/<slug:township>/ratings/", "/supervise/qingshui/ratings/", BOARD_Q),
    Case(
        "supervise/<slug:township>/ratings/",
        "/supervise/qingshui/ratings/",
        frozenset({ADMIN}),
        "post",
        form={"criterion-name": "响应速度", "criterion-weight": "1"},
    ),
    Case(
        "supervise/<slug:township>/ratings/<str:period>/<slug:department>/",
        "/supervise/qingshui/ratings/2026-10/chengguan/",
        BOARD_Q,
    ),
    Case("console/<slug:department>/assessment/", "/console/chengguan/assessment/", CONSOLE),
    Case("supervise/district/", "/supervise/district/", frozenset({ADMIN, SUPERVISOR})),
    Case(
        "supervise/district/",
        "/supervise/district/?csv=departments",
        frozenset({ADMIN, SUPERVISOR}),
    ),
    Case(
        "photos/<uuid:photo>", "/photos/{report_photo}", frozenset({ADMIN, DUTY, SUPERVISOR, GRID})
    ),
    Case("photos/<uuid:photo>", "/photos/{evidence_photo}", SEES_INCIDENT_1),
    Case(
        "photos/<uuid:photo>",
        "/photos/{beishan_photo}",
        frozenset({ADMIN, ADMIN_B, DUTY_B, SUPERVISOR}),
    ),
    # Open311 (api_key)
    Case("open311/v2/services.<str:fmt>", "/open311/v2/services.json", ACTIVE, kind="open311"),
    Case(
        "open311/v2/services/<slug:code>.<str:fmt>",
        "/open311/v2/services/parking.json",
        ACTIVE,
        kind="open311",
    ),
    Case("open311/v2/requests.<str:fmt>", "/open311/v2/requests.json", ACTIVE, kind="open311"),
    Case(
        "open311/v2/requests.<str:fmt>",
        "/open311/v2/requests.json",
        frozenset({GRID, HOTLINE}),  # beishan's hotline: a grid of another township, refused
        "post",
        kind="open311",
        form={"service_code": "parking", "description": "OPEN311", "address_id": GRID_OFFICER_GRID},
    ),
    Case(
        "open311/v2/requests/<int:pk>.<str:fmt>",
        "/open311/v2/requests/{report}.json",
        frozenset({ADMIN, DUTY, SUPERVISOR, GRID}),
        kind="open311",
    ),
    # the JSON API
    api("get", "/alerts", "/alerts", ACTIVE),
    api("post", "/alerts/{alert_id}/acknowledge", "/alerts/{a1}/acknowledge", COMMAND_Q),
    api("post", "/alerts/{alert_id}/dismiss", "/alerts/{a1}/dismiss", COMMAND_Q, {"reason": "x"}),
    api("post", "/alerts/{alert_id}/merge", "/alerts/{a1}/merge", COMMAND_Q, {"into": "{a2}"}),
    # 小事不出格: only the grid's own officer settles or hands up (a1 is in grid01's grid).
    api(
        "post", "/alerts/{alert_id}/settle", "/alerts/{a1}/settle", frozenset({GRID}), {"note": "x"}
    ),
    api(
        "post",
        "/alerts/{alert_id}/hand-up",
        "/alerts/{a1}/hand-up",
        frozenset({GRID}),
        {"note": "x"},
    ),
    api(
        "post",
        "/incidents",
        "/incidents",
        COMMAND_Q,
        {"township": "qingshui", "category": "parking", "severity": "major", "title": "t"},
    ),
    api("get", "/incidents", "/incidents", ACTIVE),
    api("get", "/incidents/{incident_id}", "/incidents/{i1}", SEES_INCIDENT_1),
    api("get", "/incidents/{incident_id}", "/incidents/{i2}", SEES_INCIDENT_2),
    api("get", "/incidents/{incident_id}", "/incidents/{i1}?timeline=true", SEES_INCIDENT_1),
    api("get", "/incidents/{incident_id}/cap", "/incidents/{i2}/cap", SEES_INCIDENT_2),
    api("get", "/incidents/{incident_id}/cap", "/incidents/{i1}/cap", SEES_INCIDENT_1),
    api("get", "/incidents/{incident_id}/timeline", "/incidents/{i2}/timeline", SEES_INCIDENT_2),
    api("get", "/incidents/{incident_id}/timeline", "/incidents/{i1}/timeline", SEES_INCIDENT_1),
    api(
        "get",
        "/incidents/{incident_id}/suggested-departments",
        "/incidents/{i2}/suggested-departments",
        SEES_INCIDENT_2,
    ),
    api(
        "post",
        "/incidents/{incident_id}/whistles",
        "/incidents/{i2}/whistles",
        COMMAND_Q,
        {"kind": "general", "purpose": "key_task", "departments": [{"department": "traffic"}]},
    ),
    api("post", "/incidents/{incident_id}/resolve", "/incidents/{i1}/resolve", COMMAND_Q),
    api(
        "post",
        "/incidents/{incident_id}/close",
        "/incidents/{i1}/close",
        COMMAND_Q,
        {"feedback": "ok", "settled_level": "township"},
    ),
    api(
        "post",
        "/incidents/{incident_id}/reopen",
        "/incidents/{i1}/reopen",
        COMMAND_Q,
        {"reason": "x"},
    ),
    api(
        "post",
        "/incidents/{incident_id}/callback",
        "/incidents/{i1}/callback",
        COMMAND_Q,
        {"satisfaction": "satisfied"},
    ),
    api(
        "post",
        "/incidents/{incident_id}/evidence",
        "/incidents/{i1}/evidence",
        COMMAND_Q | {MEMBER},  # a summoned department adds photos of its work
        {"url": "https://example.org/a.jpg"},
    ),
    api("get", "/whistles/joint-pending", "/whistles/joint-pending", ACTIVE),
    api("post", "/whistles/{whistle_id}/joint/confirm", "/whistles/{joint}/joint/confirm", JOINT_B),
    api(
        "post",
        "/whistles/{whistle_id}/joint/decline",
        "/whistles/{joint}/joint/decline",
        JOINT_B,
        {"reason": "no"},
    ),
    api("get", "/summonses", "/summonses", ACTIVE),
    # 督办单: qingshui's supervisors (the one thing they do) and commanders issue; the
    # addressed department acknowledges and answers.
    api(
        "post",
        "/incidents/{incident_id}/orders",
        "/incidents/{i1}/orders",
        BOARD_Q,
        {"department": "chengguan", "instruction": "ORDER-QS-2", "due_at": "{due}"},
    ),
    api("get", "/orders", "/orders", ACTIVE),
    api("post", "/orders/{order_id}/acknowledge", "/orders/{o1}/acknowledge", CONSOLE),
    api("post", "/orders/{order_id}/answer", "/orders/{o1}/answer", CONSOLE, {"answer": "x"}),
    # 考核: ratings are read in the township's scope and by the rated department; the
    # township's supervisors and administrators rate and answer; the department objects; the
    # district roles read the ranking.
    api("get", "/ratings", "/ratings", ACTIVE),
    api(
        "post",
        "/ratings",
        "/ratings",
        frozenset({ADMIN}),
        {"township": "qingshui", "department": "chengguan", "period": "2026-10", "marks": {}},
    ),
    api(
        "post",
        "/ratings/{rating_id}/objections",
        "/ratings/{r1}/objections",
        CONSOLE,
        {"text": "x"},
    ),
    api(
        "post",
        "/ratings/{rating_id}/objections/{objection_id}/answer",
        "/ratings/{r1}/objections/{ob1}/answer",
        frozenset({ADMIN}),
        {"answer": "x", "outcome": "rejected"},
    ),
    api("get", "/ranking", "/ranking?period=2026-10", frozenset({ADMIN, SUPERVISOR})),
    api("post", "/summonses/{summons_id}/acknowledge", "/summonses/{s1}/acknowledge", CONSOLE),
    api("post", "/summonses/{summons_id}/check-in", "/summonses/{s1}/check-in", CONSOLE, {}),
    api("post", "/summonses/{summons_id}/done", "/summonses/{s1}/done", CONSOLE, {"note": "x"}),
    api(
        "post",
        "/summonses/{summons_id}/release",
        "/summonses/{s1}/release",
        COMMAND_Q,
        {"reason": "x"},
    ),
    api("post", "/summonses/{summons_id}/accept", "/summonses/{s1}/accept", COMMAND_Q),
    api(
        "post",
        "/summonses/{summons_id}/return",
        "/summonses/{s1}/return",
        COMMAND_Q,
        {"reason": "x"},
    ),
    api("post", "/photos", "/photos", ACTIVE),
    api(
        "post",
        "/reports",
        "/reports",
        frozenset({GRID}),
        {"category": "parking", "description": "REPORT-QS-G1 again"},
    ),
    api(
        "post",
        "/reports",
        "/reports",
        COMMAND_Q,
        {"channel": "phone", "township": "qingshui", "category": "parking", "description": "d"},
    ),
    api("get", "/reports", "/reports", ACTIVE),
    api(
        "get",
        "/reports/{report_id}",
        "/reports/{report}",
        frozenset({ADMIN, DUTY, SUPERVISOR, GRID}),
    ),
    api("get", "/reports/{report_id}", "/reports/{call}", BOARD_Q),
    # sockets
    Case("ws:ws/board/<slug:township>/", "/ws/board/qingshui/", BOARD_Q, kind="ws"),
    Case(
        "ws:ws/district/<slug:district>/",
        "/ws/district/qingshan/",
        frozenset({ADMIN, SUPERVISOR, DISTRICT_DUTY, DISTRICT_SUPERVISOR}),
        kind="ws",
    ),
    Case(
        "ws:ws/district/<slug:district>/",
        "/ws/district/baiyun/",
        frozenset({ADMIN, SUPERVISOR, OTHER_DISTRICT}),
        kind="ws",
    ),
    Case("ws:ws/dept/<slug:department>/", "/ws/dept/chengguan/", CONSOLE, kind="ws"),
    Case(
        "ws:ws/supervise/console/",
        "/ws/supervise/console/",
        frozenset({ADMIN, SUPERVISOR}),
        kind="ws",
    ),
]

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64


def _with_district_roles(case: Case) -> Case:
    """A district's duty officer may do whatever a duty officer of any of its townships may,
    and a district's supervisor whatever the city-wide supervisor may within the district: the
    matrix says it once here instead of in every row."""
    if DUTY in case.allowed or DUTY_B in case.allowed:
        case.allowed = case.allowed | {DISTRICT_DUTY}
    if SUPERVISOR in case.allowed and "baiyun" not in case.path:
        case.allowed = case.allowed | {DISTRICT_SUPERVISOR}
    return case


CASES = [_with_district_roles(case) for case in CASES]


def _photo(user: User):
    return photo_store(uploader=user, upload=SimpleUploadedFile("p.png", PNG, "image/png"))


def build_world(demo: Any) -> dict[str, Any]:
    """Two townships with every kind of row, marked so a leak shows in any response."""
    from intake.reports import intake_file, report_file

    qingshui = Township.objects.get(code="qingshui")
    beishan = Township.objects.create(
        code="beishan", name="北山镇", name_en="Beishan", district=qingshui.district
    )
    baiyun = District.objects.create(code="baiyun", name="白云区")
    baiyun_town = Township.objects.create(code="baiyun-town", name="白云镇", district=baiyun)
    g1 = Grid.objects.get(code=GRID_OFFICER_GRID)
    g2 = Grid.objects.filter(township=qingshui).exclude(pk=g1.pk).first()
    gb = Grid.objects.create(
        township=beishan, code="110112-BS-001", kind="comprehensive", name="北"
    )
    Department.objects.create(code="bs-office", name="北山镇办", kind="office", township=beishan)
    users = {u.username: u for u in User.objects.all()}
    make = User.objects.create
    users[DUTY_B] = make(username=DUTY_B, role=User.Role.DUTY_OFFICER, township=beishan)
    users[ADMIN_B] = make(username=ADMIN_B, role=User.Role.ADMINISTRATOR, township=beishan)
    users[INACTIVE] = make(username=INACTIVE, role=User.Role.DUTY_OFFICER, township=qingshui)
    users[HOTLINE] = make(username=HOTLINE, role=User.Role.HOTLINE, township=qingshui)
    users[HOTLINE_B] = make(username=HOTLINE_B, role=User.Role.HOTLINE, township=beishan)
    users[DISTRICT_SUPERVISOR] = make(
        username=DISTRICT_SUPERVISOR, role=User.Role.SUPERVISOR, district=qingshui.district
    )
    users[OTHER_DISTRICT] = make(
        username=OTHER_DISTRICT, role=User.Role.DUTY_OFFICER, district=baiyun
    )
    grid_b = make(username="grid_b", role=User.Role.GRID_OFFICER, township=beishan)
    gb.members.add(grid_b)
    duty = users[DUTY]
    parking = Category.objects.get(code="parking")

    a1 = raise_alert(qingshui.pk, "a1", title="ALERT-QS-G1 one", grid_id=g1.pk)
    a2 = raise_alert(qingshui.pk, "a2", title="ALERT-QS-G1 two", grid_id=g1.pk)
    raise_alert(qingshui.pk, "a3", title="ALERT-QS-G2", grid_id=g2.pk)
    raise_alert(beishan.pk, "ab", title="ALERT-BS", grid_id=gb.pk)
    raise_alert(baiyun_town.pk, "aby", title="ALERT-BY")

    report_photo = _photo(users[GRID])
    report = report_file(
        reporter=users[GRID], category=parking, description="REPORT-QS-G1", grid=g1,
        photos=[report_photo.url],
    )  # fmt: skip
    call = intake_file(
        actor=duty, township=qingshui, channel="phone", category=parking,
        description="REPORT-QS-CALL", grid=g2, caller_name="张三", caller_phone=CALLER_PHONE,
    ).report  # fmt: skip
    beishan_photo = _photo(grid_b)
    report_file(reporter=grid_b, category=parking, description="REPORT-BS", grid=gb,
                photos=[beishan_photo.url])  # fmt: skip

    def incident(township, grid, title, actor):
        return incident_open(actor=actor, township=township, category=parking,
                                      severity="major", title=title, grid=grid)  # fmt: skip

    i1 = incident(qingshui, g1, "INC-QS-G1", duty)
    i2 = incident(qingshui, g2, "INC-QS-G2", duty)
    incident(beishan, gb, "INC-BS", users[DUTY_B])
    evidence_photo = _photo(duty)
    incident_add_evidence(actor=duty, incident=i1, url=evidence_photo.url)
    whistle = whistle_blow(
        actor=duty,
        incident=i1,
        kind=Whistle.Kind.GENERAL,
        purpose=Whistle.Purpose.JOINT_ENFORCEMENT,
        joint_township=beishan,
        departments=[
            SummonedDepartment(Department.objects.get(code="chengguan")),
            SummonedDepartment(Department.objects.get(code="bs-office"), "border"),
        ],
    )
    assert whistle.joint_status == Whistle.JointStatus.PENDING
    order = order_issue(
        actor=users[SUPERVISOR],
        incident=i1,
        department=Department.objects.get(code="chengguan"),
        instruction="ORDER-QS-1",
        due_at=clock.now() + timedelta(hours=2),
    )
    s1 = whistle.summonses.get(department__code="chengguan")
    r1 = DepartmentRating.objects.create(
        township=qingshui, department=Department.objects.get(code="chengguan"), period="month",
        period_start=date(2026, 10, 1), score="80.00", comment="RATING-QS",
        rated_at=clock.now(), objection_until=clock.now() + timedelta(days=7),
    )  # fmt: skip
    ob1 = RatingObjection.objects.create(rating=r1, text="OBJECTION-QS", raised_at=clock.now())
    DepartmentRating.objects.create(
        township=beishan, department=Department.objects.get(code="bs-office"), period="month",
        period_start=date(2026, 10, 1), score="80.00", comment="RATING-BS",
        rated_at=clock.now(), objection_until=clock.now() + timedelta(days=7),
    )  # fmt: skip
    (notification, *_channels) = people.page(
        people.Cause(
            township_id=qingshui.pk, subject_type="summons", subject_id=s1.pk,
            incident_id=i1.pk, text="INC-QS-G1 超时未报到", link="/console/chengguan/",
            key=f"matrix:{s1.pk}",
        ),
        [people.Recipient(users[MEMBER], "on_call")],
    )  # fmt: skip
    return {
        "users": users,
        "values": {
            "a1": a1,
            "a2": a2,
            "i1": i1.pk,
            "i2": i2.pk,
            "s1": whistle.summonses.get().pk,
            "joint": whistle.pk,
            "o1": order.pk,
            "r1": r1.pk,
            "ob1": ob1.pk,
            "due": (clock.now() + timedelta(hours=2)).isoformat(),
            "opened": Incident.objects.get(pk=i1.pk).opened_at.isoformat().replace("+", "%2B"),
            "device": Device.objects.filter(township=qingshui).first().code,
            "report": report.pk,
            "call": call.pk,
            "report_photo": report_photo.pk,
            "evidence_photo": evidence_photo.pk,
            "beishan_photo": beishan_photo.pk,
            "notification": notification.pk,
            "notification_token": people.link_token(notification.pk),
        },
    }


def fill(template: Any, values: dict[str, Any]) -> Any:
    if isinstance(template, str):
        filled = template
        for name, value in values.items():
            filled = filled.replace("{" + name + "}", str(value))
        if filled != template and filled.lstrip("-").isdigit() and template.startswith("{"):
            return int(filled)
        return filled
    if isinstance(template, dict):
        return {k: fill(v, values) for k, v in template.items()}
    if isinstance(template, list):
        return [fill(v, values) for v in template]
    return template


def login_client(role: str, users: dict[str, User]) -> Client:
    client = Client()
    if role != ANON:
        client.force_login(users[role])
    if role == INACTIVE:
        User.objects.filter(username=INACTIVE).update(is_active=False)
    return client


def request(case: Case, role: str, world: dict[str, Any]):
    users, values = world["users"], world["values"]
    client = login_client(role, users)
    path = fill(case.path, values)
    if case.kind == "open311":
        client = Client()
        if role != ANON:
            user = users[role]
            _, raw = api_token_create(user=user, name="matrix")
            data = {**case.form, "api_key": raw}
        else:
            data = dict(case.form)
        response = getattr(client, case.method)(path, data)
        # Whatever the role, the answer is a GeoReport v2 document (an error list when refused).
        validate_response(case.method, path, response)
        return response
    if case.kind == "api" and case.key == "POST /api/v1/photos":
        return client.post(path, {"file": SimpleUploadedFile("p.png", PNG, "image/png")})
    if case.kind == "api":
        body = fill(case.body, values)
        return getattr(client, case.method)(
            path,
            data=json.dumps(body) if body is not None else None,
            content_type="application/json",
        )
    if case.method == "post":
        return client.post(path, case.form)
    return client.get(path)


def refused(response, *, public: bool = False) -> bool:
    if response.status_code in (401, 403, 404):
        return True
    if public:
        return False
    location = response.get("Location", "") if response.status_code == 302 else ""
    return location.startswith(("/login/", "/admin/login/"))


def body_text(response) -> str:
    if getattr(response, "streaming", False):
        # A streamed export is read for leaks too; a photo's bytes are not text.
        if response.get("Content-Type", "").startswith("text/csv"):
            return b"".join(response.streaming_content).decode("utf-8", "replace")
        return ""
    return response.content.decode("utf-8", "replace")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "case", [c for c in CASES if c.kind != "ws"], ids=lambda c: f"{c.method} {c.path}"
)
def test_role_matrix(demo, case):
    world = build_world(demo)
    wrong = []
    for role in ROLES:
        # Each role meets the same world: what one does is rolled back before the next.
        with transaction.atomic():
            response = request(case, role, world)
            transaction.set_rollback(True)
        allowed = not refused(response, public=case.public)
        if allowed != (role in case.allowed):
            wrong.append(f"{role}: {response.status_code} {body_text(response)[:120]!r}")
            continue
        text = body_text(response)
        leaked = [mark for mark in FORBIDDEN_MARKS.get(role, ()) if mark in text]
        if allowed and leaked:
            wrong.append(f"{role} sees {leaked}")
    assert not wrong, "\n".join(wrong)


def test_every_endpoint_has_a_row(demo):
    from command.routing import websocket_urlpatterns
    from command.urls import urlpatterns

    keys: set[str] = set()
    for entry in urlpatterns:
        route = str(entry.pattern)
        if isinstance(entry, URLResolver) and route == "api/v1/":
            schema = Client().get("/api/v1/openapi.json").json()
            keys |= {
                f"{method.upper()} /api/v1{path.removeprefix('/api/v1')}"
                for path, operations in schema["paths"].items()
                for method in operations
            }
        else:
            assert isinstance(entry, URLPattern | URLResolver)
            keys.add(route)
    keys |= {f"ws:{entry.pattern}" for entry in websocket_urlpatterns}
    rows = {case.key for case in CASES}
    assert keys - rows == set(), "endpoints without a row in the scoping matrix"
    assert rows - keys == set(), "rows for endpoints that no longer exist"


def _socket_accepted(path: str, cookie: bytes | None) -> bool:
    from channels.testing import WebsocketCommunicator

    from command.asgi import application

    async def run() -> bool:
        headers = [(b"origin", b"http://localhost"), (b"host", b"localhost")]
        if cookie:
            headers.append((b"cookie", cookie))
        communicator = WebsocketCommunicator(application, path, headers=headers)
        connected, _ = await communicator.connect(timeout=5)
        if connected:
            await communicator.disconnect()
        return connected

    with ThreadPoolExecutor(1) as executor:
        return executor.submit(async_to_sync(run)).result()


@pytest.mark.django_db(transaction=True)
def test_role_matrix_sockets(demo_committed):
    world = build_world(demo_committed)
    wrong = []
    for case in (c for c in CASES if c.kind == "ws"):
        for role in ROLES:
            client = login_client(role, world["users"])
            cookie = client.cookies.get("sessionid")
            accepted = _socket_accepted(
                case.path, f"sessionid={cookie.value}".encode() if cookie else None
            )
            if accepted != (role in case.allowed):
                wrong.append(f"{case.path} {role}: accepted={accepted}")
            if role == INACTIVE:
                User.objects.filter(username=INACTIVE).update(is_active=True)
    assert not wrong, "\n".join(wrong)
