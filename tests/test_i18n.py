"""The UI and the admin in both languages: Simplified Chinese (the default) and English."""

from __future__ import annotations

import ast
import gettext
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.conf import settings

from tests.conftest import DEMO_PASSWORDS

CATALOG = Path(settings.LOCALE_PATHS[0]) / "zh_Hans" / "LC_MESSAGES"
ZH = {"HTTP_ACCEPT_LANGUAGE": "zh-CN,zh;q=0.9"}
EN = {"HTTP_ACCEPT_LANGUAGE": "en"}


def page(client, path: str, headers: dict[str, str]) -> str:
    response = client.get(path, **headers)
    assert response.status_code == 200, (path, response.status_code)
    return response.content.decode()


# --- pages --------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("headers", "lang", "present", "absent"),
    [
        (ZH, "zh-hans", ["登录", "乡镇综合指挥中心", "用户名", "密码"], ["Sign in", "Password"]),
        (EN, "en", ["Sign in", "Township command center", "Username"], ["登录", "密码"]),
    ],
)
def test_login_page_follows_the_browser_language(client, headers, lang, present, absent):
    body = page(client, "/login/", headers)
    assert f'<html lang="{lang}">' in body
    for text in present:
        assert text in body
    for text in absent:
        assert text not in body


@pytest.mark.django_db
def test_login_page_defaults_to_chinese(client):
    body = page(client, "/login/", {})
    assert "登录" in body and "Sign in" not in body


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("headers", "present", "absent"),
    [
        (ZH, ["告警队列", "值班看板", "清水镇", "连接中…", "退出", "值班员"], ["Alert queue"]),
        (
            EN,
            ["Alert queue", "Duty board", "Qingshui Town", "Log out", "Duty officer"],
            ["告警队列"],
        ),
    ],
)
def test_duty_board_in_both_languages(client, demo, headers, present, absent):
    assert client.login(username="duty", password=DEMO_PASSWORDS["duty"])
    body = page(client, "/board/qingshui/", headers)
    for text in present:
        assert text in body
    for text in absent:
        assert text not in body


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("headers", "present", "absent"),
    [
        (ZH, ["网格", "设备", "组织机构", "告警"], ["Grids", "Devices", "Organisation"]),
        (EN, ["Grids", "Devices", "Organisation"], ["组织机构"]),
    ],
)
def test_admin_index_shows_translated_apps_and_models(client, demo, headers, present, absent):
    from django.contrib import admin

    from command.org.models import Device, Grid

    unregistered = [m._meta.label for m in (Grid, Device) if not admin.site.is_registered(m)]
    assert not unregistered, f"not registered in the admin: {unregistered}"
    assert client.login(username="admin", password=DEMO_PASSWORDS["admin"])
    body = page(client, "/admin/", headers)
    for text in present:
        assert text in body
    for text in absent:
        assert text not in body


def test_verbose_names_are_translated():
    """What the admin shows, independent of which models are registered there."""
    from django.apps import apps
    from django.utils import translation

    from alerts.models import Alert
    from command.org.models import Device, Grid
    from streams.models import DeadLetter

    with translation.override("zh-hans"):
        assert str(apps.get_app_config("org").verbose_name) == "组织机构"
        assert str(Grid._meta.verbose_name_plural) == "网格"
        assert str(Device._meta.verbose_name_plural) == "设备"
        assert str(DeadLetter._meta.verbose_name) == "异常消息（死信）"
        assert str(Alert.Status.ESCALATED.label) == "已转事件"
    with translation.override("en"):
        assert str(Grid._meta.verbose_name_plural) == "grids"
        assert str(Alert.Status.ESCALATED.label) == "Escalated to incident"


# --- the catalog --------------------------------------------------------------------------------


@dataclass
class Entry:
    line: int
    flags: set[str] = field(default_factory=set)
    fields: dict[str, str] = field(default_factory=dict)


def parse_po(path: Path) -> list[Entry]:
    """Just enough of the PO format for this check; obsolete (#~) entries are skipped."""
    entries: list[Entry] = []
    entry: Entry | None = None
    key = ""
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#~"):
            entry = None
            continue
        if entry is None:
            entry = Entry(number)
            entries.append(entry)
        if line.startswith("#,"):
            entry.flags.update(flag.strip() for flag in line[2:].split(","))
        elif line.startswith("#"):
            continue
        elif line.startswith('"'):
            entry.fields[key] += ast.literal_eval(line)
        else:
            key, _, value = line.partition(" ")
            entry.fields[key] = ast.literal_eval(value)
    return [e for e in entries if "msgid" in e.fields]


def placeholders(text: str) -> list[str]:
    return sorted(re.findall(r"%\([^)]+\)[sdif]|%[sdif]|\{[^}]*\}", text))


def test_every_message_is_translated_and_compiled():
    entries = parse_po(CATALOG / "django.po")
    header, messages = entries[0], entries[1:]
    assert header.fields["msgid"] == "" and "fuzzy" not in header.flags
    assert len(messages) > 100
    problems = []
    for entry in messages:
        msgid = entry.fields["msgid"]
        translations = [v for k, v in entry.fields.items() if k.startswith("msgstr")]
        if "fuzzy" in entry.flags:
            problems.append(f"line {entry.line}: fuzzy {msgid!r}")
        if not translations or not all(t.strip() for t in translations):
            problems.append(f"line {entry.line}: untranslated {msgid!r}")
        elif any(placeholders(t) != placeholders(msgid) for t in translations):
            problems.append(f"line {entry.line}: placeholders differ in {msgid!r}")
    assert not problems, "\n".join(problems)

    # The committed .mo is the compiled .po (machines without gettext use it as is).
    with (CATALOG / "django.mo").open("rb") as mo:
        compiled = gettext.GNUTranslations(mo)
    stale = [
        e.fields["msgid"]
        for e in messages
        if "msgctxt" not in e.fields
        and "msgid_plural" not in e.fields
        and compiled.gettext(e.fields["msgid"]) != e.fields["msgstr"]
    ]
    assert not stale, f"django.mo is older than django.po; run compilemessages: {stale}"
