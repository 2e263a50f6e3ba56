"""Every allowed and forbidden transition of incidents, whistles and summons."""

from datetime import timedelta

import pytest
from django.utils import timezone

from alerts.models import Alert
from command import clock
from command.errors import ActionForbidden, TransitionNotAllowed
from command.org.models import Category, Department, Township, User
from command.timeline.models import TimelineEntry
from incidents.models import Incident, Summons, Whistle
from incidents.services.deadlines import DEFAULT_ESCALATION_POLICY
from incidents.services.incidents import (
    incident_call_back,
    incident_close,
    incident_open,
    incident_reopen,
    incident_resolve,
)
from incidents.services.summonses import (
    summons_accept,
    summons_acknowledge,
    summons_check_in,
    summons_done,
    summons_release,
    summons_return,
)
from incidents.services.whistles import (
    SummonedDepartment,
    suggested_departments,
    whistle_blow,
    whistle_joint_confirm,
    whistle_joint_decline,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(demo):
    return {u.username: u for u in User.objects.all()}


@pytest.fixture
def township(demo):
    return Township.objects.get(code="qingshui")


def open_incident(people, township, code="parking", alerts=()):
    return incident_open(
        actor=people["duty"],
        township=township,
        category=Category.objects.get(code=code),
        severity="major",
        title="滨河路违停堵塞 / cars blocking Binhe Road",
        alerts=alerts,
    )


def blow(people, incident, *codes, kind=Whistle.Kind.EMERGENCY, reasons=None):
    reasons = reasons or {}
    return whistle_blow(
        actor=people["duty"],
        incident=incident,
        kind=kind,
        purpose=Whistle.Purpose.JOINT_ENFORCEMENT,
        departments=[
            SummonedDepartment(Department.objects.get(code=c), reasons.get(c, "")) for c in codes
        ],
    )


def actions(subject_type, subject_id):
    return list(
        TimelineEntry.objects.filter(subject_type=subject_type, subject_id=subject_id)
        .order_by("time")
        .values_list("action", flat=True)
    )


def test_opening_from_alerts_escalates_them_and_writes_the_timeline(people, township):
    alert = Alert.objects.create(
        township=township,
        severity="minor",
        source="camera",
        title="illegal_parking @ cam-01",
        dedupe_key="k",
        category=Category.objects.get(code="parking"),
    )
    incident = open_incident(people, township, alerts=[alert])
    alert.refresh_from_db()
    assert (alert.status, alert.incident_id) == (Alert.Status.ESCALATED, incident.pk)
    assert actions("incident", incident.pk) == ["incident.opened"]
    assert actions("alert", alert.pk) == ["alert.escalated"]
    with pytest.raises(TransitionNotAllowed) as refused:
        open_incident(people, township, alerts=[alert])
    assert refused.value.code == "alert_not_open"


def test_only_duty_officers_of_the_township_open_incidents(people, township):
    elsewhere = Township.objects.create(code="elsewhere", name="别处镇")
    for username in ("chengguan", "grid01", "supervisor"):
        with pytest.raises(ActionForbidden):
            incident_open(
                actor=people[username],
                township=township,
                category=Category.objects.get(code="parking"),
                severity="minor",
                title="x",
            )
    with pytest.raises(ActionForbidden):
        open_incident(people, elsewhere)


def test_emergency_whistle_summons_with_a_thirty_minute_deadline(people, township):
    incident = open_incident(people, township)
    before = timezone.now()
    whistle = blow(people, incident, "traffic", "chengguan")
    incident.refresh_from_db()
    assert incident.status == Incident.Status.DISPATCHED
    assert whistle.report_within == timedelta(minutes=30)
    summonses = list(whistle.summonses.order_by("department__code"))
    assert [s.department.code for s in summonses] == ["chengguan", "traffic"]
    for summons in summonses:
        assert summons.status == Summons.Status.NOTIFIED
        assert timedelta(minutes=29) < summons.check_in_deadline - before <= timedelta(minutes=31)
    assert whistle.escalation_policy == DEFAULT_ESCALATION_POLICY
    assert actions("incident", incident.pk) == ["incident.opened", "incident.dispatched"]


def test_departments_off_the_list_need_a_reason(people, township):
    incident = open_incident(people, township)
    with pytest.raises(TransitionNotAllowed) as refused:
        blow(people, incident, "traffic", "fire-rescue")
    assert refused.value.code == "not_on_list"
    assert not Whistle.objects.exists()
    whistle = blow(people, incident, "fire-rescue", reasons={"fire-rescue": "车辆起火风险"})
    assert whistle.summonses.get().off_list_reason == "车辆起火风险"


def test_suggested_departments_follow_the_list_lead_first(demo):
    codes = [d.code for d in suggested_departments(category=Category.objects.get(code="parking"))]
    assert codes[0] == "traffic" and set(codes) == {"traffic", "chengguan", "qs-pingan"}


def test_summons_lifecycle_and_incident_states(people, township):
    incident = open_incident(people, township)
    whistle = blow(people, incident, "chengguan")
    summons = whistle.summonses.get()
    summons_acknowledge(actor=people["chengguan"], summons=summons)
    with pytest.raises(TransitionNotAllowed):
        summons_acknowledge(actor=people["chengguan"], summons=summons)
    with pytest.raises(TransitionNotAllowed) as early:
        summons_done(actor=people["chengguan"], summons=summons)
    assert early.value.code == "summons_not_on_site"
    summons_check_in(actor=people["chengguan"], summons=summons, latitude=40.23, longitude=116.65)
    incident.refresh_from_db()
    assert incident.status == Incident.Status.ON_SITE
    with pytest.raises(TransitionNotAllowed) as busy:
        incident_resolve(actor=people["duty"], incident=incident)
    assert busy.value.code == "summons_open"
    summons_done(actor=people["chengguan"], summons=summons, note="已清理")
    with pytest.raises(TransitionNotAllowed) as unaccepted:
        incident_resolve(actor=people["duty"], incident=incident)
    assert unaccepted.value.code == "summons_unaccepted"
    with pytest.raises(ActionForbidden):
        summons_accept(actor=people["chengguan"], summons=summons)  # not its own judge
    with pytest.raises(TransitionNotAllowed) as no_reason:
        summons_return(actor=people["duty"], summons=summons, reason=" ")
    assert no_reason.value.code == "reason_missing"
    summons_return(actor=people["duty"], summons=summons, reason="路面还有碎石")
    summons.refresh_from_db()
    assert (summons.status, summons.returned_count) == (Summons.Status.CHECKED_IN, 1)
    with pytest.raises(TransitionNotAllowed) as not_done:
        summons_accept(actor=people["duty"], summons=summons)
    assert not_done.value.code == "summons_not_done"
    summons_done(actor=people["chengguan"], summons=summons, note="碎石已清")
    summons_accept(actor=people["duty"], summons=summons)
    summons.refresh_from_db()
    assert (summons.status, summons.accepted_by) == (Summons.Status.ACCEPTED, people["duty"])
    incident_resolve(actor=people["duty"], incident=incident)
    with pytest.raises(TransitionNotAllowed) as no_feedback:
        incident_close(
            actor=people["duty"], incident=incident, feedback=" ", settled_level="township"
        )
    assert no_feedback.value.code == "feedback_missing"
    with pytest.raises(TransitionNotAllowed):
        incident_close(actor=people["duty"], incident=incident, feedback="ok", settled_level="city")
    incident_close(
        actor=people["duty"], incident=incident, feedback="车辆已挪走", settled_level="township"
    )
    incident.refresh_from_db()
    assert (incident.status, incident.settled_level) == (Incident.Status.CLOSED, "township")
    assert actions("summons", summons.pk) == [
        "summons.notified",
        "summons.acknowledged",
        "summons.checked_in",
        "summons.done",
        "summons.returned",
        "summons.done",
        "summons.accepted",
    ]
    assert actions("incident", incident.pk) == [
        "incident.opened",
        "incident.dispatched",
        "incident.on_site",
        "incident.resolved",
        "incident.closed",
    ]
    closing = TimelineEntry.objects.get(subject_id=incident.pk, action="incident.closed")
    assert closing.after == {
        "status": "closed",
        "feedback": "车辆已挪走",
        "settled_level": "township",
    }
    with pytest.raises(TransitionNotAllowed):
        blow(people, incident, "chengguan")


def test_check_in_straight_from_notified_acknowledges_too(people, township):
    summons = blow(people, open_incident(people, township), "chengguan").summonses.get()
    summons_check_in(actor=people["chengguan"], summons=summons)
    summons.refresh_from_db()
    assert summons.acknowledged_at == summons.checked_in_at
    assert summons.checked_in_by == people["chengguan"]


def test_only_the_summoned_department_acts_on_its_summons(people, township):
    summons = blow(people, open_incident(people, township), "chengguan").summonses.get()
    for username in ("police", "duty", "grid01"):
        with pytest.raises(ActionForbidden):
            summons_acknowledge(actor=people[username], summons=summons)
        with pytest.raises(ActionForbidden):
            summons_check_in(actor=people[username], summons=summons)
    assert Summons.objects.get(pk=summons.pk).status == Summons.Status.NOTIFIED


def test_release_needs_an_officer_and_a_reason_and_unblocks_resolve(people, township):
    incident = open_incident(people, township)
    summons = blow(people, incident, "chengguan").summonses.get()
    with pytest.raises(TransitionNotAllowed):
        summons_release(actor=people["duty"], summons=summons, reason="")
    with pytest.raises(ActionForbidden):
        summons_release(actor=people["chengguan"], summons=summons, reason="想走")
    summons_release(actor=people["duty"], summons=summons, reason="交由交警处理")
    with pytest.raises(TransitionNotAllowed):
        summons_check_in(actor=people["chengguan"], summons=summons)
    incident_resolve(actor=people["duty"], incident=incident)


def test_close_only_after_resolve(people, township):
    incident = open_incident(people, township)
    with pytest.raises(TransitionNotAllowed) as refused:
        incident_close(actor=people["duty"], incident=incident, feedback="x", settled_level="grid")
    assert refused.value.code == "incident_not_resolved"


def test_state_changes_broadcast_only_on_commit(
    people, township, capture_broadcasts, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        incident = open_incident(people, township)
        blow(people, incident, "chengguan")
    groups = [group for group, _ in capture_broadcasts]
    assert "board.qingshui" in groups and "dept.chengguan" in groups
    assert {e["type"] for _, e in capture_broadcasts} >= {
        "incident.opened",
        "whistle.blown",
        "summons.notified",
        "incident.updated",
    }


@pytest.fixture
def neighbour(demo):
    """A neighbouring township with its own office and duty officer."""
    township = Township.objects.create(code="dongshan", name="东山镇", name_en="Dongshan Town")
    Department.objects.create(
        code="ds-zhifa", name="东山镇执法队", kind=Department.Kind.STATION, township=township
    )
    User.objects.create(username="ds-duty", role=User.Role.DUTY_OFFICER, township=township)
    return township


def blow_joint(actor, incident, neighbour):
    return whistle_blow(
        actor=actor,
        incident=incident,
        kind=Whistle.Kind.GENERAL,
        purpose=Whistle.Purpose.JOINT_ENFORCEMENT,
        joint_township=neighbour,
        departments=[
            SummonedDepartment(Department.objects.get(code="chengguan")),
            SummonedDepartment(Department.objects.get(code="ds-zhifa"), "两镇交界处违停"),
        ],
    )


def test_a_joint_whistle_summons_the_neighbours_office_only_once_it_confirms(
    people, township, neighbour
):
    incident = open_incident(people, township)
    with pytest.raises(TransitionNotAllowed) as refused:
        blow(people, incident, "ds-zhifa", reasons={"ds-zhifa": "边界违停"})
    assert refused.value.code == "other_township"
    whistle = blow_joint(people["duty"], incident, neighbour)
    assert whistle.joint_status == Whistle.JointStatus.PENDING
    # Our own office is summoned now; the neighbour's waits for the neighbour.
    assert {s.department.code for s in whistle.summonses.all()} == {"chengguan"}
    ds_duty = User.objects.get(username="ds-duty")
    from api.common import visible_incidents
    from api.summonses import visible_summonses

    # The neighbour's duty officer sees the incident it is asked to join.
    assert visible_incidents(ds_duty).filter(pk=incident.pk).exists()
    # Nobody but the neighbour (or a district role) confirms.
    for who in (people["duty"], people["supervisor"], people["chengguan"]):
        with pytest.raises(ActionForbidden):
            whistle_joint_confirm(actor=who, whistle=whistle)
    whistle_joint_confirm(actor=ds_duty, whistle=whistle)
    whistle.refresh_from_db()
    assert whistle.joint_status == Whistle.JointStatus.CONFIRMED
    assert whistle.joint_decided_by == ds_duty and whistle.joint_pending == []
    assert {s.department.code for s in whistle.summonses.all()} == {"chengguan", "ds-zhifa"}
    assert visible_summonses(ds_duty).filter(whistle=whistle).count() == 2
    assert actions("whistle", whistle.pk) == ["whistle.blown", "whistle.joint_confirmed"]
    late = whistle.summonses.get(department__code="ds-zhifa")
    assert actions("summons", late.pk) == ["summons.notified"]
    assert late.check_in_deadline == whistle.joint_decided_at + whistle.report_within
    with pytest.raises(TransitionNotAllowed) as again:
        whistle_joint_confirm(actor=ds_duty, whistle=whistle)
    assert again.value.code == "joint_not_pending"


def test_a_declined_joint_whistle_never_summons_the_neighbour(people, township, neighbour):
    incident = open_incident(people, township)
    whistle = blow_joint(people["duty"], incident, neighbour)
    ds_duty = User.objects.get(username="ds-duty")
    with pytest.raises(TransitionNotAllowed):
        whistle_joint_decline(actor=ds_duty, whistle=whistle, reason=" ")
    whistle_joint_decline(actor=ds_duty, whistle=whistle, reason="不在我镇辖区")
    whistle.refresh_from_db()
    assert whistle.joint_status == Whistle.JointStatus.DECLINED
    assert {s.department.code for s in whistle.summonses.all()} == {"chengguan"}
    assert actions("whistle", whistle.pk) == ["whistle.blown", "whistle.joint_declined"]


def test_a_district_role_blows_a_joint_whistle_confirmed_at_once(people, township, neighbour):
    incident = open_incident(people, township)
    whistle = blow_joint(people["admin"], incident, neighbour)
    assert whistle.joint_status == Whistle.JointStatus.CONFIRMED
    assert whistle.joint_decided_by == people["admin"]
    assert {s.department.code for s in whistle.summonses.all()} == {"chengguan", "ds-zhifa"}


def test_a_township_sets_its_own_report_deadlines(people, township):
    from django.core.exceptions import ValidationError

    township.report_deadlines = {"emergency": 20}
    township.full_clean()
    township.save(update_fields=["report_deadlines"])
    whistle = blow(people, open_incident(people, township), "chengguan")
    assert whistle.report_within == timedelta(minutes=20)
    general = blow(people, open_incident(people, township), "chengguan", kind=Whistle.Kind.GENERAL)
    assert general.report_within == timedelta(hours=2)
    township.report_deadlines = {"urgent": 5}
    with pytest.raises(ValidationError):
        township.full_clean()


def _closed(people, township) -> Incident:
    incident = open_incident(people, township)
    incident_resolve(actor=people["duty"], incident=incident)
    incident_close(actor=people["duty"], incident=incident, feedback="已处理", settled_level="grid")
    return incident


def test_callback_records_satisfaction_and_not_satisfied_reopens(people, township):
    incident = _closed(people, township)
    with pytest.raises(TransitionNotAllowed) as missing:
        incident_call_back(actor=people["duty"], incident=incident, satisfaction="")
    assert missing.value.code == "satisfaction_missing"
    with pytest.raises(TransitionNotAllowed) as wrong:
        incident_call_back(
            actor=people["duty"], incident=incident, satisfaction="satisfied", reopen=True
        )
    assert wrong.value.code == "reopen_invalid"
    with pytest.raises(ActionForbidden):
        incident_call_back(actor=people["chengguan"], incident=incident, satisfaction="basic")
    incident_call_back(
        actor=people["duty"],
        incident=incident,
        satisfaction="unsatisfied",
        note="车又停回来了",
        reopen=True,
    )
    incident.refresh_from_db()
    assert (incident.status, incident.reopened_count, incident.settled_level) == ("open", 1, "")
    assert incident.resolved_at is None and incident.closed_at is None
    rows = list(
        TimelineEntry.objects.filter(subject_type="incident", subject_id=incident.pk)
        .order_by("time", "pk")
        .values_list("action", "after")
    )
    assert rows[-2:] == [
        (
            "incident.called_back",
            {"satisfaction": "unsatisfied", "note": "车又停回来了", "reopen": True},
        ),
        ("incident.reopened", {"status": "open", "reason": "车又停回来了"}),
    ]
    with pytest.raises(TransitionNotAllowed) as not_closed:
        incident_call_back(actor=people["duty"], incident=incident, satisfaction="satisfied")
    assert not_closed.value.code == "incident_not_closed"
    incident_resolve(actor=people["duty"], incident=incident)
    incident_close(actor=people["duty"], incident=incident, feedback="已劝离", settled_level="grid")
    incident_call_back(actor=people["duty"], incident=incident, satisfaction="satisfied")
    incident.refresh_from_db()
    assert (incident.status, incident.satisfaction) == ("closed", "satisfied")


def test_reopening_needs_a_reason_and_the_window(people, township, settings):
    settings.WHISTLE_REOPEN_DAYS = 7
    incident = _closed(people, township)
    with pytest.raises(TransitionNotAllowed) as no_reason:
        incident_reopen(actor=people["duty"], incident=incident, reason="  ")
    assert no_reason.value.code == "reason_missing"
    with clock.moved(by=timedelta(days=8)), pytest.raises(TransitionNotAllowed) as late:
        incident_reopen(actor=people["duty"], incident=incident, reason="又来了")
    assert late.value.code == "reopen_window_passed"
    with pytest.raises(ActionForbidden):
        incident_reopen(actor=people["chengguan"], incident=incident, reason="又来了")
    incident_reopen(actor=people["duty"], incident=incident, reason="又来了")
    with pytest.raises(TransitionNotAllowed) as active:
        incident_reopen(actor=people["duty"], incident=incident, reason="again")
    assert active.value.code == "incident_not_finished"


def test_work_awaiting_acceptance_can_still_be_released_but_not_reported_again(people, township):
    summons = blow(people, open_incident(people, township), "chengguan").summonses.get()
    summons_check_in(actor=people["chengguan"], summons=summons)
    summons_done(actor=people["chengguan"], summons=summons, note="已清理")
    with pytest.raises(TransitionNotAllowed) as twice:
        summons_done(actor=people["chengguan"], summons=summons, note="again")
    assert twice.value.code == "summons_not_on_site"
    summons_release(actor=people["duty"], summons=summons, reason="改由街道自行处理")
    summons.refresh_from_db()
    assert summons.status == Summons.Status.RELEASED
    with pytest.raises(TransitionNotAllowed) as late:
        summons_accept(actor=people["duty"], summons=summons)
    assert late.value.code == "summons_not_done"
