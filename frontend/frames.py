"""Websocket frames of a bounded size.

A consumer renders what it sends as *parts*: a fragment (an element with ``hx-swap-oob``) that
must arrive whole, or :class:`Items`, rows added to a list already on the page, which may be cut
between frames. :func:`pack` puts the parts, in order, into as few frames as it can, none larger
than the limit (``WEBSOCKET_FRAME_MAX_BYTES``). htmx's ws extension swaps each frame as it
arrives, so a state sent in three frames shows in three steps a few milliseconds apart.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

log = logging.getLogger("whistle.frontend")


@dataclass(frozen=True)
class Items:
    """Rows for the list ``#target`` (``hx-swap-oob="<swap>:#<target>"``), each row whole."""

    target: str
    rows: Sequence[str]
    swap: str = "beforeend"

    def wrapper(self) -> tuple[str, str]:
        return f'<div hx-swap-oob="{self.swap}:#{self.target}">', "</div>"


Part = str | Items


def size(text: str) -> int:
    """What a text frame costs on the wire: its UTF-8 bytes (a Chinese character is three)."""
    return len(text.encode())


def pack(parts: Iterable[Part], *, limit: int) -> list[str]:
    """The parts in order, in frames of at most ``limit`` bytes each.

    A single fragment or row larger than the limit cannot be cut without breaking its HTML: it
    is left out and logged as an error (the socket keeps working; the page shows the rest).
    Partials keep rows small and lists paged, so this is a bug report, not a code path.
    """
    frames: list[str] = []
    current: list[str] = []
    used = 0

    def close() -> None:
        nonlocal current, used
        if current:
            frames.append("".join(current))
        current, used = [], 0

    def too_large(what: str, text: str) -> None:
        log.error(
            "a %s of %d bytes is over the frame limit of %d: not sent", what, size(text), limit
        )

    for part in parts:
        if isinstance(part, str):
            cost = size(part)
            if not part:
                continue
            if cost > limit:
                too_large("fragment", part)
                continue
            if used + cost > limit:
                close()
            current.append(part)
            used += cost
            continue
        head, tail = part.wrapper()
        frame_cost = size(head) + size(tail)
        group: list[str] = []
        group_cost = frame_cost
        for row in part.rows:
            cost = size(row)
            if cost + frame_cost > limit:
                too_large("row", row)
                continue
            if used + group_cost + cost > limit:
                if group:
                    current.append(head + "".join(group) + tail)
                    used += group_cost
                close()
                group, group_cost = [], frame_cost
            group.append(row)
            group_cost += cost
        if group:
            current.append(head + "".join(group) + tail)
            used += group_cost
    close()
    return frames
