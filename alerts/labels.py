"""Camera and gateway detection labels in the reader's language."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

# How a detection label reads on the board, in the user's language.
LABEL_NAMES = {
    "excavator": _("excavator"),
    "dump_truck": _("dump truck"),
    "fire": _("open fire"),
    "smoke": _("smoke"),
    "straw_burning": _("straw burning"),
    "crowd": _("crowd gathering"),
    "fight": _("fight"),
    "illegal_parking": _("illegal parking"),
    "garbage": _("garbage"),
    "debris": _("piled debris"),
    "street_vendor": _("street vendor"),
    "flood": _("flooding"),
}


def label_name(label: str) -> str:
    return str(LABEL_NAMES.get(label, label))
