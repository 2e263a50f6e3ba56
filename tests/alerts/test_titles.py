"""Alert and incident titles read in one language at a time: rules have a Chinese and an
English name, alerts keep the facts of their titles, and the words are put together in the
reader's language when shown."""

import importlib
import json
from datetime import timedelta

import pytest
from django.apps import apps
from django.db import connection
from django.utils import timezone, translation

from alerts.models import Alert, AlertRule
from alerts.rules import rulebook
from alerts.titles import alert_title
from command.org.models import Category, Device, Township, User
from incidents.services.incidents import incident_open
from streams.ingest import InboundMessage, directory, store_batch
from tests.conftest import raise_alert

MIGRATION = importlib.import_module("alerts.migrations.0011_alertrule_name_en")


@pytest.fixture(autouse=True)
def fresh_caches():
    directory.forget()
    rulebook.forget()
    yield
    rulebook.forget()


@pytest.mark.parametrize(
    ("name", "split"),
    [
        ("盗采机械 Mining machinery", ("盗采机械", "Mining machinery")),
        ("关停矿区夜间作业 Closed quarry at night", ("关停矿区夜间作业", "Closed quarry at night")),
        ("河道水位超警 River above warning level", ("河道水位超警", "River above warning level")),
        ("PM2.5超标 PM2.5 too high", ("PM2.5超标", "PM2.5 too high")),
        ("1号摄像头(东) Camera 1 (east)", ("1号摄像头(东)", "Camera 1 (east)")),
        ("盗采 / Illegal mining", ("盗采", "Illegal mining")),
        ("盗采 ｜ Illegal mining", ("盗采", "Illegal mining")),
        ("  火情   Fire or smoke ", ("火情", "Fire or smoke")),
        # One language only, or an order that cannot be told apart: left whole, in `name`.
        ("盗采机械", ("盗采机械", "")),
        ("Closed quarry", ("Closed quarry", "")),
        ("wl-01 water_level 3.0", ("wl-01 water_level 3.0", "")),
        ("Closed quarry 关停矿区", ("Closed quarry 关停矿区", "")),
        ("盗采机械Mining machinery", ("盗采机械Mining machinery", "")),
        ("夜间 night 作业", ("夜间 night 作业", "")),
    ],
)
def test_bilingual_names_split_into_chinese_and_english(name, split):
    assert MIGRATION.split_bilingual(name) == split


@pytest.mark.django_db
def test_the_migration_splits_rule_names_and_gives_their_alerts_both(demo):
    """Run the data migration's step on rows as they were before it: names "中文 English" in one
    field and alerts that kept only their rule's pk."""
    township = Township.objects.get(code="qingshui")
    mining = AlertRule.objects.get(name="盗采机械")
    offline = AlertRule.objects.get(name="网关离线")
    AlertRule.objects.filter(pk=mining.pk).update(name="盗采机械 Mining machinery", name_en="")
    AlertRule.objects.filter(pk=offline.pk).update(name="网关离线 Gateway offline", name_en="")
    AlertRule.objects.filter(name="火情").update(name_en="")  # Chinese only: stays
    camera = Device.objects.get(code="cam-12")
    gateway = Device.objects.get(code="gw-01")
    old_camera = raise_alert(
        township.pk,
        "old:camera",
        category="illegal-mining",
        title="盗采机械 Mining machinery: excavator @ cam-12",
        device_id=camera.pk,
        detail={"label": "excavator", "score": 0.9, "zones": [], "rule": mining.pk},
    )
    old_offline = raise_alert(
        township.pk,
        "old:offline",
        category="device-fault",
        source="device",
        title="网关离线 Gateway offline: gw-01",
        device_id=gateway.pk,
        detail={"label": "offline", "rule": offline.pk},
    )
    gone = raise_alert(
        township.pk,
        "old:gone",
        title="已删规则 Deleted rule: excavator @ cam-12",
        device_id=camera.pk,
        detail={"label": "excavator", "rule": 999999},
    )

    class Editor:
        pass

    editor = Editor()
    editor.connection = connection
    MIGRATION.split_rule_names(apps, editor)

    mining.refresh_from_db()
    assert (mining.name, mining.name_en) == ("盗采机械", "Mining machinery")
    assert AlertRule.objects.get(pk=offline.pk).name_en == "Gateway offline"
    assert AlertRule.objects.get(name="火情").name_en == ""
    stored = Alert.objects.get(pk=old_camera)
    assert stored.detail["rule_name"] == "盗采机械"
    assert stored.detail["rule_name_en"] == "Mining machinery"
    assert stored.detail["device_code"] == "cam-12"
    assert stored.title == "盗采机械 Mining machinery: excavator @ cam-12", "stored as it was"
    with translation.override("zh-hans"):
        assert stored.display_title == "盗采机械：挖掘机 @ cam-12"
        assert Alert.objects.get(pk=old_offline).display_title == "网关离线：gw-01"
        # Its rule is gone: nothing to name it by but the title it had.
        assert Alert.objects.get(pk=gone).display_title.startswith("已删规则 Deleted rule")
    with translation.override("en"):
        assert stored.display_title == "Mining machinery: excavator @ cam-12"
        assert Alert.objects.get(pk=old_offline).display_title == "Gateway offline: gw-01"


