"""Notifications to people (督办 reaching people): the console, SMS, e-mail, the department's
work group robot and its own system, one module per channel behind :class:`Channel`.

:func:`page` runs inside the transaction of the step that pages (an escalation chain's step, an
overdue level, a supervision order): it writes each person's console notification, shown live
on their page the moment the transaction commits, and one row per channel to send by, each
with its job (``alerts.tasks.send_notification``, queue ``notifications``). A person is reached
by the first channel of their list that can reach them (``User.notify_by``); when it fails
for good, the next one is used (``Notification.fallback``). A step marked "by every channel"
uses all of them at once. Every outcome is a timeline row on the notification's subject: sent,
failed (with the reason and the channel used next), read.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core import signing
from django.db import transaction

from alerts.delivery.departments import DeliveryFailed, DestinationRefused
from alerts.models import Notification
from command import clock, jobs, realtime
from command.org.models import DEFAULT_NOTIFY_BY, User
from command.timeline.models import TimelineEntry
from command.timeline.records import timeline_record

log = logging.getLogger("whistle.notify")

SEND_TASK = "alerts.tasks.send_notification"
# A page must fall back quickly: three attempts (2 s, 4 s apart), then the next channel.
MAX_ATTEMPTS = 3
LINK_SALT = "whistle-notification-link"


@dataclass(frozen=True)
class Recipient:
    user: User
    reason: str  # on_call, backup, head, township_supervisors, district_supervisors, …


@dataclass(frozen=True)
class Channel:
    """One way of reaching people: whether it can reach this person, and one attempt to send
    (raising :class:`DeliveryFailed`, or :class:`DestinationRefused` when retrying cannot
    help)."""

    name: str
    reaches: Callable[[User], bool]
    send: Callable[[Notification], None]
    # Filled by the channel modules that register themselves (see ``register``).
    options: dict[str, Any] = field(default_factory=dict)


CHANNELS: dict[str, Channel] = {}


def register(channel: Channel) -> None:
    CHANNELS[channel.name] = channel


def channels_for(user: User) -> list[str]:
    """The person's channels in their order, those that can reach them."""
    wanted = user.notify_by or DEFAULT_NOTIFY_BY
    return [c for c in wanted if c in CHANNELS and CHANNELS[c].reaches(user)]


def link_token(notification_id: int) -> str:
    return signing.dumps(notification_id, salt=LINK_SALT, compress=True)


def link_notification(token: str) -> int | None:
    """The notification a link names, or None for a forged or mangled one."""
    try:
        return int(signing.loads(token, salt=LINK_SALT))
    except (signing.BadSignature, TypeError, ValueError):
        return None


def absolute_link(notification: Notification) -> str:
    """What an SMS or e-mail links to: opening it marks the notification read and shows the
    console with its summons (after logging in)."""
    return f"{settings.WHISTLE_BASE_URL.rstrip('/')}/n/{link_token(notification.pk)}"


@dataclass(frozen=True)
class Cause:
    """What pages: its subject (summons or order) and incident, the words and the page the
    link opens, the key that makes it once-only, and the step it is (for the timeline)."""

    township_id: int
    subject_type: str
    subject_id: int
    incident_id: int | None
    text: str
    link: str
    key: str
    step: int = 0

    def row(self, recipient: Recipient, channel: str, fallback: list[str]) -> dict[str, Any]:
        return {
            "user": recipient.user,
            "township_id": self.township_id,
            "subject_type": self.subject_type,
            "subject_id": self.subject_id,
            "incident_id": self.incident_id,
            "reason": recipient.reason,
            "channel": channel,
            "text": self.text[:500],
            "link": self.link,
            "fallback": fallback,
            "created_at": clock.now(),
        }


def page(
    cause: Cause,
    recipients: Sequence[Recipient],
    *,
    all_channels: bool = False,
    only: Sequence[str] | None = None,
) -> list[Notification]:
    """Notify ``recipients`` of ``cause`` (in the caller's transaction): the same cause never
    pages a person twice on one channel. Returns the rows written.

    ``only`` names the channels a cause goes by whatever the person chose (besides the
    console), each one that reaches them, without falling back: a monthly report is not a
    summons, it goes by e-mail (with its workbook) or not at all."""
    written: list[Notification] = []
    seen: set[int] = set()
    for recipient in recipients:
        user = recipient.user
        if user.pk in seen or not user.is_active:
            continue
        seen.add(user.pk)
        now = clock.now()
        console, created = Notification.objects.get_or_create(
            key=f"{cause.key}:{user.pk}:console",
            defaults={
                **cause.row(recipient, Notification.Channel.CONSOLE, []),
                "status": Notification.Status.SENT,
                "sent_at": now,
            },
        )
        if not created:
            continue  # this cause has paged this person already
        written.append(console)
        _timeline(console, "paged", step=cause.step)
        _progressed(console)
        realtime.broadcast_on_commit(
            realtime.user_group(user.pk),
            {"type": "notification.new", "notification_id": console.pk},
        )
        if only is not None:
            usable = [c for c in only if c in CHANNELS and CHANNELS[c].reaches(user)]
            first, rest = usable, []
        else:
            usable = channels_for(user)
            first, rest = (usable, []) if all_channels else (usable[:1], usable[1:])
        written += [_send_later(cause, recipient, channel, rest) for channel in first]
    return written


