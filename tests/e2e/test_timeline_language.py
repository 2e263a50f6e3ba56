"""The incident timeline in a browser, in each language: an incident opened from a rule's alert
is titled in the reader's language only (issue 13, seen on the timeline page)."""

import json

import pytest
from django.utils import timezone

from alerts.models import Alert
from alerts.rules import rulebook
from command.org.models import User
from incidents.services.incidents import incident_open
from streams.ingest import InboundMessage, directory, store_batch
from tests.e2e.conftest import screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.services]


def test_the_timeline_title_reads_in_one_language(daphne_server, demo_committed, board_page):
    directory.forget()
    rulebook.forget()
    payload = {
        "id": "cam-12-excavator",
        "ts": int(timezone.now().timestamp() * 1000),
        "label": "excavator",
        "score": 0.9,
        "zones": [],
    }
    store_batch(
        [InboundMessage("whistle/qingshui/camera/cam-12/event", json.dumps(payload).encode())]
    )
    alert = Alert.objects.get()
    body = alert.incident_body
    incident = incident_open(
        actor=User.objects.get(username="duty"),
        township=alert.township,
        category=alert.category,
        severity=body["severity"],
        title=body["title"],
        alerts=[alert],
    )
    path = f"{daphne_server}/supervise/qingshui/incidents/{incident.pk}/"
    for locale, heading, detected, name in (
        (
            "zh-CN",
            "盗采 · 盗采机械：挖掘机 @ cam-12",
            "识别: 挖掘机 置信度: 0.9 告警级别: 重要",
            "timeline-zh",
        ),
        (
            "en-US",
            "Illegal mining · Mining machinery: excavator @ cam-12",
            "detected: excavator score: 0.9 severity: Major",
            "timeline-en",
        ),
    ):
        page = board_page("supervisor", locale=locale)
        page.goto(path)
        assert page.inner_text("h1") == heading
        assert detected in page.inner_text("#timeline")
        screenshot(page, name)
    rulebook.forget()
