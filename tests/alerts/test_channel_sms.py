"""Channel "sms" against a real local HTTP server that speaks Alibaba Cloud's ``SendSms``
(dysmsapi 2017-05-25) and verifies each request's signature with the key secret by its own
implementation of the documented algorithm (tests/alerts/channel_servers.py): what it is sent,
and each way it fails (a gateway error code, an invalid number, HTTP 503, no answer in time, a
wrong secret, a private address not allowed), with the fallback to the next channel."""

from __future__ import annotations

import json
import time

import pytest
from django.test import override_settings
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from alerts.delivery import people, sms
from alerts.delivery.departments import DeliveryFailed, DestinationRefused
from alerts.models import Notification
from tests.alerts.channel_servers import AliyunSmsGateway, aliyun_expected_signature, pct
from tests.alerts.paging import links_in, next_channel, page, person, run_job, timeline

pytestmark = pytest.mark.django_db


def test_the_gateway_receives_a_signed_send_sms(demo, sms_gateway):
    user = person(notify_by=["sms", "email"])
    notification = page(user)
    assert notification.channel == "sms" and notification.fallback == ["email"]

    assert run_job(notification) == ("sent", [])

    assert sms_gateway.problems == []
    (params,) = sms_gateway.sent
    assert params["PhoneNumbers"] == "+8613800138000"
    assert params["SignName"] == "清水镇指挥中心"
    assert params["TemplateCode"] == "SMS_470000001"
    assert params["RegionId"] == "cn-hangzhou"
    variables = json.loads(params["TemplateParam"])
    assert links_in(variables["link"]) == [notification.pk]
    assert variables["title"] == "东沟村山火：城管执法队逾期未报到 请立即到场处置"
    notification.refresh_from_db()
    assert (notification.status, notification.attempts, notification.last_error) == (
        Notification.Status.SENT, 1, ""
    )  # fmt: skip
    assert [row["channel"] for row in timeline("paged")] == ["console", "sms"]
    assert not timeline("page_failed")


def test_a_gateway_error_code_is_retried_then_the_next_channel_is_used(demo, sms_gateway, smtp):
    sms_gateway.mode = "limit"
    user = person(notify_by=["sms", "email"])
    notification = page(user)

    outcome, retried = run_job(notification)

    assert outcome == "failed"
    assert [type(exc) for exc in retried] == [DeliveryFailed] * (people.MAX_ATTEMPTS - 1)
    assert len(sms_gateway.sent) == people.MAX_ATTEMPTS  # each attempt signed anew
    notification.refresh_from_db()
    assert notification.status == Notification.Status.FAILED
    assert notification.attempts == people.MAX_ATTEMPTS
    assert notification.last_error == (
        "SMS gateway refused the message: isv.BUSINESS_LIMIT_CONTROL (HTTP 200)"
    )
    (failed,) = timeline("page_failed")
    assert failed == {
        "person": "王晓明",
        "user": user.pk,
        "reason": "on_call",
        "channel": "sms",
        "step": 2,
        "error": notification.last_error,
        "then": "email",
    }

    email = next_channel(notification)
    assert (email.channel, email.status, email.fallback) == ("email", "pending", [])
    assert run_job(email) == ("sent", [])
    assert smtp.messages[0][1] == ["wang.xiaoming@qingshui.example"]
    assert [row["channel"] for row in timeline("paged")] == ["console", "email"]


def test_an_invalid_number_is_refused_at_once(demo, sms_gateway):
    sms_gateway.mode = "illegal"
    notification = page(person(notify_by=["sms"]))

    assert run_job(notification) == ("failed", [])

    notification.refresh_from_db()
    assert notification.attempts == 1
    assert notification.last_error == (
        "SMS gateway refused the message: isv.MOBILE_NUMBER_ILLEGAL (HTTP 200)"
    )
    assert "then" not in timeline("page_failed")[0]


def test_an_http_error_names_the_status_not_the_body(demo, sms_gateway):
    sms_gateway.mode = "unavailable"
    notification = page(person(notify_by=["sms"]))

    with pytest.raises(DeliveryFailed) as failure:
        people.send_attempt(notification_id=notification.pk, attempt=0)

    assert str(failure.value) == "HTTP 503 Service Unavailable"
    notification.refresh_from_db()
    assert (notification.status, notification.last_error) == ("pending", str(failure.value))


