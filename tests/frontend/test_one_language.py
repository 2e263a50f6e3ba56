"""Every page reads in one language at a time: rule, category and label names of the other
language never show (issue 13: an alert's title printed "盗采机械 Mining machinery: excavator
@ cam-12" on the timeline page whatever the reader's language)."""

from __future__ import annotations

import json
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from django.utils import timezone

from alerts.models import Alert
from alerts.rules import rulebook
from command.org.models import Category, Department, Township, User
from incidents.models import Incident, Summons, Whistle
from incidents.services.incidents import incident_open
from incidents.services.pushes import _summons_payload
from incidents.services.whistles import SummonedDepartment, whistle_blow
from intake.reports import report_file
from streams.ingest import InboundMessage, directory, store_batch
from tests.conftest import signed_in
from tests.test_i18n import EN, ZH

pytestmark = pytest.mark.django_db

# Names of the demo's rules, categories and detection labels in each language, chosen so that
# none is part of a word of the other language's page.
CHINESE_NAMES = ["盗采", "挖掘机", "火情", "明火", "设备故障", "网关离线"]
ENGLISH_NAMES = [
    "Mining machinery",
    "Illegal mining",
    "excavator",
    "Fire or smoke",
    "Fire & smoke",
    "open fire",
    "Device fault",
    "Gateway offline",
]
UNSHOWN = {"网关离线", "Gateway offline", "Fire or smoke"}


class _Shown(HTMLParser):
    """What a person reads on a page: its text and the attributes a screen or a screen reader
    shows (title, alt, aria-label, placeholder); not data- attributes meant for scripts."""

    SHOWN = {"title", "alt", "aria-label", "placeholder", "value"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._hidden += 1
        self.parts += [v for k, v in attrs if k in self.SHOWN and v and tag != "input"]

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._hidden -= 1

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def shown(html: str) -> str:
    parser = _Shown()
    parser.feed(html)
    return " ".join(parser.parts)


def _camera(device: str, label: str, snapshot: str | None = None) -> InboundMessage:
    when = timezone.now() - timedelta(minutes=2)
    payload = {
        "id": f"{device}-{label}",
        "ts": int(when.timestamp() * 1000),
        "label": label,
        "score": 0.9,
        "zones": [],
        **({"snapshot": snapshot} if snapshot else {}),
    }
    return InboundMessage(f"whistle/qingshui/camera/{device}/event", json.dumps(payload).encode())


@pytest.fixture
def scene(demo):
    """The demo township with its rules at work: a mining alert opened as an incident with the
    board's own body and a whistle to 城管, a fire and a gateway offline still in the queue,
    and a grid officer's report."""
    directory.forget()
    rulebook.forget()
    store_batch([_camera("cam-12", "excavator", snapshot="https://cams.example/cam-12/1.jpg")])
    store_batch([_camera("cam-05", "fire")])
    store_batch([InboundMessage("whistle/qingshui/gateway/gw-01/status", b"offline")])
    mining = Alert.objects.get(category__code="illegal-mining")
    body = mining.incident_body
    duty = User.objects.get(username="duty")
    township = Township.objects.get(code="qingshui")
    incident = incident_open(
        actor=duty,
        township=township,
        category=Category.objects.get(code=body["category"]),
        severity=body["severity"],
        title=body["title"],
        alerts=[mining],
    )
    whistle_blow(
        actor=duty,
        incident=incident,
        kind=Whistle.Kind.GENERAL,
        purpose=Whistle.Purpose.JOINT_ENFORCEMENT,
        departments=[SummonedDepartment(Department.objects.get(code="chengguan"), "现场执法")],
    )
    report_file(
        reporter=User.objects.get(username="grid01"),
        category=Category.objects.get(code="garbage"),
        description="桥下堆了建筑垃圾",
    )
    yield incident
    rulebook.forget()


def _pages(incident: Incident) -> list[tuple[str, str]]:
    township = "qingshui"
    summons = Summons.objects.get(whistle__incident=incident)
    base = f"/supervise/{township}/incidents/{incident.pk}"
    return [
        ("duty", f"/board/{township}/"),
        ("duty", f"/board/{township}/incidents/{incident.pk}/whistle/"),
        ("duty", f"/board/{township}/incidents/{incident.pk}/close/"),
        ("duty", f"/board/{township}/incidents/new/"),
        ("supervisor", f"{base}/"),
        ("supervisor", f"{base}/replay/"),
        ("supervisor", f"{base}/replay/?at={timezone.now().isoformat()}"),
        ("supervisor", f"/supervise/{township}/"),
        ("chengguan", "/console/chengguan/"),
        ("chengguan", f"/console/chengguan/summonses/{summons.pk}/"),
        ("grid01", "/report/"),
    ]


@pytest.mark.parametrize(
    ("headers", "own", "other"),
    [(ZH, CHINESE_NAMES, ENGLISH_NAMES), (EN, ENGLISH_NAMES, CHINESE_NAMES)],
    ids=["zh-hans", "en"],
)
def test_every_page_shows_one_language(scene, headers, own, other):
    seen = ""
    for username, path in _pages(scene):
        client = signed_in(username)
        response = client.get(path, **headers)
        assert response.status_code == 200, (path, response.status_code)
        text = shown(response.content.decode())
        mixed = [name for name in other if name in text]
        assert not mixed, f"{path} as {username} shows {mixed}"
        seen += text
    # The pages did show the names, in their reader's language: the check above had something
    # to find.
    # (Not the names of the rules whose alerts are still in the queue: a queue row reads by
    # category, label and device, not by title.)
    missing = [name for name in own if name not in seen and name not in UNSHOWN]
    assert not missing, f"never shown: {missing}"


def test_the_incident_title_reads_in_the_readers_language(scene):
    client = signed_in("supervisor")
    timeline = f"/supervise/qingshui/incidents/{scene.pk}/"
    zh = shown(client.get(timeline, **ZH).content.decode())
    en = shown(client.get(timeline, **EN).content.decode())
    assert "盗采 · 盗采机械：挖掘机 @ cam-12" in zh
    assert "Illegal mining · Mining machinery: excavator @ cam-12" in en
    # The stored title is as it was: the API's `title`, with `title_en` beside it.
    body = signed_in("duty").get(f"/api/v1/incidents/{scene.pk}", **ZH).json()
    assert body["title"] == "盗采机械：挖掘机 @ cam-12"
    assert body["title_en"] == "Mining machinery: excavator @ cam-12"
    alerts = signed_in("duty").get("/api/v1/alerts", **ZH).json()
    fire = next(a for a in alerts if a["category"] == "fire")
    assert fire["title"] == "火情：明火 @ cam-05"
    assert fire["title_en"] == "Fire or smoke: open fire @ cam-05"
    # And so do the pushes to a department's own system.
    pushed = _summons_payload(Summons.objects.get(whistle__incident=scene), "summons.notified")
    assert pushed["incident"]["title"] == "盗采机械：挖掘机 @ cam-12"
    assert pushed["incident"]["title_en"] == "Mining machinery: excavator @ cam-12"
    report = next(a for a in alerts if a["category"] == "garbage")
    assert report["title"] == report["title_en"] == "桥下堆了建筑垃圾", "the officer's own words"
