"""Deadlines and escalation run as durable jobs; time is controlled by when the whistle is blown."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from procrastinate.contrib.django.models import ProcrastinateJob

from command.incidents import services
from command.incidents.models import Summons, TimelineEntry, Whistle
from command.incidents.services import SummonedDepartment
from command.org.models import Category, Department, Township, User
from tests.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

EMERGENCY = services.REPORT_WITHIN[Whistle.Kind.EMERGENCY]


def blow(*codes, ago: timedelta):
    duty = User.objects.get(username="duty")
    incident = services.incident_open(
        actor=duty,
        township=Township.objects.get(code="qingshui"),
        category=Category.objects.get(code="illegal-mining"),
        severity="critical",
        title="夜间矿区挖掘机作业 / excavator at the closed quarry at night",
    )
    return services.whistle_blow(
        actor=duty,
        incident=incident,
        kind=Whistle.Kind.EMERGENCY,
        purpose=Whistle.Purpose.EMERGENCY_RESPONSE,
        departments=[SummonedDepartment(Department.objects.get(code=c)) for c in codes],
        now=timezone.now() - ago,
    )


def actions(summons):
    return list(
        TimelineEntry.objects.filter(subject_type="summons", subject_id=summons.pk)
        .order_by("time")
        .values_list("action", "after")
    )


def test_blowing_defers_the_first_deadline_step_in_the_same_transaction(demo_committed):
    whistle = blow("police", "natural-resources", ago=timedelta(0))
    # The job table is procrastinate's, not flushed between tests: look at this whistle's jobs.
    jobs = ProcrastinateJob.objects.filter(queue_name="deadlines")
    for summons in whistle.summonses.all():
        first = jobs.get(queueing_lock=f"summons-{summons.pk}-step-0")
        # The reminder, ten minutes before the deadline; it schedules the escalation steps.
        assert first.scheduled_at == summons.check_in_deadline - timedelta(minutes=10)
        assert first.args == {"summons_id": summons.pk, "step": 0}

    before = jobs.count()
    with pytest.raises(RuntimeError), transaction.atomic():
        blow("police", ago=timedelta(0))
        raise RuntimeError("the officer's request failed after the whistle")
    assert jobs.count() == before, "a rolled-back whistle must leave no job"


def test_overdue_department_is_escalated_level_by_level_and_the_punctual_one_is_not(
    demo_committed, job_worker
):
    # Blown 70 minutes ago: the 30-minute deadline and the 30-minute second level have passed.
    whistle = blow("police", "natural-resources", ago=EMERGENCY + timedelta(minutes=40))
    late = whistle.summonses.get(department__code="police")
    punctual = whistle.summonses.get(department__code="natural-resources")
    services.summons_check_in(actor=_member("natural-resources"), summons=punctual)

    job_worker.start()
    wait_for(
        lambda: Summons.objects.get(pk=late.pk).escalation_level == 2,
        timeout=30,
        what="level 2 escalation",
    )
    job_worker.stop()
    late.refresh_from_db()
    assert late.overdue
    assert [a for a, _ in actions(late)] == [
        "summons.notified",
        "summons.reminded",
        "summons.overdue",
        "summons.escalated",
        "summons.escalated",
    ]
    assert [after["level"] for a, after in actions(late) if a == "summons.escalated"] == [1, 2]
    punctual.refresh_from_db()
    assert not punctual.overdue and punctual.escalation_level == 0
    assert "summons.escalated" not in [a for a, _ in actions(punctual)]

    # Running a job again, as after a crash between its work and its bookkeeping, adds nothing.
    assert services.summons_escalate(summons_id=late.pk, level=2) == "already escalated"
    assert services.summons_escalate(summons_id=late.pk, level=1) == "already escalated"
    assert services.summons_remind(summons_id=late.pk) == "already reminded"
    assert len(actions(late)) == 5


def test_worker_restarted_between_whistle_and_deadline_fires_each_step_once(
    demo_committed, job_worker
):
    # The deadline is 3 s away; the worker stops before it and a new one starts after.
    whistle = blow("police", ago=EMERGENCY - timedelta(seconds=3))
    summons = whistle.summonses.get()
    job_worker.start()
    wait_for(lambda: any(a == "summons.reminded" for a, _ in actions(summons)), timeout=20)
    job_worker.stop()
    assert Summons.objects.get(pk=summons.pk).escalation_level == 0
    wait_for(lambda: timezone.now() > summons.check_in_deadline, timeout=10)
    job_worker.start()
    wait_for(
        lambda: Summons.objects.get(pk=summons.pk).escalation_level == 1,
        timeout=30,
        what="level 1 after the restart",
    )
    job_worker.stop()
    job_worker.start()  # and once more: nothing fires twice
    job_worker.stop()
    escalations = [after["level"] for a, after in actions(summons) if a == "summons.escalated"]
    assert escalations == [1]
    assert [a for a, _ in actions(summons)].count("summons.overdue") == 1


def _member(department_code: str) -> User:
    department = Department.objects.get(code=department_code)
    user, _ = User.objects.get_or_create(
        username=f"member-{department_code}",
        defaults={"role": User.Role.DEPARTMENT_MEMBER, "department": department},
    )
    return user
