import json
from typing import Any

from django import template

from streams.models import GridReport

register = template.Library()


@register.filter
def tojson(value: Any) -> str:
    """JSON for an HTML attribute value; Django's autoescape makes the quotes safe."""
    return json.dumps(value, ensure_ascii=False, default=str)


@register.filter
def lookup(mapping: dict[str, Any] | None, key: str) -> Any:
    """``mapping[key]`` in a template (None when absent)."""
    return (mapping or {}).get(key)


@register.filter
def percent(value: float | None) -> str:
    return "–" if value is None else f"{round(value * 100)}%"


@register.filter
def signed_percent(value: float | None) -> str:
    """A change as a signed percentage (+25%, −10%, 0%); a dash when there is nothing to
    compare with."""
    if value is None:
        return "–"
    rounded = round(value * 100)
    return f"+{rounded}%" if rounded > 0 else f"−{-rounded}%" if rounded < 0 else "0%"


@register.filter
def minutes(value: Any) -> str:
    """A duration as minutes (one decimal), for tables read by people and spreadsheets."""
    if value is None:
        return "–"
    # + 0.0 turns the -0.0 of a moment a few microseconds before another into 0.0.
    return f"{round(value.total_seconds() / 60, 1) + 0.0:.1f}"


@register.filter
def channel_name(code: str) -> str:
    """An intake channel's name (12345 hotline, walk-in …) in the reader's language."""
    labels = dict(GridReport.Channel.choices)
    return str(labels.get(code, code))


@register.filter
def reason_label(code: str) -> str:
    """Why a person was notified (on call, backup, supervisor …) in the reader's language."""
    from frontend.notifications import reason_label as label

    return label(code)


@register.filter
def may_open_supervisor_console(user: Any) -> bool:
    from command.org import policy

    return policy.can_open_supervisor_console(user)


@register.filter
def share(row: Any, level: str) -> float | None:
    """A township's 631 share at ``level`` (a ``supervision.assessment.SettlementRow``)."""
    found = row.share(level)
    return None if found is None else float(found)


@register.filter
def watched_districts(user: Any) -> list[Any]:
    """The districts whose board ``user`` may open, for the header's links."""
    from command.org import policy
    from command.org.models import District

    ids = policy.district_ids(user)
    found = District.objects.all() if ids is None else District.objects.filter(pk__in=ids)
    return list(found.order_by("code")[:10])


@register.filter
def may_view_district(user: Any) -> bool:
    from command.org import policy

    return policy.can_view_district(user)


@register.filter
def part_label(part: dict[str, Any]) -> str:
    """A part of a rating's computation in the reader's language: a measured figure by its key,
    a township's criterion by its current names (the stored label is the rater's words)."""
    from supervision.assessment import FIGURE_LABELS
    from supervision.models import AssessmentCriterion

    key = str(part.get("key", ""))
    if key in FIGURE_LABELS:
        return str(FIGURE_LABELS[key])
    criterion = AssessmentCriterion.objects.filter(pk=int(key)).first() if key.isdigit() else None
    return criterion.display_name if criterion else str(part.get("label", key))
