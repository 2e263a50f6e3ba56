"""Durable deadline jobs (procrastinate, in PostgreSQL), deferred in the same transaction as the
whistle that sets them: a rolled-back whistle leaves no job, a committed one loses none.

Each job re-reads its summons under a row lock and does nothing if its moment has passed
(checked in, released, already escalated), so a job that runs twice, or after a restart of
every process, changes nothing the second time.
"""

from __future__ import annotations

from procrastinate.contrib.django import app

from command.incidents import services


@app.task(queue="deadlines", pass_context=False)
def summons_deadline(summons_id: int, step: int) -> str:
    """Step 0 reminds; step n escalates to level n; each step schedules the next."""
    return services.summons_deadline_step(summons_id=summons_id, step=step)
