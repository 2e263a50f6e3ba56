"""The browser seam: chromium driven by Playwright, signed-in pages, screenshots and a real
picture for the phone's camera. The fixtures (``browser``, ``board_page``) are declared once, in
tests/conftest.py, so tests/e2e and tests/scenarios share one chromium per session."""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Callable, Iterator
from typing import Any

from tests.conftest import ARTIFACTS, DEMO_PASSWORDS, need_service

CHROMIUM = os.environ.get("WHISTLE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def launch_browser() -> Iterator[Any]:
    # Playwright's sync API keeps an event loop in this thread; the test's own ORM calls are
    # ordinary blocking calls between browser steps.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    if not os.path.exists(CHROMIUM):
        need_service(f"chromium not found at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        need_service("playwright is not installed (pip install -e .[test])")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


def signed_in_pages(browser: Any, daphne_server: str) -> Iterator[Callable[..., Any]]:
    """board_page(username) → a Playwright page signed in, showing its home (the board)."""
    contexts = []

    def open_page(
        username: str, *, viewport=(1920, 1080), locale="zh-CN", base: str | None = None
    ) -> Any:
        # Location granted, as a department member's phone would: otherwise a check-in waits
        # for the geolocation prompt to time out.
        context = browser.new_context(
            viewport={"width": viewport[0], "height": viewport[1]},
            locale=locale,
            geolocation={"latitude": 40.245, "longitude": 116.655},
            permissions=["geolocation"],
        )
        contexts.append(context)
        page = context.new_page()
        page.goto(f"{base or daphne_server}/")
        page.fill("#id_username", username)
        page.fill("#id_password", DEMO_PASSWORDS[username])
        with page.expect_navigation():
            page.click("button[type=submit].primary")
        if "/login/" in page.url:
            screenshot(page, f"login-failed-{username}")
            raise AssertionError(f"{username} could not sign in: {page.inner_text('body')}")
        return page

    yield open_page
    for context in contexts:
        context.close()


def screenshot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def png(width: int, height: int) -> bytes:
    """A real picture (a colour gradient) for the phone's camera to give."""
    rows = b"".join(
        b"\x00" + bytes(v for x in range(width) for v in (x * 255 // width, y * 255 // height, 90))
        for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )
