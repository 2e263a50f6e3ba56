"""A grid officer on a phone files a report; it appears on the duty board; the officer sees what
became of it. A report that cannot be sent keeps its draft on the phone."""

import pytest

from streams.models import GridReport
from tests.conftest import wait_for
from tests.e2e.conftest import screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.services]


def test_phone_report_reaches_the_board(daphne_server, demo_committed, board_page):
    board = board_page("duty")
    board.wait_for_selector("#live-status.live", timeout=10_000)
    phone = board_page("grid01", viewport=(390, 844))
    assert phone.url.endswith("/report/")

    phone.select_option("#id_category", "garbage")
    phone.fill("#id_description", "东沟村口垃圾堆积，影响通行")
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

    phone.click("#report-form button[type=submit]")
    report = wait_for(lambda: GridReport.objects.first(), what="the report")
    assert report.latitude == pytest.approx(40.245)
    board.wait_for_selector(f"#alert-{report.alert_id}", timeout=10_000)
    assert "垃圾" in board.inner_text(f"#alert-{report.alert_id}")
    phone.wait_for_selector("#my-reports li strong", timeout=10_000)
    assert "新告警" in phone.inner_text("#my-reports")
    assert phone.input_value("#id_description") == ""  # the draft went with the report
    screenshot(phone, "phone-report-sent")
