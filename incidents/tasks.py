"""Durable deadline jobs (procrastinate, in PostgreSQL), deferred in the same transaction as the
whistle that sets them: a rolled-back whistle leaves no job, a committed one loses none.

Each job re-reads its summons under a row lock and does nothing if its moment has passed
(checked in, released, already escalated), so a job that runs twice, or after a restart of
every process, changes nothing the second time.

Two paths lead to every step, so that no single fault loses one:

- the chain: each summons has one job per step, scheduled at the step's moment, each deferring
  the next; a step that raises (the database restarting under it) is retried with backoff;
- the sweep: every ``WHISTLE_JOB_SWEEP_SECONDS`` a periodic job runs every step that is due and
  has not run, whatever happened to its job (failed for good, lost with a killed worker, never
  deferred). It is the guarantee; the chain is what makes a step fire on the second.
"""

from __future__ import annotations

from django.conf import settings
from procrastinate import RetryStrategy
from procrastinate.contrib.django import app

from incidents.services import deadlines, escalation

# 2, 4, 8 … 256 s between attempts (about eight minutes in all); the sweep covers the rest.
RETRY = RetryStrategy(max_attempts=8, exponential_wait=2)


@app.task(
    name=deadlines.DEADLINE_TASK,
    queue="deadlines",
    retry=RETRY,
    pass_context=False,
    aliases=["command.incidents.tasks.summons_deadline"],  # its name before the move
)
def summons_deadline(summons_id: int, step: int) -> str:
    """Step 0 reminds; step n escalates to level n; each step schedules the next."""
    return deadlines.summons_deadline_step(summons_id=summons_id, step=step)


@app.task(name=deadlines.FINISH_TASK, queue="deadlines", retry=RETRY, pass_context=False)
def summons_finish_deadline(summons_id: int, level: int) -> str:
    """Late finishing: escalate to level ``level``, then schedule the next level."""
    return deadlines.summons_finish_step(summons_id=summons_id, level=level)


@app.task(name=escalation.PAGE_TASK, queue="deadlines", retry=RETRY, pass_context=False)
def summons_page(summons_id: int, step: int) -> str:
    """Step ``step`` of the summons' escalation chain; each step queues the next."""
    return escalation.summons_page_step(summons_id=summons_id, step=step)


@app.periodic(
    cron=f"* * * * * */{settings.WHISTLE_JOB_SWEEP_SECONDS}", periodic_id="summons-deadlines"
)
@app.task(
    queue="deadlines",
    queueing_lock="summons-deadlines-sweep",
    aliases=["command.incidents.tasks.summons_deadlines_sweep"],
)
def summons_deadlines_sweep(timestamp: int) -> int:
    return deadlines.summons_deadlines_sweep()
