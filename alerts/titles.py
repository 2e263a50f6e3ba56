"""Alert titles composed in the reader's language from what an alert stored.

An alert keeps the facts that raised it (the rule's names, the label, the metric and its value,
the device's code) in its ``detail``; the words around them are put together when a page, a
CAP message or an API answer is made, in the language active then. The ``title`` column keeps
one composition (in Chinese, the official language) for search, the admin and older clients.
Pure functions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from django.utils import translation
from django.utils.translation import gettext_lazy

from alerts.labels import label_name

# The language a stored title is composed in: the official one, as ``name`` fields are.
STORED_LANGUAGE = "zh-hans"

# What the reader sees for a rule's alert: its name, what crossed the line, and where.
_RULE_WHAT_WHERE = gettext_lazy("%(rule)s: %(what)s @ %(device)s")
_RULE_WHERE = gettext_lazy("%(rule)s: %(device)s")
_WHAT_WHERE = gettext_lazy("%(what)s @ %(device)s")


def rule_name(detail: Mapping[str, Any]) -> str:
    """The raising rule's name in the active language (its Chinese name when it has no English
    one); empty when the alert kept no name."""
    name = detail.get("rule_name")
    english = detail.get("rule_name_en")
    if (translation.get_language() or STORED_LANGUAGE).startswith("en") and english:
        return str(english)
    return str(name) if name else ""


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _what(detail: Mapping[str, Any]) -> str | None:
    """What crossed the line, in the active language; None when the facts do not say."""
    metric = detail.get("metric")
    if isinstance(metric, str) and metric:
        rate, value = _number(detail.get("rate")), _number(detail.get("value"))
        per = detail.get("per_seconds")
        if "rate" in detail:
            if rate is None or not isinstance(per, int):
                return None
            return f"{metric} {rate:+.3g}/{per}s"
        return None if value is None else f"{metric} {value:g}"
    label = detail.get("label")
    if isinstance(label, str) and label and label != "offline":
        return label_name(label)
    return None


def alert_title(detail: Mapping[str, Any] | None, *, device_code: str = "") -> str | None:
    """The title of an alert with this ``detail`` in the active language, or None when the
    detail holds too little to compose it (a grid report, whose title is the officer's own
    words; an alert stored before its rule's names were kept)."""
    if not isinstance(detail, Mapping) or "report" in detail:
        return None
    rule = rule_name(detail)
    if "rule" in detail and not rule:
        return None
    what = _what(detail)
    device = device_code or str(detail.get("device_code") or "")
    if rule and detail.get("label") == "offline" and "metric" not in detail:
        return str(_RULE_WHERE) % {"rule": rule, "device": device}
    if what is None:
        return None
    if rule:
        return str(_RULE_WHAT_WHERE) % {"rule": rule, "what": what, "device": device}
    return str(_WHAT_WHERE) % {"what": what, "device": device}


def stored_title(detail: Mapping[str, Any], *, device_code: str) -> str:
    """The title column's text: the composition in the official language."""
    with translation.override(STORED_LANGUAGE):
        return alert_title(detail, device_code=device_code) or device_code


def in_english(text: Callable[[], str]) -> str:
    """``text()`` made in English whatever the active language: the ``title_en`` of the API and
    of the payloads to departments' systems."""
    with translation.override("en"):
        return text()
