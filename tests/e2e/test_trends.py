"""The trends page (研判) in a browser at 1920×1080: two years of matters, a place where the
same matter keeps coming back marked on the map, and the weekday × hour table."""

import random
from datetime import timedelta

import pytest

from alerts.models import Alert
from command import clock
from command.org.models import Category, Grid, Township
from tests.e2e.conftest import screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.services]
HOT_GRID = "110112-QS-012"


def _history() -> None:
    """About 900 alerts over the last two years, busier by day and in summer, and a burst of
    straw burning in one grid in the last weeks."""
    rng = random.Random(15)
    township = Township.objects.get(code="qingshui")
    categories = list(Category.objects.all())
    grids = list(Grid.objects.filter(township=township))
    now = clock.now()
    rows = []
    for n in range(900):
        at = now - timedelta(days=rng.uniform(0, 730))
        hour = rng.choices(range(24), weights=[1] * 6 + [4] * 14 + [2] * 4)[0]
        at = at.replace(hour=hour) if at.replace(hour=hour) < now else at
        category = rng.choice(categories)
        rows.append(
            Alert(
                township=township,
                category=category,
                severity="minor",
                status=Alert.Status.DISMISSED,
                source=Alert.Source.CAMERA,
                title=category.name,
                grid=rng.choice(grids),
                dedupe_key=f"history-{n}",
                first_seen=at,
                last_seen=at,
                closed_at=at,
            )
        )
    burning = Category.objects.get(code="straw-burning")
    hot = Grid.objects.get(code=HOT_GRID)
    for n in range(5):
        at = now - timedelta(days=3 + 4 * n, hours=n)
        rows.append(
            Alert(township=township, category=burning, severity="major",
                  status=Alert.Status.DISMISSED, source=Alert.Source.CAMERA, title=burning.name,
                  grid=hot, dedupe_key=f"burning-{n}", first_seen=at, last_seen=at, closed_at=at)
        )  # fmt: skip
    Alert.objects.bulk_create(rows)


def test_supervisor_reads_the_trends(daphne_server, demo_committed, board_page):
    _history()
    page = board_page("supervisor")
    page.goto(f"{daphne_server}/supervise/qingshui/trends/")
    page.wait_for_selector("#category-trend tbody tr[data-category]")
    total = int(page.inner_text("#trend-total"))
    assert total >= 400  # about half of 900 in the last twelve months, and the burst
    spot = page.locator(f"#hot-spots tr[data-grid='{HOT_GRID}'][data-category='straw-burning']")
    assert spot.count() == 1
    assert page.locator(f".hot-spot[data-grid='{HOT_GRID}']").is_visible()
    assert page.locator("#hour-of-day tbody tr[data-weekday]").count() == 7
    assert page.locator(".trend-chart rect.now").count() == 12
    screenshot(page, "supervise-trends")
    page.screenshot(path="test-artifacts/supervise-trends-full.png", full_page=True)
    page.select_option("#id_bucket", "week")
    with page.expect_navigation():
        page.click("form.period button[type=submit]")
    assert page.locator(".trend-chart rect.now").count() >= 48
    screenshot(page, "supervise-trends-weeks")


def test_the_performance_map_marks_the_hot_spots(daphne_server, demo_committed, board_page):
    _history()
    page = board_page("supervisor")
    page.goto(f"{daphne_server}/supervise/qingshui/")
    spot = page.wait_for_selector(f".hot-spot[data-grid='{HOT_GRID}']")
    assert spot.is_visible()
    assert "秸秆禁烧" in spot.inner_html()  # its title names what recurs
    assert page.locator(".hot-spot-key").is_visible()
    screenshot(page, "supervise-performance-hot-spots")
