"""The words a notification goes out in on the channels that carry more than its text (e-mail,
work group robots): a short headline, always in the platform's language (Chinese), whatever
language the worker happens to have active. Translations: ``command/locale``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext as _

from alerts.models import Notification

# A headline (e-mail subject, robot message title) stays readable in a list: the text's first
# line, cut to this many characters.
HEADLINE_TEXT_MAX = 60


@contextmanager
def official_language() -> Iterator[None]:
    """Compose in the platform's language: a notification reads the same whoever sends it."""
    with translation.override(settings.LANGUAGE_CODE):
        yield


def shortened(text: str, limit: int) -> str:
    """``text``'s first line, cut to ``limit`` characters with an ellipsis when cut."""
    line = " ".join((text.strip().splitlines() or [""])[0].split())
    return line if len(line) <= limit else line[: max(0, limit - 1)] + "…"


def headline(notification: Notification) -> str:
    """【督办】… for a summons, 【督办单】… for a supervision order (in Chinese once translated)."""
    text = shortened(notification.text, HEADLINE_TEXT_MAX)
    if text.startswith(("【", "[")):
        return text  # the text names its kind already (【督办】, 【逾期】, 【督办单】, 【考核】)
    if notification.subject_type == "report":
        return _("[Monthly report] %(text)s") % {"text": text}
    if notification.subject_type == "order":
        return _("[Supervision order] %(text)s") % {"text": text}
    return _("[Supervision] %(text)s") % {"text": text}


def open_prompt(notification: Notification | None = None) -> str:
    if notification is not None and notification.subject_type == "report":
        return _("Open the report")
    return _("Open and acknowledge")
