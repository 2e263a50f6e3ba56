"""The intake: every channel files through one service; callers' phones are masked everywhere
but on the item for the township's duty officers; a hotline's ticket is filed once; a likely
repeat of an open alert is suggested, in its window and place only."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import Client
from hypothesis import given
from hypothesis import strategies as st

from alerts.models import Alert
from alerts.services import alert_merge
from command import clock
from command.errors import ActionForbidden, TransitionNotAllowed
from command.org.models import Category, Grid, Township, User
from command.text import phone_masked
from command.timeline.models import TimelineEntry
from demo.data import GRID_OFFICER_GRID
from incidents.models import Incident
from intake.reports import intake_file, report_file
from streams.models import GridReport
from tests.conftest import raise_alert

PHONE = "13812345678"
MASKED = "138****5678"


# --- masking -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("phone", "shown"),
    [
        ("13812345678", "138****5678"),
        ("138 1234 5678", "138****5678"),
        ("+86 138-1234-5678", "138****5678"),
        ("010-62345678", "010****5678"),
        ("62345678", "****5678"),
        ("12345", "****"),
        ("2345678", "****"),
        ("", ""),
        ("无", ""),
    ],
)
def test_phone_masked_examples(phone, shown):
    assert phone_masked(phone) == shown


@given(st.text(alphabet="0123456789 +-()", max_size=30))
def test_phone_masked_never_shows_the_middle(phone):
    digits = "".join(c for c in phone if c.isdigit())
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    shown = phone_masked(phone)
    visible = "".join(c for c in shown if c.isdigit())
    assert set(shown) <= set("0123456789*")
    # What shows is at most a prefix of three and a suffix of four, and at least four digits
    # stay hidden: a masked number cannot be read back.
    assert len(visible) <= 7
    assert len(visible) <= max(0, len(digits) - 4)
    if digits:
        assert "****" in shown
        assert shown.endswith(digits[-4:]) or len(digits) < 8
    if len(digits) >= 11:
        assert shown == f"{digits[:3]}****{digits[-4:]}"


@given(st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True))
def test_a_mobile_number_shows_its_first_three_and_last_four(mobile):
    assert phone_masked(mobile) == mobile[:3] + "****" + mobile[-4:]
    assert mobile not in phone_masked(mobile)


# --- the service, by channel ------------------------------------------------------------------


@pytest.fixture
def world(demo):
    qingshui = Township.objects.get(code="qingshui")
    beishan = Township.objects.create(code="beishan", name="北山镇", name_en="Beishan")
    grid_b = Grid.objects.create(township=beishan, code="BS-001", kind="comprehensive", name="北")
    make = User.objects.create
    return {
        "qingshui": qingshui,
        "beishan": beishan,
        "grid": Grid.objects.get(code=GRID_OFFICER_GRID),
        "grid_b": grid_b,
        "duty": User.objects.get(username="duty"),
        "grid01": User.objects.get(username="grid01"),
        "supervisor": User.objects.get(username="supervisor"),
        "duty_b": make(username="duty_b", role=User.Role.DUTY_OFFICER, township=beishan),
        "hotline": make(username="hotline_qs", role=User.Role.HOTLINE, township=qingshui),
        "hotline_b": make(username="hotline_bs", role=User.Role.HOTLINE, township=beishan),
        "garbage": Category.objects.get(code="garbage"),
        "parking": Category.objects.get(code="parking"),
    }


def raised_row(alert_id: int) -> TimelineEntry:
    return TimelineEntry.objects.get(
        subject_type="alert", subject_id=alert_id, action="alert.raised"
    )


@pytest.mark.parametrize("channel", ["phone", "12345", "12315", "jiyu", "walk_in", "other"])
def test_the_desk_files_every_channel_as_an_alert(world, channel):
    filed = intake_file(
        actor=world["duty"],
        township=world["qingshui"],
        channel=channel,
        category=world["garbage"],
        description="  桥下垃圾堆积 ",
        grid=world["grid"],
        caller_name="张三",
        caller_phone=PHONE,
    )
    report = filed.report
    assert filed.created and filed.incident is None
    assert (report.channel, report.caller_phone, report.reporter) == (
        channel,
        PHONE,
        world["duty"],
    )
    alert = report.alert
    assert (alert.source, alert.status, alert.title) == ("intake", "new", "桥下垃圾堆积")
    assert alert.detail["channel"] == channel
    assert alert.detail["caller"] == f"张三 {MASKED}"
    after = raised_row(alert.pk).after
    caller = f"张三 {MASKED}"
    assert (after["channel"], after["caller"], after["report"]) == (channel, caller, report.pk)
    # The whole number is only on the item: no alert, no timeline row holds it.
    assert PHONE not in json.dumps(alert.detail) and PHONE not in json.dumps(after)


def test_a_grid_officers_report_keeps_its_ways(world):
    report = report_file(reporter=world["grid01"], category=world["parking"], description="违停")
    assert (report.channel, report.grid, report.alert.source) == (
        "grid",
        world["grid"],
        "report",
    )
    assert "channel" not in report.alert.detail and "caller" not in report.alert.detail


def test_the_desk_opens_an_incident_directly(world):
    filed = intake_file(
        actor=world["duty"],
        township=world["qingshui"],
        channel="walk_in",
        category=world["garbage"],
        description="群众来访：河道垃圾",
        grid=world["grid"],
        open_incident=True,
    )
    alert = Alert.objects.get(pk=filed.report.alert_id)
    assert filed.incident is not None and alert.incident == filed.incident
    assert alert.status == Alert.Status.ESCALATED
    incident = Incident.objects.get(pk=filed.incident.pk)
    assert (incident.grid, incident.description, incident.title) == (
        world["grid"],
        "群众来访：河道垃圾",
        "群众来访：河道垃圾",
    )


def test_who_files_what_where(world):
    args = {"category": world["garbage"], "description": "x"}
    # A grid officer cannot use the desk, nor a supervisor, nor a duty officer of another
    # township.
    for actor in ("grid01", "supervisor", "duty_b"):
        with pytest.raises(ActionForbidden):
            intake_file(actor=world[actor], township=world["qingshui"], channel="phone", **args)
    # A duty officer does not file a grid officer's report.
    with pytest.raises(ActionForbidden):
        intake_file(actor=world["duty"], township=world["qingshui"], channel="grid", **args)
    # A hotline system of township A cannot file into B, nor a grid of B.
    with pytest.raises(ActionForbidden):
        intake_file(actor=world["hotline"], township=world["beishan"], channel="12345", **args)
    with pytest.raises(ActionForbidden):
        intake_file(actor=world["hotline"], channel="12345", grid=world["grid_b"], **args)
    # … nor say a ticket came in by a visit, nor make an incident of it.
    with pytest.raises(ActionForbidden):
        intake_file(actor=world["hotline"], channel="walk_in", **args)
    with pytest.raises(ActionForbidden):
        intake_file(actor=world["hotline"], channel="12345", open_incident=True, **args)
    with pytest.raises(TransitionNotAllowed):
        intake_file(actor=world["duty"], township=world["qingshui"], channel="fax", **args)
    with pytest.raises(TransitionNotAllowed):
        intake_file(
            actor=world["duty"],
            township=world["qingshui"],
            channel="phone",
            caller_phone="call me <b>",
            **args,
        )
    assert not GridReport.objects.exists()
    report = intake_file(actor=world["hotline_b"], channel="12315", **args).report
    assert (report.township, report.alert.township) == (world["beishan"], world["beishan"])


def test_a_ticket_filed_again_is_the_same_item(world):
    def file(ticket: str, channel: str = "12345"):
        return intake_file(
            actor=world["hotline"],
            channel=channel,
            category=world["garbage"],
            description="桥下垃圾",
            external_id=ticket,
        )

    first = file("T-2026-0001")
    again = file(" T-2026-0001 ")
    assert first.created and not again.created
    assert again.report.pk == first.report.pk
    assert GridReport.objects.count() == Alert.objects.count() == 1
    # The same number from another channel, or another township's hotline, is another ticket.
    assert file("T-2026-0001", "12315").created
    other = intake_file(
        actor=world["hotline_b"],
        channel="12345",
        category=world["garbage"],
        description="x",
        external_id="T-2026-0001",
    )
    assert other.created and GridReport.objects.count() == 3


# --- duplicates ---------------------------------------------------------------------------------


def call(world, *, grid=None, lat=None, lon=None, category="garbage", channel="phone"):
    return intake_file(
        actor=world["duty"],
        township=world["qingshui"],
        channel=channel,
        category=world[category],
        description="垃圾",
        grid=grid,
        latitude=lat,
        longitude=lon,
    ).report.alert


def test_a_call_about_the_same_grid_is_suggested_as_a_duplicate(world):
    first = call(world, grid=world["grid"])
    second = call(world, grid=world["grid"], channel="12345")
    assert "duplicate_of" not in first.detail
    assert second.detail["duplicate_of"] == first.pk
    assert raised_row(second.pk).after["duplicate_of"] == first.pk
    # A third points at the first too; another category or another grid is not a duplicate.
    third = call(world, grid=world["grid"])
    assert third.detail["duplicate_of"] == first.pk
    assert "duplicate_of" not in call(world, grid=world["grid"], category="parking").detail
    other_grid = Grid.objects.filter(township=world["qingshui"]).exclude(pk=world["grid"].pk)[0]
    assert "duplicate_of" not in call(world, grid=other_grid).detail
    # Merged as suggested, the first one counts both.
    kept = alert_merge(
        alert_id=second.pk, into_id=first.pk, actor_id=world["duty"].pk, township_ids=None
    )
    assert kept.count == 2


def test_a_duplicate_only_within_the_window_and_while_open(world, settings):
    settings.WHISTLE_INTAKE_DUPLICATE_HOURS = 24
    first = call(world, grid=world["grid"])
    with clock.moved(by=timedelta(hours=23)):
        inside = call(world, grid=world["grid"])
    assert inside.detail["duplicate_of"] == first.pk
    with clock.moved(by=timedelta(hours=25)):
        late = call(world, grid=world["grid"])
    # 25 h on, the first call is out of the window; the one of 23 h is in it.
    assert late.detail["duplicate_of"] == inside.pk
    Alert.objects.exclude(pk=first.pk).update(status=Alert.Status.DISMISSED)
    Alert.objects.filter(pk=first.pk).update(status=Alert.Status.DISMISSED)
    assert "duplicate_of" not in call(world, grid=world["grid"]).detail


def test_a_duplicate_by_distance_when_both_have_a_position(world):
    # Grids without boundaries: no call finds a grid by its position, only distance decides.
    Grid.objects.filter(township=world["qingshui"]).update(polygon={})
    first = call(world, lat=40.2500, lon=116.6400)
    near = call(world, lat=40.2520, lon=116.6400)  # ~220 m north
    far = call(world, lat=40.2600, lon=116.6400)  # ~1.1 km
    nowhere = call(world)
    assert near.detail["duplicate_of"] == first.pk
    assert "duplicate_of" not in far.detail
    assert "duplicate_of" not in nowhere.detail


def test_a_camera_alert_in_the_grid_is_a_possible_original(world):
    camera = raise_alert(
        world["qingshui"].pk, "cam:1", category="garbage", grid_id=world["grid"].pk
    )
    assert call(world, grid=world["grid"]).detail["duplicate_of"] == camera


# --- where the phone shows ------------------------------------------------------------------------


def test_the_phone_is_whole_only_for_the_townships_duty_officers(world, django_user_model):
    report = intake_file(
        actor=world["duty"],
        township=world["qingshui"],
        channel="phone",
        category=world["garbage"],
        description="垃圾",
        caller_name="张三",
        caller_phone=PHONE,
    ).report
    seen = {}
    for name in ("duty", "supervisor", "grid01"):
        client = Client()
        client.force_login(world[name])
        listed = client.get("/api/v1/reports").json()
        one = client.get(f"/api/v1/reports/{report.pk}")
        dialog = client.get(f"/intake/{report.pk}/")
        board = client.get("/board/qingshui/")
        seen[name] = (listed, one, dialog, board)
    duty_list, duty_one, duty_dialog, duty_board = seen["duty"]
    assert [r["caller_phone"] for r in duty_list] == [MASKED]
    assert duty_one.json()["caller_phone"] == PHONE
    assert duty_dialog.status_code == 200 and f'href="tel:{PHONE}"' in duty_dialog.text
    assert MASKED in duty_board.text and PHONE not in duty_board.text
    _sup_list, sup_one, sup_dialog, sup_board = seen["supervisor"]
    assert sup_one.json()["caller_phone"] == MASKED
    assert MASKED in sup_dialog.text and PHONE not in sup_dialog.text
    assert PHONE not in sup_board.text
    grid_list, grid_one, grid_dialog, _grid_board = seen["grid01"]
    # The grid officer does not see the township's calls at all (not in their grid).
    assert grid_list == [] and grid_one.status_code == 404 and grid_dialog.status_code == 404
