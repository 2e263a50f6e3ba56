"""Sockets follow a user's rights: when a user is saved (deactivated, demoted, moved) or logs
out, their open sockets are told to re-check (frontend.consumers) and close if refused."""

from __future__ import annotations

import hashlib
from typing import Any

from django.contrib.auth.signals import user_logged_out
from django.db.models.signals import post_save
from django.dispatch import receiver

from command import realtime
from command.org.models import User


def session_tag(session_key: str | None) -> str:
    """What a logout names its session by on the channel layer (not the key itself)."""
    return hashlib.sha256((session_key or "").encode()).hexdigest()[:32]


@receiver(post_save, sender=User, dispatch_uid="whistle.user_saved")
def _user_saved(sender: type, instance: User, created: bool, **kwargs: Any) -> None:
    if created:
        return
    realtime.broadcast_on_commit(realtime.user_group(instance.pk), {"type": "user.changed"})


@receiver(user_logged_out, dispatch_uid="whistle.user_logged_out")
def _user_logged_out(sender: type, request: Any, user: User | None, **kwargs: Any) -> None:
    if user is None:
        return
    session = getattr(request, "session", None)
    realtime.broadcast_on_commit(
        realtime.user_group(user.pk),
        {"type": "user.changed", "ended_session": session_tag(getattr(session, "session_key", ""))},
    )
