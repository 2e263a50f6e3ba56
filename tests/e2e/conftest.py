"""Browser tests: real daphne in its own process, Redis between it and the ingest worker, real
chromium driven by Playwright. The fixtures (``browser``, ``board_page``) live in
tests/conftest.py and the helpers in tests/browser.py, shared with tests/scenarios."""

from __future__ import annotations

import os

from tests.browser import CHROMIUM, png, screenshot

__all__ = ["CHROMIUM", "png", "screenshot"]

# Playwright's sync API keeps an event loop in this thread; the test's own ORM calls are
# ordinary blocking calls between browser steps.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
