from __future__ import annotations

from command.org import policy
from command.org.models import Township, User


def township_for_board(*, user: User, code: str) -> Township | None:
    """The township whose board ``user`` may watch, or None (unknown or not allowed)."""
    if not policy.is_active(user):
        return None
    township = Township.objects.filter(code=code).first()
    if township is None or not policy.can_watch_board(user, township):
        return None
    return township


def home_township(*, user: User) -> Township | None:
    if user.township_id:
        return user.township
    return policy.townships(user).order_by("code").first()
