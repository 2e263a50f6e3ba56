"""Replay: the board at any moment of an incident, rebuilt from the timeline alone."""

from datetime import timedelta

import pytest
from django.utils import timezone, translation

from alerts.models import Alert
from alerts.services import alert_acknowledge
from command.org.models import Category, Department, Grid, Township, User
from command.timeline.models import TimelineEntry
from incidents import replay
from incidents.models import Incident, Summons, Whistle
from incidents.services.deadlines import summons_escalate
from incidents.services.incidents import incident_open
from incidents.services.summonses import summons_check_in, summons_done
from incidents.services.whistles import SummonedDepartment, whistle_blow
from tests.conftest import raise_alert, signed_in

pytestmark = pytest.mark.django_db


def _raise(township: Township, key: str, title: str = "违停", grid: str = "110112-QS-007") -> int:
    # With a grid, so it has a marker on the map.
    return raise_alert(township.pk, key, title=title, grid_id=Grid.objects.get(code=grid).pk)


def _moment(incident: Incident, action: str, nth: int = 0):
    """When the incident's ``nth`` entry with ``action`` happened."""
    entries = [e for e in replay_entries(incident) if e.action == action]
    return entries[nth].time


def replay_entries(incident: Incident) -> list[TimelineEntry]:
    from incidents.selectors import incident_timeline

    return incident_timeline(incident=incident)


def tell_story(*, spread: timedelta | None = None) -> dict:
    """An incident from a repeated, acknowledged camera alert, a whistle to two departments:
    one checks in and reports done, the other misses its deadline and is escalated.

    With ``spread``, the story is moved onto a clock a person can watch: consecutive moments
    ``spread`` apart, ending now, the escalation a minute after the deadline (the services
    write the present time; a replay reads only the timeline's times)."""
    duty, member = User.objects.get(username="duty"), User.objects.get(username="chengguan")
    township = Township.objects.get(code="qingshui")
    other = _raise(
        township, "cam-02:parking", "另一处违停", "110112-QS-012"
    )  # stays open on the board
    alert_id = _raise(township, "cam-01:parking")
    _raise(township, "cam-01:parking")
    alert_acknowledge(alert_id=alert_id, actor_id=duty.pk, township_ids=None)
    _raise(township, "cam-01:parking")  # a repeat of an acknowledged alert stays acknowledged
    incident = incident_open(
        actor=duty,
        township=township,
        category=Category.objects.get(code="parking"),
        severity="major",
        title="滨河路违停",
        alerts=[Alert.objects.get(pk=alert_id)],
    )
    whistle = whistle_blow(
        actor=duty,
        incident=incident,
        kind=Whistle.Kind.EMERGENCY,
        purpose=Whistle.Purpose.JOINT_ENFORCEMENT,
        departments=[
            SummonedDepartment(Department.objects.get(code=code))
            for code in ("chengguan", "traffic")
        ],
    )
    chengguan = whistle.summonses.get(department__code="chengguan")
    traffic = whistle.summonses.get(department__code="traffic")
    summons_check_in(actor=member, summons=chengguan)
    summons_done(actor=member, summons=chengguan, note="已清理")
    # The traffic police miss the deadline: move it into the past, then the deadline job runs.
    Summons.objects.filter(pk=traffic.pk).update(
        check_in_deadline=timezone.now() - timedelta(minutes=1)
    )
    assert summons_escalate(summons_id=traffic.pk, level=1) == "escalated to level 1"
    if spread:
        _spread(township, whistle, spread)
    return {"incident": incident, "alert": alert_id, "other": other, "chengguan": chengguan}


def _spread(township: Township, whistle: Whistle, step: timedelta) -> None:
    entries = list(TimelineEntry.objects.filter(township=township).order_by("time"))
    moments = sorted({e.time for e in entries})
    late = {"summons.overdue", "summons.escalated"}
    on_time = [m for m in moments if not any(e.time == m and e.action in late for e in entries)]
    start = timezone.now() - step * len(on_time) - timedelta(minutes=40)
    new = {m: start + step * i for i, m in enumerate(on_time)}
    blown = next(new[e.time] for e in entries if e.action == "whistle.blown")
    deadline = blown + timedelta(minutes=30)
    for i, m in enumerate(m for m in moments if m not in new):  # overdue, then escalated
        new[m] = deadline + timedelta(minutes=1, seconds=i)
    for entry in entries:
        after = entry.after
        if after and "deadline" in after:
            after = {**after, "deadline": deadline.isoformat()}
        TimelineEntry.objects.filter(id=entry.id).update(time=new[entry.time], after=after)
    Whistle.objects.filter(pk=whistle.pk).update(blown_at=blown)
    Summons.objects.filter(whistle=whistle).update(check_in_deadline=deadline)
    for alert in Alert.objects.filter(township=township):
        times = [
            new[e.time] for e in entries if e.subject_type == "alert" and e.subject_id == alert.pk
        ]
        Alert.objects.filter(pk=alert.pk).update(first_seen=min(times), last_seen=max(times))
    opened = next(new[e.time] for e in entries if e.action == "incident.opened")
    Incident.objects.filter(township=township).update(opened_at=opened)


@pytest.fixture
def handled(demo):
    return tell_story()


def _queue(frame: replay.Frame) -> dict[int, Alert]:
    return {a.pk: a for a in frame.alerts}


def test_each_moment_shows_what_the_timeline_says(handled):
    incident = handled["incident"]
    alert_id, other = handled["alert"], handled["other"]

    raised = replay.board_at(incident, _moment(incident, "alert.raised"))
    assert raised.incident is None  # not opened yet
    assert _queue(raised)[alert_id].count == 1
    assert _queue(raised)[alert_id].status == Alert.Status.NEW
    assert other in _queue(raised)  # the township's other open alert is on the board too

    repeated = replay.board_at(incident, _moment(incident, "alert.updated", 1))
    assert _queue(repeated)[alert_id].count == 3
    assert _queue(repeated)[alert_id].status == Alert.Status.ACKNOWLEDGED
    assert repeated.alerts[0].pk == alert_id  # the latest repeat is on top

    opened = replay.board_at(incident, _moment(incident, "incident.opened"))
    assert alert_id not in _queue(opened)  # escalated into the incident: it left the queue
    assert opened.open_count == 1
    assert opened.incident.status == Incident.Status.OPEN
    assert opened.incident.whistles.all() == []

    blown = replay.board_at(incident, _moment(incident, "whistle.blown"))
    assert blown.incident.status == Incident.Status.DISPATCHED
    summonses = {
        s.department.code: s for w in blown.incident.whistles.all() for s in w.summonses.all()
    }
    assert {code: s.status for code, s in summonses.items()} == {
        "chengguan": "notified",
        "traffic": "notified",
    }
    whistle_time = _moment(incident, "whistle.blown")
    assert summonses["traffic"].check_in_deadline == whistle_time + timedelta(minutes=30)

    checked = replay.board_at(incident, _moment(incident, "summons.checked_in"))
    summonses = {
        s.department.code: s for w in checked.incident.whistles.all() for s in w.summonses.all()
    }
    assert summonses["chengguan"].status == "checked_in"
    assert summonses["traffic"].status == "notified" and not summonses["traffic"].overdue

    last = replay.board_at(incident, _moment(incident, "summons.escalated"))
    summonses = {
        s.department.code: s for w in last.incident.whistles.all() for s in w.summonses.all()
    }
    assert summonses["chengguan"].status == "done"
    assert summonses["traffic"].overdue and summonses["traffic"].escalation_level == 1
    assert [e.action for e in last.recent][:2] == ["summons.escalated", "summons.overdue"]

    # The database's rows today say something else: the replay did not read them.
    assert Alert.objects.get(pk=alert_id).status == Alert.Status.ESCALATED


