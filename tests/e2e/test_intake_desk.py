"""The duty officer takes a call at the board's intake desk: the dialog files it, the alert
arrives in the queue through the socket with the caller's phone masked, marked as possibly the
same as the 12345 ticket about the same grid, and one click merges it into that ticket."""

import pytest

from alerts.models import Alert
from command.org.models import Category, Township, User
from demo.data import GRID_OFFICER_GRID
from intake.reports import intake_file
from streams.models import GridReport
from tests.conftest import wait_for
from tests.e2e.conftest import png, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.services]


def test_a_call_filed_at_the_desk_arrives_masked_and_merges_into_the_ticket(
    daphne_server, demo_committed, board_page, tmp_path
):
    qingshui = Township.objects.get(code="qingshui")
    hotline = User.objects.create(username="h12345", role=User.Role.HOTLINE, township=qingshui)
    ticket = intake_file(
        actor=hotline,
        channel="12345",
        category=Category.objects.get(code="garbage"),
        description="市民反映：滨河路桥下垃圾堆积",
        grid=qingshui.grids.get(code=GRID_OFFICER_GRID),
        caller_name="李四",
        caller_phone="13900001111",
        external_id="BJ12345-0042",
    ).report

    officer = board_page("duty")
    officer.wait_for_selector("#live-status.live", timeout=10_000)
    officer.wait_for_selector(f"#alert-{ticket.alert_id}", timeout=10_000)
    assert "139****1111" in officer.inner_text(f"#alert-{ticket.alert_id}")

    officer.click("#intake-open")
    officer.wait_for_selector("#intake-dialog[open]", timeout=10_000)
    dialog = "#intake-dialog"
    officer.check(f"{dialog} input[name=channel][value=phone]")
    officer.fill(f"{dialog} input[name=caller_name]", "张三")
    officer.fill(f"{dialog} input[name=caller_phone]", "138 1234 5678")
    officer.select_option(f"{dialog} select[name=category]", "garbage")
    officer.fill(f"{dialog} textarea[name=description]", "来电：桥下垃圾又堆起来了，有异味")
    # The grid picked on the map, as on the phone page.
    officer.click(f"#intake-grid-picker path[data-grid='{GRID_OFFICER_GRID}']")
    assert officer.input_value(f"{dialog} select[name=grid]") == GRID_OFFICER_GRID
    photo = tmp_path / "bridge.png"
    photo.write_bytes(png(64, 48))
    officer.set_input_files("#intake-photo", str(photo))
    officer.wait_for_selector(f"{dialog} input[name=photos]", state="attached", timeout=10_000)
    screenshot(officer, "board-intake-dialog")
    officer.click(f"{dialog} button[type=submit]")
    officer.wait_for_selector(dialog, state="detached", timeout=10_000)

    call = GridReport.objects.exclude(pk=ticket.pk).get()
    assert (call.channel, call.caller_phone, call.reporter.username) == (
        "phone",
        "138 1234 5678",
        "duty",
    )
    assert len(call.photos) == 1 and call.grid.code == GRID_OFFICER_GRID
    row = f"#alert-{call.alert_id}"
    officer.wait_for_selector(row, timeout=10_000)
    text = officer.inner_text(row)
    assert "张三 138****5678" in text and "13812345678" not in officer.content()
    assert f"#{ticket.alert_id}" in officer.inner_text(f"{row} .duplicate")
    screenshot(officer, "board-intake-duplicate")

    # The caller's whole number, for the callback, in the item's dialog.
    officer.click(f"{row} button.caller")
    officer.wait_for_selector("#intake-item-dialog[open]", timeout=10_000)
    assert "138 1234 5678" in officer.inner_text("#intake-item-dialog .caller-phone")
    officer.click("#intake-item-dialog [data-close-dialog]")
    officer.wait_for_selector("#intake-item-dialog", state="detached", timeout=10_000)

    officer.click(f"{row} .duplicate button.merge")
    officer.wait_for_selector(row, state="detached", timeout=10_000)
    wait_for(
        lambda: Alert.objects.get(pk=call.alert_id).status == Alert.Status.MERGED,
        what="the call to be merged into the ticket",
    )
    kept = Alert.objects.get(pk=ticket.alert_id)
    assert kept.count == 2 and kept.is_open
    officer.wait_for_selector(f"#alert-{ticket.alert_id} .repeat", timeout=10_000)
    assert "×2" in officer.inner_text(f"#alert-{ticket.alert_id} .repeat")
    screenshot(officer, "board-intake-merged")
