"""Paged lists: the board's alert queue and a console's summonses show the first page (the
newest / most urgent ``WHISTLE_PAGE_SIZE``) and "N more — show more", which asks over HTTP for
the page after the last row shown.

A page is found by the sort key of that last row (a *cursor*: its time and id), not by an
offset: pushes add and remove rows at any moment, and an offset would then skip or repeat rows.
Each row carries its cursor in ``data-cursor``; the page's script sends the last one.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.conf import settings

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def page_size() -> int:
    return max(1, settings.WHISTLE_PAGE_SIZE)


def cursor(moment: datetime, pk: int) -> str:
    """``<microseconds since the epoch>.<id>``: exact (a float would lose the last µs) and
    safe in a query string as it is."""
    micro = (moment - EPOCH) // timedelta(microseconds=1)
    return f"{micro}.{pk}"


def parse_cursor(text: str | None) -> tuple[datetime, int] | None:
    """The (time, id) a cursor names; None for the first page. ValueError if malformed."""
    if not text:
        return None
    micro, _, pk = text.partition(".")
    try:
        return EPOCH + timedelta(microseconds=int(micro)), int(pk)
    except OverflowError as problem:  # a made-up cursor far outside any date
        raise ValueError(str(problem)) from problem
