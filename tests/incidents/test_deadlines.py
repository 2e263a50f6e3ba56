"""Deadlines and escalation run as durable jobs; time is controlled by when the whistle is blown.

The fault tests run real processes: `whistle worker` killed with SIGKILL in the middle of a
step, its PostgreSQL connection cut in the middle of a step (through tests/netproxy.py), and a
department server that drips its answer while another summons falls due. In each, the
escalation fires once, within ``ON_TIME`` of its moment.
"""

import contextlib
import os
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from django.db import connection, transaction
from django.utils import timezone
from procrastinate.contrib.django.models import ProcrastinateJob

from command import clock
from command.org.models import Category, Department, Township, User
from command.timeline.models import TimelineEntry
from incidents.models import Summons, Whistle
from incidents.services.deadlines import summons_deadlines_sweep, summons_escalate, summons_remind
from incidents.services.incidents import incident_open
from incidents.services.summonses import summons_check_in
from incidents.services.whistles import REPORT_WITHIN, SummonedDepartment, whistle_blow
from tests.conftest import need_service, wait_for
from tests.netproxy import CuttableProxy

pytestmark = pytest.mark.django_db(transaction=True)

EMERGENCY = REPORT_WITHIN[Whistle.Kind.EMERGENCY]


def blow(*codes, ago: timedelta):
    duty = User.objects.get(username="duty")
    incident = incident_open(
        actor=duty,
        township=Township.objects.get(code="qingshui"),
        category=Category.objects.get(code="illegal-mining"),
        severity="critical",
        title="夜间矿区挖掘机作业 / excavator at the closed quarry at night",
    )
    with clock.moved(by=-ago):
        return whistle_blow(
            actor=duty,
            incident=incident,
            kind=Whistle.Kind.EMERGENCY,
            purpose=Whistle.Purpose.EMERGENCY_RESPONSE,
            departments=[SummonedDepartment(Department.objects.get(code=c)) for c in codes],
        )


# Pages to people are tested in test_escalation_chains.py; here, the deadline's own rows.
PAGING = ("summons.paged", "summons.page_failed", "summons.page_read", "summons.nobody_to_page")


@pytest.fixture(autouse=True)
def no_escalation_chains(monkeypatch):
    """Whistles here run no escalation chain: the sweep's counts are the deadline steps'."""
    from incidents.services import escalation

    monkeypatch.setattr(
        escalation, "DEFAULT_CHAINS", {kind: [] for kind in escalation.DEFAULT_CHAINS}
    )


