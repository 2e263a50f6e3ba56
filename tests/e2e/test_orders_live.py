"""A supervisor issues a supervision order (督办单) from the incident's timeline page; the
department's console shows it the moment it is issued, and the department acknowledges and
answers it there, each step live; the timeline then tells the whole of it."""

from datetime import time

import pytest

from command.org.models import Category, Department, Grid, OnCallShift, Township, User
from incidents.models import Summons, SupervisionOrder, Whistle
from incidents.services.incidents import incident_open
from incidents.services.whistles import SummonedDepartment, whistle_blow
from tests.conftest import wait_for
from tests.e2e.conftest import screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.services]


def test_an_order_issued_on_the_timeline_is_answered_live_on_the_console(
    daphne_server, demo_committed, board_page
):
    duty = User.objects.get(username="duty")
    chengguan = Department.objects.get(code="chengguan")
    # Someone on call at 城管 (not the member at the console): the order pages them.
    on_call = User.objects.create(
        username="cg_oncall",
        first_name="立",
        last_name="周",
        role=User.Role.DEPARTMENT_MEMBER,
        department=chengguan,
    )
    OnCallShift.objects.filter(department=chengguan).delete()  # the demo's own shift
    OnCallShift.objects.create(
        department=chengguan, starts=time(0, 0), ends=time(0, 0), primary=on_call
    )
    incident = incident_open(
        actor=duty,
        township=Township.objects.get(code="qingshui"),
        category=Category.objects.get(code="parking"),
        severity="major",
        title="滨河路违停堵塞",
        grid=Grid.objects.get(code="110112-QS-007"),
    )
    summons = whistle_blow(
        actor=duty,
        incident=incident,
        kind=Whistle.Kind.GENERAL,
        purpose=Whistle.Purpose.JOINT_ENFORCEMENT,
        departments=[SummonedDepartment(chengguan)],
    ).summonses.get()

    console = board_page("chengguan")
    assert console.url.endswith("/console/chengguan/")
    console.wait_for_selector("#live-status.live", timeout=10_000)
    console.evaluate("window.__notReloaded = true")
    assert console.is_visible("#order-inbox-empty")

    timeline = board_page("supervisor")
    timeline.goto(f"{daphne_server}/supervise/qingshui/incidents/{incident.pk}/")
    form = timeline.wait_for_selector("#order-form")
    assert "城管" in form.inner_text()
    timeline.select_option("#order-form select[name=department]", "chengguan")
    timeline.fill(
        "#order-form textarea[name=instruction]",
        "滨河路东段违停仍未清理，请立即到场清理并回复处理结果",
    )
    timeline.click("#order-form button[type=submit]")
    row = timeline.wait_for_selector("#order-list tr[data-status='issued']", timeout=10_000)
    order = SupervisionOrder.objects.get()
    assert (order.department_id, order.summons_id) == (chengguan.pk, summons.pk)
    assert "滨河路东段违停仍未清理" in row.inner_text()
    timeline.wait_for_selector("#timeline tr[data-action='order.issued']")
    assert timeline.is_visible("#timeline tr[data-action='order.paged']")
    screenshot(timeline, "orders-timeline-issued")

    # The console shows it at once, without reloading.
    item = console.wait_for_selector(f"#order-{order.pk}[data-status='issued']", timeout=10_000)
    assert "滨河路东段违停仍未清理" in item.inner_text()
    assert not console.is_visible("#order-inbox-empty")
    assert console.inner_text("#order-open-count") == "1"
    screenshot(console, "orders-console-arrived")

    console.click(f"#order-{order.pk} [data-api-post$='/acknowledge']")
    console.wait_for_selector(f"#order-{order.pk}[data-status='acknowledged']", timeout=10_000)
    # Acknowledging the order acknowledged the summons still waiting: its chain stops.
    wait_for(
        lambda: Summons.objects.get(pk=summons.pk).status == Summons.Status.ACKNOWLEDGED,
        what="the summons to be acknowledged with the order",
    )
    console.wait_for_selector(f"#summons-{summons.pk}[data-status='acknowledged']")
    screenshot(console, "orders-console-acknowledged")

    console.fill(
        f"#order-{order.pk} textarea[name=answer]", "已到场清理违停车辆 12 辆，道路恢复通行"
    )
    console.click(f"#order-{order.pk} .order-answer button[type=submit]")
    console.wait_for_selector(f"#order-{order.pk}", state="detached", timeout=10_000)
    console.wait_for_selector("#order-inbox-empty", timeout=10_000)
    assert console.inner_text("#order-open-count") == "0"
    assert console.evaluate("window.__notReloaded") is True
    answered = SupervisionOrder.objects.get(pk=order.pk)
    assert answered.status == SupervisionOrder.Status.ANSWERED
    assert answered.answer == "已到场清理违停车辆 12 辆，道路恢复通行"

    timeline.reload()
    timeline.wait_for_selector("#order-list tr[data-status='answered']")
    for action in ("order.issued", "order.paged", "order.acknowledged", "order.answered"):
        assert timeline.is_visible(f"#timeline tr[data-action='{action}']"), action
    assert "已到场清理违停车辆 12 辆" in timeline.inner_text("#order-list")
    screenshot(timeline, "orders-timeline-answered")
