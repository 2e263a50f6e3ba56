"""Escalation chains (督办 reaching people): who is paged, when, once, and when it stops."""

from __future__ import annotations

import itertools
from datetime import datetime, time, timedelta

import pytest
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st
from procrastinate.contrib.django.models import ProcrastinateJob

from alerts.models import Notification
from command import clock
from command.org.models import (
    Category,
    Department,
    OnCallOverride,
    OnCallShift,
    Township,
    User,
)
from command.org.oncall import on_call
from command.timeline.models import TimelineEntry
from incidents.models import EscalationChain, EscalationStep, Summons, Whistle
from incidents.services.deadlines import summons_deadlines_sweep, summons_escalate
from incidents.services.escalation import (
    DEFAULT_CHAINS,
    chain_for,
    page_schedule,
    summons_page_step,
)
from incidents.services.incidents import incident_open
from incidents.services.summonses import summons_acknowledge
from incidents.services.whistles import SummonedDepartment, whistle_blow

pytestmark = pytest.mark.django_db(transaction=True)

Step = EscalationStep.Action
CHAIN = [
    {"action": Step.NOTIFY_ON_CALL},
    {"action": Step.WAIT, "minutes": 2},
    {"action": Step.NOTIFY_BACKUP},
    {"action": Step.WAIT, "minutes": 2},
    {"action": Step.NOTIFY_HEAD, "all_channels": True},
    {"action": Step.WAIT, "minutes": 2},
    {"action": Step.NOTIFY_TOWNSHIP_SUPERVISORS},
]


def person(username: str, department: Department | None = None, **fields) -> User:
    return User.objects.create(
        username=username,
        first_name=username,
        department=department,
        role=fields.pop("role", User.Role.DEPARTMENT_MEMBER),
        **fields,
    )


@pytest.fixture
def police(demo_committed):
    department = Department.objects.get(code="police")
    primary = person("police-a", department)
    backup = person("police-b", department)
    head = person("police-head", department)
    department.head = head
    department.save(update_fields=["head"])
    OnCallShift.objects.filter(department=department).delete()  # the demo's round-the-clock one
    OnCallShift.objects.create(
        department=department, starts=time(0), ends=time(0), primary=primary, backup=backup
    )
    return department


def blow(kind: str = Whistle.Kind.EMERGENCY, *, chain=CHAIN, ago: timedelta = timedelta(0)):
    duty = User.objects.get(username="duty")
    township = Township.objects.get(code="qingshui")
    if chain is not None:
        EscalationChain.objects.filter(township=township).delete()
        stored = EscalationChain.objects.create(township=township, kind=kind, name="test")
        for position, step in enumerate(chain):
            EscalationStep.objects.create(
                chain=stored,
                position=position,
                action=step["action"],
                minutes=step.get("minutes"),
                times=step.get("times"),
                all_channels=step.get("all_channels", False),
            )
    incident = incident_open(
        actor=duty,
        township=township,
        category=Category.objects.get(code="illegal-mining"),
        severity="critical",
        title="夜间矿区挖掘机作业",
    )
    with clock.moved(by=-ago):
        whistle = whistle_blow(
            actor=duty,
            incident=incident,
            kind=kind,
            purpose=Whistle.Purpose.EMERGENCY_RESPONSE,
            departments=[SummonedDepartment(Department.objects.get(code="police"))],
        )
    return whistle.summonses.get()


def paged(summons) -> list[tuple[str, str, int]]:
    """(action, reason or person, step) of the summons' paging rows, in order."""
    rows = TimelineEntry.objects.filter(
        subject_type="summons", subject_id=summons.pk, action__startswith="summons."
    ).order_by("time", "id")
    return [
        (r.action, r.after.get("person") or r.after.get("reason"), r.after.get("step"))
        for r in rows
        if r.action in ("summons.paged", "summons.nobody_to_page")
    ]


# --- the schedule -----------------------------------------------------------------------------


def test_waits_add_up_and_a_repeat_runs_the_steps_before_it_again():
    chain = [*CHAIN, {"action": Step.WAIT, "minutes": 5}, {"action": Step.REPEAT, "times": 2}]
    steps = page_schedule(chain)
    assert [(s.number, s.offset.total_seconds() / 60, s.action) for s in steps[:5]] == [
        (1, 0, Step.NOTIFY_ON_CALL),
        (2, 2, Step.NOTIFY_BACKUP),
        (3, 4, Step.NOTIFY_HEAD),
        (4, 6, Step.NOTIFY_TOWNSHIP_SUPERVISORS),
        (5, 11, Step.NOTIFY_ON_CALL),
    ]
    assert len(steps) == 12 and steps[-1].offset == timedelta(minutes=6 + 11 * 2)
    assert steps[2].all_channels and not steps[1].all_channels


