"""A summons' life: the department acknowledges, checks in on site and reports done; the
township accepts the work (验收) or returns it, or releases the department."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from command import clock
from command.errors import TransitionNotAllowed
from command.org.models import User
from command.timeline.actions import Action
from command.timeline.models import TimelineEntry
from incidents.models import Incident, Summons
from incidents.services.common import (
    record,
    require_member,
    require_officer,
    summons_for_update,
)
from incidents.services.deadlines import schedule_finish_chain
from incidents.services.incidents import set_incident_status
from incidents.services.pushes import announce_summons


def summons_changed(
    summons: Summons,
    before: str,
    action: Action,
    *,
    actor: User | None,
    source: str,
    fields: Sequence[str],
    after: dict[str, Any] | None = None,
    time: datetime | None = None,
    key_suffix: str = "",
) -> None:
    if summons.page_at is not None and summons.status != Summons.Status.NOTIFIED:
        summons.page_at = None  # answered: its escalation chain stops here
        fields = [*fields, "page_at"]
    summons.save(update_fields=["status", *fields])
    incident = summons.whistle.incident
    record(
        summons,
        incident.township_id,
        action,
        actor=actor,
        source=source,
        before={"status": before},
        after={"status": summons.status, **(after or {})},
        time=time,
    )
    announce_summons(summons, action, key_suffix)


def summons_acknowledge(
    *, actor: User, summons: Summons, source: str = TimelineEntry.Source.WEB
) -> Summons:
    require_member(actor, summons.department_id)
    with transaction.atomic():
        summons = summons_for_update(summons)
        if summons.status != Summons.Status.NOTIFIED:
            raise TransitionNotAllowed(
                _("This summons is already %(status)s.") % {"status": summons.get_status_display()},
                code="summons_not_notified",
            )
        summons.status = Summons.Status.ACKNOWLEDGED
        summons.acknowledged_at = clock.now()
        summons_changed(
            summons,
            Summons.Status.NOTIFIED,
            Action.SUMMONS_ACKNOWLEDGED,
            actor=actor,
            source=source,
            fields=["acknowledged_at"],
        )
    return summons


def summons_check_in(
    *,
    actor: User,
    summons: Summons,
    latitude: float | None = None,
    longitude: float | None = None,
    source: str = TimelineEntry.Source.WEB,
) -> Summons:
    """报到: the department is on site. Checking in acknowledges too, if it had not."""
    require_member(actor, summons.department_id)
    with transaction.atomic():
        summons = summons_for_update(summons)
        if summons.status not in Summons.WAITING_STATUSES:
            raise TransitionNotAllowed(
                _("This summons is already %(status)s.") % {"status": summons.get_status_display()},
                code="summons_not_waiting",
            )
        before = summons.status
        now = clock.now()
        summons.status = Summons.Status.CHECKED_IN
        summons.acknowledged_at = summons.acknowledged_at or now
        summons.checked_in_at = now
        summons.checked_in_by = actor
        summons.check_in_latitude = latitude
        summons.check_in_longitude = longitude
        on_time = now <= summons.check_in_deadline
        summons_changed(
            summons,
            before,
            Action.SUMMONS_CHECKED_IN,
            actor=actor,
            source=source,
            fields=[
                "acknowledged_at",
                "checked_in_at",
                "checked_in_by",
                "check_in_latitude",
                "check_in_longitude",
            ],
            after={"on_time": on_time, "position": [latitude, longitude]},
            time=now,
        )
        incident = Incident.objects.select_for_update().get(pk=summons.whistle.incident_id)
        if incident.status == Incident.Status.DISPATCHED:
            set_incident_status(
                incident,
                Incident.Status.ON_SITE,
                actor=actor,
                source=source,
                action=Action.INCIDENT_ON_SITE,
                time=now,  # one moment with the check-in, for a replay
            )
    return summons


def summons_done(
    *, actor: User, summons: Summons, note: str = "", source: str = TimelineEntry.Source.WEB
) -> Summons:
    require_member(actor, summons.department_id)
    with transaction.atomic():
        summons = summons_for_update(summons)
        if summons.status != Summons.Status.CHECKED_IN:
            raise TransitionNotAllowed(
                _("Report done only after checking in on site."), code="summons_not_on_site"
            )
        summons.status = Summons.Status.DONE
        summons.done_at = clock.now()
        summons.done_note = note
        summons_changed(
            summons,
            Summons.Status.CHECKED_IN,
            Action.SUMMONS_DONE,
            actor=actor,
            source=source,
            fields=["done_at", "done_note"],
            # The note is part of the record a supervisor replays.
            after={"note": note} if note else None,
            key_suffix=f":{summons.returned_count}",
        )
    return summons


def _require_done(summons: Summons) -> None:
    if summons.status != Summons.Status.DONE:
        raise TransitionNotAllowed(
            _("Only work reported done can be accepted or returned; this summons is %(status)s.")
            % {"status": summons.get_status_display()},
            code="summons_not_done",
        )


def summons_accept(
    *, actor: User, summons: Summons, source: str = TimelineEntry.Source.WEB
) -> Summons:
    """验收: the township accepts the department's work; the department is free to go."""
    with transaction.atomic():
        summons = summons_for_update(summons)
        require_officer(actor, summons.whistle.incident.township)
        _require_done(summons)
        summons.status = Summons.Status.ACCEPTED
        summons.accepted_at = clock.now()
        summons.accepted_by = actor
        summons_changed(
            summons,
            Summons.Status.DONE,
            Action.SUMMONS_ACCEPTED,
            actor=actor,
            source=source,
            fields=["accepted_at", "accepted_by"],
            after={"returned": summons.returned_count},
        )
    return summons