def _camera(device: str, label: str, score: float = 0.9) -> InboundMessage:
    when = timezone.now() - timedelta(seconds=5)
    payload = {
        "id": f"{label}-{when.timestamp()}",
        "ts": int(when.timestamp() * 1000),
        "label": label,
        "score": score,
        "zones": [],
    }
    return InboundMessage(f"whistle/qingshui/camera/{device}/event", json.dumps(payload).encode())


@pytest.mark.django_db
def test_alerts_raised_by_the_demo_rules_read_in_one_language(demo):
    store_batch([_camera("cam-12", "excavator")])
    alert = Alert.objects.get()
    assert alert.detail["rule_name"] == "盗采机械"
    assert alert.detail["rule_name_en"] == "Mining machinery"
    # The column keeps the official language's composition, for search and older clients.
    assert alert.title == "盗采机械：挖掘机 @ cam-12"
    with translation.override("zh-hans"):
        assert alert.display_title == "盗采机械：挖掘机 @ cam-12"
    with translation.override("en"):
        assert alert.display_title == "Mining machinery: excavator @ cam-12"

    gateway = Device.objects.get(code="gw-01")
    store_batch([InboundMessage(f"whistle/qingshui/gateway/{gateway.code}/status", b"offline")])
    offline = Alert.objects.get(source="device")
    assert offline.title == "网关离线：gw-01"
    with translation.override("en"):
        assert offline.display_title == "Gateway offline: gw-01"


@pytest.mark.django_db
def test_threshold_rate_and_built_in_titles(demo):
    facts = {"rule": 1, "rule_name": "河道水位超警", "rule_name_en": "River above warning level"}
    level = {**facts, "metric": "water_level", "value": 3.25, "device_code": "wl-01"}
    rate = {**facts, "metric": "water_level", "value": 2.1, "rate": 0.5, "per_seconds": 60}
    for language, name in (("zh-hans", "河道水位超警："), ("en", "River above warning level: ")):
        with translation.override(language):
            assert alert_title(level) == f"{name}water_level 3.25 @ wl-01"
            assert alert_title(rate, device_code="wl-02") == f"{name}water_level +0.5/60s @ wl-02"
    # No rule: the built-in label table.
    with translation.override("zh-hans"):
        assert alert_title({"label": "fire"}, device_code="cam-01") == "明火 @ cam-01"
    with translation.override("en"):
        assert alert_title({"label": "fire"}, device_code="cam-01") == "open fire @ cam-01"
        # A rate without its period, or a rule without its names: not composed.
        assert alert_title({**rate, "per_seconds": None}) is None
        assert alert_title({"rule": 3, "label": "fire"}) is None
        assert alert_title({"report": 7, "label": "fire"}) is None


@pytest.mark.django_db
def test_grid_reports_keep_the_officers_words(demo):
    township = Township.objects.get(code="qingshui")
    report = raise_alert(
        township.pk,
        "report:1",
        source="report",
        title="桥下有人倾倒建筑垃圾",
        detail={"report": 1, "reporter": "grid01"},
    )
    with translation.override("en"):
        assert Alert.objects.get(pk=report).display_title == "桥下有人倾倒建筑垃圾"


@pytest.mark.django_db
def test_an_incident_opened_with_its_alerts_title_follows_the_reader(demo):
    store_batch([_camera("cam-12", "excavator")])
    alert = Alert.objects.get()
    duty = User.objects.get(username="duty")
    township = Township.objects.get(code="qingshui")
    mining = Category.objects.get(code="illegal-mining")
    body = alert.incident_body
    generated = incident_open(
        actor=duty,
        township=township,
        category=mining,
        severity=body["severity"],
        title=body["title"],
        alerts=[alert],
    )
    typed = incident_open(
        actor=duty, township=township, category=mining, severity="major", title="北山夜间盗采"
    )
    with translation.override("en"):
        assert generated.display_title == "Mining machinery: excavator @ cam-12"
        assert typed.display_title == "北山夜间盗采", "a person's title stays as typed"
    with translation.override("zh-hans"):
        assert generated.display_title == "盗采机械：挖掘机 @ cam-12"
