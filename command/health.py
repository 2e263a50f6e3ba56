"""Liveness of the long-running processes that serve no HTTP (`whistle ingest`, `whistle worker`).

Each process's loop calls :func:`beat` while it is doing its job (ingest: connected and
subscribed); `whistle healthcheck NAME` exits 0 only when that beat is recent. A heartbeat file
rather than a port: the check runs in the same container, costs nothing, and a loop that is stuck
(a database that never answers, a refused subscription) stops beating although the process
lives.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

# A beat is written at most this often; a check allows a few missed ones.
BEAT_EVERY = 5.0
STALE_AFTER = 60.0

_last: dict[str, float] = {}


def _path(name: str) -> Path:
    folder = os.environ.get("WHISTLE_HEALTH_DIR") or tempfile.gettempdir()
    return Path(folder) / f"whistle-{name}.alive"


def beat(name: str) -> None:
    now = time.monotonic()
    if now - _last.get(name, -BEAT_EVERY) < BEAT_EVERY:
        return
    _last[name] = now
    path = _path(name)
    try:
        path.touch()
    except OSError:
        return  # an unwritable folder fails the check, which says where it looked


def check(name: str, *, stale_after: float = STALE_AFTER) -> tuple[bool, str]:
    """Whether ``name`` beat within ``stale_after`` seconds, and a line saying so."""
    path = _path(name)
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return False, f"{name}: no heartbeat at {path} (not started, or never subscribed)"
    if age > stale_after:
        return False, f"{name}: last heartbeat {age:.0f} s ago (over {stale_after:.0f} s)"
    return True, f"{name}: alive, last heartbeat {age:.0f} s ago"
