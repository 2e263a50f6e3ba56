"""Deferring jobs in the caller's transaction, and the jobs that keep the job queue itself
healthy (procrastinate, in PostgreSQL).

Every job is deferred through :func:`defer`: its row is written on Django's own database
connection, inside the transaction of the change that causes it, so it commits with that change
or not at all — also inside the worker, whose procrastinate app talks to PostgreSQL through a
pool of its own (a job deferred there on the pool would be visible, and run, before the change
that caused it had committed).

A worker writes a heartbeat every ``WHISTLE_WORKER_HEARTBEAT`` seconds. A worker that stops
without unregistering (SIGKILL, out of memory, a host that vanished, a connection cut for good)
leaves its jobs in ``doing``; nothing in procrastinate picks them up by itself. This periodic
job puts the jobs of every worker silent for ``WHISTLE_WORKER_STALLED_AFTER`` seconds back in
the queue, where any live worker takes them. Every job here is idempotent (deadlines re-read
their summons under a lock, deliveries check their row), so running one again is safe.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg.errors
from django.conf import settings
from procrastinate import JobContext
from procrastinate.contrib.django import app
from procrastinate.jobs import Job, Status
from procrastinate.manager import JobManager

log = logging.getLogger("whistle.worker")


@dataclass(frozen=True)
class Deferral:
    """A job to defer: the task by name, its arguments, when, and its queueing lock."""

    task_name: str
    kwargs: dict[str, Any]
    schedule_at: datetime | None = None
    queueing_lock: str | None = None

    def job(self) -> Job:
        options: dict[str, Any] = {}
        if self.schedule_at is not None:
            options["schedule_at"] = self.schedule_at
        if self.queueing_lock is not None:
            options["queueing_lock"] = self.queueing_lock
        return app.configure_task(self.task_name, **options).make_new_job(**self.kwargs)


def defer(
    task_name: str,
    *,
    schedule_at: datetime | None = None,
    queueing_lock: str | None = None,
    **task_kwargs: Any,
) -> None:
    """Defer ``task_name`` (by name: the task's module may import the caller) in the current
    database transaction. Raises procrastinate's ``AlreadyEnqueued`` for a queueing lock held."""
    # Through Django's connection whatever connector the app runs with (see above).
    _in_transaction().defer_job(
        job=Deferral(task_name, task_kwargs, schedule_at, queueing_lock).job()
    )


def defer_all(deferrals: Sequence[Deferral]) -> None:
    """Defer many jobs in one INSERT in the current transaction (a whistle's new summonses'
    first steps, whose queueing locks no job can hold yet)."""
    if deferrals:
        _in_transaction().batch_defer_jobs(jobs=[d.job() for d in deferrals])


def defer_once(deferral: Deferral) -> None:
    """Defer a chain's step unless it is already queued (a step that ran twice, a chain
    restarted): in a savepoint, so the refused INSERT leaves the caller's transaction usable."""
    from django.db import transaction
    from procrastinate.exceptions import AlreadyEnqueued

    try:
        with transaction.atomic():
            defer_all([deferral])
    except AlreadyEnqueued:
        pass  # the step is already waiting for its moment


@functools.cache
def _in_transaction() -> JobManager:
    from procrastinate.contrib.django.django_connector import DjangoConnector

    return JobManager(DjangoConnector())


@app.periodic(cron=f"* * * * * */{settings.WHISTLE_JOB_SWEEP_SECONDS}", periodic_id="jobs-stalled")
@app.task(queue="deadlines", queueing_lock="jobs-retry-stalled", pass_context=True)
async def retry_stalled_jobs(context: JobContext, timestamp: int) -> int:
    manager = context.app.job_manager
    stalled = await manager.get_stalled_jobs(
        seconds_since_heartbeat=settings.WHISTLE_WORKER_STALLED_AFTER
    )
    for job in stalled:
        log.warning(
            "job %s %s on %s was left running by a worker that stopped; retrying it",
            job.id,
            job.task_name,
            job.queue,
        )
        try:
            await manager.retry_job(job)
        except psycopg.errors.UniqueViolation:
            # A job with the same queueing lock already waits (a periodic sweep deferred again
            # meanwhile): that one does the work; close this one instead of leaving it doing.
            await manager.finish_job(job, status=Status.FAILED, delete_job=False)
    return len(stalled)
