"""Channel "email": a person paged by e-mail through Django's e-mail backend (SMTP in
production: ``EMAIL_*`` settings, docs/operations.md).

The message has a short subject (【督办】…), the notification's text and its link (which opens the
console with the matter and marks the notification read) in plain text, and the same in a small
HTML part. A failed attempt records the SMTP reply code and its standard meaning, never the
server's own words; a recipient address the server refuses for good (5xx) is not retried.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Callable
from typing import NamedTuple

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string

from alerts.delivery import wording
from alerts.delivery.departments import DeliveryFailed, DestinationRefused
from alerts.delivery.people import Channel, absolute_link, register
from alerts.models import Notification
from command.org.models import User

# RFC 5321 §4.2 reply codes and their standard meanings (§4.2.2, §4.2.3), plus RFC 4954's
# authentication replies: what a failure names instead of the server's text.
SMTP_MEANINGS = {
    421: "service not available",
    450: "mailbox unavailable",
    451: "local error in processing",
    452: "insufficient system storage",
    454: "temporary authentication failure",
    500: "syntax error, command unrecognized",
    501: "syntax error in parameters",
    502: "command not implemented",
    503: "bad sequence of commands",
    504: "command parameter not implemented",
    530: "authentication required",
    534: "authentication mechanism too weak",
    535: "authentication credentials invalid",
    538: "encryption required for authentication",
    550: "mailbox unavailable",
    551: "user not local",
    552: "exceeded storage allocation",
    553: "mailbox name not allowed",
    554: "transaction failed",
    555: "parameters not recognized",
}


def meaning(code: int) -> str:
    if code in SMTP_MEANINGS:
        return SMTP_MEANINGS[code]
    if 400 <= code < 500:
        return "temporary failure"
    if 500 <= code < 600:
        return "permanent failure"
    return "unexpected reply"


class Attachment(NamedTuple):
    filename: str
    content: bytes
    mimetype: str


# What an e-mail of a subject kind carries attached (the monthly report its workbook), keyed by
# the notification's subject type: registered by the layer that owns the subject (supervision),
# which this module may not import.
ATTACHMENTS: dict[str, Callable[[Notification], list[Attachment]]] = {}


def register_attachments(
    subject_type: str, attachments: Callable[[Notification], list[Attachment]]
) -> None:
    ATTACHMENTS[subject_type] = attachments


def reaches(user: User) -> bool:
    return bool(user.email and user.email.strip())


def message(notification: Notification) -> EmailMultiAlternatives:
    """The e-mail for ``notification``: subject, plain text and an HTML alternative."""
    context = {
        "text": notification.text,
        "link": absolute_link(notification),
        "person": notification.user.display_name,
    }
    with wording.official_language():
        subject = wording.headline(notification)
        context["headline"] = subject
        context["prompt"] = wording.open_prompt(notification)
        text = render_to_string("alerts/email/notification.txt", context)
        html = render_to_string("alerts/email/notification.html", context)
    email = EmailMultiAlternatives(
        subject=subject,
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[notification.user.email.strip()],
        headers={"X-Whistle-Notification": notification.key},
    )
    email.attach_alternative(html, "text/html")
    attachments = ATTACHMENTS.get(notification.subject_type)
    if attachments is not None:
        for attachment in attachments(notification):
            email.attach(attachment.filename, attachment.content, attachment.mimetype)
    return email


def send(notification: Notification) -> None:
    if not reaches(notification.user):
        raise DestinationRefused("the person has no e-mail address")
    email = message(notification)
    try:
        email.send(fail_silently=False)
    except smtplib.SMTPRecipientsRefused as exc:
        code = min((reply[0] for reply in exc.recipients.values()), default=550)
        reason = f"SMTP {code} {meaning(code)}: the recipient's address was refused"
        if 500 <= code < 600:
            raise DestinationRefused(reason) from None
        raise DeliveryFailed(reason) from None
    except smtplib.SMTPResponseException as exc:
        raise DeliveryFailed(f"SMTP {exc.smtp_code} {meaning(exc.smtp_code)}") from None
    except smtplib.SMTPServerDisconnected as exc:
        # smtplib turns a read that timed out into a disconnection; say which it was.
        if isinstance(exc.__context__, TimeoutError):
            raise DeliveryFailed(_timed_out()) from None
        raise DeliveryFailed(f"SMTP {_server()}: the server closed the connection") from None
    except smtplib.SMTPNotSupportedError:
        raise DeliveryFailed(
            f"SMTP {_server()}: the server does not offer what the settings ask "
            "(STARTTLS or authentication)"
        ) from None
    except smtplib.SMTPException as exc:
        raise DeliveryFailed(f"SMTP {_server()}: {type(exc).__name__}") from None
    except TimeoutError:
        raise DeliveryFailed(_timed_out()) from None
    except ssl.SSLError as exc:
        raise DeliveryFailed(f"SMTP {_server()}: TLS failed ({exc.reason or 'SSLError'})") from None
    except OSError as exc:
        raise DeliveryFailed(
            f"SMTP {_server()}: cannot connect ({exc.strerror or type(exc).__name__})"
        ) from None


def _server() -> str:
    return f"{settings.EMAIL_HOST}:{settings.EMAIL_PORT}"


def _timed_out() -> str:
    return f"SMTP {_server()}: no answer within {float(settings.EMAIL_TIMEOUT or 0):g} s"


register(Channel("email", reaches, send))
