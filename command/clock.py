"""The one clock services read ``now`` from, so tests can move time instead of rewriting rows.

Production code calls ``clock.now()`` wherever it would call ``timezone.now()`` for a decision
(deadlines, sweeps, expiry, "today"). Tests move it with ``clock.moved(by=…)`` or pin it with
``clock.frozen(at=…)``; both are undone on exit. The clock is per process: a job worker in
another process keeps its own, so tests that move time run the due steps in their own process.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from django.utils import timezone

_lock = threading.Lock()
_offset = timedelta(0)
_pinned: datetime | None = None


def now() -> datetime:
    """The current aware time in UTC, as the services should see it."""
    pinned = _pinned
    if pinned is not None:
        return pinned
    return timezone.now() + _offset


@contextmanager
def moved(*, by: timedelta) -> Iterator[None]:
    """Run the block as if ``by`` had passed (or, negative, not yet come)."""
    global _offset
    with _lock:
        _offset += by
    try:
        yield
    finally:
        with _lock:
            _offset -= by


@contextmanager
def frozen(*, at: datetime) -> Iterator[None]:
    """Run the block with the clock standing at ``at`` (aware)."""
    global _pinned
    if timezone.is_naive(at):
        raise ValueError("clock.frozen needs an aware datetime")
    with _lock:
        previous, _pinned = _pinned, at
    try:
        yield
    finally:
        with _lock:
            _pinned = previous
