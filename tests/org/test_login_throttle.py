"""Sign-in throttling: guessing a password locks that account for that address, with a clear
page, in both languages; the right password before the limit resets the count."""

import pytest
from django.test import Client

from tests.conftest import DEMO_PASSWORDS

pytestmark = pytest.mark.django_db


def attempt(client: Client, password: str, address: str = "198.51.100.7", **headers):
    return client.post(
        "/login/",
        {"username": "duty", "password": password},
        REMOTE_ADDR=address,
        **headers,
    )


def test_five_wrong_passwords_lock_the_account_from_that_address(demo, settings):
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert attempt(client, "wrong-guess").status_code == 200
    locked = attempt(client, "wrong-guess")
    assert locked.status_code == 429
    assert "Too many failed sign-ins" in locked.content.decode() or "登录失败次数过多" in (
        locked.content.decode()
    )
    # Even the right password is refused while locked: a guess that hits is not told apart.
    assert attempt(client, DEMO_PASSWORDS["duty"]).status_code == 429
    # The duty officer at another address (the command center) still signs in.
    assert attempt(Client(), DEMO_PASSWORDS["duty"], address="192.0.2.10").status_code == 302


def test_lockout_page_speaks_chinese(demo, settings):
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        response = attempt(client, "wrong-guess")
    assert response.status_code == 429
    assert "登录失败次数过多" in response.content.decode()


def test_success_before_the_limit_resets_the_count(demo, settings):
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        attempt(client, "wrong-guess")
    assert attempt(client, DEMO_PASSWORDS["duty"]).status_code == 302
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert attempt(client, "wrong-guess").status_code == 200


def test_behind_a_trusted_proxy_the_forwarded_address_is_throttled(demo, settings):
    settings.WHISTLE_TRUSTED_PROXIES = ["127.0.0.1/32"]
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        attempt(client, "wrong-guess", "127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.5")
    assert attempt(client, "x", "127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.5").status_code == 429
    # Another client behind the same proxy is a different address.
    other = attempt(
        Client(), DEMO_PASSWORDS["duty"], "127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.6"
    )
    assert other.status_code == 302
