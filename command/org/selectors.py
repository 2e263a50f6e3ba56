from __future__ import annotations

from command.org.models import Township, User


def township_for_board(*, user: User, code: str) -> Township | None:
    """The township whose board ``user`` may watch, or None (unknown or not allowed)."""
    if not getattr(user, "is_authenticated", False):
        return None
    township = Township.objects.filter(code=code).first()
    if township is None or not user.can_watch_board(township):
        return None
    return township


def home_township(*, user: User) -> Township | None:
    if user.township_id:
        return user.township
    return Township.objects.order_by("code").first()
