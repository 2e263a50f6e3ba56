"""Fixtures for the notification channels' tests: their real local servers, and settings that
point the channels at them. The servers listen on loopback, which the channels (like the
webhooks) refuse by default: the settings allow it explicitly, by network."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.alerts.channel_servers import AliyunSmsGateway, SmtpHandler, smtp_server

BASE_URL = "https://whistle.qingshui.example"


@pytest.fixture
def notify_settings(settings: Any) -> Any:
    settings.WEBHOOK_ALLOW_PRIVATE = False
    settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    settings.WHISTLE_NOTIFY_TIMEOUT = 2.0
    settings.WHISTLE_BASE_URL = BASE_URL
    settings.WHISTLE_SMS_PROVIDER = ""
    return settings


@pytest.fixture
def sms_gateway(notify_settings: Any) -> Iterator[AliyunSmsGateway]:
    gateway = AliyunSmsGateway()
    notify_settings.WHISTLE_SMS_PROVIDER = "aliyun"
    notify_settings.WHISTLE_SMS_URL = gateway.url
    notify_settings.WHISTLE_SMS_KEY_ID = AliyunSmsGateway.KEY_ID
    notify_settings.WHISTLE_SMS_KEY_SECRET = AliyunSmsGateway.SECRET
    notify_settings.WHISTLE_SMS_SIGN_NAME = "清水镇指挥中心"
    notify_settings.WHISTLE_SMS_TEMPLATE = "SMS_470000001"
    yield gateway
    gateway.close()


@pytest.fixture
def smtp(notify_settings: Any) -> Iterator[SmtpHandler]:
    """A real SMTP server, and Django's SMTP backend pointed at it (pytest-django would
    otherwise keep mail in memory)."""
    with smtp_server() as (handler, port):
        notify_settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        notify_settings.EMAIL_HOST = "127.0.0.1"
        notify_settings.EMAIL_PORT = port
        notify_settings.EMAIL_USE_TLS = False
        notify_settings.EMAIL_USE_SSL = False
        notify_settings.EMAIL_HOST_USER = ""
        notify_settings.EMAIL_HOST_PASSWORD = ""
        notify_settings.EMAIL_TIMEOUT = 2.0
        notify_settings.DEFAULT_FROM_EMAIL = "督办 <whistle@qingshui.example>"
        yield handler