def test_a_gateway_that_does_not_answer_fails_within_the_timeout(demo, sms_gateway, settings):
    settings.WHISTLE_NOTIFY_TIMEOUT = 0.5
    sms_gateway.mode = "slow"
    notification = page(person(notify_by=["sms"]))

    started = time.monotonic()
    with pytest.raises(DeliveryFailed) as failure:
        people.send_attempt(notification_id=notification.pk, attempt=0)

    assert time.monotonic() - started < 2
    assert str(failure.value).endswith("gave no complete answer within 0.5 s")


def test_a_wrong_secret_is_refused_by_the_gateway(demo, sms_gateway, settings):
    settings.WHISTLE_SMS_KEY_SECRET = "not-the-secret"
    notification = page(person(notify_by=["sms"]))

    with pytest.raises(DeliveryFailed) as failure:
        people.send_attempt(notification_id=notification.pk, attempt=0)

    assert str(failure.value) == (
        "SMS gateway refused the message: SignatureDoesNotMatch (HTTP 400)"
    )
    assert "hunter2" not in str(failure.value)
    assert sms_gateway.problems == ["signature does not match"]


def test_a_private_gateway_address_is_refused_unless_allowed(demo, sms_gateway, settings):
    settings.WEBHOOK_ALLOWED_NETWORKS = []
    notification = page(person(notify_by=["sms"]))

    assert run_job(notification) == ("failed", [])

    notification.refresh_from_db()
    assert "non-public address" in notification.last_error
    assert sms_gateway.requests == []


def test_without_a_provider_sms_reaches_nobody(demo, notify_settings):
    user = person(notify_by=["sms", "email"])
    assert not sms.reaches(user)
    assert people.channels_for(user) == ["email"]
    assert page(user).channel == "email"
    with pytest.raises(DestinationRefused):
        sms.send(Notification(user=user, channel="sms", text="x", key="k"))


def test_reaches_people_with_a_phone_when_a_provider_is_set(demo, sms_gateway):
    assert sms.reaches(person(notify_by=["sms"]))
    assert not sms.reaches(person(notify_by=["sms"], phone=" - "))


def test_a_template_with_the_address_in_it_gets_the_path_only(demo, sms_gateway, settings):
    settings.WHISTLE_SMS_LINK_PATH_ONLY = True
    notification = page(person(notify_by=["sms"]))

    assert run_job(notification) == ("sent", [])

    variables = json.loads(sms_gateway.sent[0]["TemplateParam"])
    assert variables["link"].startswith("n/")
    assert links_in(f"https://whistle.qingshui.example/{variables['link']}") == [notification.pk]


@pytest.mark.parametrize(
    ("raw", "number"),
    [("138 0013 8000", "13800138000"), ("+86 138-0013-8000", "+8613800138000"), ("", "")],
)
def test_phone_numbers_are_sent_as_digits(raw, number):
    assert sms.phone_number(raw) == number


# --- the signature, against the test server's own implementation ---------------------------------


@given(st.text(), st.text(min_size=1, alphabet=st.characters(codec="utf-8")))
def test_percent_encoding_and_signature_match_an_independent_implementation(text, secret):
    assert sms.percent_encode(text) == pct(text)
    params = {"TemplateParam": text, "Timestamp": "2026-11-28T01:02:03Z", "A b*~": text[::-1]}
    assert sms.aliyun_signature(secret, "POST", params) == aliyun_expected_signature(
        secret, "POST", params
    )


def test_any_text_reaches_the_gateway_signed():
    """Whatever the text (any Unicode, controls, the signature's own separators), the gateway
    verifies the signature and reads the title and link back."""
    gateway = AliyunSmsGateway()
    provider = sms.AliyunSms(
        url=gateway.url,
        region="cn-hangzhou",
        key_id=AliyunSmsGateway.KEY_ID,
        key_secret=AliyunSmsGateway.SECRET,
        sign_name="清水镇",
        template="SMS_1",
        timeout=5,
    )
    link = "https://whistle.qingshui.example/n/abc:def+1 2"

    @hypothesis_settings(max_examples=80, deadline=None)
    @given(text=st.text(max_size=300))
    def sent_and_verified(text: str) -> None:
        sent = len(gateway.sent)
        assert provider.send("13800138000", text, link) == "900619746936498440^0"
        assert gateway.problems == []
        variables = json.loads(gateway.sent[sent]["TemplateParam"])
        assert variables["link"] == link
        assert variables["title"] == sms.template_title(text)
        assert len(variables["title"]) <= sms.TITLE_MAX

    try:
        with override_settings(WEBHOOK_ALLOWED_NETWORKS=["127.0.0.0/8"]):
            sent_and_verified()
    finally:
        gateway.close()
