"""小事不出格, in the browser: a grid officer on a 390×844 phone files a report, settles it on the
spot with a note and a photo, and hands a camera alert of the grid up to the township; the duty
board shows the hand-up with its note, the supervisor's 631 figures count one more at grid
level, and the incident's timeline page shows who settled it, where and how.

Real daphne, PostgreSQL and Redis; a real chromium. The hand-up's later close (township level)
is checked at the service level in tests/intake/test_settle.py."""

from __future__ import annotations

import pytest

from alerts.models import Alert
from command.org.models import Grid, Township
from demo.data import GRID_OFFICER_GRID
from incidents.models import Incident, Photo
from streams.models import GridReport
from tests.browser import png, screenshot
from tests.conftest import raise_alert, wait_for
from tests.e2e import test_contrast as contrast

pytestmark = [pytest.mark.e2e, pytest.mark.services, pytest.mark.timeout(180)]

NOTE = "已联系保洁员清运，村口恢复通行"


def grid_count(page) -> int:
    return int(page.inner_text("#settled-table tr[data-level='grid'] .settled-count"))


def fits_the_phone(page) -> None:
    """Nothing runs off the right edge of a 390 px phone…"""
    overflowing = page.evaluate(
        """() => [...document.querySelectorAll('body *')]
             .filter((e) => !e.closest('svg') && e.getBoundingClientRect().right > innerWidth)
             .map((e) => `${e.tagName.toLowerCase()}#${e.id}.${e.className}`)"""
    )
    assert overflowing == []
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    # …and every text on it is readable outdoors (WCAG AA), the open forms' too.
    assert page.evaluate(contrast.LOW_CONTRAST) == []


