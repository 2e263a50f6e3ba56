"""督办 reaching people, as each person sees it: their console notifications on every live
page (pushed to their own sockets), the link an SMS or e-mail carries (``/n/<token>``), and
the page where they choose how they are reached.

The console notification is a row written by ``alerts.delivery.people.page``; the socket is
told of it by ``notification.new`` on the person's group, and this module renders it. Seeing
it on a visible page, clicking it, or opening its link marks it read (``people.mark_read``:
one timeline row, the first time)."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from alerts.delivery import people
from alerts.models import Notification
from command.org import policy
from command.org.models import DEFAULT_NOTIFY_BY, NotifyChannel, User
from command.org.services import user_set_reach
from frontend.forms import ReachForm
from frontend.frames import Part
from incidents.models import Summons, SupervisionOrder

# Unread notifications a page is given when its socket connects: a person away for a night
# sees the last ones, the rest are on their page of notifications.
TRAY_ROWS = 20

REASONS = {
    "on_call": gettext_lazy("You are on call (A)"),
    "backup": gettext_lazy("You are the backup (B)"),
    "head": gettext_lazy("You head the department"),
    "township_supervisors": gettext_lazy("Township supervisor"),
    "district_supervisors": gettext_lazy("District supervisor"),
    "discipline": gettext_lazy("Discipline inspection office (纪委)"),
    "order": gettext_lazy("Supervision order to your department"),
}


def reason_label(reason: str) -> str:
    return str(REASONS.get(reason, reason))


def _mine(user: User) -> object:
    return policy.own_notifications(user, Notification.objects.select_related("township"))


# --- the live entries ---------------------------------------------------------------------------


def _entry(notification: Notification) -> str:
    return render_to_string(
        "frontend/partials/notification_entry.html",
        {
            "notification": notification,
            "link": reverse("notification_link", args=[people.link_token(notification.pk)]),
        },
    ).strip()


def _entry_part(notification: Notification) -> str:
    """The entry at the top of the list, wherever it was (a reconnect sends it again)."""
    return (
        f'<li id="notification-{notification.pk}" hx-swap-oob="delete"></li>'
        f'<div hx-swap-oob="afterbegin:#notification-list">{_entry(notification)}</div>'
    )


def _console_rows(user_id: int) -> object:
    return Notification.objects.select_related("township").filter(
        user_id=user_id, channel=Notification.Channel.CONSOLE
    )


def tray_parts(*, user_id: int, language: str) -> list[Part]:
    """A page's unread console notifications when its socket connects, the newest on top.
    Entries already shown stay (read or not): a reconnect adds, it does not take away."""
    unread = list(
        _console_rows(user_id)
        .filter(read_at__isnull=True)
        .order_by("-created_at", "-pk")[:TRAY_ROWS]
    )
    with translation.override(language):
        return [_entry_part(notification) for notification in reversed(unread)]


def entry_parts(*, user_id: int, notification_ids: set[int], language: str) -> list[Part]:
    """New console notifications of this person, pushed as they are written."""
    found = _console_rows(user_id).filter(pk__in=notification_ids).order_by("created_at", "pk")
    with translation.override(language):
        return [_entry_part(notification) for notification in found]


# --- marking read, the link ---------------------------------------------------------------------


@require_POST
def notification_read(request: HttpRequest, notification: int) -> HttpResponse:
    """The entry was seen on a visible page, or clicked (POST, CSRF): read, by its own person
    only (anyone else: 404, not even that it exists)."""
    found = _mine(request.user).filter(pk=notification).first()  # type: ignore[arg-type, attr-defined]
    if found is None:
        raise Http404
    with transaction.atomic():
        people.mark_read(found)
    return HttpResponse(status=204)


def notification_link(request: HttpRequest, token: str) -> HttpResponse:
    """What an SMS, an e-mail or the work group links to: after signing in (the sign-in page
    comes back here), the notification is read and its person lands where they act on it."""
    pk = people.link_notification(token)
    found = _mine(request.user).filter(pk=pk).first() if pk else None  # type: ignore[arg-type, attr-defined]
    if found is None:
        raise Http404
    with transaction.atomic():
        people.mark_read(found)
    return redirect(notification_target(request.user, found))  # type: ignore[arg-type]


def notification_target(user: User, notification: Notification) -> str:
    """Where a notification leads its person: a department's member to their console at the
    summons or the order (highlighted there); a supervisor to their console at it, else to
    the incident's timeline; else the page its writer named, else home."""
    anchor = f"{notification.subject_type}-{notification.subject_id}"
    if notification.subject_type in ("report", "rating") and url_has_allowed_host_and_scheme(
        notification.link, allowed_hosts=None
    ):
        # The report's own page; the rating's page, the township's or the department's.
        return notification.link
    department_id, township_code = _subject_place(notification)
    if (
        department_id is not None
        and user.department_id == department_id
        and policy.can_open_console(user, department_id)
    ):
        return reverse("console", args=[user.department.code]) + f"#{anchor}"
    if policy.can_open_supervisor_console(user):
        return reverse("supervisor_console") + f"#{anchor}"
    if township_code and notification.incident_id:
        from command.org.models import Township

        township = Township.objects.filter(code=township_code).first()
        if township is not None and policy.can_supervise(user, township):
            return reverse("incident_timeline", args=[township_code, notification.incident_id])
    if notification.link and url_has_allowed_host_and_scheme(notification.link, allowed_hosts=None):
        return notification.link
    return reverse("home")