def test_span_and_moment_parsing(handled):
    incident = handled["incident"]
    span = replay.incident_span(incident)
    times = [e.time for e in replay_entries(incident)]
    assert span.start == times[0] and span.end == times[-1]
    assert span.moments == sorted(set(times))
    assert replay.parse_moment(None, span) == span.start
    late = (span.end + timedelta(days=3)).isoformat()
    assert replay.parse_moment(late, span) == span.end  # kept inside the span
    # A '+' that arrives unescaped in a query string is a space.
    at = span.start.astimezone(timezone.get_fixed_timezone(480)).isoformat()
    assert replay.parse_moment(at.replace("+", " "), span) == span.start
    with translation.override("en"), pytest.raises(ValueError, match="must be an ISO 8601"):
        replay.parse_moment("yesterday", span)
    with translation.override("en"), pytest.raises(ValueError, match="offset"):
        replay.parse_moment("2026-11-23T08:00:00", span)
    with translation.override("en"), pytest.raises(ValueError, match="required"):
        replay.parse_moment(None)  # a frame names its moment
    assert replay.parse_moment(late) == span.end + timedelta(days=3)  # unclamped without a span


def test_player_page_and_frames(handled):
    incident = handled["incident"]
    supervisor = signed_in("supervisor")
    base = f"/supervise/qingshui/incidents/{incident.pk}/replay/"
    at = _moment(incident, "summons.checked_in").isoformat()

    page = supervisor.get(base, {"at": at}, HTTP_ACCEPT_LANGUAGE="zh")
    assert page.status_code == 200
    html = page.content.decode()
    for part in (
        'id="map-overlay"',
        'id="alert-queue"',
        'id="incident-panel"',
        'id="replay-recent"',
    ):
        assert part in html
    assert 'id="countdown-' in html and "status-checked_in" in html
    assert "部门现场报到" in html  # what just happened, in the reader's language
    # The replay cannot act: no acknowledge, dismiss or whistle buttons.
    assert "data-api-post" not in html and "whistle-open" not in html

    frame = supervisor.get(
        base + "frame", {"at": _moment(incident, "summons.escalated").isoformat()}
    )
    assert frame.status_code == 200
    body = frame.content.decode()
    assert body.count('id="incident-panel"') == 1 and "status-done" in body
    assert body.count('class="escalated"') == 1  # the traffic police, escalated

    bad = supervisor.get(base + "frame", {"at": "yesterday"}, HTTP_ACCEPT_LANGUAGE="zh")
    assert bad.status_code == 400 and "ISO 8601 时间" in bad.content.decode()
    assert supervisor.get(base + "frame", HTTP_ACCEPT_LANGUAGE="en").status_code == 400


def test_a_spread_story_keeps_its_states(demo):
    """The browser test's story: the same states at the same steps, on a watchable clock."""
    story = tell_story(spread=timedelta(minutes=3))
    incident = story["incident"]
    span = replay.incident_span(incident)
    assert span.end - span.start > timedelta(minutes=30)
    frame = replay.board_at(incident, _moment(incident, "summons.checked_in"))
    summonses = {
        s.department.code: s for w in frame.incident.whistles.all() for s in w.summonses.all()
    }
    assert summonses["chengguan"].status == "checked_in"
    assert summonses["traffic"].check_in_deadline - frame.at > timedelta(minutes=20)


def test_replay_is_for_the_township_only(handled):
    incident = handled["incident"]
    base = f"/supervise/qingshui/incidents/{incident.pk}/replay/"
    assert signed_in("chengguan").get(base).status_code == 403
    assert signed_in("chengguan").get(base + "frame").status_code == 403
    missing = f"/supervise/qingshui/incidents/{incident.pk + 999}/replay/frame"
    assert signed_in("supervisor").get(missing).status_code == 404


