"""Channel "email" against a real SMTP server (aiosmtpd): the message that arrives (subject,
text, link, HTML part), the notification's record and timeline, and each way SMTP fails: a
recipient refused for good, a temporary failure retried then handed to the next channel, a
server that does not answer in time, one that is not there."""

from __future__ import annotations

import time

import pytest
from django.utils import translation

from alerts.delivery import email as email_channel
from alerts.delivery import people, wording
from alerts.delivery.departments import DestinationRefused
from alerts.models import Notification
from command.embedded import free_port
from tests.alerts.conftest import BASE_URL
from tests.alerts.paging import TEXT, links_in, next_channel, page, person, run_job, timeline

pytestmark = pytest.mark.django_db


def test_the_email_arrives_with_subject_text_and_link(demo, smtp):
    user = person(notify_by=["email"])
    notification = page(user)
    assert notification.channel == "email"

    assert run_job(notification) == ("sent", [])

    (mail_from, recipients, message), *_ = smtp.messages
    assert recipients == ["wang.xiaoming@qingshui.example"]
    assert mail_from == "whistle@qingshui.example"
    with translation.override("zh-hans"):
        # Python's header folding may start the value on the next line: readers strip it.
        assert message["Subject"].strip() == wording.headline(notification)
    assert "东沟村山火：城管执法队逾期未报到" in message["Subject"]
    assert "\n" not in message["Subject"]
    plain = message.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert TEXT in plain
    assert links_in(plain) == [notification.pk]
    html = message.get_body(("html",)).get_content()
    assert f'href="{BASE_URL}/n/' in html
    assert links_in(html) == [notification.pk, notification.pk]  # the button and the address
    assert "东沟村山火" in html and "王晓明" in html
    assert message["X-Whistle-Notification"] == notification.key

    notification.refresh_from_db()
    assert (notification.status, notification.attempts, notification.last_error) == (
        Notification.Status.SENT, 1, ""
    )  # fmt: skip
    assert notification.sent_at is not None
    sent = [row for row in timeline("paged") if row["channel"] == "email"]
    assert sent == [
        {"person": "王晓明", "user": user.pk, "reason": "on_call", "channel": "email", "step": 2}
    ]


def test_html_in_the_text_is_shown_not_obeyed(demo, smtp):
    user = person(notify_by=["email"])
    run_job(page(user, text='<script>alert(1)</script> 违停 & "占道"'))
    html = smtp.messages[0][2].get_body(("html",)).get_content()
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    plain = smtp.messages[0][2].get_body(("plain",)).get_content()
    assert '<script>alert(1)</script> 违停 & "占道"' in plain


def test_a_refused_recipient_fails_at_once_and_the_next_channel_is_used(demo, smtp, sms_gateway):
    smtp.mode = "refuse"
    user = person(notify_by=["email", "sms"])
    notification = page(user)

    assert run_job(notification) == ("failed", [])

    notification.refresh_from_db()
    assert notification.status == Notification.Status.FAILED
    assert notification.attempts == 1  # refused for good: no retry
    assert notification.last_error == (
        "SMTP 550 mailbox unavailable: the recipient's address was refused"
    )
    assert "hunter2" not in notification.last_error
    (failed,) = timeline("page_failed")
    assert (failed["channel"], failed["error"], failed["then"]) == (
        "email", notification.last_error, "sms"
    )  # fmt: skip

    sms = next_channel(notification)
    assert sms is not None and sms.channel == "sms" and sms.fallback == []
    assert run_job(sms) == ("sent", [])
    assert len(sms_gateway.sent) == 1
    assert [row["channel"] for row in timeline("paged")] == ["console", "sms"]


def test_a_temporary_failure_is_retried_then_handed_on(demo, smtp, sms_gateway):
    smtp.mode = "busy"
    user = person(notify_by=["email", "sms"])
    notification = page(user)

    outcome, retried = run_job(notification)

    assert outcome == "failed"
    assert len(retried) == people.MAX_ATTEMPTS - 1
    notification.refresh_from_db()
    assert notification.attempts == people.MAX_ATTEMPTS
    assert notification.last_error == "SMTP 451 local error in processing"
    assert timeline("page_failed")[0]["then"] == "sms"
    assert next_channel(notification).channel == "sms"


def test_a_server_that_does_not_answer_fails_within_the_timeout(demo, smtp, notify_settings):
    notify_settings.EMAIL_TIMEOUT = 0.5
    smtp.mode = "slow"
    user = person(notify_by=["email"])
    notification = page(user)

    started = time.monotonic()
    with pytest.raises(email_channel.DeliveryFailed) as failure:
        people.send_attempt(notification_id=notification.pk, attempt=0, step=2)
    assert time.monotonic() - started < 3
    server = f"127.0.0.1:{notify_settings.EMAIL_PORT}"
    assert str(failure.value) == f"SMTP {server}: no answer within 0.5 s"
    notification.refresh_from_db()
    assert (notification.status, notification.attempts) == (Notification.Status.PENDING, 1)


def test_no_server_is_a_readable_failure(demo, notify_settings):
    notify_settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    notify_settings.EMAIL_HOST = "127.0.0.1"
    notify_settings.EMAIL_PORT = free_port()  # nothing listens there
    user = person(notify_by=["email"])
    notification = page(user)

    outcome, retried = run_job(notification)

    assert outcome == "failed" and len(retried) == 2
    notification.refresh_from_db()
    assert notification.last_error == (
        f"SMTP 127.0.0.1:{notify_settings.EMAIL_PORT}: cannot connect (Connection refused)"
    )
    (failed,) = timeline("page_failed")
    assert "then" not in failed  # no other channel


def test_reaches_people_with_an_address_only(demo, notify_settings):
    assert "email" in people.channels_for(person(notify_by=["email"]))
    nobody = person(notify_by=["email"], email="  ")
    assert people.channels_for(nobody) == []
    assert not email_channel.reaches(nobody)
    # An address removed after the notification was written: refused, not retried.
    with pytest.raises(DestinationRefused):
        email_channel.send(Notification(user=nobody, channel="email", text=TEXT, key="k"))


def test_smtp_reply_meanings_are_the_standard_ones():
    assert email_channel.meaning(535) == "authentication credentials invalid"
    assert email_channel.meaning(499) == "temporary failure"
    assert email_channel.meaning(599) == "permanent failure"