def actions(summons):
    return list(
        TimelineEntry.objects.filter(subject_type="summons", subject_id=summons.pk)
        .exclude(action__in=PAGING)
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
    summons_check_in(actor=_member("natural-resources"), summons=punctual)

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
    assert summons_escalate(summons_id=late.pk, level=2) == "already escalated"
    assert summons_escalate(summons_id=late.pk, level=1) == "already escalated"
    assert summons_remind(summons_id=late.pk) == "already reminded"
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


# --- faults -------------------------------------------------------------------------------------

# The worker processes below sweep every 3 s (WHISTLE_JOB_SWEEP_SECONDS) and call a worker
# stalled after 4 s of silence. An escalation then fires at most SWEEP_GRACE (5 s) + 3 s + the
# sweep's own run after its moment, whatever happened to its job; 15 s leaves room for a loaded
# machine. With the production defaults (15 s sweep) the bound is 30 s (docs/operations.md).
ON_TIME = timedelta(seconds=15)
FAST_SWEEPS = {
    "WHISTLE_JOB_SWEEP_SECONDS": "3",
    "WHISTLE_WORKER_HEARTBEAT": "1",
    "WHISTLE_WORKER_STALLED_AFTER": "4",
}


def database_url(port: int | None = None) -> str:
    """The test database, for a process of its own (optionally through a proxy's port)."""
    connection.ensure_connection()
    info = connection.connection.info
    password = f":{quote(info.password, safe='')}" if info.password else ""
    host = "127.0.0.1" if port else quote(info.host, safe="/")
    return (
        f"postgresql://{quote(info.user, safe='')}{password}@/{info.dbname}"
        f"?host={host}&port={port or info.port}"
    )


class WorkerProcess:
    """`whistle worker` as production runs it, in a process a test can kill."""

    def __init__(self, database: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
        env.update(DATABASE_URL=database, PYTHONUNBUFFERED="1", CONN_MAX_AGE="0", **FAST_SWEEPS)
        env.pop("REDIS_URL", None)
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [str(Path(sys.executable).parent / "whistle"), "worker"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def output(self) -> str:
        return "\n".join(self.lines)

    def kill(self) -> None:
        self.process.kill()  # SIGKILL: no handler, no unregistering, no rollback by the worker
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


@contextlib.contextmanager
def summons_locked(summons):
    """Hold the summons' row lock from another connection: a step that reaches it waits there,
    inside its transaction — the worker is then in the middle of the step."""
    with psycopg.connect(database_url()) as conn:
        with conn.transaction():
            conn.execute(
                f"SELECT id FROM {Summons._meta.db_table} WHERE id = %s FOR UPDATE", [summons.pk]
            )
            yield


def step_job(summons, step: int):
    return ProcrastinateJob.objects.filter(queueing_lock=f"summons-{summons.pk}-step-{step}")


def assert_escalated_once_on_time(summons) -> None:
    wait_for(
        lambda: Summons.objects.get(pk=summons.pk).escalation_level >= 1,
        timeout=(summons.check_in_deadline - timezone.now()).total_seconds() + 30,
        what="level 1 escalation",
    )
    rows = actions(summons)
    assert [a for a, _ in rows].count("summons.reminded") == 1, rows
    assert [a for a, _ in rows].count("summons.overdue") == 1, rows
    assert [a for a, _ in rows].count("summons.escalated") == 1, rows
    escalated = TimelineEntry.objects.get(
        subject_type="summons", subject_id=summons.pk, action="summons.escalated"
    )
    late = escalated.time - summons.check_in_deadline
    assert timedelta(0) <= late <= ON_TIME, late


def no_job_left_doing(summons) -> bool:
    return not ProcrastinateJob.objects.filter(
        task_name__endswith="summons_deadline", args__summons_id=summons.pk, status="doing"
    ).exists()


def test_the_sweep_runs_the_steps_whose_jobs_were_lost_once(demo_committed):
    whistle = blow("police", ago=EMERGENCY + timedelta(minutes=1))
    summons = whistle.summonses.get()
    ProcrastinateJob.objects.filter(queueing_lock__startswith=f"summons-{summons.pk}-").delete()
    assert summons_deadlines_sweep() == 2  # the reminder; overdue and level 1 (not 2)
    assert summons_deadlines_sweep() == 0
    assert [a for a, _ in actions(summons)] == [
        "summons.notified",
        "summons.reminded",
        "summons.overdue",
        "summons.escalated",
    ]
    summons.refresh_from_db()
    assert summons.escalation_level == 1
    with clock.moved(by=timedelta(minutes=30)):
        assert summons_deadlines_sweep() == 1
    assert Summons.objects.get(pk=summons.pk).escalation_level == 2


def test_worker_killed_mid_step_leaves_nothing_doing_and_escalates_once_on_time(demo_committed):
    whistle = blow("police", ago=EMERGENCY - timedelta(seconds=15))
    summons = whistle.summonses.get()
    first = WorkerProcess(database_url())
    second = None
    try:
        with summons_locked(summons):
            wait_for(
                lambda: step_job(summons, 0).filter(status="doing").exists(),
                timeout=30,
                what="the reminder step to start",
            )
            first.kill()
        second = WorkerProcess(database_url())
        assert_escalated_once_on_time(summons)
        # The killed worker's job is put back in the queue and finishes (the step is idempotent).
        wait_for(lambda: no_job_left_doing(summons), timeout=20, what="the killed job's retry")
        assert step_job(summons, 0).get().status == "succeeded"
    finally:
        first.stop()
        if second:
            second.stop()


def test_database_connection_cut_mid_step_escalates_once_on_time(demo_committed):
    whistle = blow("police", ago=EMERGENCY - timedelta(seconds=15))
    summons = whistle.summonses.get()
    connection.ensure_connection()
    info = connection.connection.info
    if info.host.startswith("/"):
        need_service("PostgreSQL over TCP (the test cuts the worker's connections in a proxy)")
    proxy = CuttableProxy((info.host, info.port))
    worker = WorkerProcess(database_url(port=proxy.port))
    try:
        with summons_locked(summons):
            wait_for(
                lambda: step_job(summons, 0).filter(status="doing").exists(),
                timeout=30,
                what="the reminder step to start",
            )
            proxy.cut()  # PostgreSQL "restarts": every connection of the worker drops
            # Down until the worker has seen its connections drop and failed to reconnect.
            wait_for(
                lambda: (
                    "closed the connection unexpectedly" in worker.output()
                    and "error connecting" in worker.output()
                ),
                timeout=30,
                what="the worker to lose the database and fail to reconnect",
            )
            proxy.restore()
        assert worker.process.poll() is None, worker.output()
        assert_escalated_once_on_time(summons)
        wait_for(lambda: no_job_left_doing(summons), timeout=20, what="the cut job's retry")
        assert worker.process.poll() is None, worker.output()
    finally:
        worker.stop()
        proxy.close()


def test_a_dripping_department_server_does_not_delay_another_escalation(
    demo_committed, settings, job_worker
):
    from alerts.models import Delivery
    from tests.alerts.test_webhooks import DrippingServer

    settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    settings.WEBHOOK_TIMEOUT = 12
    server = DrippingServer(interval=0.5)
    try:
        slow = Department.objects.get(code="natural-resources")
        slow.webhook_url = server.url
        slow.save(update_fields=["webhook_url"])
        for _ in range(5):  # more than the delivery pool's slots
            blow("natural-resources", ago=timedelta(0))
        whistle = blow("police", ago=EMERGENCY - timedelta(seconds=4))
        summons = whistle.summonses.get()
        job_worker.start()
        wait_for(lambda: server.connections >= 4, timeout=20, what="the deliveries to hang")
        assert_escalated_once_on_time(summons)
        late = Summons.objects.get(pk=summons.pk)
        assert late.escalation_level == 1
        assert Delivery.objects.filter(attempts=0).count() >= 4, "deliveries still hanging"
        # Each hanging attempt ends at its total deadline, not when the server stops dripping.
        wait_for(
            lambda: Delivery.objects.filter(attempts__gte=1).count() >= 4,
            timeout=30,
            what="the hanging deliveries to be cut at 12 s",
        )
        errors = set(Delivery.objects.filter(attempts__gte=1).values_list("last_error", flat=True))
        assert errors == {f"127.0.0.1:{server.port} gave no complete answer within 12 s"}
        job_worker.stop()
    finally:
        server.close()
