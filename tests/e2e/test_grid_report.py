"""A grid officer on a phone files a report; it appears on the duty board; the officer sees what
became of it. A report that cannot be sent keeps its draft on the phone."""

import pytest

from incidents.models import Photo
from streams.models import GridReport
from tests.conftest import wait_for
from tests.e2e.conftest import png, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.services]


def test_phone_report_reaches_the_board(daphne_server, demo_committed, board_page):
    board = board_page("duty")
    board.wait_for_selector("#live-status.live", timeout=10_000)
    phone = board_page("grid01", viewport=(390, 844))
    assert phone.url.endswith("/report/")

    phone.select_option("#id_category", "garbage")
    phone.fill("#id_description", "东沟村口垃圾堆积，影响通行")
    # The grid picked by tapping it on the map; a photo from the phone's camera.
    phone.click(".grid-picker-toggle summary")
    phone.click("#grid-picker [data-grid='110112-QS-007']")
    assert phone.input_value("#id_grid") == "110112-QS-007"
    phone.set_input_files(
        "#id_photo", files=[{"name": "site.png", "mimeType": "image/png", "buffer": png(640, 480)}]
    )
    phone.wait_for_selector("#photo-preview:not([hidden]) img", timeout=5_000)
    phone.click("#use-position")
    phone.wait_for_function("document.getElementById('position-state').textContent.length > 0")
    screenshot(phone, "phone-report-form")

    # No signal: the report fails to send and the draft stays on the phone.
    phone.context.set_offline(True)
    phone.click("#report-form button[type=submit]")
    phone.wait_for_function("document.getElementById('report-problem').textContent.length > 0")
    assert not GridReport.objects.exists()
    phone.context.set_offline(False)
    phone.reload()
    assert phone.input_value("#id_description") == "东沟村口垃圾堆积，影响通行"
    assert phone.input_value("#id_grid") == "110112-QS-007"
    phone.wait_for_selector("#photo-preview:not([hidden]) img", timeout=5_000)

    phone.click("#report-form button[type=submit]")
    report = wait_for(lambda: GridReport.objects.first(), what="the report")
    assert report.latitude == pytest.approx(40.245)
    assert report.grid.code == "110112-QS-007"
    # The photo was shrunk on the phone and stored as a JPEG the board links to.
    (address,) = report.photos
    photo = Photo.objects.get(pk=address.removeprefix("/photos/"))
    assert photo.content_type == "image/jpeg" and photo.township_id == report.township_id
    board.wait_for_selector(f"#alert-{report.alert_id}", timeout=10_000)
    assert board.get_attribute(f"#alert-{report.alert_id} a.snapshot", "href") == address
    seen = board.request.get(f"{daphne_server}{address}")
    assert seen.ok and seen.headers["content-type"] == "image/jpeg"
    assert "垃圾" in board.inner_text(f"#alert-{report.alert_id}")
    phone.wait_for_selector("#my-reports li strong", timeout=10_000)
    assert "新告警" in phone.inner_text("#my-reports")
    assert phone.input_value("#id_description") == ""  # the draft went with the report
    screenshot(phone, "phone-report-sent")


def test_the_phone_page_fits_390_px_and_shows_no_empty_photo(
    daphne_server, demo_committed, board_page
):
    """At 390×844 nothing runs off the right edge, and before a photo is chosen there is no
    preview (no broken image beside "remove photo")."""
    phone = board_page("grid01", viewport=(390, 844))
    phone.wait_for_selector("#report-form")
    screenshot(phone, "phone-report-empty")
    overflowing = phone.evaluate(
        """() => [...document.querySelectorAll('body *')]
             .filter((e) => !e.closest('svg') && e.getBoundingClientRect().right > innerWidth)
             .map((e) => `${e.tagName.toLowerCase()}#${e.id}`)"""
    )
    assert overflowing == []
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    assert not phone.is_visible("#photo-preview")
    assert not phone.is_visible("#photo-remove")
    phone.set_input_files(
        "#id_photo", files=[{"name": "site.png", "mimeType": "image/png", "buffer": png(640, 480)}]
    )
    phone.wait_for_selector("#photo-preview:not([hidden]) img", timeout=5_000)
    assert phone.is_visible("#photo-remove")
    phone.click("#photo-remove")
    assert not phone.is_visible("#photo-preview")


def test_the_grid_officer_hears_the_outcome_and_says_how_it_went(
    daphne_server, demo_committed, board_page
):
    from alerts.models import Alert
    from command.org.models import Category, User
    from incidents.models import Incident
    from incidents.services.incidents import incident_close, incident_open, incident_resolve
    from intake.reports import report_file

    grid01, duty = User.objects.get(username="grid01"), User.objects.get(username="duty")
    report = report_file(
        reporter=grid01, category=Category.objects.get(code="garbage"), description="河边垃圾"
    )
    alert = Alert.objects.get(pk=report.alert_id)
    incident = incident_open(
        actor=duty,
        township=alert.township,
        category=alert.category,
        severity=alert.severity,
        title=alert.title,
        alerts=[alert],
    )
    incident_resolve(actor=duty, incident=incident)
    incident_close(actor=duty, incident=incident, feedback="已清运两车", settled_level="township")

    phone = board_page("grid01", viewport=(390, 844))
    line = phone.wait_for_selector("#my-reports li:has(.callback-form)", timeout=10_000)
    assert "已清运两车" in line.inner_text()
    line.scroll_into_view_if_needed()
    screenshot(phone, "phone-callback")
    with phone.expect_navigation():
        phone.click("#my-reports .callback-form button[value=basic]")
    incident.refresh_from_db()
    assert incident.satisfaction == Incident.Satisfaction.BASIC
    assert "基本满意" in phone.inner_text("#my-reports")
    assert phone.query_selector("#my-reports .callback-form") is None
