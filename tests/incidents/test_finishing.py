"""限时办结 and 验收: each summons has a finishing deadline; work not finished by then escalates
like a late arrival; "done" waits for the township's acceptance and returned work runs on
against the same clock."""

from datetime import timedelta

import pytest
from procrastinate.contrib.django.models import ProcrastinateJob

from command import clock
from command.org.models import Category, Department, Township, User
from command.timeline.models import TimelineEntry
from incidents.models import Summons, Whistle
from incidents.services.deadlines import summons_deadlines_sweep, summons_finish_escalate
from incidents.services.incidents import incident_open
from incidents.services.summonses import (
    summons_accept,
    summons_check_in,
    summons_done,
    summons_return,
)
from incidents.services.whistles import FINISH_WITHIN, SummonedDepartment, whistle_blow
from tests.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

FINISH = FINISH_WITHIN[Whistle.Kind.EMERGENCY]


def blow(*codes, ago: timedelta) -> Whistle:
    duty = User.objects.get(username="duty")
    incident = incident_open(
        actor=duty,
        township=Township.objects.get(code="qingshui"),
        category=Category.objects.get(code="illegal-mining"),
        severity="critical",
        title="河道盗采 / sand dredging in the river",
    )
    with clock.moved(by=-ago):
        return whistle_blow(
            actor=duty,
            incident=incident,
            kind=Whistle.Kind.EMERGENCY,
            purpose=Whistle.Purpose.EMERGENCY_RESPONSE,
            departments=[SummonedDepartment(Department.objects.get(code=c)) for c in codes],
        )


def member(code: str) -> User:
    user, _ = User.objects.get_or_create(
        username=f"member-{code}",
        defaults={
            "role": User.Role.DEPARTMENT_MEMBER,
            "department": Department.objects.get(code=code),
        },
    )
    return user


def finishing(summons: Summons) -> list[tuple[str, dict]]:
    return list(
        TimelineEntry.objects.filter(
            subject_type="summons",
            subject_id=summons.pk,
            action__in=["summons.finish_overdue", "summons.finish_escalated"],
        )
        .order_by("time", "pk")
        .values_list("action", "after")
    )


def test_the_finishing_deadline_follows_the_kind_and_the_township(demo_committed):
    whistle = blow("police", ago=timedelta(0))
    summons = whistle.summonses.get()
    assert whistle.finish_within == FINISH
    assert summons.finish_deadline == whistle.blown_at + FINISH
    job = ProcrastinateJob.objects.get(queueing_lock=f"summons-{summons.pk}-finish-1")
    assert job.scheduled_at == summons.finish_deadline
    assert job.args == {"summons_id": summons.pk, "level": 1}

    Township.objects.filter(code="qingshui").update(finish_deadlines={"emergency": 90})
    shorter = blow("police", ago=timedelta(0))
    assert shorter.finish_within == timedelta(minutes=90)
    # Never shorter than the time to arrive: a finishing deadline of 10 minutes is 30.
    Township.objects.filter(code="qingshui").update(finish_deadlines={"emergency": 10})
    assert blow("police", ago=timedelta(0)).finish_within == timedelta(minutes=30)


def test_late_finishing_escalates_level_by_level_and_done_work_does_not(demo_committed, job_worker):
    whistle = blow("police", "natural-resources", ago=FINISH + timedelta(minutes=40))
    late = whistle.summonses.get(department__code="police")
    finished = whistle.summonses.get(department__code="natural-resources")
    summons_check_in(actor=member("police"), summons=late)
    summons_check_in(actor=member("natural-resources"), summons=finished)
    summons_done(actor=member("natural-resources"), summons=finished, note="已撤离")

    job_worker.start()
    wait_for(
        lambda: Summons.objects.get(pk=late.pk).finish_escalation_level == 2,
        timeout=30,
        what="late finishing escalated to level 2",
    )
    job_worker.stop()
    late.refresh_from_db()
    assert late.finish_overdue
    assert [a for a, _ in finishing(late)] == [
        "summons.finish_overdue",
        "summons.finish_escalated",
        "summons.finish_escalated",
    ]
    assert [after["level"] for a, after in finishing(late) if a.endswith("escalated")] == [1, 2]
    assert finishing(finished) == []
    # A job run twice adds nothing.
    assert summons_finish_escalate(summons_id=late.pk, level=2) == "already escalated"


def test_returned_work_runs_on_against_the_same_clock(demo_committed):
    duty = User.objects.get(username="duty")
    whistle = blow("police", ago=FINISH - timedelta(minutes=5))
    summons = whistle.summonses.get()
    summons_check_in(actor=member("police"), summons=summons)
    summons_done(actor=member("police"), summons=summons, note="已清理")
    deadline = summons.finish_deadline
    with clock.moved(by=timedelta(minutes=10)):
        # Done before the deadline, awaiting acceptance past it: nobody is escalated.
        assert summons_deadlines_sweep() == 0
        summons_return(actor=duty, summons=summons, reason="河岸仍有采砂船")
        summons.refresh_from_db()
        assert (summons.status, summons.finish_deadline) == (Summons.Status.CHECKED_IN, deadline)
        # The chain goes on where it stopped: its level-1 job is queued for the deadline.
        assert ProcrastinateJob.objects.filter(
            queueing_lock=f"summons-{summons.pk}-finish-1", status="todo"
        ).exists()
        ProcrastinateJob.objects.filter(queueing_lock__startswith=f"summons-{summons.pk}-").delete()
        assert summons_deadlines_sweep() == 1  # the backstop runs it too
        summons.refresh_from_db()
        assert (summons.finish_overdue, summons.finish_escalation_level) == (True, 1)
        summons_done(actor=member("police"), summons=summons, note="采砂船已拖离")
        summons_accept(actor=duty, summons=summons)
    summons.refresh_from_db()
    assert (summons.status, summons.returned_count) == (Summons.Status.ACCEPTED, 1)
    assert summons_finish_escalate(summons_id=summons.pk, level=2) == "finished or released"