def _send_later(
    cause: Cause, recipient: Recipient, channel: str, fallback: list[str]
) -> Notification:
    notification, created = Notification.objects.get_or_create(
        key=f"{cause.key}:{recipient.user.pk}:{channel}",
        defaults=cause.row(recipient, channel, fallback),
    )
    if created:
        # By name: alerts.tasks imports this module. The step is the timeline's, for its rows.
        jobs.defer(SEND_TASK, notification_id=notification.pk, step=cause.step)
        _progressed(notification)
    return notification


def send_attempt(*, notification_id: int, attempt: int, step: int = 0) -> str:
    """One attempt to send a notification; the last failure hands over to the next channel."""
    notification = Notification.objects.select_related("user").filter(pk=notification_id).first()
    if notification is None:
        return "gone"
    if notification.status != Notification.Status.PENDING:
        return f"already {notification.status}"
    channel = CHANNELS.get(notification.channel)
    try:
        if channel is None:
            raise DestinationRefused(f"channel {notification.channel} is not configured")
        channel.send(notification)
    except Exception as exc:
        refused = isinstance(exc, DestinationRefused)
        final = refused or attempt + 1 >= MAX_ATTEMPTS
        error = str(exc) if isinstance(exc, DeliveryFailed) else f"{type(exc).__name__}: {exc}"
        with transaction.atomic():
            updated = Notification.objects.filter(
                pk=notification.pk, status=Notification.Status.PENDING
            ).update(
                attempts=attempt + 1,
                last_error=error[:500],
                status=Notification.Status.FAILED if final else Notification.Status.PENDING,
            )
            if final and updated:
                notification.last_error = error[:500]
                _fall_back(notification, step=step)
            if updated:
                _progressed(notification)
        if final:
            log.warning("notification %s by %s failed: %s", notification.pk, notification.channel,
                        error)  # fmt: skip
            return "failed"
        raise
    with transaction.atomic():
        updated = Notification.objects.filter(
            pk=notification.pk, status=Notification.Status.PENDING
        ).update(
            attempts=attempt + 1, status=Notification.Status.SENT, last_error="",
            sent_at=clock.now(),
        )  # fmt: skip
        if updated:
            _timeline(notification, "paged", step=step)
            _progressed(notification)
    return "sent"


def _fall_back(notification: Notification, *, step: int) -> None:
    """The channel failed for good: say so on the timeline and try the person's next one."""
    rest = [
        c for c in notification.fallback if c in CHANNELS and CHANNELS[c].reaches(notification.user)
    ]
    _timeline(notification, "page_failed", step=step, then=rest[0] if rest else "")
    if not rest:
        return
    cause = Cause(
        township_id=notification.township_id,
        subject_type=notification.subject_type,
        subject_id=notification.subject_id,
        incident_id=notification.incident_id,
        text=notification.text,
        link=notification.link,
        key=notification.key.rsplit(":", 2)[0],
        step=step,
    )
    _send_later(cause, Recipient(notification.user, notification.reason), rest[0], rest[1:])


def mark_read(notification: Notification) -> bool:
    """The person saw it (on the console, or opened its link): once, with a timeline row."""
    now = clock.now()
    updated = Notification.objects.filter(pk=notification.pk, read_at__isnull=True).update(
        read_at=now
    )
    if updated:
        notification.read_at = now
        _timeline(notification, "page_read", step=0)
        _progressed(notification)
    return bool(updated)


def _timeline(notification: Notification, verb: str, *, step: int, then: str = "") -> None:
    after: dict[str, Any] = {
        "person": notification.user.display_name,
        "user": notification.user_id,
        "reason": notification.reason,
        "channel": notification.channel,
    }
    if step:
        after["step"] = step
    if verb == "page_failed":
        after["error"] = notification.last_error
        if then:
            after["then"] = then
    timeline_record(
        township_id=notification.township_id,
        subject_type=notification.subject_type,
        subject_id=notification.subject_id,
        action=f"{notification.subject_type}.{verb}",
        source=TimelineEntry.Source.SYSTEM,
        after=after,
    )


# --- the supervisors' console follows every notification ----------------------------------------


def _progressed(notification: Notification) -> None:
    """Written, sent, failed or read: the consoles of the township's supervisors redraw (on
    commit, with the row that changed)."""
    realtime.broadcast_on_commit(
        realtime.supervision_group(notification.township_id),
        {"type": "notification.updated", "notification_id": notification.pk},
    )
