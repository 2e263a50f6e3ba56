"""Jobs of the streams app, run by `whistle worker` (procrastinate, in PostgreSQL)."""

from __future__ import annotations

from procrastinate.contrib.django import app

from streams import devices, ingest


@app.periodic(cron="* * * * *", periodic_id="devices-mark-stale")
@app.task(queue="default", queueing_lock="devices-mark-stale")
def mark_stale_devices(timestamp: int) -> int:
    return devices.devices_mark_stale()


@app.periodic(cron="17 3 * * *", periodic_id="dead-letters-expire")
@app.task(queue="default", queueing_lock="dead-letters-expire")
def expire_dead_letters(timestamp: int) -> int:
    return ingest.dead_letters_expire()
