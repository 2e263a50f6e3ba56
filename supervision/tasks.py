"""Jobs of the supervision app, run by `whistle worker` (procrastinate, in PostgreSQL)."""

from __future__ import annotations

from procrastinate.contrib.django import app

from supervision import monthly

# Reports have a queue of their own, served by the deliveries pool (command.worker): a
# township's month takes seconds to read and write, which the deadline pool's two slots must
# not wait on.
REPORT_QUEUE = "reports"


# Hourly: the first working day's report goes out from WHISTLE_REPORT_HOUR on in every zone,
# and a run missed (a worker down) is made up by the next.
@app.periodic(cron="7 * * * *", periodic_id="monthly-reports")
@app.task(queue=REPORT_QUEUE, queueing_lock="monthly-reports", pass_context=False)
def monthly_reports(timestamp: int) -> dict[str, str]:
    return monthly.monthly_reports_due()
