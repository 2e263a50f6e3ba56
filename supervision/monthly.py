"""The monthly report pushed to supervisors (定期推送): when it is due, generating it, and
sending it once.

On the first working day of a month (Monday to Friday on the township's clock, skipping the
dates of ``WHISTLE_REPORT_HOLIDAYS``), from ``WHISTLE_REPORT_HOUR`` on, the worker's hourly job
(``supervision.tasks.monthly_reports``) generates each township's report for the month before
and sends it to the township's and the district's supervisors: a console notification and an
e-mail with the workbook attached (``alerts.delivery.people.page``, subject "report").

Once only: a report is one row per township and month (unique), generated and sent in one
transaction under that row's lock, so a job that runs twice finds it sent and does nothing, and
a worker killed mid-run leaves nothing behind (the next hourly run does it all). A day later
than the first working day still sends a report not yet sent: a worker down that day catches
up.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils.translation import gettext as _

from alerts.delivery import email, people, wording
from alerts.models import Notification
from command import clock
from command.org import oncall
from command.org.models import Township
from command.timeline.models import TimelineEntry
from command.timeline.records import timeline_record
from supervision import reports
from supervision.models import MonthlyReport
from supervision.reports import Month

log = logging.getLogger("whistle.reports")

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def holidays() -> set[date]:
    """Public holidays on which no report is sent (``WHISTLE_REPORT_HOLIDAYS``)."""
    return {date.fromisoformat(d) for d in settings.WHISTLE_REPORT_HOLIDAYS}


def first_working_day(month: Month, skip: set[date] | None = None) -> date:
    """The month's first Monday to Friday that is not a holiday."""
    skip = holidays() if skip is None else skip
    day = month.first
    while day.weekday() >= 5 or day in skip:
        day += timedelta(days=1)
    return day


def month_due(township: Township, now: datetime | None = None) -> Month | None:
    """The month whose report is due now on the township's clock (the month before), or None
    before the first working day's ``WHISTLE_REPORT_HOUR``."""
    local = (now or clock.now()).astimezone(township.zone)
    this = Month.of(local.date())
    sending = datetime.combine(
        first_working_day(this), time(settings.WHISTLE_REPORT_HOUR), tzinfo=township.zone
    )
    return this.previous() if local >= sending else None


def report_path(township: Township, month: Month | str) -> str:
    return reverse("monthly_report", args=[township.code, str(month)])


def monthly_report_generate(
    *, township: Township, month: Month, language: str | None = None
) -> MonthlyReport:
    """Generate (or generate again) the township's report for ``month``: figures and workbook,
    in ``language`` (the platform's by default). Its sending state is kept."""
    with transaction.atomic():
        report, _created = MonthlyReport.objects.select_for_update().get_or_create(
            township=township,
            month=str(month),
            defaults={"generated_at": clock.now(), "workbook": b""},
        )
        _fill(report, township, month, language or settings.LANGUAGE_CODE)
    return report


def _fill(report: MonthlyReport, township: Township, month: Month, language: str) -> None:
    from django.utils import translation

    with translation.override(language):
        figures = reports.monthly_figures(township=township, month=month)
        book = reports.workbook(figures)
    report.figures = figures
    report.workbook = book
    report.language = language
    report.generated_at = clock.now()
    report.save(update_fields=["figures", "workbook", "language", "generated_at"])
    timeline_record(
        township_id=township.pk,
        subject_type="report",
        subject_id=report.pk,
        action="report.generated",
        source=TimelineEntry.Source.SYSTEM,
        after={"month": str(month), "size": len(book)},
    )


def monthly_report_publish(*, township: Township, month: Month) -> str:
    """Generate the township's report for ``month`` and send it to its supervisors, unless it
    has been sent: "sent", "already sent", or "nobody" (sent to no one: no supervisor)."""
    with transaction.atomic():
        report, _created = MonthlyReport.objects.get_or_create(
            township=township,
            month=str(month),
            defaults={"generated_at": clock.now(), "workbook": b""},
        )
        # The lock a second run waits on; it then finds the report sent.
        report = MonthlyReport.objects.select_for_update().get(pk=report.pk)
        if report.status == MonthlyReport.Status.SENT:
            return "already sent"
        _fill(report, township, month, settings.LANGUAGE_CODE)
        paged = _send(report, township)
        report.status = MonthlyReport.Status.SENT
        report.sent_at = clock.now()
        report.save(update_fields=["status", "sent_at"])
    log.info("monthly report %s %s sent (%d notifications)", township.code, month, len(paged))
    return "sent" if paged else "nobody"


def _send(report: MonthlyReport, township: Township) -> list[Notification]:
    recipients = [
        *(
            people.Recipient(user, "township_supervisors")
            for user in oncall.township_supervisors(township)
        ),
        *(
            people.Recipient(user, "district_supervisors")
            for user in oncall.district_supervisors(township)
        ),
    ]
    figures = report.figures
    settled = {level["level"]: level for level in figures["settled"]["levels"]}
    with wording.official_language():
        text = _(
            "%(township)s, %(month)s: %(intake)d intake items, %(closed)d incidents closed "
            "(%(grid)s settled in the grid), %(overdue)d overdue, %(orders)d supervision orders."
        ) % {
            "township": figures["township"]["name"],
            "month": report.month,
            "intake": figures["intake"]["total"],
            "closed": figures["settled"]["total"],
            "grid": _percent(settled.get("grid", {}).get("share")),
            "overdue": figures["overdue"]["check_in_overdue"],
            "orders": figures["overdue"]["orders"],
        }
    cause = people.Cause(
        township_id=township.pk,
        subject_type="report",
        subject_id=report.pk,
        incident_id=None,
        text=text,
        link=report_path(township, report.month),
        # The month, not the row: a report generated again is the same report.
        key=f"report:{township.pk}:{report.month}",
    )
    return people.page(cause, recipients, only=["email"])


def _percent(share: float | None) -> str:
    return "—" if share is None else f"{share:.0%}"


def monthly_reports_due(now: datetime | None = None) -> dict[str, str]:
    """Publish every township's report that is due and not yet sent, each in its own
    transaction: township code → outcome."""
    done: dict[str, str] = {}
    for township in Township.objects.order_by("code"):
        month = month_due(township, now)
        if month is None:
            continue
        if MonthlyReport.objects.filter(
            township=township, month=str(month), status=MonthlyReport.Status.SENT
        ).exists():
            continue
        try:
            done[township.code] = monthly_report_publish(township=township, month=month)
        except Exception:
            # One township's failure must not keep the others' reports back; the next
            # hourly run tries it again.
            log.exception("monthly report %s %s failed", township.code, month)
            done[township.code] = "failed"
    return done


def attachments(notification: Notification) -> list[email.Attachment]:
    """The e-mail of a report carries its workbook."""
    report = MonthlyReport.objects.filter(pk=notification.subject_id).first()
    if report is None:
        return []
    return [email.Attachment(reports.filename(report.figures), bytes(report.workbook), XLSX)]


email.register_attachments("report", attachments)
