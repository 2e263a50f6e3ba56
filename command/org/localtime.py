"""A township's clock: every "today", deadline and row time a page or a push shows is read in
the township's zone (``Township.zone``), never the server's or ``settings.TIME_ZONE``.

A district department serves several townships, and the server may run in any zone: a time
shown in another zone than the township's is off by hours, and a "today" that starts at the
server's midnight counts yesterday's alerts (or misses this morning's). "Now" is
``command.clock.now()``, so tests can pin it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import date, datetime, time

from django.utils import timezone

from command import clock
from command.org.models import Township


def township_now(township: Township) -> datetime:
    """The clock's now as the township's wall clock shows it."""
    return clock.now().astimezone(township.zone)


def township_today(township: Township) -> date:
    """The township's date now."""
    return township_now(township).date()


def day_start(township: Township, day: date | None = None) -> datetime:
    """When ``day`` (today when none) began in the township: its midnight, aware."""
    return datetime.combine(day or township_today(township), time.min, tzinfo=township.zone)


@contextlib.contextmanager
def shown_in(township: Township) -> Iterator[None]:
    """Render the block's times (``|date``, ``localtime``) on the township's clock."""
    with timezone.override(township.zone):
        yield
