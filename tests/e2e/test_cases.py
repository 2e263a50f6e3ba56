"""The case library and the daily review in a browser at the board's 1920×1080: a filter
change redraws the list and puts the query in the address bar; one click opens a case."""

from __future__ import annotations

from datetime import timedelta

import pytest

from alerts.models import Alert
from command import clock
from command.org.models import Category, Department, Grid, Township, User
from incidents.models import Incident, Whistle
from incidents.services.incidents import incident_open
from incidents.services.whistles import SummonedDepartment, whistle_blow
from tests.conftest import raise_alert
from tests.e2e.conftest import screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.services]

MATTERS = [
    ("parking", "110112-QS-007", "学校门口早高峰违停", "closed", "grid", "satisfied"),
    ("garbage", "110112-QS-012", "河道边堆放建筑垃圾", "closed", "township", "basic"),
    ("fire", "110112-QS-012", "秸秆焚烧冒烟", "closed", "county", "unsatisfied"),
    ("dispute", "110112-QS-007", "邻里宅基地纠纷", "resolved", "", ""),
    ("parking", "110112-QS-007", "菜市场路口违停", "open", "", ""),
    ("parking", "110112-QS-007", "幼儿园门口车辆乱停", "open", "", ""),
]


def _history():
    duty = User.objects.get(username="duty")
    qingshui = Township.objects.get(code="qingshui")
    now = clock.now()
    made = []
    for n, (category, grid, title, status, level, satisfaction) in enumerate(MATTERS):
        raise_alert(qingshui.pk, f"e2e-{n}", category=category, title=title,
                    grid_id=Grid.objects.get(code=grid).pk,
                    time=now - timedelta(days=1, hours=n))  # fmt: skip
        incident = incident_open(
            actor=duty, township=qingshui, category=Category.objects.get(code=category),
            severity="major", title=title, grid=Grid.objects.get(code=grid),
            alerts=list(Alert.objects.filter(dedupe_key=f"e2e-{n}")),
        )  # fmt: skip
        if n == 4:
            whistle_blow(
                actor=duty, incident=incident, kind=Whistle.Kind.GENERAL,
                purpose=Whistle.Purpose.JOINT_ENFORCEMENT,
                departments=[SummonedDepartment(Department.objects.get(code="chengguan"))],
            )  # fmt: skip
        Incident.objects.filter(pk=incident.pk).update(
            opened_at=now - timedelta(days=1 + 2 * n, hours=n),
            status=status if n != 4 else "dispatched",
            settled_level=level,
            satisfaction=satisfaction,
            reopened_count=1 if satisfaction == "unsatisfied" else 0,
            feedback="已处置完毕，现场恢复正常。" if status == "closed" else "",
        )
        made.append(incident)
    return made


def test_case_library_filters_and_opens_a_case(daphne_server, demo_committed, board_page):
    made = _history()
    page = board_page("duty")
    page.click("#nav-cases")
    page.wait_for_selector("#case-table tr[data-incident]")
    assert page.locator("#case-table tr[data-incident]").count() == len(MATTERS)
    screenshot(page, "cases-library")
    # A filter change redraws the list through htmx and the query goes to the address bar.
    page.select_option("select[name=category]", "parking")
    page.wait_for_function(
        "document.querySelectorAll('#case-table tr[data-incident]').length === 3"
    )
    assert "category=parking" in page.url
    page.fill("input[name=q]", "违停")
    page.press("input[name=q]", "Enter")
    page.wait_for_function(
        "document.querySelectorAll('#case-table tr[data-incident]').length === 2"
    )
    assert "q=" in page.url
    screenshot(page, "cases-library-filtered")
    # The address is a bookmark: reloading it shows the same list.
    page.reload()
    page.wait_for_selector("#case-table tr[data-incident]")
    assert page.locator("#case-table tr[data-incident]").count() == 2
    # One click to the case's timeline, one more to its replay.
    page.click(f"#case-table tr[data-incident='{made[4].pk}'] td.case-title a")
    page.wait_for_url(f"**/supervise/qingshui/incidents/{made[4].pk}/")
    assert page.locator("#timeline tr[data-action]").count() > 0


def test_daily_review_page(daphne_server, demo_committed, board_page):
    made = _history()
    page = board_page("duty")
    page.click("#nav-review")
    page.wait_for_selector("#review-repeats")
    # Yesterday on the township's clock: the day the alerts above were raised (most of them).
    assert int(page.inner_text("#review-alerts")) >= 1
    repeat = page.locator("#review-repeats tr[data-grid='110112-QS-007'][data-category='parking']")
    assert repeat.count() == 1
    assert page.locator(f"#review-open-list tr[data-incident='{made[4].pk}']").count() == 1
    screenshot(page, "daily-review")
    page.click(f"#review-open-list tr[data-incident='{made[4].pk}'] a")
    page.wait_for_url(f"**/supervise/qingshui/incidents/{made[4].pk}/")
