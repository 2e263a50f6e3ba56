"""The supervisor console (督办台): a live page for township and district supervisors, over the
townships each follows (``policy.supervised_township_ids``): overdue arrivals and finishings,
escalation chains still paging, open supervision orders and every notification about them.
Each row is one click from the incident's timeline and its replay.

The page and its socket (``frontend.consumers.SupervisorConsumer``) render the same sections;
the socket redraws them all when a summons, an order or a notification in those townships
changes (a handful of short lists: one redraw, coalesced, costs less than tracking rows)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils import translation

from command.org import policy
from command.org.models import Township, User
from supervision import console

SECTIONS = (
    ("overdue-arrivals", "frontend/partials/supervise_summonses.html", "overdue_arrivals"),
    ("overdue-finishings", "frontend/partials/supervise_summonses.html", "overdue_finishings"),
    ("escalations", "frontend/partials/supervise_escalations.html", "escalations"),
    ("orders", "frontend/partials/supervise_orders.html", "orders"),
    ("notifications", "frontend/partials/supervise_notifications.html", "notifications"),
)


def console_parts(*, township_ids: set[int] | None, language: str, oob: bool) -> list[str]:
    """Each section as one fragment (``#supervise-<name>``), in page order."""
    state = console.console_state(township_ids=township_ids)
    with translation.override(language):
        return [
            render_to_string(
                template,
                {
                    "name": name,
                    "section": getattr(state, attribute),
                    "now": state.now,
                    "oob": oob,
                },
            )
            for name, template, attribute in SECTIONS
        ]


def scope_label(township_ids: set[int] | None) -> str:
    if township_ids is None:
        return ""
    return "、".join(
        t.display_name for t in Township.objects.filter(pk__in=township_ids).order_by("code")
    )


def supervisor_console(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    if not policy.can_open_supervisor_console(user):
        raise PermissionDenied
    township_ids = policy.supervised_township_ids(user)
    language = translation.get_language() or "zh-hans"
    context = {
        "sections": console_parts(township_ids=township_ids, language=language, oob=False),
        "scope": scope_label(township_ids),
    }
    return render(request, "frontend/supervisor_console.html", context)