def summons_return(
    *, actor: User, summons: Summons, reason: str, source: str = TimelineEntry.Source.WEB
) -> Summons:
    """The township does not accept the work: the department is back on site, and the finishing
    clock keeps running from the whistle (a return buys no time)."""
    if not reason.strip():
        raise TransitionNotAllowed(_("Returning needs a reason."), code="reason_missing")
    with transaction.atomic():
        summons = summons_for_update(summons)
        require_officer(actor, summons.whistle.incident.township)
        _require_done(summons)
        summons.status = Summons.Status.CHECKED_IN
        summons.returned_count += 1
        summons.return_reason = reason.strip()[:300]
        summons_changed(
            summons,
            Summons.Status.DONE,
            Action.SUMMONS_RETURNED,
            actor=actor,
            source=source,
            fields=["returned_count", "return_reason"],
            after={"reason": summons.return_reason, "returned": summons.returned_count},
            key_suffix=f":{summons.returned_count}",
        )
        # Its finishing chain stopped when it reported done; it goes on from where it was.
        schedule_finish_chain(summons)
    return summons


def summons_release(
    *, actor: User, summons: Summons, reason: str, source: str = TimelineEntry.Source.WEB
) -> Summons:
    """The officer lets a department go before it has reported done; the reason is kept."""
    if not reason.strip():
        raise TransitionNotAllowed(_("Releasing needs a reason."), code="reason_missing")
    with transaction.atomic():
        summons = summons_for_update(summons)
        require_officer(actor, summons.whistle.incident.township)
        if summons.status not in Summons.OPEN_STATUSES:
            raise TransitionNotAllowed(
                _("This summons is already %(status)s.") % {"status": summons.get_status_display()},
                code="summons_closed",
            )
        before = summons.status
        summons.status = Summons.Status.RELEASED
        summons.released_at = clock.now()
        summons.release_reason = reason.strip()
        summons_changed(
            summons,
            before,
            Action.SUMMONS_RELEASED,
            actor=actor,
            source=source,
            fields=["released_at", "release_reason"],
            after={"reason": summons.release_reason},
        )
    return summons
