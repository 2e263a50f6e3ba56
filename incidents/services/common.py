"""What every service of this package shares: the timeline row and the board broadcast a change
writes, and the checks of who may act."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.utils.translation import gettext as _

from command import realtime
from command.errors import ActionForbidden
from command.org import policy
from command.org.models import Township, User
from command.timeline.actions import Action
from command.timeline.records import timeline_record
from incidents.models import Incident, Summons, SupervisionOrder, Whistle

log = logging.getLogger("whistle.incidents")


def locked_summonses() -> Any:
    """Summons rows locked for a change, with what every change reads alongside."""
    return Summons.objects.select_for_update(of=("self",)).select_related(
        "whistle__incident__township", "department"
    )


def summons_for_update(summons: Summons) -> Summons:
    return locked_summonses().get(pk=summons.pk)


def record(
    subject: Incident | Whistle | Summons | SupervisionOrder,
    township_id: int,
    action: Action,
    *,
    actor: User | None,
    source: str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    time: datetime | None = None,
) -> None:
    timeline_record(
        township_id=township_id,
        # A supervision order's rows are the "order" subject of the timeline's vocabulary.
        subject_type="order" if isinstance(subject, SupervisionOrder) else subject._meta.model_name,
        subject_id=subject.pk,
        action=action,
        source=source,
        actor_id=actor.pk if actor else None,
        before=before,
        after=after,
        time=time,
    )


def broadcast(incident: Incident, event_type: str, **fields: Any) -> None:
    """To the incident's board, and to the boards of the townships it shares a joint whistle
    with (pending or confirmed: the other board shows the request, then the incident)."""
    event = {"type": event_type, "incident_id": incident.pk, **fields}
    realtime.broadcast_on_commit(realtime.board_group(incident.township.code), event)
    partners = (
        Whistle.objects.filter(incident=incident, joint_township__isnull=False)
        .values_list("joint_township__code", flat=True)
        .distinct()
    )
    for code in partners:
        realtime.broadcast_on_commit(realtime.board_group(code), event)


def require_officer(actor: User, township: Township) -> None:
    """Duty officers of the township (and its or the district's administrators) run
    incidents (command.org.policy.can_command)."""
    if policy.can_command(actor, township):
        return
    raise ActionForbidden(_("Only the township's duty officers may do this."))


def require_settler(actor: User, incident: Incident) -> None:
    """The grid officer who opened ``incident`` to settle it on the spot (小事不出格,
    intake.settle) resolves it, closes it and adds its photos, in the same transaction."""
    if incident.opened_by_id == actor.pk and policy.can_file_report(actor):
        return
    raise ActionForbidden(_("Only the grid officer settling this matter may do this."))


def require_member(actor: User, department_id: int) -> None:
    if policy.can_act_for_department(actor, department_id):
        return
    raise ActionForbidden(_("Only members of the summoned department may do this."))
