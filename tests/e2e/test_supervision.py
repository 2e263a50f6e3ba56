"""The supervisor's assessment page in a browser: the department table, heat map and 631."""

import pytest

from command.org.models import Category, Department, Grid, Township, User
from incidents.models import Whistle
from incidents.services.incidents import incident_open
from incidents.services.whistles import SummonedDepartment, whistle_blow
from tests.e2e.conftest import screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.services]


def test_supervisor_reads_the_department_table(daphne_server, demo_committed, board_page):
    duty = User.objects.get(username="duty")
    for n, code in enumerate(["110112-QS-007", "110112-QS-007", "110112-QS-012"]):
        incident = incident_open(
            actor=duty,
            township=Township.objects.get(code="qingshui"),
            category=Category.objects.get(code="parking"),
            severity="major",
            title=f"违停 {n}",
            grid=Grid.objects.get(code=code),
        )
        whistle_blow(
            actor=duty,
            incident=incident,
            kind=Whistle.Kind.GENERAL,
            purpose=Whistle.Purpose.JOINT_ENFORCEMENT,
            departments=[
                SummonedDepartment(Department.objects.get(code=c)) for c in ("chengguan", "traffic")
            ],
        )
    page = board_page("supervisor")
    page.goto(f"{daphne_server}/supervise/qingshui/")
    row = page.wait_for_selector("#department-table tr[data-department='chengguan']")
    assert row.inner_text().split("\t")[1].strip() == "3"
    hot = page.get_attribute("[data-grid='110112-QS-007']", "style")
    cooler = page.get_attribute("[data-grid='110112-QS-012']", "style")
    assert hot and cooler and hot != cooler
    screenshot(page, "supervise-performance")
