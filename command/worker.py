"""`whistle worker`: the PostgreSQL job queue's worker (procrastinate)."""

from __future__ import annotations

import asyncio
import logging
import threading

log = logging.getLogger("whistle.worker")


def run_worker(stop: threading.Event | None = None) -> None:
    """Run jobs until ``stop`` is set (or until SIGINT/SIGTERM when run on its own)."""
    from procrastinate.contrib.django import app

    with app.replace_connector(app.connector.get_worker_connector()):
        asyncio.run(_run(app, stop))


async def _run(app, stop: threading.Event | None) -> None:
    async with app.open_async():
        await _work(app, stop)


async def _work(app, stop: threading.Event | None) -> None:
    worker = asyncio.create_task(app.run_worker_async(install_signal_handlers=stop is None))
    if stop is None:
        await worker
        return
    loop = asyncio.get_running_loop()
    waiter = loop.run_in_executor(None, stop.wait)
    done, _ = await asyncio.wait({worker, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if worker not in done:
        worker.cancel()
        try:
            await worker
        except asyncio.CancelledError:
            pass
    else:
        stop.set()
        await waiter
