"""Changes people make to their own accounts."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from command.org.models import User, validate_notify_by


def user_set_reach(*, user: User, notify_by: list[str], phone: str, email: str) -> User:
    """How ``user`` is reached (督办): their channels in order, their phone and e-mail.
    Refuses (``ValidationError``) a list ``validate_notify_by`` refuses or a malformed address.

    No timeline row: the timeline is about matters (alerts, incidents, summonses, orders), and
    a person's choice shows on every notification it shapes (its channel)."""
    validate_notify_by(notify_by)
    email = email.strip()
    if email:
        validate_email(email)
    phone = phone.strip()
    if len(phone) > User._meta.get_field("phone").max_length:
        raise ValidationError("phone too long", code="phone")
    user.notify_by = list(notify_by)
    user.phone = phone
    user.email = email
    # Saving tells the person's open sockets to re-check (command.org.signals); harmless.
    user.save(update_fields=["notify_by", "phone", "email"])
    return user
