"""Upgrading a deployment whose townships named their district in a text field: each name
becomes one District, the townships and the assessment schemes point at it, and going back
restores the names."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("org", "0008_oncall_notify"), ("supervision", "0002_monthly_report")]
AFTER = [("org", "0009_district"), ("supervision", "0003_scheme_district")]


def _migrate(targets: list[tuple[str, str]]):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_district_names_become_districts_and_back():
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    try:
        apps = _migrate(BEFORE)
        Township = apps.get_model("org", "Township")
        Scheme = apps.get_model("supervision", "AssessmentScheme")
        Township.objects.create(code="t1", name="一镇", district="青山区")
        Township.objects.create(code="t2", name="二镇", district="青山区")
        Township.objects.create(code="t3", name="三镇", district="白云区")
        Township.objects.create(code="t4", name="四镇", district="")
        Scheme.objects.create(district="白云区")
        Scheme.objects.create(district="")
        Scheme.objects.create(district="黑水区")  # a scheme for a district no township names

        apps = _migrate(AFTER)
        District = apps.get_model("org", "District")
        Township = apps.get_model("org", "Township")
        Scheme = apps.get_model("supervision", "AssessmentScheme")
        by_name = {d.name: d for d in District.objects.all()}
        assert set(by_name) == {"青山区", "白云区", "黑水区"}
        assert len({d.code for d in by_name.values()}) == 3
        districts = dict(Township.objects.values_list("code", "district__name"))
        assert districts == {"t1": "青山区", "t2": "青山区", "t3": "白云区", "t4": None}
        schemes = sorted(Scheme.objects.values_list("district__name", flat=True), key=str)
        assert schemes == [None, "白云区", "黑水区"]

        apps = _migrate(BEFORE)
        Township = apps.get_model("org", "Township")
        Scheme = apps.get_model("supervision", "AssessmentScheme")
        assert dict(Township.objects.values_list("code", "district")) == {
            "t1": "青山区",
            "t2": "青山区",
            "t3": "白云区",
            "t4": "",
        }
        assert sorted(Scheme.objects.values_list("district", flat=True)) == ["", "白云区", "黑水区"]
    finally:
        _migrate(latest)
