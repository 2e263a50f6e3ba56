"""Jobs that keep the job queue itself healthy (procrastinate, in PostgreSQL).

A worker writes a heartbeat every ``WHISTLE_WORKER_HEARTBEAT`` seconds. A worker that stops
without unregistering (SIGKILL, out of memory, a host that vanished, a connection cut for good)
leaves its jobs in ``doing``; nothing in procrastinate picks them up by itself. This periodic
job puts the jobs of every worker silent for ``WHISTLE_WORKER_STALLED_AFTER`` seconds back in
the queue, where any live worker takes them. Every job here is idempotent (deadlines re-read
their summons under a lock, deliveries check their row), so running one again is safe.
"""

from __future__ import annotations

import logging

import psycopg.errors
from django.conf import settings
from procrastinate import JobContext
from procrastinate.contrib.django import app
from procrastinate.jobs import Status

log = logging.getLogger("whistle.worker")


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