def test_a_grid_officer_settles_a_matter_on_the_phone_and_it_counts_as_grid_level(
    daphne_server, demo_committed, board_page
):
    qingshui = Township.objects.get(code="qingshui")
    grid = Grid.objects.get(code=GRID_OFFICER_GRID)
    # A camera in the officer's grid saw something the grid cannot handle alone.
    camera = raise_alert(
        qingshui.pk,
        "cam-dump",
        category="garbage",
        severity="minor",
        title="河道倾倒建筑垃圾",
        grid_id=grid.pk,
    )

    supervisor = board_page("supervisor")
    supervisor.goto(f"{daphne_server}/supervise/qingshui/")
    before = grid_count(supervisor)
    board = board_page("duty")
    board.wait_for_selector("#live-status.live", timeout=10_000)
    board.wait_for_selector(f"#alert-{camera}")

    # 1. The officer files a report from the phone, in their own grid.
    phone = board_page("grid01", viewport=(390, 844))
    assert phone.url.endswith("/report/")
    phone.select_option("#id_category", "garbage")
    phone.fill("#id_description", "东沟村口垃圾堆积，影响通行")
    assert phone.input_value("#id_grid") == GRID_OFFICER_GRID
    phone.click("#report-form button[type=submit]")
    report = wait_for(lambda: GridReport.objects.first(), what="the report")
    matter = f"#matter-{report.alert_id}"
    # The page reloads with the report among the grid's matters, newest first, beside the
    # camera's alert.
    phone.wait_for_selector(matter, timeout=10_000)
    listed = phone.eval_on_selector_all("#grid-matters li.matter", "rows => rows.map(r => r.id)")
    assert listed == [f"matter-{report.alert_id}", f"matter-{camera}"]
    assert "东沟村口垃圾堆积" in phone.inner_text(matter)
    phone.locator("#grid-matters").scroll_into_view_if_needed()
    fits_the_phone(phone)
    screenshot(phone, "phone-grid-matters")

    # 2. The camera's matter is too big for the grid: handed up with a note. The duty board
    # shows it live, raised to major, with who handed it up and why.
    phone.click(f"#matter-{camera} summary.hand-up")
    phone.fill(f"#hand-up-note-{camera}", "建筑垃圾量大，需城管执法")
    phone.click(f"#matter-{camera} form[data-matter-post$='hand-up'] button[type=submit]")
    phone.wait_for_selector(f"#matter-{camera} .handed-up", timeout=10_000)
    assert "赵春燕 上报镇街：建筑垃圾量大，需城管执法" in phone.inner_text(f"#matter-{camera}")
    assert not phone.is_visible(f"#matter-{camera} summary.settle")
    board.wait_for_selector(f"#alert-{camera}[data-severity='major'] .handed-up", timeout=10_000)
    assert "建筑垃圾量大，需城管执法" in board.inner_text(f"#alert-{camera} .handed-up")
    screenshot(board, "board-handed-up")

    # 3. The report is settled on the spot: a note and a photo, shrunk on the phone.
    phone.click(f"{matter} summary.settle")
    phone.fill(f"#settle-note-{report.alert_id}", NOTE)
    phone.set_input_files(
        f"#settle-photo-{report.alert_id}",
        files=[{"name": "done.png", "mimeType": "image/png", "buffer": png(1200, 900)}],
    )
    phone.wait_for_selector(f"{matter} .matter-preview:not([hidden])", timeout=5_000)
    fits_the_phone(phone)
    screenshot(phone, "phone-settle-form")
    phone.click(f"{matter} form[data-matter-post$='settle'] button[type=submit]")

    # It leaves the grid's matters and shows among the earlier ones as settled in the grid.
    phone.wait_for_selector(matter, state="detached", timeout=10_000)
    settled_line = phone.wait_for_selector("#my-reports li.settled-in-grid", timeout=10_000)
    assert "网格内解决" in settled_line.inner_text()
    assert phone.is_visible(f"#matter-{camera}")  # the handed-up one waits for the township
    # With the photo taken on the spot, which the officer's phone may load.
    thumb = settled_line.query_selector("img.thumb")
    assert thumb is not None
    phone.wait_for_function(
        "(img) => img.complete && img.naturalWidth > 0", arg=thumb, timeout=10_000
    )
    fits_the_phone(phone)
    phone.locator("#my-reports").scroll_into_view_if_needed()
    screenshot(phone, "phone-settled")

    incident = Incident.objects.get(alerts__pk=report.alert_id)
    assert (incident.status, incident.settled_level, incident.feedback) == ("closed", "grid", NOTE)
    (photo_url,) = [e["url"] for e in incident.evidence if e["kind"] == "photo"]
    photo = Photo.objects.get(pk=photo_url.removeprefix("/photos/"))
    assert photo.content_type == "image/jpeg" and photo.township == qingshui
    assert Alert.objects.get(pk=camera).status == Alert.Status.NEW  # still the township's

    # 4. The supervisor's 631 figures count it at grid level.
    supervisor.reload()
    supervisor.wait_for_selector("#settled-table")
    assert grid_count(supervisor) == before + 1
    supervisor.locator("#settled-table").scroll_into_view_if_needed()
    screenshot(supervisor, "supervise-631-grid")

    # 5. The incident's timeline page says the grid officer settled it in the grid.
    supervisor.goto(f"{daphne_server}/supervise/qingshui/incidents/{incident.pk}/")
    actions = supervisor.eval_on_selector_all(
        "#timeline tbody tr", "rows => rows.map(r => r.dataset.action)"
    )
    assert actions == [
        "alert.raised",
        "incident.opened",
        "alert.escalated",
        "incident.evidence_added",
        "incident.settled_in_grid",
        "incident.resolved",
        "incident.closed",
    ]
    settled_row = supervisor.inner_text("#timeline tr[data-action='incident.settled_in_grid']")
    assert "网格员在网格内就地解决" in settled_row
    assert "赵春燕" in settled_row and NOTE in settled_row and GRID_OFFICER_GRID in settled_row
    closed_row = supervisor.inner_text("#timeline tr[data-action='incident.closed']")
    assert "赵春燕" in closed_row and NOTE in closed_row
    screenshot(supervisor, "timeline-settled-in-grid")