step_strategy = st.one_of(
    st.sampled_from(EscalationStep.NOTIFY_ACTIONS).map(lambda a: {"action": a}),
    st.integers(1, 1440).map(lambda m: {"action": Step.WAIT, "minutes": m}),
    st.integers(1, 10).map(lambda t: {"action": Step.REPEAT, "times": t}),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(step_strategy, max_size=12))
def test_any_chain_schedules_its_notify_steps_in_order_once_per_round(chain):
    steps = page_schedule(chain)
    body = []
    rounds = 1
    for step in chain:
        if step["action"] == Step.REPEAT:
            rounds += step["times"]
            break
        body.append(step)
    notifies = [s["action"] for s in body if s["action"] != Step.WAIT]
    assert [s.action for s in steps] == notifies * rounds
    assert [s.number for s in steps] == list(range(1, len(steps) + 1))
    assert all(a.offset <= b.offset for a, b in itertools.pairwise(steps))
    if steps:
        assert steps[0].offset == timedelta(0) or body[0]["action"] == Step.WAIT


def test_a_township_chain_for_the_kind_wins_then_for_any_kind_then_the_districts(demo_committed):
    qingshui = Township.objects.get(code="qingshui")
    assert chain_for(qingshui, "general") == DEFAULT_CHAINS["general"]
    district = EscalationChain.objects.create(township=None, kind="", name="district")
    EscalationStep.objects.create(chain=district, position=0, action=Step.NOTIFY_HEAD)
    assert chain_for(qingshui, "general") == [{"action": "notify_head"}]
    own = EscalationChain.objects.create(township=qingshui, kind="", name="ours")
    EscalationStep.objects.create(chain=own, position=0, action=Step.NOTIFY_BACKUP)
    assert chain_for(qingshui, "general") == [{"action": "notify_backup"}]
    emergency = EscalationChain.objects.create(township=qingshui, kind="emergency", name="e")
    EscalationStep.objects.create(chain=emergency, position=1, action=Step.NOTIFY_ON_CALL)
    EscalationStep.objects.create(
        chain=emergency, position=0, action=Step.WAIT, minutes=1, all_channels=True
    )
    assert chain_for(qingshui, "emergency") == [
        {"action": "wait", "minutes": 1},
        {"action": "notify_on_call"},
    ]
    assert chain_for(qingshui, "tough") == [{"action": "notify_backup"}]


# --- who is on call ---------------------------------------------------------------------------


def shanghai(day: int, hour: int, minute: int = 0) -> datetime:
    """A moment in the week of Monday 2026-11-23 on the township's clock."""
    import zoneinfo

    return datetime(2026, 11, 22 + day, hour, minute, tzinfo=zoneinfo.ZoneInfo("Asia/Shanghai"))


def test_the_rota_by_weekday_and_time_past_midnight_and_an_override_for_leave(demo_committed):
    police = Department.objects.get(code="police")
    OnCallShift.objects.filter(department=police).delete()
    day_a, day_b, night_a, night_b, cover = (
        person(n, police) for n in ("day-a", "day-b", "night-a", "night-b", "cover")
    )
    OnCallShift.objects.create(department=police, weekdays=[1, 2, 3, 4, 5], starts=time(8),
                               ends=time(18), primary=day_a, backup=day_b)  # fmt: skip
    OnCallShift.objects.create(department=police, weekdays=[1, 2, 3, 4, 5], starts=time(18),
                               ends=time(8), primary=night_a, backup=night_b)  # fmt: skip
    assert on_call(police, shanghai(1, 9)).primary == day_a  # Monday 09:00
    assert on_call(police, shanghai(1, 18)).primary == night_a  # Monday 18:00
    assert on_call(police, shanghai(2, 2)).primary == night_a  # Monday's night, Tuesday 02:00
    assert on_call(police, shanghai(6, 2)).backup == night_b  # Friday's night, Saturday 02:00
    assert on_call(police, shanghai(6, 9)).primary is None  # Saturday day: nobody on the rota
    assert on_call(police, shanghai(1, 7, 59)).primary is None  # Sunday's night was not on it
    leave = {"starts_at": shanghai(2, 0), "ends_at": shanghai(3, 0), "reason": "night-a on leave"}
    OnCallOverride.objects.create(department=police, primary=cover, **leave)
    assert on_call(police, shanghai(2, 2)).primary == cover
    assert on_call(police, shanghai(2, 2)).backup is None
    assert on_call(police, shanghai(3, 2)).primary == night_a  # the leave is over


# --- running the chain ------------------------------------------------------------------------


def test_each_step_pages_its_people_once_and_acknowledging_stops_the_chain(police):
    supervisor = person("qs-sup", role=User.Role.SUPERVISOR,
                        township=Township.objects.get(code="qingshui"))  # fmt: skip
    summons = blow()
    assert summons.page_step == 0 and summons.page_at is not None
    job = ProcrastinateJob.objects.get(queueing_lock=f"summons-{summons.pk}-page-0")
    assert job.task_name == "incidents.tasks.summons_page"

    assert summons_page_step(summons_id=summons.pk, step=0) == "step 1 paged"
    assert summons_page_step(summons_id=summons.pk, step=0) == "already ran"
    assert summons_page_step(summons_id=summons.pk, step=2) == "not the next step"
    assert summons_page_step(summons_id=summons.pk, step=1) == "not due"
    summons.refresh_from_db()
    assert summons.page_step == 1
    assert summons.page_at == summons.check_in_deadline - timedelta(minutes=30 - 2)
    assert ProcrastinateJob.objects.filter(queueing_lock=f"summons-{summons.pk}-page-1").exists()
    assert paged(summons) == [("summons.paged", "police-a", 1)]
    console = Notification.objects.get(user__username="police-a")
    assert console.channel == "console" and console.reason == "on_call"
    assert console.link == f"/console/police/#summons-{summons.pk}"

    with clock.moved(by=timedelta(minutes=2)):
        assert summons_page_step(summons_id=summons.pk, step=1) == "step 2 paged"
    with clock.moved(by=timedelta(minutes=4)):
        assert summons_page_step(summons_id=summons.pk, step=2) == "step 3 paged"
    assert paged(summons) == [
        ("summons.paged", "police-a", 1),
        ("summons.paged", "police-b", 2),
        ("summons.paged", "police-head", 3),
    ]
    summons_acknowledge(actor=User.objects.get(username="police-b"), summons=summons)
    summons.refresh_from_db()
    assert summons.page_at is None
    with clock.moved(by=timedelta(minutes=6)):
        assert summons_page_step(summons_id=summons.pk, step=3) == "acknowledged"
        assert summons_deadlines_sweep() == 0
    assert not Notification.objects.filter(user=supervisor).exists()


def test_a_step_with_nobody_to_page_says_so_and_the_chain_goes_on(
    demo_committed, capture_broadcasts
):
    OnCallShift.objects.filter(department__code="police").delete()
    summons = blow()  # the police now have no rota, and the demo's no head
    assert summons_page_step(summons_id=summons.pk, step=0) == "step 1 paged"
    # The supervisor consoles redraw the chain's step though nobody was paged.
    township = Township.objects.get(code="qingshui")
    assert (
        f"supervise.{township.pk}",
        {"type": "summons.updated", "summons_id": summons.pk, "supervised": township.pk},
    ) in [
        (group, {k: v for k, v in event.items() if k != "id"})
        for group, event in capture_broadcasts
    ]
    with clock.moved(by=timedelta(minutes=4)):
        summons_page_step(summons_id=summons.pk, step=1)
        summons_page_step(summons_id=summons.pk, step=2)
    assert paged(summons) == [
        ("summons.nobody_to_page", "on_call", 1),
        ("summons.nobody_to_page", "backup", 2),
        ("summons.nobody_to_page", "head", 3),
    ]
    assert Summons.objects.get(pk=summons.pk).page_step == 3


def test_the_sweep_runs_a_step_whose_job_was_lost_once(police):
    summons = blow(ago=timedelta(minutes=3))
    ProcrastinateJob.objects.filter(queueing_lock__startswith=f"summons-{summons.pk}-page").delete()
    summons_deadlines_sweep()
    summons_deadlines_sweep()  # the next step (due two minutes ago) on the second pass
    summons_deadlines_sweep()
    assert paged(summons) == [("summons.paged", "police-a", 1), ("summons.paged", "police-b", 2)]
    assert Summons.objects.get(pk=summons.pk).page_step == 2


