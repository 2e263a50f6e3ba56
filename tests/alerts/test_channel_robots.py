"""Channel "robot" against real local servers that speak the DingTalk custom robot's and the
WeCom group robot's webhooks (tests/alerts/channel_servers.py): DingTalk's 加签 checked with the
secret, both message formats checked, the person @-mentioned by phone; and the failures (a
wrong secret or key refused at once and handed to the next channel, an HTTP error retried)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from urllib.parse import unquote_plus

import pytest

from alerts.delivery import people, robots
from alerts.delivery.departments import DeliveryFailed, DestinationRefused
from alerts.models import Notification
from tests.alerts.channel_servers import Answer, DingTalkRobot, WeComRobot
from tests.alerts.conftest import BASE_URL
from tests.alerts.paging import (
    TEXT,
    links_in,
    next_channel,
    page,
    person,
    run_job,
    set_robot,
    timeline,
)

pytestmark = pytest.mark.django_db

SECRET = "SEC0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd"


@pytest.fixture
def dingtalk(notify_settings):
    robot = DingTalkRobot(secret=SECRET)
    yield robot
    robot.close()


@pytest.fixture
def wecom(notify_settings):
    robot = WeComRobot()
    yield robot
    robot.close()


def test_dingtalk_signed_markdown_mentions_the_person(demo, dingtalk):
    set_robot("dingtalk", dingtalk.url, SECRET)
    user = person(notify_by=["robot", "email"])
    notification = page(user)
    assert notification.channel == "robot"

    assert run_job(notification) == ("sent", [])

    assert dingtalk.problems == []
    (request,) = dingtalk.requests
    assert set(request["query"]) == {"access_token", "timestamp", "sign"}
    message = json.loads(request["body"])
    assert message["at"] == {"atMobiles": ["13800138000"], "isAtAll": False}
    text = message["markdown"]["text"]
    assert "东沟村山火：城管执法队逾期未报到" in message["markdown"]["title"]
    assert TEXT.splitlines()[1] in text
    assert f"]({BASE_URL}/n/" in text
    assert links_in(text) == [notification.pk]
    assert text.endswith("@13800138000")
    notification.refresh_from_db()
    assert (notification.status, notification.attempts) == (Notification.Status.SENT, 1)
    assert [row["channel"] for row in timeline("paged")] == ["console", "robot"]


def test_dingtalk_without_a_secret_is_not_signed(demo, notify_settings):
    robot = DingTalkRobot(secret="")
    try:
        set_robot("dingtalk", robot.url)
        assert run_job(page(person(notify_by=["robot"]))) == ("sent", [])
    finally:
        robot.close()
    assert robot.problems == []
    assert set(robot.requests[0]["query"]) == {"access_token"}


def test_dingtalk_wrong_secret_fails_at_once_and_hands_on(demo, dingtalk, smtp):
    set_robot("dingtalk", dingtalk.url, "SECnot-the-secret")
    user = person(notify_by=["robot", "email"])
    notification = page(user)

    assert run_job(notification) == ("failed", [])

    notification.refresh_from_db()
    assert notification.attempts == 1
    assert notification.last_error == (
        "DingTalk robot errcode 310000: security check failed (加签 signature, keyword or IP "
        "address)"
    )
    assert "hunter2" not in notification.last_error
    (failed,) = timeline("page_failed")
    assert (failed["channel"], failed["then"]) == ("robot", "email")
    email = next_channel(notification)
    assert run_job(email) == ("sent", [])
    assert len(smtp.messages) == 1


def test_an_http_error_from_the_robot_is_retried(demo, notify_settings):
    robot = DingTalkRobot(secret=SECRET, status=502)
    try:
        set_robot("dingtalk", robot.url, SECRET)
        notification = page(person(notify_by=["robot"]))
        outcome, retried = run_job(notification)
    finally:
        robot.close()
    assert outcome == "failed"
    assert [str(exc) for exc in retried] == ["HTTP 502 Bad Gateway"] * 2
    notification.refresh_from_db()
    assert (notification.attempts, notification.last_error) == (3, "HTTP 502 Bad Gateway")


def test_the_robot_url_is_checked_like_a_webhook(demo, dingtalk, settings):
    settings.WEBHOOK_ALLOWED_NETWORKS = []
    set_robot("dingtalk", dingtalk.url, SECRET)
    notification = page(person(notify_by=["robot"]))

    assert run_job(notification) == ("failed", [])

    notification.refresh_from_db()
    assert "non-public address" in notification.last_error
    assert "access_token" not in notification.last_error
    assert dingtalk.requests == []


def test_wecom_text_mentions_the_person_by_mobile(demo, wecom):
    set_robot("wecom", wecom.url)
    notification = page(person(notify_by=["robot"], phone="0086 138 0013 8000"))

    assert run_job(notification) == ("sent", [])

    assert wecom.problems == []
    message = json.loads(wecom.requests[0]["body"])
    assert message["msgtype"] == "text"
    assert message["text"]["mentioned_mobile_list"] == ["13800138000"]
    content = message["text"]["content"]
    assert TEXT in content
    assert links_in(content.rsplit(" ", 1)[1]) == [notification.pk]  # the link, last


def test_wecom_long_text_is_cut_to_2048_bytes_keeping_the_link(demo, wecom):
    set_robot("wecom", wecom.url)
    notification = page(person(notify_by=["robot"]), text="山火" * 250)

    assert run_job(notification) == ("sent", [])

    content = json.loads(wecom.requests[0]["body"])["text"]["content"]
    assert len(content.encode()) <= 2048
    assert "…" in content
    assert links_in(content.rsplit(" ", 1)[1]) == [notification.pk]


def test_wecom_wrong_key_is_refused(demo, wecom):
    set_robot("wecom", wecom.url.replace(WeComRobot.KEY, "stale-key"))
    notification = page(person(notify_by=["robot"]))

    assert run_job(notification) == ("failed", [])

    notification.refresh_from_db()
    assert notification.last_error == (
        "WeCom robot errcode 93000: invalid webhook URL (the robot's key)"
    )


def test_reaches_people_with_a_phone_in_a_department_with_a_robot(demo, notify_settings):
    user = person(notify_by=["robot"])
    assert not robots.reaches(user)  # no robot set
    set_robot("wecom", "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k")
    user.refresh_from_db()
    assert robots.reaches(user)
    assert not robots.reaches(person(notify_by=["robot"], phone=""))
    with pytest.raises(DestinationRefused):
        robots.send(Notification(user=person(notify_by=["robot"], phone=""), text="x", key="k"))


def test_dingtalk_sign_is_the_documented_one():
    # The documented algorithm with the secret and a fixed moment, computed independently.
    sign = robots.dingtalk_sign("SECabc", "1700000000000")
    digest = hmac.new(b"SECabc", b"1700000000000\nSECabc", hashlib.sha256).digest()
    assert unquote_plus(sign) == base64.b64encode(digest).decode()
    assert "+" not in sign and "/" not in sign and "=" not in sign
    base = "https://oapi.dingtalk.com/robot/send?access_token=t"
    url = robots.dingtalk_url(base, "SECabc", now=1_700_000_000)
    assert url == f"{base}&timestamp=1700000000000&sign={sign}"


@pytest.mark.parametrize(
    ("raw", "mobile"),
    [
        ("+86 138-0013-8000", "13800138000"),
        ("008613800138000", "13800138000"),
        ("13800138000", "13800138000"),
        ("", ""),
    ],
)
def test_mentions_use_the_mainland_mobile(raw, mobile):
    assert robots.mobile(raw) == mobile


def test_a_robot_answer_without_errcode_fails(demo, notify_settings):
    class Silent(WeComRobot):
        def answer(self, path, query, headers, body):
            return Answer(200, b"<html>ok</html>")

    robot = Silent()
    try:
        set_robot("wecom", robot.url)
        notification = page(person(notify_by=["robot"]))
        with pytest.raises(DeliveryFailed) as failure:
            people.send_attempt(notification_id=notification.pk, attempt=0)
    finally:
        robot.close()
    assert str(failure.value) == "WeCom robot: HTTP 200 without its JSON answer"