def test_the_panel_shows_the_other_incidents_being_handled_then(handled):
    """The board listed every incident being handled: one still open then is there (under the
    replayed one), one resolved before the moment is not."""
    incident = handled["incident"]
    duty = User.objects.get(username="duty")
    township = Township.objects.get(code="qingshui")
    at = _moment(incident, "whistle.blown")

    def other(title: str, opened: timedelta, resolved: timedelta | None) -> Incident:
        found = incident_open(
            actor=duty,
            township=township,
            category=Category.objects.get(code="parking"),
            severity="minor",
            title=title,
        )
        # Its own timeline row and columns moved to the past the test needs.
        TimelineEntry.objects.filter(subject_type="incident", subject_id=found.pk).update(
            time=at - opened
        )
        Incident.objects.filter(pk=found.pk).update(
            opened_at=at - opened, resolved_at=at - resolved if resolved else None
        )
        return found

    still_open = other("还在处置", timedelta(hours=2), None)
    done_before = other("已处置", timedelta(hours=3), timedelta(hours=1))
    frame = replay.board_at(incident, at)
    assert [o.pk for o in frame.others] == [still_open.pk]
    assert frame.others[0].status == Incident.Status.OPEN
    body = (
        signed_in("supervisor")
        .get(f"/supervise/qingshui/incidents/{incident.pk}/replay/frame", {"at": at.isoformat()})
        .content.decode()
    )
    assert f'id="incident-{still_open.pk}"' in body and f"incident-{done_before.pk}" not in body
    assert body.index(f'id="incident-{incident.pk}"') < body.index(f'id="incident-{still_open.pk}"')
    assert f'replayed" id="incident-{incident.pk}"' in body


def test_an_old_alert_still_open_then_is_on_the_board(handled):
    """The queue holds every alert open at the moment however long before it was raised (an
    index on first seen → closed answers), and none closed before it."""
    from alerts.services import alert_dismiss

    incident = handled["incident"]
    township = Township.objects.get(code="qingshui")
    at = _moment(incident, "whistle.blown")

    def back(alert_id: int, raised: timedelta, closed: timedelta | None = None) -> None:
        TimelineEntry.objects.filter(subject_type="alert", subject_id=alert_id).update(
            time=at - raised
        )
        Alert.objects.filter(pk=alert_id).update(first_seen=at - raised, last_seen=at - raised)
        if closed is not None:
            TimelineEntry.objects.filter(
                subject_type="alert", subject_id=alert_id, action="alert.dismissed"
            ).update(time=at - closed)
            Alert.objects.filter(pk=alert_id).update(closed_at=at - closed)

    old = _raise(township, "cam-07:parking", "三天前的违停")
    back(old, timedelta(days=3))
    gone = _raise(township, "cam-08:parking", "前天已处理")
    alert_dismiss(alert_id=gone, actor_id=None, township_ids=None, reason="误报")
    assert Alert.objects.get(pk=gone).closed_at is not None  # set by the service
    back(gone, timedelta(days=3), closed=timedelta(days=2))
    queue = _queue(replay.board_at(incident, at))
    assert old in queue and gone not in queue


def test_every_way_out_of_the_queue_sets_closed_at(handled):
    from alerts.services import alert_clear, alert_merge

    township = Township.objects.get(code="qingshui")
    escalated = Alert.objects.get(pk=handled["alert"])
    assert escalated.closed_at == handled["incident"].opened_at
    assert Alert.objects.get(pk=handled["other"]).closed_at is None  # still open
    cleared = _raise(township, "rule:9:wl-02")
    alert_clear(township_id=township.pk, dedupe_key="rule:9:wl-02", reason="水位回落")
    merged, kept = _raise(township, "cam-05:parking"), _raise(township, "cam-06:parking")
    duty = User.objects.get(username="duty")
    alert_merge(alert_id=merged, into_id=kept, actor_id=duty.pk, township_ids=None)
    for pk in (cleared, merged):
        alert = Alert.objects.get(pk=pk)
        closing = TimelineEntry.objects.filter(subject_id=pk, subject_type="alert").latest("time")
        assert alert.closed_at == closing.time, alert.status
    assert Alert.objects.get(pk=kept).closed_at is None
