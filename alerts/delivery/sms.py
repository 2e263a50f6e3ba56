"""Channel "sms": a person paged by SMS through an HTTP SMS gateway, one provider interface
(:class:`SmsProvider`), the provider chosen by ``WHISTLE_SMS_PROVIDER`` ("aliyun", or empty:
no SMS, the channel reaches nobody and people fall through to their next channel).

SMS in China goes out only through a pre-approved signature (签名, the 【…】 prefix) and a
pre-approved template: the platform sends the template's variables, not free text. The template
takes ``${title}`` (the notification's text, shortened) and ``${link}`` (its link, which opens
the console with the matter and marks the notification read; only its path with
``WHISTLE_SMS_LINK_PATH_ONLY``, for a template that holds the site's address itself);
docs/operations.md has the template to register.

Alibaba Cloud SMS (dysmsapi ``SendSms``, API version 2017-05-25) is an RPC-style API: the
parameters are form-encoded and signed with HMAC-SHA1 (signature version 1.0). As documented
("Signature method", alibabacloud.com/help/en/sms/signature-method; "SendSms",
help.aliyun.com/document_detail/55284.html):

- every parameter but ``Signature``, sorted by name; names and values percent-encoded as
  UTF-8 with only ``A-Z a-z 0-9 - _ . ~`` left as they are (a space is ``%20``, not ``+``;
  ``*`` is ``%2A``; ``~`` stays) and joined as ``name=value`` with ``&``: the canonicalized
  query string;
- ``StringToSign = HTTPMethod + "&" + percentEncode("/") + "&" +
  percentEncode(CanonicalizedQueryString)``;
- ``Signature = Base64(HMAC-SHA1(key = AccessKeySecret + "&", StringToSign))``;
- the answer is JSON: ``{"Code": "OK", "Message": "OK", "BizId": "…", "RequestId": "…"}``
  or an error code (``isv.BUSINESS_LIMIT_CONTROL``, ``isv.MOBILE_NUMBER_ILLEGAL`` …; the
  "Error codes" page of the SMS documentation).

The request goes through the same destination checks and single deadline as the departments'
webhooks (``departments.http_post``). A failure records the HTTP status or the gateway's error
code, never its message text.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol
from urllib.parse import quote, urlsplit

from django.conf import settings

from alerts.delivery import departments
from alerts.delivery.departments import DeliveryFailed, DestinationRefused
from alerts.delivery.people import Channel, absolute_link, register
from alerts.models import Notification
from command.org.models import User

log = logging.getLogger("whistle.notify")

# A template variable other than a code is limited in length by the gateways (Alibaba Cloud:
# 35 characters for a notification template's text variable): the title is cut to fit.
TITLE_MAX = 35
# The gateway's answer is a small JSON document; more than this is not read.
ANSWER_MAX_BYTES = 64 * 1024


class SmsProvider(Protocol):
    """One SMS gateway: send ``text`` (and the ``link`` to open) to ``phone``; the gateway's
    message id, or :class:`DeliveryFailed` / :class:`DestinationRefused`."""

    name: str

    def send(self, phone: str, text: str, link: str) -> str: ...


def phone_number(raw: str) -> str:
    """The digits of a phone number (with a leading + kept): "138 0013 8000" → "13800138000"."""
    raw = (raw or "").strip()
    digits = re.sub(r"\D", "", raw)
    return f"+{digits}" if raw.startswith("+") and digits else digits


def template_title(text: str) -> str:
    """The notification's text as the template's ``${title}``: one line, cut to fit."""
    line = " ".join(text.split())
    return line if len(line) <= TITLE_MAX else line[: TITLE_MAX - 1] + "…"


# --- Alibaba Cloud ------------------------------------------------------------------------------

ALIYUN_API_VERSION = "2017-05-25"
# Error codes that say the number itself is wrong: retrying or waiting cannot help.
ALIYUN_NUMBER_REFUSED = frozenset({"isv.MOBILE_NUMBER_ILLEGAL"})


def percent_encode(value: str) -> str:
    """RFC 3986 encoding of UTF-8, leaving only the unreserved characters (Alibaba Cloud's
    ``percentEncode``)."""
    return quote(value, safe="-_.~", encoding="utf-8", errors="strict")


def canonicalized_query(params: dict[str, str]) -> str:
    return "&".join(
        f"{percent_encode(name)}={percent_encode(params[name])}" for name in sorted(params)
    )


def string_to_sign(method: str, params: dict[str, str]) -> str:
    return f"{method}&{percent_encode('/')}&{percent_encode(canonicalized_query(params))}"


def aliyun_signature(secret: str, method: str, params: dict[str, str]) -> str:
    """Signature version 1.0 (HMAC-SHA1) of ``params`` (all but ``Signature``)."""
    digest = hmac.new(
        (secret + "&").encode(), string_to_sign(method, params).encode(), hashlib.sha1
    ).digest()
    return base64.b64encode(digest).decode()


def _safe_code(value: object) -> str:
    """An error code as the record may keep it: a short identifier, nothing else the server
    wrote."""
    return re.sub(r"[^A-Za-z0-9._-]", "", str(value))[:80] or "?"


@dataclass(frozen=True)
class AliyunSms:
    """Alibaba Cloud SMS ``SendSms`` (dysmsapi 2017-05-25)."""

    url: str
    region: str
    key_id: str
    key_secret: str
    sign_name: str
    template: str
    timeout: float
    # A template that must hold the site's address in its fixed text (…https://site/${link})
    # gets the link's path only.
    link_path_only: bool = False
    name: str = "aliyun"

    @classmethod
    def from_settings(cls) -> AliyunSms:
        return cls(
            url=settings.WHISTLE_SMS_URL,
            region=settings.WHISTLE_SMS_REGION,
            key_id=settings.WHISTLE_SMS_KEY_ID,
            key_secret=settings.WHISTLE_SMS_KEY_SECRET,
            sign_name=settings.WHISTLE_SMS_SIGN_NAME,
            template=settings.WHISTLE_SMS_TEMPLATE,
            timeout=float(settings.WHISTLE_NOTIFY_TIMEOUT),
            link_path_only=settings.WHISTLE_SMS_LINK_PATH_ONLY,
        )

    def link_param(self, link: str) -> str:
        if not self.link_path_only:
            return link
        parts = urlsplit(link)
        return parts.path.lstrip("/") + (f"?{parts.query}" if parts.query else "")

    def params(self, phone: str, text: str, link: str) -> dict[str, str]:
        """The request's parameters, signed."""
        params = {
            "AccessKeyId": self.key_id,
            "Action": "SendSms",
            "Format": "JSON",
            "PhoneNumbers": phone,
            "RegionId": self.region,
            "SignName": self.sign_name,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": uuid.uuid4().hex,
            "SignatureVersion": "1.0",
            "TemplateCode": self.template,
            "TemplateParam": json.dumps(
                {"title": template_title(text), "link": self.link_param(link)},
                ensure_ascii=False,
                separators=(",", ":"),
            ),
            "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Version": ALIYUN_API_VERSION,
        }
        params["Signature"] = aliyun_signature(self.key_secret, "POST", params)
        return params

    def send(self, phone: str, text: str, link: str) -> str:
        # POSTed as a form, not in the URL: the text and the link stay out of access logs.
        body = "&".join(
            f"{percent_encode(k)}={percent_encode(v)}"
            for k, v in self.params(phone, text, link).items()
        ).encode()
        answer = departments.http_post(
            url=self.url,
            body=body,
            headers={
                "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
                "Accept": "application/json",
                "User-Agent": "Whistle",
            },
            timeout=self.timeout,
            read=ANSWER_MAX_BYTES,
        )
        try:
            document = json.loads(answer.body)
        except ValueError:
            document = None
        code = document.get("Code") if isinstance(document, dict) else None
        if code is None:
            departments.checked_status(answer.status, answer.location)  # names a non-2xx
            raise DeliveryFailed(f"SMS gateway: HTTP {answer.status} without a JSON answer")
        if code != "OK":
            reason = f"SMS gateway refused the message: {_safe_code(code)} (HTTP {answer.status})"
            if code in ALIYUN_NUMBER_REFUSED:
                raise DestinationRefused(reason)
            raise DeliveryFailed(reason, status=answer.status)
        departments.checked_status(answer.status, answer.location)
        return str(document.get("BizId") or "")[:80]


PROVIDERS = {"aliyun": AliyunSms.from_settings}


def provider() -> SmsProvider | None:
    """The configured gateway (built from the settings each time: they may change in tests),
    or None when SMS is off."""
    name = settings.WHISTLE_SMS_PROVIDER
    if not name:
        return None
    if name not in PROVIDERS:
        raise DestinationRefused(f"unknown SMS provider {name!r}")
    return PROVIDERS[name]()


# --- the channel --------------------------------------------------------------------------------


def reaches(user: User) -> bool:
    return bool(settings.WHISTLE_SMS_PROVIDER) and bool(phone_number(user.phone))


def send(notification: Notification) -> None:
    gateway = provider()
    if gateway is None:
        raise DestinationRefused("SMS is not configured (WHISTLE_SMS_PROVIDER)")
    phone = phone_number(notification.user.phone)
    if not phone:
        raise DestinationRefused("the person has no phone number")
    message_id = gateway.send(phone, notification.text, absolute_link(notification))
    log.info("notification %s sent by SMS (%s %s)", notification.pk, gateway.name, message_id)


register(Channel("sms", reaches, send))
