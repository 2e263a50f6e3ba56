"""Channel "robot": a person paged in their department's work group (钉钉 / 企业微信 群机器人),
@-mentioned by their phone number, through the group robot set on the department
(``Department.robot``, ``robot_url``, ``robot_secret``).

DingTalk custom robot (钉钉自定义机器人, open.dingtalk.com/document/orgapp/custom-robot-access):
POST JSON to the robot's webhook (``…/robot/send?access_token=…``)::

    {"msgtype": "markdown", "markdown": {"title": …, "text": …},
     "at": {"atMobiles": ["138…"], "isAtAll": false}}

The mention shows only when the text itself contains ``@138…``. With the 加签 security setting
the URL also carries ``&timestamp=<ms>&sign=<urlencoded Base64(HMAC-SHA256(key=secret,
"<timestamp>\\n<secret>"))>``, and DingTalk refuses a timestamp more than an hour off. The
answer is ``{"errcode": 0, "errmsg": "ok"}``, or an errcode (310000: the security check
failed — signature, keyword or IP; 130101: more than 20 messages a minute).

WeCom group robot (企业微信群机器人, 企业微信开发者中心「群机器人配置说明」): POST JSON to the
robot's webhook (``…/cgi-bin/webhook/send?key=…``)::

    {"msgtype": "text", "text": {"content": …, "mentioned_mobile_list": ["138…"]}}

text, because a markdown message cannot mention people by phone; the content is at most 2048
bytes of UTF-8. The answer is ``{"errcode": 0, "errmsg": "ok"}`` or an errcode.

Both go through the destination checks and single deadline of the departments' webhooks
(``departments.http_post``); a failure records the HTTP status or the errcode, never the
robot's message text.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from typing import Any
from urllib.parse import quote_plus

from django.conf import settings

from alerts.delivery import departments, wording
from alerts.delivery.departments import DeliveryFailed, DestinationRefused
from alerts.delivery.people import Channel, absolute_link, register
from alerts.models import Notification
from command.org.models import Department, User

ANSWER_MAX_BYTES = 64 * 1024
WECOM_CONTENT_MAX_BYTES = 2048
# The standard meanings of the errcodes a robot's owner can act on; those of a robot set up
# wrongly are not retried (the person's next channel is used at once).
DINGTALK_ERRORS = {
    310000: "security check failed (加签 signature, keyword or IP address)",
    130101: "sending too fast (20 messages a minute)",
}
WECOM_ERRORS = {
    93000: "invalid webhook URL (the robot's key)",
    45009: "sending too fast (20 messages a minute)",
}
SET_UP_WRONGLY = {("DingTalk", 310000), ("WeCom", 93000)}


def mobile(raw: str) -> str:
    """The mainland mobile number work IMs know a member by: digits, without +86 / 0086."""
    digits = re.sub(r"\D", "", raw or "")
    for prefix in ("0086", "86"):
        if digits.startswith(prefix) and len(digits) == len(prefix) + 11:
            return digits[len(prefix) :]
    return digits


def _robot(user: User) -> Department | None:
    department = user.department
    if department is None or not department.robot_url:
        return None
    if department.robot not in (Department.Robot.DINGTALK, Department.Robot.WECOM):
        return None
    return department


def reaches(user: User) -> bool:
    return _robot(user) is not None and bool(mobile(user.phone))


def dingtalk_sign(secret: str, timestamp: str) -> str:
    """加签: Base64(HMAC-SHA256(key=secret, "<timestamp>\\n<secret>")), URL-encoded."""
    digest = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    return quote_plus(base64.b64encode(digest).decode())


def dingtalk_url(url: str, secret: str, *, now: float | None = None) -> str:
    if not secret:
        return url
    timestamp = str(int((time.time() if now is None else now) * 1000))
    joiner = "&" if "?" in url else "?"
    return f"{url}{joiner}timestamp={timestamp}&sign={dingtalk_sign(secret, timestamp)}"


def dingtalk_message(notification: Notification, phone: str) -> dict[str, Any]:
    link = absolute_link(notification)
    with wording.official_language():
        title = wording.headline(notification)
        prompt = wording.open_prompt()
    # Markdown joins single lines into one: each line of the text is a paragraph of its own.
    # The mention shows only when the text carries it.
    lines = [line.strip() for line in notification.text.strip().splitlines() if line.strip()]
    text = "\n\n".join([f"#### {title}", *lines, f"[{prompt}]({link})", f"@{phone}"])
    return {
        "msgtype": "markdown",
        "markdown": {"title": title, "text": text},
        "at": {"atMobiles": [phone], "isAtAll": False},
    }


def _cut_utf8(text: str, limit: int) -> str:
    data = text.encode()
    if len(data) <= limit:
        return text
    return data[: max(0, limit - len("…".encode()))].decode(errors="ignore") + "…"


def wecom_message(notification: Notification, phone: str) -> dict[str, Any]:
    link = absolute_link(notification)
    with wording.official_language():
        title = wording.headline(notification)
        prompt = wording.open_prompt()
    tail = f"\n{prompt}: {link}"
    room = WECOM_CONTENT_MAX_BYTES - len(tail.encode())
    head = _cut_utf8(f"{title}\n{notification.text.strip()}", room)
    return {
        "msgtype": "text",
        "text": {"content": head + tail, "mentioned_mobile_list": [phone]},
    }


def _post(url: str, message: dict[str, Any], errors: dict[int, str], robot: str) -> None:
    answer = departments.http_post(
        url=url,
        body=json.dumps(message, ensure_ascii=False).encode(),
        headers={"Content-Type": "application/json; charset=utf-8", "User-Agent": "Whistle"},
        timeout=float(settings.WHISTLE_NOTIFY_TIMEOUT),
        read=ANSWER_MAX_BYTES,
    )
    departments.checked_status(answer.status, answer.location)
    try:
        document = json.loads(answer.body)
    except ValueError:
        document = None
    if not isinstance(document, dict) or "errcode" not in document:
        raise DeliveryFailed(f"{robot} robot: HTTP {answer.status} without its JSON answer")
    try:
        code = int(document["errcode"])
    except (TypeError, ValueError):
        raise DeliveryFailed(f"{robot} robot: an errcode that is not a number") from None
    if code != 0:
        meaning = errors.get(code, "see the robot's documentation")
        reason = f"{robot} robot errcode {code}: {meaning}"
        if (robot, code) in SET_UP_WRONGLY:
            raise DestinationRefused(reason)
        raise DeliveryFailed(reason)


def send(notification: Notification) -> None:
    user = notification.user
    department = _robot(user)
    if department is None:
        raise DestinationRefused("the person's department has no work group robot")
    phone = mobile(user.phone)
    if not phone:
        raise DestinationRefused("the person has no phone number to be mentioned by")
    if department.robot == Department.Robot.DINGTALK:
        _post(
            dingtalk_url(department.robot_url, department.robot_secret),
            dingtalk_message(notification, phone),
            DINGTALK_ERRORS,
            "DingTalk",
        )
    else:
        _post(department.robot_url, wecom_message(notification, phone), WECOM_ERRORS, "WeCom")


register(Channel("robot", reaches, send))
