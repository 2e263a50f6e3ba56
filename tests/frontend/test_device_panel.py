"""The board's device panel: the last hour of readings with the thresholds that apply."""

from datetime import timedelta

import pytest
from django.utils import timezone

from command.org.models import Device
from streams.models import Reading
from tests.conftest import signed_in

pytestmark = pytest.mark.django_db


def test_panel_draws_the_last_hour_with_thresholds(demo):
    gauge = Device.objects.get(code="wl-02")
    now = timezone.now()
    Reading.objects.bulk_create(
        Reading(device=gauge, metric="water_level", time=now - timedelta(minutes=m), value=v)
        for m, v in [(90, 9.9), (40, 2.0), (20, 3.1), (1, 3.8)]
    )
    response = signed_in("duty").get("/board/qingshui/devices/wl-02/", HTTP_ACCEPT_LANGUAGE="zh")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-metric="water_level"' in html
    assert '<span class="latest">3.80</span>' in html
    # Three minutes in the hour (the reading 90 minutes ago is outside the window).
    line = html.split('class="line"')[0].rsplit('d="', 1)[1]
    assert line.count("L") == 2 and line.startswith("M")
    assert "9.9" not in html.split('class="range')[1].split("</div>")[0]
    assert 'class="threshold sev-major"' in html and "重要 3.0" in html  # the demo's rule
    assert "滨河桥水位计" in html


def test_panel_is_scoped_to_the_board(demo):
    assert signed_in("chengguan").get("/board/qingshui/devices/wl-02/").status_code == 403
    assert signed_in("duty").get("/board/qingshui/devices/nope/").status_code == 404
    empty = signed_in("duty").get("/board/qingshui/devices/cam-quarry/")
    assert empty.status_code == 200 and "data-metric" not in empty.content.decode()
