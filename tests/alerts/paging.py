"""Paging one person through ``people.page`` and running the send job's attempts as the job
queue would (attempt 0, 1, 2: a failure before the last is raised for the queue to retry),
for the channels' tests. The summons paged about is a number only: the timeline keeps rows by
subject type and id, and nothing else here reads the summons."""

from __future__ import annotations

import itertools
import re
from typing import Any
from unittest import mock

from alerts.delivery import people
from alerts.models import Notification
from command import realtime
from command.org.models import Department, Township, User
from command.timeline.models import TimelineEntry

SUBJECT_ID = 990_001
TEXT = "东沟村山火：城管执法队逾期未报到\n请立即到场处置"
_keys = itertools.count(1)


def person(
    *,
    notify_by: list[str],
    email: str = "wang.xiaoming@qingshui.example",
    phone: str = "+86 138-0013-8000",
    username: str = "chengguan",
) -> User:
    user = User.objects.select_related("department").get(username=username)
    user.notify_by = notify_by
    user.email = email
    user.phone = phone
    user.last_name, user.first_name = "王", "晓明"
    user.save(update_fields=["notify_by", "email", "phone", "last_name", "first_name"])
    return user


def set_robot(kind: str, url: str, secret: str = "", *, code: str = "chengguan") -> Department:
    department = Department.objects.get(code=code)
    department.robot, department.robot_url, department.robot_secret = kind, url, secret
    department.save(update_fields=["robot", "robot_url", "robot_secret"])
    return department


def page(user: User, *, text: str = TEXT, subject_type: str = "summons") -> Notification:
    """Page ``user`` once; the notification on their first usable channel (not the console)."""
    township = Township.objects.get(code="qingshui")
    cause = people.Cause(
        township_id=township.pk,
        subject_type=subject_type,
        subject_id=SUBJECT_ID,
        incident_id=None,
        text=text,
        link=f"/console/?summons={SUBJECT_ID}",
        key=f"test-page:{next(_keys)}",
        step=2,
    )
    # The console's live event may not be in the realtime vocabulary on this branch yet.
    with mock.patch.object(realtime, "EVENT_TYPES", realtime.EVENT_TYPES | {"notification.new"}):
        written = people.page(cause, [people.Recipient(user, "on_call")])
    sent = [n for n in written if n.channel != Notification.Channel.CONSOLE]
    assert len(sent) == 1, [n.channel for n in written]
    return sent[0]


def run_job(notification: Notification) -> tuple[str, list[BaseException]]:
    """Every attempt the job queue would make; the outcome and the failures it retried."""
    retried: list[BaseException] = []
    for attempt in range(people.MAX_ATTEMPTS):
        try:
            outcome = people.send_attempt(notification_id=notification.pk, attempt=attempt, step=2)
        except Exception as exc:  # the queue retries it
            retried.append(exc)
            continue
        notification.refresh_from_db()
        return outcome, retried
    raise AssertionError(f"the last attempt raised instead of failing for good: {retried[-1]}")


def next_channel(notification: Notification) -> Notification | None:
    """The notification the fallback wrote for the person's next channel, if any."""
    prefix = notification.key.rsplit(":", 1)[0]
    return (
        Notification.objects.filter(key__startswith=f"{prefix}:", user=notification.user)
        .exclude(pk=notification.pk)
        .exclude(channel=Notification.Channel.CONSOLE)
        .first()
    )


def links_in(text: str) -> list[int]:
    """The notifications that the platform's links in ``text`` open (a link's signed token
    carries the moment it was made, so links are compared by what they open)."""
    from django.conf import settings

    base = re.escape(settings.WHISTLE_BASE_URL.rstrip("/"))
    tokens = re.findall(rf"{base}/n/([A-Za-z0-9_:-]+)", text)
    return [people.link_notification(token) for token in tokens]


def timeline(verb: str) -> list[dict[str, Any]]:
    return list(
        TimelineEntry.objects.filter(
            subject_type="summons", subject_id=SUBJECT_ID, action=f"summons.{verb}"
        )
        .order_by("pk")
        .values_list("after", flat=True)
    )