def _subject_place(notification: Notification) -> tuple[int | None, str]:
    """The department the notification's subject is addressed to, and its township's code."""
    if notification.subject_type == "summons":
        summons = (
            Summons.objects.filter(pk=notification.subject_id)
            .select_related("whistle__incident__township")
            .first()
        )
        if summons is not None:
            return summons.department_id, summons.whistle.incident.township.code
    elif notification.subject_type == "order":
        order = (
            SupervisionOrder.objects.filter(pk=notification.subject_id)
            .select_related("township")
            .first()
        )
        if order is not None:
            return order.department_id, order.township.code
    return None, notification.township.code


# --- how I'm reached ----------------------------------------------------------------------------


def reach_status(user: User) -> list[dict[str, object]]:
    """Each channel, and whether it can reach this person now: a channel not set up on this
    server says so rather than failing."""
    chosen = list(user.notify_by or DEFAULT_NOTIFY_BY)  # what is used when nothing is chosen
    rows: list[dict[str, object]] = [
        {"code": "console", "label": _("Live page (console, board)"), "state": "always"}
    ]
    for code, label in NotifyChannel.choices:
        channel = people.CHANNELS.get(code)
        if channel is None:
            state = "not_configured"
        else:
            try:
                state = "reaches" if channel.reaches(user) else "cannot"
            except Exception:  # a channel's check must not take the page down
                state = "cannot"
        position = chosen.index(code) + 1 if code in chosen else None
        rows.append({"code": code, "label": label, "state": state, "position": position})
    return rows


def my_notifications(request: HttpRequest) -> HttpResponse:
    """每个人: how I'm reached (my channels in order, my phone and e-mail), which channels can
    reach me now, and the notifications I was sent."""
    user: User = request.user  # type: ignore[assignment]
    form = ReachForm(request.POST or None, initial=ReachForm.initial_for(user))
    if request.method == "POST" and form.is_valid():
        try:
            user_set_reach(
                user=user,
                notify_by=form.cleaned_data["notify_by"],
                phone=form.cleaned_data["phone"],
                email=form.cleaned_data["email"],
            )
        except ValidationError as refusal:
            form.add_error(None, refusal)
        else:
            messages.success(request, _("Saved: you will be reached in this order."))
            return redirect("my_notifications")
    recent = list(
        policy.own_notifications(user, Notification.objects.select_related("township")).order_by(
            "-created_at", "-pk"
        )[:30]
    )
    for notification in recent:
        notification.open_link = reverse(
            "notification_link", args=[people.link_token(notification.pk)]
        )
    context = {
        "form": form,
        "reach": reach_status(user),
        "chose_nothing": not user.notify_by,
        "recent": recent,
    }
    status = 400 if form.errors else 200
    return render(request, "frontend/my_notifications.html", context, status=status)
