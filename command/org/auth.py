"""Sign-in throttling (django-axes) and where a request really comes from.

Five wrong passwords for one account from one address lock that pair out for fifteen minutes
(``WHISTLE_LOGIN_FAILURE_LIMIT``, ``WHISTLE_LOGIN_LOCKOUT_MINUTES``): enough to stop guessing,
and an attacker elsewhere cannot lock the duty officer out of the command center's own screens.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from axes.backends import AxesStandaloneBackend
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _


class LoginThrottle(AxesStandaloneBackend):
    """Axes' lock-out check for logins that come over the network. Code that authenticates
    without a request (the test client, management commands) has no address to throttle and
    goes straight to the next backend."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> None:
        if request is None:
            return None
        return super().authenticate(request, username, password, **kwargs)


def _trusted_proxy(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(net) for net in settings.WHISTLE_TRUSTED_PROXIES)


def client_ip(request: HttpRequest) -> str:
    """The address of whoever sent ``request``: ``REMOTE_ADDR``, unless that is a proxy listed in
    ``WHISTLE_TRUSTED_PROXIES``, then the address that proxy put last in X-Forwarded-For."""
    remote = request.META.get("REMOTE_ADDR", "") or ""
    if remote and _trusted_proxy(remote):
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if hops:
            return hops[-1]
    return remote


def is_local_request(request: HttpRequest) -> bool:
    """Sent from this host itself, not relayed: a proxy on this host forwards what came from
    anywhere, so a loopback address that carries forwarding headers is not local."""
    if request.META.get("REMOTE_ADDR") not in ("127.0.0.1", "::1"):
        return False
    return not any(
        header in request.META
        for header in ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP")
    )


def locked_out(request: HttpRequest, credentials: dict[str, Any] | None) -> HttpResponse:
    """The sign-in page again, saying why and for how long, with 429."""
    form = AuthenticationForm(request, data=None)
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    message = _(
        "Too many failed sign-ins for this account from this address. Try again in "
        "%(minutes)d minutes, or ask an administrator to unlock it."
    ) % {"minutes": minutes}
    return render(
        request,
        "registration/login.html",
        {"form": form, "locked_out": message, "next": request.POST.get("next", "")},
        status=429,
    )
