"""小事不出格 (the "6" of 631): a grid officer settles a matter of their grid on the spot and
closes it at grid level, or hands it up to the township.

Settling opens an incident from the alert, resolves and closes it at once (settled_level grid,
the officer's note as the feedback, their photos as evidence), in one transaction: the 631
figures (supervision.stats.settled_table) count it where it was settled, and its timeline
says who settled it, where and how. Handing up leaves the alert on the duty board, with the
officer's note and raised to at least major; the incident the township opens from it later is
settled at township level or above (incidents.selectors.settled_level_default)."""

from __future__ import annotations

from django.db import transaction
from django.utils.translation import gettext as _

from alerts.models import Alert
from alerts.services import alert_hand_up
from command.errors import ActionForbidden, TransitionNotAllowed
from command.org import policy
from command.org.models import User
from command.timeline.actions import Action
from command.timeline.models import TimelineEntry
from command.timeline.records import timeline_record
from incidents.models import Incident
from incidents.photos import own_photo_ids
from incidents.services.incidents import (
    incident_add_evidence,
    incident_close,
    incident_open,
    incident_resolve,
)
from intake.reports import MAX_PHOTOS
from streams.models import GridReport

NOTE_MAX = 2000


def _require_open_matter(actor: User, alert: Alert) -> None:
    """``alert`` (locked) is an open matter of ``actor``'s grids, not yet handed up."""
    if not policy.can_settle_in_grid(actor, alert):
        if actor.role != User.Role.GRID_OFFICER:
            raise ActionForbidden(_("Only grid officers settle matters in the grid."))
        raise ActionForbidden(_("This matter is not in your grid."))
    if alert.incident_id or alert.status == Alert.Status.ESCALATED:
        raise TransitionNotAllowed(
            _("This matter is already incident %(id)s of the township.")
            % {"id": alert.incident_id},
            code="alert_in_incident",
        )
    if alert.status == Alert.Status.DISMISSED:
        raise TransitionNotAllowed(
            _("The township dismissed this matter; there is nothing to settle."),
            code="alert_dismissed",
        )
    if alert.status == Alert.Status.MERGED:
        raise TransitionNotAllowed(
            _("This matter was merged into alert %(id)s; settle that one.")
            % {"id": (alert.detail or {}).get("merged_into", "?")},
            code="alert_merged",
        )
    if not alert.is_open:
        raise TransitionNotAllowed(
            _("This matter is %(status)s; there is nothing to settle.")
            % {"status": alert.get_status_display()},
            code=f"alert_{alert.status}",
        )
    if (alert.detail or {}).get("handed_up_by"):
        raise TransitionNotAllowed(
            _("This matter was handed up to the township; it is theirs to settle now."),
            code="alert_handed_up",
        )


def _note(note: str, missing: str) -> str:
    note = note.strip()
    if not note:
        raise TransitionNotAllowed(missing, code="note_missing")
    return note[:NOTE_MAX]


def matter_settle(
    *,
    actor: User,
    alert: Alert,
    note: str,
    photos: list[str] | None = None,
    source: str = TimelineEntry.Source.WEB,
) -> Incident:
    """Settle ``alert`` on the spot: an incident opened, resolved and closed at grid level by
    the grid officer, with ``note`` as its feedback and ``photos`` (addresses the officer
    uploaded through POST /api/v1/photos) as its evidence. Returns the closed incident."""
    note = _note(note, _("Say what was done on the spot."))
    photos = list(photos or [])
    if len(photos) > MAX_PHOTOS or len(own_photo_ids(photos)) != len(photos):
        raise TransitionNotAllowed(
            _("Attach up to %(n)d photos uploaded from the phone.") % {"n": MAX_PHOTOS},
            code="photos_invalid",
        )
    with transaction.atomic():
        locked = (
            Alert.objects.select_for_update(of=("self",))
            .select_related("township", "category", "grid")
            .get(pk=alert.pk)
        )
        _require_open_matter(actor, locked)
        if locked.category is None:
            raise TransitionNotAllowed(
                _("This alert has no category to settle it under; hand it up."),
                code="category_missing",
            )
        report = GridReport.objects.filter(alert=locked).first()
        incident = incident_open(
            actor=actor,
            township=locked.township,
            category=locked.category,
            severity=locked.severity,
            title=locked.title,
            description=report.description if report else "",
            grid=locked.grid,
            latitude=report.latitude if report else None,
            longitude=report.longitude if report else None,
            alerts=[locked],
            source=source,
            in_grid=True,
        )
        for url in photos:
            incident = incident_add_evidence(
                actor=actor,
                incident=incident,
                url=url,
                caption=note[:200],
                kind="photo",
                source=source,
                in_grid=True,
            )
        timeline_record(
            township_id=incident.township_id,
            subject_type="incident",
            subject_id=incident.pk,
            action=Action.INCIDENT_SETTLED_IN_GRID,
            source=source,
            actor_id=actor.pk,
            after={
                "note": note,
                "grid": locked.grid.code if locked.grid else "",
                "photos": len(photos),
            },
        )
        incident_resolve(actor=actor, incident=incident, source=source, in_grid=True)
        incident = incident_close(
            actor=actor,
            incident=incident,
            feedback=note,
            settled_level=Incident.SettledLevel.GRID,
            source=source,
            in_grid=True,
        )
    return incident


def matter_hand_up(
    *, actor: User, alert: Alert, note: str, source: str = TimelineEntry.Source.WEB
) -> Alert:
    """The grid cannot settle ``alert``: it stays on the duty board with the officer's note,
    raised to at least major. Returns the alert."""
    note = _note(note, _("Say why the grid cannot settle it."))
    with transaction.atomic():
        locked = Alert.objects.select_for_update().get(pk=alert.pk)
        _require_open_matter(actor, locked)
        return alert_hand_up(
            alert_id=locked.pk,
            actor_id=actor.pk,
            actor_name=actor.display_name,
            note=note,
            source=source,
        )
