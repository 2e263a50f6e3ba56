"""小事不出格: a grid officer settles a matter of their grid on the spot (closed at grid level,
counted as such in the 631 figures) or hands it up to the township; who may, and what is
refused."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from alerts.models import Alert
from alerts.services import alert_dismiss, alert_merge
from command import clock
from command.errors import ActionForbidden, TransitionNotAllowed
from command.org.models import Category, Grid, Township, User
from command.org.tokens import api_token_create
from command.timeline.models import TimelineEntry
from demo.data import GRID_OFFICER_GRID
from incidents.models import Incident, Photo
from incidents.photos import photo_store
from incidents.selectors import settled_level_default
from incidents.services.incidents import incident_close, incident_open, incident_resolve
from intake.reports import report_file
from intake.settle import matter_hand_up, matter_settle
from supervision.stats import settled_table
from tests.conftest import raise_alert, signed_in
from tests.test_api import call

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n" + bytes(200)


@pytest.fixture
def world(demo):
    qingshui = Township.objects.get(code="qingshui")
    mine = Grid.objects.get(code=GRID_OFFICER_GRID)
    other = Grid.objects.filter(township=qingshui).exclude(pk=mine.pk).order_by("code").first()
    beishan = Township.objects.create(code="beishan", name="北山镇", name_en="Beishan")
    grid_b = Grid.objects.create(township=beishan, code="110112-BS-001", kind="comprehensive")
    people = {u.username: u for u in User.objects.all()}
    people["grid02"] = User.objects.create(
        username="grid02", role=User.Role.GRID_OFFICER, township=qingshui
    )
    other.members.add(people["grid02"])
    people["grid_b"] = User.objects.create(
        username="grid_b", role=User.Role.GRID_OFFICER, township=beishan
    )
    grid_b.members.add(people["grid_b"])
    return {"qingshui": qingshui, "mine": mine, "other": other, "people": people}


def alert_in(world, grid: Grid, key: str = "cam-1", severity: str = "minor") -> Alert:
    pk = raise_alert(
        world["qingshui"].pk, key, category="garbage", severity=severity, grid_id=grid.pk
    )
    return Alert.objects.get(pk=pk)


def photo_of(user: User) -> str:
    return photo_store(
        uploader=user, upload=SimpleUploadedFile("p.png", PNG, content_type="image/png")
    ).url


def rows(subject_type: str, subject_id: int) -> list[TimelineEntry]:
    return list(
        TimelineEntry.objects.filter(subject_type=subject_type, subject_id=subject_id).order_by(
            "time", "id"
        )
    )


def this_month(township: Township) -> dict[str, int]:
    now = clock.now()
    return settled_table(
        township_id=township.pk, start=now - timedelta(days=1), end=now + timedelta(days=1)
    )


def test_settled_on_the_spot_is_closed_at_grid_level_and_counts_so_in_631(world):
    grid01 = world["people"]["grid01"]
    alert = alert_in(world, world["mine"])
    before = this_month(world["qingshui"])
    photo = photo_of(grid01)

    note = " 已清运，村口恢复通行 "
    incident = matter_settle(actor=grid01, alert=alert, note=note, photos=[photo])

    incident.refresh_from_db()
    assert (incident.status, incident.settled_level) == ("closed", "grid")
    assert incident.feedback == "已清运，村口恢复通行"
    assert incident.opened_by == grid01 and incident.grid == world["mine"]
    assert incident.resolved_at and incident.closed_at
    assert [e["url"] for e in incident.evidence if e["kind"] == "photo"] == [photo]
    alert.refresh_from_db()
    assert (alert.status, alert.incident_id) == ("escalated", incident.pk)
    # The photo now belongs to the township: its officers and supervisors may see it.
    assert Photo.objects.get(pk=photo.removeprefix("/photos/")).township == world["qingshui"]
    assert signed_in("supervisor").get(photo).status_code == 200

    after = this_month(world["qingshui"])
    assert after["grid"] == before["grid"] + 1
    assert after["township"] == before["township"] and after["county"] == before["county"]

    steps = rows("incident", incident.pk)
    assert [r.action for r in steps] == [
        "incident.opened",
        "incident.evidence_added",
        "incident.settled_in_grid",
        "incident.resolved",
        "incident.closed",
    ]
    assert {r.actor_id for r in steps} == {grid01.pk}
    settled = steps[2].after
    assert settled == {"note": "已清运，村口恢复通行", "grid": GRID_OFFICER_GRID, "photos": 1}
    assert steps[-1].after["settled_level"] == "grid"
    assert rows("alert", alert.pk)[-1].action == "alert.escalated"


def test_an_officer_settles_their_own_report_filed_in_another_grid(world):
    grid01 = world["people"]["grid01"]
    report = report_file(
        reporter=grid01,
        category=Category.objects.get(code="garbage"),
        description="东沟村口垃圾堆积",
        grid=world["other"],
        latitude=40.1,
        longitude=116.6,
    )
    incident = matter_settle(actor=grid01, alert=report.alert, note="已清理")
    assert incident.settled_level == "grid" and incident.grid == world["other"]
    assert (incident.description, incident.latitude) == ("东沟村口垃圾堆积", 40.1)
    # Another grid's officer could have settled it too (it is in their grid); now nobody can.
    with pytest.raises(TransitionNotAllowed) as refused:
        matter_settle(actor=world["people"]["grid02"], alert=report.alert, note="x")
    assert refused.value.code == "alert_in_incident"


@pytest.mark.parametrize("who", ["grid02", "grid_b", "duty", "supervisor", "admin"])
def test_only_the_grids_own_officers_settle_or_hand_up(world, who):
    alert = alert_in(world, world["mine"])
    actor = world["people"][who]
    with pytest.raises(ActionForbidden):
        matter_settle(actor=actor, alert=alert, note="x")
    with pytest.raises(ActionForbidden):
        matter_hand_up(actor=actor, alert=alert, note="x")
    alert.refresh_from_db()
    assert alert.is_open and alert.severity == "minor" and not Incident.objects.exists()


def test_an_inactive_grid_officer_settles_nothing(world):
    grid01 = world["people"]["grid01"]
    alert = alert_in(world, world["mine"])
    grid01.is_active = False
    with pytest.raises(ActionForbidden):
        matter_settle(actor=grid01, alert=alert, note="x")


def test_refused_when_in_an_incident_dismissed_merged_or_without_a_note(world):
    people = world["people"]
    grid01, duty = people["grid01"], people["duty"]
    township_ids = {world["qingshui"].pk}

    taken = alert_in(world, world["mine"], "taken")
    incident = incident_open(
        actor=duty,
        township=world["qingshui"],
        category=taken.category,
        severity="major",
        title="t",
        alerts=[taken],
    )
    dismissed = alert_in(world, world["mine"], "dismissed")
    alert_dismiss(alert_id=dismissed.pk, actor_id=duty.pk, township_ids=township_ids, reason="误报")
    merged = alert_in(world, world["mine"], "merged")
    kept = alert_in(world, world["mine"], "kept")
    alert_merge(alert_id=merged.pk, into_id=kept.pk, actor_id=duty.pk, township_ids=township_ids)

    for alert, code, words in (
        (taken, "alert_in_incident", str(incident.pk)),
        (dismissed, "alert_dismissed", "误报"),
        (merged, "alert_merged", str(kept.pk)),
    ):
        for service in (matter_settle, matter_hand_up):
            with pytest.raises(TransitionNotAllowed) as refused:
                service(actor=grid01, alert=alert, note="已处理")
            assert refused.value.code == code and words in str(refused.value)
    for service in (matter_settle, matter_hand_up):
        with pytest.raises(TransitionNotAllowed) as refused:
            service(actor=grid01, alert=kept, note="  ")
        assert refused.value.code == "note_missing"
    assert Incident.objects.count() == 1


def test_photos_must_be_the_officers_own_uploads(world):
    grid01, duty = world["people"]["grid01"], world["people"]["duty"]
    alert = alert_in(world, world["mine"])
    for photos, code in (
        (["https://example.org/a.jpg"], "photos_invalid"),
        ([photo_of(grid01) for _ in range(5)], "photos_invalid"),
        ([photo_of(duty)], "photo_unknown"),  # someone else's picture is not attached
    ):
        with pytest.raises(TransitionNotAllowed) as refused:
            matter_settle(actor=grid01, alert=alert, note="已处理", photos=photos)
        assert refused.value.code == code
    # Nothing of a refused settling stays: the alert is open, no incident, no row.
    alert.refresh_from_db()
    assert alert.is_open and not Incident.objects.exists()
    assert not TimelineEntry.objects.filter(subject_type="incident").exists()


def test_the_incident_services_keep_grid_officers_to_their_own_settling(world):
    grid01, duty = world["people"]["grid01"], world["people"]["duty"]
    alert = alert_in(world, world["mine"])
    # Without alerts, or through the township's door, a grid officer opens nothing.
    with pytest.raises(ActionForbidden):
        incident_open(
            actor=grid01,
            township=world["qingshui"],
            category=alert.category,
            severity="major",
            title="t",
            in_grid=True,
        )
    with pytest.raises(ActionForbidden):
        incident_open(
            actor=grid01,
            township=world["qingshui"],
            category=alert.category,
            severity="major",
            title="t",
            alerts=[alert],
        )
    theirs = incident_open(
        actor=duty,
        township=world["qingshui"],
        category=alert.category,
        severity="major",
        title="t",
        grid=world["mine"],
    )
    assert settled_level_default(theirs) == ""  # nobody came, nothing handed up: the officer says
    with pytest.raises(ActionForbidden):
        incident_resolve(actor=grid01, incident=theirs, in_grid=True)
    incident_resolve(actor=duty, incident=theirs)
    with pytest.raises(ActionForbidden):
        incident_close(
            actor=grid01, incident=theirs, feedback="x", settled_level="grid", in_grid=True
        )


def test_handed_up_it_stays_on_the_board_at_least_major_and_is_closed_at_township_level(world):
    grid01, duty = world["people"]["grid01"], world["people"]["duty"]
    alert = alert_in(world, world["mine"], severity="minor")
    critical = alert_in(world, world["mine"], "fire", severity="critical")

    handed = matter_hand_up(actor=grid01, alert=alert, note="需要城管执法，网格处理不了")
    assert handed.is_open and handed.severity == "major"
    assert handed.detail["handed_up_by"] == grid01.display_name
    assert handed.detail["handed_up_note"] == "需要城管执法，网格处理不了"
    row = rows("alert", alert.pk)[-1]
    assert (row.action, row.actor_id) == ("alert.handed_up", grid01.pk)
    assert (row.before, row.after) == (
        {"severity": "minor"},
        {"severity": "major", "note": "需要城管执法，网格处理不了"},
    )
    assert matter_hand_up(actor=grid01, alert=critical, note="起火").severity == "critical"

    # The board row says who handed it up and why.
    board = signed_in("duty").get("/board/qingshui/")
    row = board.content.decode().split(f'id="alert-{alert.pk}"')[1].split("</li>")[0]
    assert f"{grid01.display_name} 上报镇街：需要城管执法" in row and 'data-severity="major"' in row
    # It is the township's now: no second hand-up, no settling in the grid.
    for service in (matter_settle, matter_hand_up):
        with pytest.raises(TransitionNotAllowed) as refused:
            service(actor=grid01, alert=alert, note="again")
        assert refused.value.code == "alert_handed_up"

    incident = incident_open(
        actor=duty,
        township=world["qingshui"],
        category=handed.category,
        severity=handed.severity,
        title=handed.title,
        alerts=[handed],
    )
    incident_resolve(actor=duty, incident=incident)
    level = settled_level_default(incident)
    assert level == "township"
    # The board's close dialog offers it: the grid could not settle it.
    dialog = signed_in("duty").get(f"/board/qingshui/incidents/{incident.pk}/close/")
    checked = re.search(
        r'<input[^>]*name="settled_level"[^>]*checked[^>]*>', dialog.content.decode()
    )
    assert checked and 'value="township"' in checked.group(0)
    before = this_month(world["qingshui"])
    incident_close(actor=duty, incident=incident, feedback="城管已清理", settled_level=level)
    after = this_month(world["qingshui"])
    assert (after["township"], after["grid"]) == (before["township"] + 1, before["grid"])


def test_the_api_settles_and_hands_up_for_grid_officers_only(world):
    people = world["people"]
    token = {name: api_token_create(user=people[name], name="t")[1] for name in people}
    alert = alert_in(world, world["mine"])
    elsewhere = alert_in(world, world["other"], "elsewhere")
    photo = photo_of(people["grid01"])

    def settle(alert_id: int, who: str, body: dict):
        return call("post", f"/alerts/{alert_id}/settle", token[who], body)

    assert settle(alert.pk, "duty", {"note": "x"}).status_code == 403
    assert settle(elsewhere.pk, "grid01", {"note": "x"}).status_code == 404
    refused = call("post", f"/alerts/{alert.pk}/hand-up", token["grid01"], {"note": " "})
    assert refused.status_code == 409 and refused.json()["code"] == "note_missing"

    settled = settle(alert.pk, "grid01", {"note": "已清理", "photos": [photo]})
    assert settled.status_code == 200, settled.content
    body = settled.json()
    assert (body["status"], body["settled_level"], body["feedback"]) == ("closed", "grid", "已清理")
    assert photo in [e["url"] for e in body["evidence"]]
    assert TimelineEntry.objects.get(action="incident.settled_in_grid").source == "api"
    again = settle(alert.pk, "grid01", {"note": "x"})
    assert again.status_code == 409 and again.json()["code"] == "alert_in_incident"

    handed = call("post", f"/alerts/{elsewhere.pk}/hand-up", token["grid02"], {"note": "太大"})
    assert handed.status_code == 200, handed.content
    assert handed.json()["severity"] == "major" and handed.json()["hand_up_note"] == "太大"
    listed = call("get", "/alerts", token["duty"]).json()
    assert {a["id"]: a["handed_up_by"] for a in listed}[elsewhere.pk] == "grid02"


def test_the_phone_page_lists_the_grids_matters_and_what_became_of_them(world):
    grid01 = world["people"]["grid01"]
    mine = alert_in(world, world["mine"], "mine")
    alert_in(world, world["other"], "not-mine")
    reported = report_file(
        reporter=grid01,
        category=Category.objects.get(code="garbage"),
        description="东沟村口垃圾堆积",
        grid=world["other"],
    )
    page = signed_in("grid01").get("/report/").content.decode()
    listed = page[page.index('id="grid-matters"') : page.index('id="my-reports"')]
    assert f'id="matter-{mine.pk}"' in listed and f'id="matter-{reported.alert_id}"' in listed
    assert listed.count('class="matter ') == 2  # the other grid's camera alert is not here
    assert f"/api/v1/alerts/{mine.pk}/settle" in listed
    assert f"/api/v1/alerts/{mine.pk}/hand-up" in listed

    matter_settle(actor=grid01, alert=reported.alert, note="已清理")
    matter_settle(actor=grid01, alert=mine, note="已劝离")
    page = signed_in("grid01").get("/report/").content.decode()
    listed = page[page.index('id="grid-matters"') : page.index('id="my-reports"')]
    earlier = page[page.index('id="my-reports"') :]
    assert 'class="matter ' not in listed
    assert earlier.count('class="settled-in-grid"') == 2
    assert earlier.count("网格内解决") == 2
