"""Refusals every service raises, and the API turns into precise answers."""

from __future__ import annotations


class TransitionNotAllowed(Exception):
    """The action does not fit the current state (HTTP 409)."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.code = code


class ActionForbidden(Exception):
    """The actor may not take this action (HTTP 403)."""
