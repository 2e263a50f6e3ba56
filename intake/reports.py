"""Grid officers' reports (网格上报): filed from a phone, each one an alert on the duty board at
once. The report form and Open311 arrive with the boards and open-formats work."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _

from alerts.rules import AlertSpec
from alerts.services import alert_raise
from command import clock
from command.errors import ActionForbidden, TransitionNotAllowed
from command.org import policy
from command.org.models import Category, Grid, User
from incidents.models import Incident, Photo
from incidents.photos import own_photo_ids, photos_attach
from streams.models import GridReport

# A report is a person's judgement, not a sensor's: it starts as a major alert unless the
# category is one where minutes count.
URGENT_CATEGORIES = {"fire", "flood", "gas-leak", "production-safety"}
MAX_PHOTOS = 4


def report_file(
    *,
    reporter: User,
    category: Category,
    description: str,
    grid: Grid | None = None,
    latitude: float | None = None,
    longitude: float | None = None,
    photos: list[str] | None = None,
) -> GridReport:
    if not policy.can_file_report(reporter):
        raise ActionForbidden(_("Only grid officers file reports."))
    if not description.strip():
        raise TransitionNotAllowed(_("Describe what you found."), code="description_missing")
    if grid is not None and not policy.can_file_report(reporter, grid):
        raise ActionForbidden(_("That grid is in another township."))
    photos = list(photos or [])
    if len(photos) > MAX_PHOTOS or not all(own_photo_ids([p]) for p in photos):
        raise TransitionNotAllowed(
            _("Attach up to %(n)d photos uploaded with the report.") % {"n": MAX_PHOTOS},
            code="photos_invalid",
        )
    if grid is None:
        grid = reporter.headed_grids.first() or reporter.grids.first()
    with transaction.atomic():
        photos_attach(urls=photos, township=reporter.township, actor=reporter)
        report = GridReport.objects.create(
            township_id=reporter.township_id,
            grid=grid,
            reporter=reporter,
            category=category,
            description=description.strip(),
            latitude=latitude,
            longitude=longitude,
            photos=photos,
        )
        detail = {"report": report.pk, "reporter": reporter.username}
        if photos:
            # The alert's snapshot: the board shows it, and an incident opened from the alert
            # takes it as evidence.
            detail |= {"snapshot": photos[0], "photos": photos}
        alert_id, _created = alert_raise(
            spec=AlertSpec(
                township_id=reporter.township_id,
                category_code=category.code,
                severity="critical" if category.code in URGENT_CATEGORIES else "major",
                source="report",
                title=description.strip()[:200],
                # Every report is its own alert: two officers seeing two problems are two.
                dedupe_key=f"report:{report.pk}",
                time=clock.now(),
                grid_id=grid.pk if grid else None,
                detail=detail,
            ),
            source="web",
        )
        report.alert_id = alert_id
        report.save(update_fields=["alert"])
    return report


def photos_expire_orphans() -> int:
    """Delete photos uploaded more than ``WHISTLE_PHOTO_ORPHAN_HOURS`` ago that nothing uses: no
    report and no incident's evidence names them (an upload whose report was never sent). Their
    files go with them. Returns how many."""
    cutoff = clock.now() - timedelta(hours=settings.WHISTLE_PHOTO_ORPHAN_HOURS)
    deleted = 0
    for photo in Photo.objects.filter(township__isnull=True, uploaded_at__lt=cutoff):
        url = photo.url
        if (
            GridReport.objects.filter(photos__contains=[url]).exists()
            or Incident.objects.filter(evidence__contains=[{"url": url}]).exists()
        ):
            continue
        photo.file.delete(save=False)
        photo.delete()
        deleted += 1
    return deleted