def test_an_overdue_level_pages_the_supervisors_it_names(police):
    qingshui = Township.objects.get(code="qingshui")
    township_sup = person("qs-sup", role=User.Role.SUPERVISOR, township=qingshui)
    district_sup = person("district-sup", role=User.Role.SUPERVISOR)
    summons = blow(chain=[], ago=timedelta(minutes=31))
    assert summons.page_at is None  # no chain: nothing to page before the deadline
    assert summons_escalate(summons_id=summons.pk, level=1) == "escalated to level 1"
    assert [n.user for n in Notification.objects.filter(channel="console")] == [township_sup]
    with clock.moved(by=timedelta(minutes=30)):
        summons_escalate(summons_id=summons.pk, level=2)
    assert Notification.objects.filter(user=district_sup, reason="district_supervisors").exists()
    link = Notification.objects.get(user=township_sup).link
    assert link == f"/supervise/qingshui/incidents/{summons.whistle.incident_id}/"


def test_the_whistle_keeps_the_chain_it_was_blown_with(police):
    summons = blow()
    EscalationChain.objects.filter(township__code="qingshui").delete()
    whistle = Whistle.objects.get(pk=summons.whistle_id)
    assert whistle.escalation_chain == [
        {k: (str(v) if k == "action" else v) for k, v in step.items()} for step in CHAIN
    ]
    assert timezone.is_aware(summons.page_at)


# --- a worker killed in the middle of a chain -------------------------------------------------

# Three seconds between steps: the chain runs through while the test watches.
FAST_CHAIN = [
    {"action": Step.NOTIFY_ON_CALL},
    {"action": Step.WAIT, "minutes": 0.05},
    {"action": Step.NOTIFY_BACKUP},
    {"action": Step.WAIT, "minutes": 0.05},
    {"action": Step.NOTIFY_HEAD},
    {"action": Step.WAIT, "minutes": 0.05},
    {"action": Step.NOTIFY_TOWNSHIP_SUPERVISORS},
    {"action": Step.WAIT, "minutes": 0.05},
    {"action": Step.NOTIFY_DISTRICT_SUPERVISORS},
]


def test_a_worker_killed_mid_chain_neither_skips_nor_repeats_a_step(police):
    from tests.conftest import wait_for
    from tests.incidents.test_deadlines import WorkerProcess, database_url, summons_locked

    qingshui = Township.objects.get(code="qingshui")
    person("qs-sup", role=User.Role.SUPERVISOR, township=qingshui)
    person("district-sup", role=User.Role.SUPERVISOR)
    summons = blow()
    # The whistle's copy of the chain, made fast (the admin allows whole minutes only).
    Whistle.objects.filter(pk=summons.whistle_id).update(escalation_chain=FAST_CHAIN)

    def place() -> int:
        return Summons.objects.get(pk=summons.pk).page_step

    first = WorkerProcess(database_url())
    second = None
    try:
        wait_for(lambda: place() >= 2, timeout=30, what="the chain's second step")
        with summons_locked(summons):
            # The next step's job waits for the row inside its transaction: kill it there.
            step = place()
            wait_for(
                lambda: ProcrastinateJob.objects.filter(
                    queueing_lock=f"summons-{summons.pk}-page-{step}", status="doing"
                ).exists(),
                timeout=30,
                what=f"step {step + 1} to start",
            )
            first.kill()
        second = WorkerProcess(database_url())
        wait_for(lambda: place() == 5, timeout=60, what="the chain to run out")
        wait_for(
            lambda: not ProcrastinateJob.objects.filter(
                task_name="incidents.tasks.summons_page", args__summons_id=summons.pk,
                status__in=["todo", "doing"],
            ).exists(),
            timeout=30,
            what="no chain job left",
        )  # fmt: skip
    finally:
        first.stop()
        if second is not None:
            second.stop()
    assert paged(summons) == [
        ("summons.paged", "police-a", 1),
        ("summons.paged", "police-b", 2),
        ("summons.paged", "police-head", 3),
        ("summons.paged", "qs-sup", 4),
        ("summons.paged", "李建华", 5),  # the demo's district supervisor
        ("summons.paged", "district-sup", 5),
    ], first.output()
    consoles = Notification.objects.filter(subject_id=summons.pk, channel="console")
    assert sorted(consoles.values_list("user__username", flat=True)) == [
        "district-sup", "police-a", "police-b", "police-head", "qs-sup", "supervisor"
    ]  # fmt: skip
    assert Summons.objects.get(pk=summons.pk).page_at is None
