"""Jobs of intake, run by `whistle worker` (procrastinate, in PostgreSQL)."""

from __future__ import annotations

from procrastinate.contrib.django import app

from intake import reports


@app.periodic(cron="43 * * * *", periodic_id="photos-expire-orphans")
@app.task(
    queue="default",
    queueing_lock="photos-expire-orphans",
    aliases=["streams.tasks.expire_orphan_photos"],  # its name before intake had an app
)
def expire_orphan_photos(timestamp: int) -> int:
    return reports.photos_expire_orphans()
