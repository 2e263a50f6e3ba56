"""API tokens: ``<prefix>.<secret>``; the prefix finds the row, the secret is checked by hash."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from command import clock
from command.org.models import ApiToken, User


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def api_token_create(*, user: User, name: str) -> tuple[ApiToken, str]:
    """Returns the row and the token, which is not stored and cannot be shown again."""
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    token = ApiToken.objects.create(user=user, name=name, prefix=prefix, key_hash=_hash(secret))
    return token, f"{prefix}.{secret}"


def api_token_user(raw: str) -> User | None:
    prefix, _, secret = raw.strip().partition(".")
    if not prefix or not secret:
        return None
    token = ApiToken.objects.select_related("user").filter(prefix=prefix, revoked=False).first()
    if token is None or not hmac.compare_digest(token.key_hash, _hash(secret)):
        return None
    if not token.user.is_active:
        return None
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=clock.now())
    return token.user
