"""`whistle worker`: the PostgreSQL job queue's worker (procrastinate).

Deadlines and deliveries are served by separate procrastinate workers ("pools"), each with its
own queues and concurrency, so a department's server that is slow or down can take up every
delivery slot and still not delay another township's reminder or escalation. By default one
process runs both pools (the demo, a small site); `--queues` runs one, as compose.yaml does
with a service per pool.

A pool that stops by itself (its database connection lost for longer than the listener and
heartbeat can bear) is started again with backoff, and its unfinished jobs come back through
the stalled-job recovery (``command.jobs``); the process only ends when asked to.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("whistle.worker")

DEADLINE_QUEUES = ("deadlines", "default")
# The monthly reports (supervision.tasks) share the deliveries pool: neither must leave on the
# second, and a report taking seconds must not hold a deadline slot.
DELIVERY_QUEUES = ("deliveries", "reports")
# Pages to people (SMS, e-mail, work groups): a pool of their own, so a slow SMS gateway holds
# up neither the escalation steps nor the departments' webhooks, nor they a page.
NOTIFY_QUEUES = ("notifications",)
# Deadline steps are short transactions; two at once lets one wait on a row lock (an officer
# changing the same summons) without holding up the others.
DEADLINE_CONCURRENCY = 2
# The most a pool waits before starting again after stopping on an error.
RESTART_BACKOFF_MAX = 30.0
# Poll for due jobs this often: a job deferred for later fires within it (a job for now wakes
# its pool at once through LISTEN/NOTIFY). The deadline pool polls more often
# (WHISTLE_DEADLINE_POLL_SECONDS): an escalation step must leave within a second of its moment.
POLLING_INTERVAL = 2.0


@dataclass(frozen=True)
class Pool:
    name: str
    queues: tuple[str, ...]
    concurrency: int
    polling: float = POLLING_INTERVAL


def pools_for(queues: Sequence[str] | None = None, concurrency: int | None = None) -> list[Pool]:
    from django.conf import settings

    deadline_poll = settings.WHISTLE_DEADLINE_POLL_SECONDS
    if queues:
        name = "+".join(queues)
        polling = deadline_poll if set(queues) & set(DEADLINE_QUEUES) else POLLING_INTERVAL
        return [Pool(name, tuple(queues), concurrency or DEADLINE_CONCURRENCY, polling)]
    return [
        Pool("deadlines", DEADLINE_QUEUES, DEADLINE_CONCURRENCY, deadline_poll),
        Pool("deliveries", DELIVERY_QUEUES, concurrency or settings.WHISTLE_DELIVERY_CONCURRENCY),
        Pool("notifications", NOTIFY_QUEUES, settings.WHISTLE_NOTIFY_CONCURRENCY),
    ]


def run_worker(
    stop: threading.Event | None = None,
    *,
    queues: Sequence[str] | None = None,
    concurrency: int | None = None,
) -> None:
    """Run jobs until ``stop`` is set (or until SIGINT/SIGTERM when run on its own)."""
    from procrastinate.contrib.django import app

    pools = pools_for(queues, concurrency)
    with app.replace_connector(app.connector.get_worker_connector()):
        asyncio.run(_run(app, pools, stop))


async def _run(app: Any, pools: list[Pool], stop: threading.Event | None) -> None:
    loop = asyncio.get_running_loop()
    # Sync jobs run in the loop's default executor: give every slot of every pool a thread of
    # its own, so deliveries blocked on a slow server cannot starve the deadline pool.
    threads = sum(pool.concurrency for pool in pools) + 2
    loop.set_default_executor(ThreadPoolExecutor(threads, thread_name_prefix="job"))
    stopping = asyncio.Event()
    if stop is None:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stopping.set)
    else:

        def watch() -> None:
            stop.wait()
            loop.call_soon_threadsafe(stopping.set)

        threading.Thread(target=watch, name="worker-stop", daemon=True).start()
    try:
        async with app.open_async():
            await asyncio.gather(
                *(_serve(app, pool, stopping) for pool in pools), _beat(app, stopping)
            )
    finally:
        if stop is not None:
            stop.set()  # ends the watcher thread


async def _beat(app: Any, stopping: asyncio.Event) -> None:
    """`whistle healthcheck worker`: beat while this loop runs and reaches the job queue's
    database; a stuck loop or a lost database stops the beat."""
    from command import health

    while not stopping.is_set():
        try:
            await asyncio.wait_for(app.connector.execute_query_one_async("SELECT 1"), 10)
        except Exception as exc:
            log.warning("worker health: the job queue's database did not answer (%s)", exc)
        else:
            health.beat("worker")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), health.BEAT_EVERY)


async def _serve(app: Any, pool: Pool, stopping: asyncio.Event) -> None:
    """Run one pool until ``stopping``; start it again whenever it stops on its own."""
    from django.conf import settings

    loop = asyncio.get_running_loop()
    backoff = 1.0
    while not stopping.is_set():
        started = loop.time()
        worker = asyncio.create_task(
            app.run_worker_async(
                queues=list(pool.queues),
                concurrency=pool.concurrency,
                name=pool.name,
                install_signal_handlers=False,
                fetch_job_polling_interval=pool.polling,
                update_heartbeat_interval=settings.WHISTLE_WORKER_HEARTBEAT,
                stalled_worker_timeout=settings.WHISTLE_WORKER_STALLED_AFTER,
            )
        )
        stopper = asyncio.create_task(stopping.wait())
        await asyncio.wait({worker, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if stopping.is_set():
            worker.cancel()  # procrastinate stops gracefully: running jobs finish
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await worker
            return
        stopper.cancel()
        error = None if worker.cancelled() else worker.exception()
        if loop.time() - started > 60:
            backoff = 1.0
        log.error(
            "worker pool %s (%s) stopped by itself (%s); starting it again in %.0f s",
            pool.name,
            ",".join(pool.queues),
            f"{type(error).__name__}: {error}" if error else "a side task failed",
            backoff,
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), backoff)
        backoff = min(backoff * 2, RESTART_BACKOFF_MAX)
