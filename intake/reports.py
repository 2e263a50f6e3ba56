"""The intake (民情受理): every channel the public's demands arrive by feeds one service.

A grid officer's report from the phone page, a call the duty officer takes at the desk, a
12345 or 12315 ticket a hotline system files by Open311, a mailbox message, someone at the
counter: each is an intake item (``streams.models.GridReport``) and an alert on the duty board
at once, or, when the duty officer says so, an incident directly. A call about the same thing
as an open alert (same category, same grid or within 300 m, within the window) is marked as
possibly its duplicate, for the officer to merge with one click."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from alerts.models import Alert
from alerts.rules import AlertSpec
from alerts.selectors import alert_duplicate_of
from alerts.services import alert_raise
from command import clock
from command.errors import ActionForbidden, TransitionNotAllowed
from command.org import policy
from command.org.models import Category, Grid, Township, User
from command.text import phone_masked
from incidents.models import Incident, Photo
from incidents.photos import own_photo_ids, photos_attach
from incidents.services.incidents import incident_open
from streams.models import GridReport

Channel = GridReport.Channel

# A report is a person's judgement, not a sensor's: it starts as a major alert unless the
# category is one where minutes count.
URGENT_CATEGORIES = {"fire", "flood", "gas-leak", "production-safety"}
MAX_PHOTOS = 4
# The specification's cap on an Open311 description, and so on every channel's.
DESCRIPTION_LIMIT = 4000
# What a hotline system may say a ticket came by; calls and visitors are the desk's.
HOTLINE_CHANNELS = frozenset(
    {Channel.HOTLINE_12345, Channel.HOTLINE_12315, Channel.MAILBOX, Channel.OTHER}
)
# What the duty desk files: everything but a grid officer's own report.
DESK_CHANNELS = frozenset(set(Channel) - {Channel.GRID})
_PHONE = re.compile(r"[0-9+\-() ]{3,40}")
_TICKET_MAX = GridReport._meta.get_field("external_id").max_length
_CALLER_NAME_MAX = GridReport._meta.get_field("caller_name").max_length


@dataclass(frozen=True, slots=True)
class Filed:
    """What filing gave: the item, whether it is new (a ticket filed again is not), and the
    incident it became when the desk opened one directly."""

    report: GridReport
    created: bool
    incident: Incident | None = None


def caller_shown(report: GridReport) -> str:
    """The caller as every screen and list shows them: name and the phone masked."""
    return " ".join(p for p in (report.caller_name, phone_masked(report.caller_phone)) if p)


def grid_at(township_id: int, lat: float, lon: float) -> Grid | None:
    """The grid whose polygon holds the point (ray casting over the outer ring)."""
    for grid in Grid.objects.filter(township_id=township_id).order_by("kind", "code"):
        polygon = grid.polygon if isinstance(grid.polygon, dict) else {}
        ring = (polygon.get("coordinates") or [[]])[0]
        inside = False
        for (x1, y1, *_rest1), (x2, y2, *_rest2) in zip(ring, ring[1:] + ring[:1], strict=True):
            if (y1 > lat) != (y2 > lat) and lon < x1 + (lat - y1) * (x2 - x1) / (y2 - y1):
                inside = not inside
        if inside:
            return grid
    return None


def _filing_township(actor: User, channel: str, township: Township | None) -> Township:
    """Where ``actor`` may file an item of ``channel``, or the refusal."""
    if channel == Channel.GRID:
        if not policy.can_file_report(actor):
            raise ActionForbidden(_("Only grid officers file reports."))
        return actor.township
    if policy.can_file_hotline(actor):
        if township is not None and township.pk != actor.township_id:
            raise ActionForbidden(_("A hotline system files into its own township only."))
        if channel not in HOTLINE_CHANNELS:
            raise ActionForbidden(
                _("A hotline system files hotline tickets and messages, not calls or visits.")
            )
        return actor.township
    if township is None or not policy.can_command(actor, township):
        raise ActionForbidden(_("Only the township's duty officers take calls."))
    if channel not in DESK_CHANNELS:
        raise TransitionNotAllowed(_("Choose how the matter arrived."), code="channel_invalid")
    return township


def intake_file(
    *,
    actor: User,
    category: Category,
    description: str,
    channel: str = Channel.GRID,
    township: Township | None = None,
    grid: Grid | None = None,
    latitude: float | None = None,
    longitude: float | None = None,
    photos: list[str] | None = None,
    caller_name: str = "",
    caller_phone: str = "",
    external_id: str = "",
    open_incident: bool = False,
    source: str = "web",
) -> Filed:
    """File an intake item of any channel; it is an alert on the duty board at once.

    Grid officers file their own reports (channel ``grid``, their township); the township's
    duty officers file calls, tickets and visits at the desk (``township``), and may make an
    incident of it directly; a hotline system's account files its tickets into its township.
    A ticket number (``external_id``) already filed by the same channel in the township gives
    back that item, not a second one.
    """
    if channel not in Channel.values:
        raise TransitionNotAllowed(_("Choose how the matter arrived."), code="channel_invalid")
    township = _filing_township(actor, channel, township)
    description = description.strip()
    if not description:
        raise TransitionNotAllowed(_("Describe what you found."), code="description_missing")
    if len(description) > DESCRIPTION_LIMIT:
        raise TransitionNotAllowed(
            _("Keep the description within %(n)d characters.") % {"n": DESCRIPTION_LIMIT},
            code="description_long",
        )
    if grid is not None and grid.township_id != township.pk:
        raise ActionForbidden(_("That grid is in another township."))
    caller_name, caller_phone = caller_name.strip(), caller_phone.strip()
    external_id = external_id.strip()
    if caller_phone and not _PHONE.fullmatch(caller_phone):
        raise TransitionNotAllowed(
            _("A phone number has digits, spaces, +, - and brackets only."),
            code="caller_phone_invalid",
        )
    if len(caller_name) > _CALLER_NAME_MAX or len(external_id) > _TICKET_MAX:
        raise TransitionNotAllowed(
            _("The caller's name or the ticket number is too long."), code="caller_too_long"
        )
    if open_incident and not policy.can_command(actor, township):
        raise ActionForbidden(_("Only the township's duty officers open incidents."))
    photos = list(photos or [])
    if len(photos) > MAX_PHOTOS or not all(own_photo_ids([p]) for p in photos):
        raise TransitionNotAllowed(
            _("Attach up to %(n)d photos uploaded with the report.") % {"n": MAX_PHOTOS},
            code="photos_invalid",
        )
    if external_id:
        filed = _ticket(township, channel, external_id)
        if filed is not None:
            return Filed(filed, created=False)
    if grid is None and channel == Channel.GRID:
        grid = actor.headed_grids.first() or actor.grids.first()
    elif grid is None and latitude is not None and longitude is not None:
        grid = grid_at(township.pk, latitude, longitude)
    now = clock.now()
    with transaction.atomic():
        try:
            # A savepoint: the same ticket filed at the same moment by a retry loses the race
            # on the unique constraint and answers with the winner's item.
            with transaction.atomic():
                report = GridReport.objects.create(
                    township=township,
                    channel=channel,
                    grid=grid,
                    reporter=actor,
                    caller_name=caller_name,
                    caller_phone=caller_phone,
                    external_id=external_id,
                    category=category,
                    description=description,
                    latitude=latitude,
                    longitude=longitude,
                    photos=photos,
                    created_at=now,
                )
        except IntegrityError:
            filed = _ticket(township, channel, external_id) if external_id else None
            if filed is None:
                raise
            return Filed(filed, created=False)
        photos_attach(urls=photos, township=township, actor=actor)
        alert_id = _raise(report, township=township, now=now, source=source)
        report.alert_id = alert_id
        report.save(update_fields=["alert"])
        incident = None
        if open_incident:
            alert = Alert.objects.select_related("township").get(pk=alert_id)
            incident = incident_open(
                actor=actor,
                township=township,
                category=category,
                severity=alert.severity,
                title=alert.title,
                description=description,
                grid=grid,
                latitude=latitude,
                longitude=longitude,
                alerts=[alert],
                source=source,
            )
    return Filed(report, created=True, incident=incident)


def _ticket(township: Township, channel: str, external_id: str) -> GridReport | None:
    return GridReport.objects.filter(
        township=township, channel=channel, external_id=external_id
    ).first()


def _raise(report: GridReport, *, township: Township, now: datetime, source: str) -> int:
    category = report.category
    detail: dict = {"report": report.pk, "reporter": report.reporter.username}
    if report.channel != Channel.GRID:
        detail["channel"] = report.channel
        caller = caller_shown(report)
        if caller:
            # Masked here, so no board, timeline row or push ever carries the whole number.
            detail["caller"] = caller
    duplicate_of = alert_duplicate_of(
        township_id=township.pk,
        category_code=category.code,
        since=now - timedelta(hours=settings.WHISTLE_INTAKE_DUPLICATE_HOURS),
        grid_id=report.grid_id,
        latitude=report.latitude,
        longitude=report.longitude,
    )
    if duplicate_of is not None:
        detail["duplicate_of"] = duplicate_of
    if report.photos:
        # The alert's snapshot: the board shows it, and an incident opened from the alert
        # takes it as evidence.
        detail |= {"snapshot": report.photos[0], "photos": report.photos}
    alert_id, _created = alert_raise(
        spec=AlertSpec(
            township_id=township.pk,
            category_code=category.code,
            severity="critical" if category.code in URGENT_CATEGORIES else "major",
            source=Alert.Source.REPORT if report.channel == Channel.GRID else Alert.Source.INTAKE,
            title=report.description[:200],
            # Every item is its own alert: two callers may see two problems. A likely repeat
            # is only suggested (duplicate_of); the officer merges it.
            dedupe_key=f"report:{report.pk}",
            time=now,
            grid_id=report.grid_id,
            detail=detail,
        ),
        source=source,
    )
    return alert_id


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
    """A grid officer's report (网格上报) from the phone page, the API or Open311."""
    return intake_file(
        actor=reporter,
        channel=Channel.GRID,
        category=category,
        description=description,
        grid=grid,
        latitude=latitude,
        longitude=longitude,
        photos=photos,
    ).report


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
