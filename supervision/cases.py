"""The case library (案件库): every incident a person may see, searched and filtered. The page,
its CSV and ``GET /api/v1/incidents`` all read through here, so they agree on what a filter
means and on who sees what (``command.org.policy``).

A filter arrives as a query string (bookmarkable, the same for the page and the API) and is
checked by :class:`CaseFilterForm`: an unknown category, a malformed date or cursor is a form
error (the page shows it, the API answers 400), never a 500.

Pages are keyset pages on ``(opened_at, id)``, newest first, like the board's alert queue
(``frontend.paging``): the library changes while someone reads it, and an offset would skip or
repeat rows. The text search is one ``ILIKE`` over title, description and feedback, answered by
a trigram index on the same expression (``incidents`` migration 0012) when the words are long
enough to have trigrams.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django import forms
from django.conf import settings
from django.db.models import BooleanField, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from command.org import policy
from command.org.models import Category, Department, Grid, Township, User
from incidents.models import Incident, Summons

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The searched text, exactly as the trigram index of migration 0012 has it.
SEARCH_TEXT = '("incidents_incident"."title" || \' \' || "incidents_incident"."description" || \' \' || "incidents_incident"."feedback")'  # noqa: E501
MAX_PAGE = 500
ACTIVE = "active"  # a status filter: open, dispatched or on site
NONE = "none"  # a level or satisfaction filter: not set yet


def cursor(moment: datetime, pk: int) -> str:
    """``<microseconds since the epoch>.<id>`` of a row (as ``frontend.paging`` writes it)."""
    micro = (moment - EPOCH) // timedelta(microseconds=1)
    return f"{micro}.{pk}"


def parse_cursor(text: str) -> tuple[datetime, int]:
    micro, _dot, pk = text.partition(".")
    try:
        return EPOCH + timedelta(microseconds=int(micro)), int(pk)
    except (ValueError, OverflowError) as problem:
        raise ValueError(str(problem)) from problem


@dataclass(frozen=True)
class CaseFilter:
    """What a search asks for; empty fields do not filter."""

    text: str = ""
    category: int | None = None  # ids
    grid: int | None = None
    township: int | None = None
    department: int | None = None
    status: str = ""  # an Incident.Status, or ACTIVE
    opened_from: datetime | None = None  # inclusive
    opened_before: datetime | None = None  # exclusive
    level: str = ""  # an Incident.SettledLevel, or NONE
    satisfaction: str = ""  # an Incident.Satisfaction, or NONE
    reopened: bool | None = None
    after: tuple[datetime, int] | None = None  # the last row of the page before


def _coded(queryset: QuerySet) -> tuple[list[tuple[str, str]], dict[str, int]]:
    """Choices (code, name in the reader's language) and each code's id, in one query: a
    ModelChoiceField would query again for every rendering and build a model per option."""
    english = (get_language() or "").startswith("en")
    rows = list(queryset.values_list("pk", "code", "name", "name_en"))
    choices = [("", _("Any"))] + [
        (code, name_en if english and name_en else name) for _pk, code, name, name_en in rows
    ]
    return choices, {code: pk for pk, code, _name, _en in rows}


def _date(label: Any) -> forms.DateField:
    return forms.DateField(
        label=label,
        required=False,
        widget=forms.DateInput({"type": "date"}, format="%Y-%m-%d"),
        input_formats=["%Y-%m-%d"],
    )


class CaseFilterForm(forms.Form):
    """The query string of the page, the CSV and the API. Choices are limited to what the user
    may see: a grid or township out of scope is "not one of the available choices"."""

    q = forms.CharField(label=_("Search"), required=False, max_length=200, strip=True)
    category = forms.ChoiceField(label=_("Category"), required=False)
    township = forms.ChoiceField(label=_("Township"), required=False)
    grid = forms.ChoiceField(label=_("Grid"), required=False)
    department = forms.ChoiceField(label=_("Department"), required=False)
    status = forms.ChoiceField(label=_("Status"), required=False)
    start = _date(_("Opened from"))
    end = _date(_("Opened until (inclusive)"))
    level = forms.ChoiceField(label=_("Settled at (631)"), required=False)
    satisfaction = forms.ChoiceField(label=_("Satisfaction"), required=False)
    reopened = forms.ChoiceField(
        label=_("Reopened"),
        required=False,
        choices=[("", _("Any")), ("yes", _("Reopened")), ("no", _("Never reopened"))],
    )
    after = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, data: Any, *, user: User) -> None:
        super().__init__(data)
        self.user = user
        # Each coded field's ids by code; a code out of the user's scope is not a choice.
        self.ids: dict[str, dict[str, int]] = {}
        for name, queryset in (
            ("category", Category.objects.order_by("code")),
            ("township", policy.townships(user).order_by("code")),
            ("grid", Grid.objects.filter(township__in=_township_scope(user)).order_by("code")),
            ("department", Department.objects.order_by("code")),
        ):
            self.fields[name].choices, self.ids[name] = _coded(queryset)
        self.fields["status"].choices = [
            ("", _("Any")),
            (ACTIVE, _("Being handled")),
            *Incident.Status.choices,
        ]
        self.fields["level"].choices = [
            ("", _("Any")),
            *Incident.SettledLevel.choices,
            (NONE, _("Not settled yet")),
        ]
        self.fields["satisfaction"].choices = [
            ("", _("Any")),
            *Incident.SATISFACTION_ANSWERS,
            (NONE, _("Not asked yet")),
        ]

    def clean_after(self) -> tuple[datetime, int] | None:
        text = self.cleaned_data.get("after") or ""
        if not text:
            return None
        try:
            return parse_cursor(text)
        except ValueError:
            raise forms.ValidationError(_("This page of the list does not exist.")) from None

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        if start and end and end < start:
            raise forms.ValidationError(_("The period ends before it starts."))
        return data

    def filters(self) -> CaseFilter:
        """The valid form as a filter (call after ``is_valid()``)."""
        data = self.cleaned_data

        def pk(name: str) -> int | None:
            return self.ids[name].get(data.get(name) or "")

        township = pk("township")
        zone = _zone(self.user, township)
        start: date | None = data.get("start")
        end: date | None = data.get("end")
        return CaseFilter(
            text=data.get("q") or "",
            category=pk("category"),
            grid=pk("grid"),
            township=township,
            department=pk("department"),
            status=data.get("status") or "",
            opened_from=datetime.combine(start, datetime.min.time(), zone) if start else None,
            opened_before=(
                datetime.combine(end + timedelta(days=1), datetime.min.time(), zone)
                if end
                else None
            ),
            level=data.get("level") or "",
            satisfaction=data.get("satisfaction") or "",
            reopened={"yes": True, "no": False}.get(data.get("reopened") or ""),
            after=data.get("after"),
        )

    def error_text(self) -> str:
        """The form's errors in one line, for the API's 400 and the CSV's."""
        parts = []
        for name, errors in self.errors.items():
            label = self.fields[name].label if name in self.fields else None
            parts.append(f"{label or name}: {' '.join(errors)}" if name != "__all__" else errors[0])
        return "; ".join(str(p) for p in parts)


def _township_scope(user: User) -> QuerySet[Township]:
    """The townships whose grids a user may filter by: those whose incidents the user may see
    (a department member's are the townships its department serves)."""
    if policy.township_ids(user) == set() and policy.is_active(user):
        seen = policy.incidents(user, Incident.objects.all()).values("township_id")
        return Township.objects.filter(pk__in=seen)
    return policy.townships(user)


def _zone(user: User, township: int | None) -> Any:
    """Whose midnight a date of the period means: the township filtered by, else the user's."""
    from zoneinfo import ZoneInfo

    if township is not None:
        return Township.objects.get(pk=township).zone
    if getattr(user, "township_id", None):
        return user.township.zone
    return ZoneInfo(settings.TIME_ZONE)


def _escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def cases(*, user: User, filters: CaseFilter) -> QuerySet[Incident]:
    """The incidents ``user`` may see that match ``filters``, newest first."""
    found = policy.incidents(user, Incident.objects.all())
    f = filters
    if f.text:
        found = found.filter(
            Q(
                RawSQL(
                    f"{SEARCH_TEXT} ILIKE %s",
                    [f"%{_escaped(f.text)}%"],
                    output_field=BooleanField(),
                )
            )
        )
    if f.category is not None:
        found = found.filter(category_id=f.category)
    if f.grid is not None:
        found = found.filter(grid_id=f.grid)
    if f.township is not None:
        found = found.filter(township_id=f.township)
    if f.department is not None:
        summoned = Summons.objects.filter(department_id=f.department).values("whistle__incident_id")
        found = found.filter(pk__in=summoned)
    if f.status == ACTIVE:
        found = found.filter(status__in=Incident.ACTIVE_STATUSES)
    elif f.status:
        found = found.filter(status=f.status)
    if f.opened_from is not None:
        found = found.filter(opened_at__gte=f.opened_from)
    if f.opened_before is not None:
        found = found.filter(opened_at__lt=f.opened_before)
    if f.level:
        found = found.filter(settled_level="" if f.level == NONE else f.level)
    if f.satisfaction:
        found = found.filter(satisfaction="" if f.satisfaction == NONE else f.satisfaction)
    if f.reopened is True:
        found = found.filter(reopened_count__gt=0)
    elif f.reopened is False:
        found = found.filter(reopened_count=0)
    return found.order_by("-opened_at", "-id")


@dataclass
class CaseRow:
    incident: Incident
    departments: list[str] = field(default_factory=list)  # names, in the reader's language
    department_codes: list[str] = field(default_factory=list)

    @property
    def cursor(self) -> str:
        return cursor(self.incident.opened_at, self.incident.pk)


@dataclass
class CasePage:
    rows: list[CaseRow]
    next_cursor: str | None  # the cursor of the page after, None on the last


def _with_departments(incidents: list[Incident]) -> list[CaseRow]:
    """Rows with the names of the departments summoned to each (one query for the page)."""
    names: dict[int, list[str]] = {i.pk: [] for i in incidents}
    codes: dict[int, list[str]] = {i.pk: [] for i in incidents}
    summoned = (
        Summons.objects.filter(whistle__incident_id__in=list(names))
        .order_by("whistle__incident_id", "department__code")
        .values_list("whistle__incident_id", "department__code", "department__name",
                     "department__name_en")
    )  # fmt: skip
    seen: set[tuple[int, str]] = set()
    for incident_id, code, name, name_en in summoned:
        if (incident_id, code) in seen:
            continue
        seen.add((incident_id, code))
        names[incident_id].append(Department(code=code, name=name, name_en=name_en).display_name)
        codes[incident_id].append(code)
    return [CaseRow(i, names[i.pk], codes[i.pk]) for i in incidents]


def _page_of(queryset: QuerySet[Incident], after: tuple[datetime, int] | None, limit: int) -> Any:
    if after is not None:
        moment, pk = after
        queryset = queryset.filter(Q(opened_at__lt=moment) | Q(opened_at=moment, pk__lt=pk))
    return list(queryset[: limit + 1])


def case_page(
    *, user: User, filters: CaseFilter, limit: int | None = None, complete: bool = True
) -> CasePage:
    """One page of the library: up to ``limit`` rows after ``filters.after``; without
    ``complete``, the incidents without what a row of the page does not show (evidence, the
    description, the callback's note)."""
    limit = max(1, min(limit or settings.WHISTLE_PAGE_SIZE, MAX_PAGE))
    queryset = cases(user=user, filters=filters).select_related("township", "category", "grid")
    if not complete:
        queryset = queryset.defer("evidence", "description", "callback_note")
    found = _page_of(queryset, filters.after, limit)
    rows = _with_departments(found[:limit])
    more = len(found) > limit
    return CasePage(rows, rows[-1].cursor if more and rows else None)


def every_case(*, user: User, filters: CaseFilter, chunk: int = MAX_PAGE) -> Iterator[CaseRow]:
    """Every row in scope that matches, page by page (the CSV streams these)."""
    queryset = cases(user=user, filters=filters).select_related("township", "category", "grid")
    after = filters.after
    while True:
        found = _page_of(queryset, after, chunk)
        yield from _with_departments(found[:chunk])
        if len(found) <= chunk:
            return
        last = found[chunk - 1]
        after = (last.opened_at, last.pk)
