"""The supervisor's incident timeline: every step in order, with time since the whistle."""

from datetime import timedelta

import pytest
from django.utils import timezone

from command.org.models import Category, Department, Township, User
from incidents.models import Whistle
from incidents.services.incidents import incident_open
from incidents.services.summonses import summons_check_in, summons_done
from incidents.services.whistles import SummonedDepartment, whistle_blow
from tests.conftest import raise_alert, signed_in

pytestmark = pytest.mark.django_db


def test_timeline_tells_the_incident_in_order(demo):
    duty, member = User.objects.get(username="duty"), User.objects.get(username="chengguan")
    township = Township.objects.get(code="qingshui")
    for _ in range(2):  # a repeat counts on the same alert
        alert_id = raise_alert(township.pk, "cam-01:parking")
    from alerts.models import Alert

    incident = incident_open(
        actor=duty,
        township=township,
        category=Category.objects.get(code="parking"),
        severity="major",
        title="滨河路违停",
        alerts=[Alert.objects.get(pk=alert_id)],
    )
    summons = whistle_blow(
        actor=duty,
        incident=incident,
        kind=Whistle.Kind.EMERGENCY,
        purpose=Whistle.Purpose.JOINT_ENFORCEMENT,
        departments=[SummonedDepartment(Department.objects.get(code="chengguan"))],
    ).summonses.get()
    summons_check_in(actor=member, summons=summons)
    summons_done(actor=member, summons=summons, note="已清理")

    response = signed_in("supervisor").get(
        f"/supervise/qingshui/incidents/{incident.pk}/", HTTP_ACCEPT_LANGUAGE="zh"
    )
    assert response.status_code == 200
    actions = [row.entry.action for row in response.context["rows"]]
    for earlier, later in [
        ("alert.raised", "alert.updated"),
        ("alert.updated", "incident.opened"),
        ("incident.opened", "whistle.blown"),
        ("summons.checked_in", "summons.done"),
    ]:
        assert actions.index(earlier) < actions.index(later), actions
    check_in = next(r for r in response.context["rows"] if r.entry.action == "summons.checked_in")
    assert check_in.who == "青山区城管执法局"
    assert timedelta(0) <= check_in.since_whistle < timedelta(minutes=1)
    assert check_in.since_opened >= check_in.since_whistle
    html = response.content.decode()
    assert 'data-action="summons.done"' in html and "已清理" in html
    # Ids, codes and moments read in words on the township's clock, not as stored.
    details = {r.entry.action: dict(r.details) for r in response.context["rows"]}
    assert details["whistle.blown"]["部门"] == "青山区城管执法局"
    deadline = summons.check_in_deadline.astimezone(township.zone).strftime("%m-%d %H:%M")
    assert details["summons.notified"]["截止时间"] == deadline
    assert details["summons.checked_in"]["按时"] == "是"
    assert "+00:00" not in html and "True" not in html
    # Each step links to the replay at its moment.
    replay_at = f"/supervise/qingshui/incidents/{incident.pk}/replay/?at="
    assert html.count(replay_at) == len(response.context["rows"])


def test_timeline_is_for_the_township_only(demo):
    incident = incident_open(
        actor=User.objects.get(username="duty"),
        township=Township.objects.get(code="qingshui"),
        category=Category.objects.get(code="parking"),
        severity="minor",
        title="x",
    )
    url = f"/supervise/qingshui/incidents/{incident.pk}/"
    assert signed_in("chengguan").get(url).status_code == 403
    assert (
        signed_in("duty").get(f"/supervise/qingshui/incidents/{incident.pk + 999}/").status_code
        == 404
    )


def test_a_night_of_repeats_is_one_row(demo):
    """Consecutive repeats of one alert read as a run: how many, from when to when, the
    readings' range; every entry is a click away."""
    township = Township.objects.get(code="qingshui")
    from alerts.models import Alert

    for n, value in enumerate([0.61, 0.92, 0.75, 0.58, 0.7]):
        alert_id = raise_alert(
            township.pk,
            "rule:1:wl-01",
            category="flood",
            severity="critical",
            source="sensor",
            title="积水",
            time=timezone.now() - timedelta(seconds=10 - n),
            detail={"metric": "water_level", "value": value, "threshold": 0.5},
        )
    incident = incident_open(
        actor=User.objects.get(username="duty"),
        township=township,
        category=Category.objects.get(code="flood"),
        severity="critical",
        title="下穿桥积水",
        alerts=[Alert.objects.get(pk=alert_id)],
    )
    url = f"/supervise/qingshui/incidents/{incident.pk}/"
    supervisor = signed_in("supervisor")
    runs = supervisor.get(url, HTTP_ACCEPT_LANGUAGE="en")
    rows = runs.context["rows"]
    assert [(r.entry.action, r.repeats) for r in rows] == [
        ("alert.raised", 1),
        ("alert.updated", 4),
        ("incident.opened", 1),
        ("alert.escalated", 1),
    ]
    run = rows[1]
    assert (run.first_count, run.entry.after["count"], run.low, run.high) == (2, 5, 0.58, 0.92)
    html = runs.content.decode()
    assert 'data-repeats="4"' in html and "0.58 – 0.92" in html and "?all=1" in html
    every = supervisor.get(url, {"all": "1"}).context["rows"]
    assert [r.entry.action for r in every].count("alert.updated") == 4


def test_minutes_never_print_a_negative_zero():
    """A row a few microseconds before the opening (one moment, rows in their tie order) reads
    0.0, not -0.0."""
    from frontend.templatetags.whistle import minutes

    assert minutes(timedelta(microseconds=-5)) == "0.0"
    assert minutes(timedelta(seconds=-30)) == "-0.5"
    assert minutes(timedelta(minutes=31, seconds=6)) == "31.1"
    assert minutes(None) == "–"
