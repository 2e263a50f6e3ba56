"""Jobs of the streams app, run by `whistle worker` (procrastinate, in PostgreSQL)."""

from __future__ import annotations

from procrastinate.contrib.django import app

from streams import devices


@app.periodic(cron="* * * * *", periodic_id="devices-mark-stale")
@app.task(queue="default", queueing_lock="devices-mark-stale")
def mark_stale_devices(timestamp: int) -> int:
    return devices.devices_mark_stale()
