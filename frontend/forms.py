"""Forms of the pages: what the board asks an officer before it changes anything."""

from __future__ import annotations

from typing import Any

from django import forms
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from alerts.models import Severity
from command.org.models import (
    DEFAULT_NOTIFY_BY,
    Category,
    Department,
    Grid,
    NotifyChannel,
    Township,
    validate_notify_by,
)
from incidents import selectors as incident_selectors
from incidents.models import Incident, Whistle
from incidents.services.whistles import SummonedDepartment, report_within, suggested_departments
from streams.models import GridReport


def _minutes_text(minutes: int) -> str:
    if minutes % 60:
        return _("%(n)d min") % {"n": minutes}
    return _("%(n)d h") % {"n": minutes // 60}


class WhistleForm(forms.Form):
    """吹哨 from the board: kind (and so the deadline), purpose, the departments to summon.

    Departments on the responsibility list for the incident's category come first and are
    ticked; summoning one that is not on the list needs a reason, as the service insists.
    """

    kind = forms.ChoiceField(label=_("Whistle"), widget=forms.RadioSelect)
    purpose = forms.ChoiceField(label=_("Purpose"), choices=Whistle.Purpose.choices)
    joint_township = forms.ChoiceField(
        label=_("Joint whistle with (联合哨)"),
        required=False,
        help_text=_(
            "The other township confirms on its own board before its offices are summoned."
        ),
    )
    departments = forms.MultipleChoiceField(label=_("Summon"), widget=forms.CheckboxSelectMultiple)
    reason = forms.CharField(
        label=_("Reason for departments not on the responsibility list"),
        required=False,
        max_length=200,
    )
    note = forms.CharField(label=_("Note"), required=False, widget=forms.Textarea({"rows": 2}))

    def __init__(
        self, *args: Any, incident: Incident, joint: Township | None = None, **kwargs: Any
    ) -> None:
        self.incident = incident
        self.joint = joint
        self.suggested = suggested_departments(category=incident.category)
        suggested_ids = {d.pk for d in self.suggested}
        townships = Q(township__isnull=True) | Q(township=incident.township)
        if joint is not None:
            townships |= Q(township=joint)  # the other township's own offices
        others = (
            Department.objects.filter(townships)
            .exclude(pk__in=suggested_ids)
            .order_by("kind", "code")
        )
        self.by_code = {d.code: d for d in [*self.suggested, *others]}
        initial = {
            "kind": Whistle.Kind.EMERGENCY
            if incident.severity == "critical"
            else Whistle.Kind.GENERAL,
            "purpose": Whistle.Purpose.EMERGENCY_RESPONSE
            if incident.severity == "critical"
            else Whistle.Purpose.JOINT_ENFORCEMENT,
            "departments": [d.code for d in self.suggested[:3]],
        }
        super().__init__(*args, initial=initial, **kwargs)
        self.fields["kind"].choices = [
            (
                value,
                f"{label} · "
                + _("on site within %(time)s")
                % {
                    "time": _minutes_text(
                        int(report_within(incident.township, value).total_seconds()) // 60
                    )
                },
            )
            for value, label in Whistle.Kind.choices
        ]
        self.fields["joint_township"].choices = [("", _("— not joint —"))] + [
            (t.code, t.display_name)
            for t in Township.objects.exclude(pk=incident.township_id).order_by("code")
        ]
        if joint is not None:
            self.fields["joint_township"].initial = joint.code
        self.fields["departments"].choices = [
            (code, department.display_name) for code, department in self.by_code.items()
        ]
        self.suggested_codes = {d.code for d in self.suggested}

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        off_list = [c for c in data.get("departments", []) if c not in self.suggested_codes]
        if off_list and not data.get("reason", "").strip():
            names = "、".join(self.by_code[c].display_name for c in off_list)
            self.add_error(
                "reason",
                _("%(names)s not on the responsibility list: say why they are summoned.")
                % {"names": names},
            )
        return data

    def joint_township_chosen(self) -> Township | None:
        code = self.cleaned_data.get("joint_township") or ""
        return Township.objects.filter(code=code).first() if code else None

    def summoned(self) -> list[SummonedDepartment]:
        reason = self.cleaned_data.get("reason", "").strip()
        return [
            SummonedDepartment(self.by_code[code], "" if code in self.suggested_codes else reason)
            for code in self.cleaned_data["departments"]
        ]


class CloseForm(forms.Form):
    """闭环 from the board: the feedback to the person who raised it and the 631 level."""

    feedback = forms.CharField(
        label=_("Feedback (what was done, told to whoever raised it)"),
        widget=forms.Textarea({"rows": 3}),
        max_length=2000,
    )
    settled_level = forms.ChoiceField(
        label=_("Settled at (631)"),
        choices=Incident.SettledLevel.choices,
        widget=forms.RadioSelect,
    )

    def __init__(self, *args: Any, incident: Incident, **kwargs: Any) -> None:
        # A matter a department had to come to, or the grid handed up, was not settled in the
        # grid.
        initial = {"settled_level": incident_selectors.settled_level_default(incident)}
        super().__init__(*args, initial=initial, **kwargs)


class IncidentForm(forms.Form):
    """立案 by hand on the board, for a matter no alert raised (a call, a walk-in, a patrol)."""

    title = forms.CharField(label=_("Title"), max_length=200)
    category = forms.ModelChoiceField(
        label=_("Category"), queryset=Category.objects.none(), to_field_name="code"
    )
    severity = forms.ChoiceField(label=_("Severity"), choices=Severity.choices, initial="major")
    grid = forms.ModelChoiceField(
        label=_("Grid"), queryset=Grid.objects.none(), required=False, to_field_name="code"
    )
    description = forms.CharField(
        label=_("Description"), required=False, widget=forms.Textarea({"rows": 3})
    )

    def __init__(self, *args: Any, township: Township, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["category"].queryset = Category.objects.order_by("code")
        self.fields["grid"].queryset = Grid.objects.filter(township=township).order_by("code")
        self.fields["category"].label_from_instance = lambda c: c.display_name
        self.fields["grid"].label_from_instance = lambda g: g.display_name


# The desk's channels in the order the duty officer meets them most.
DESK_CHANNELS = (
    GridReport.Channel.HOTLINE_12345,
    GridReport.Channel.HOTLINE_12315,
    GridReport.Channel.MAILBOX,
    GridReport.Channel.WALK_IN,
    GridReport.Channel.PHONE,
    GridReport.Channel.OTHER,
)


class IntakeForm(forms.Form):
    """受理 at the duty desk: a call, a hotline ticket, a mailbox message or a visitor, with
    the caller (for the callback), what and where; it becomes an alert or an incident."""

    BECOMES = (("alert", _("An alert in the queue")), ("incident", _("An incident directly")))

    channel = forms.ChoiceField(label=_("How it came"), widget=forms.RadioSelect)
    caller_name = forms.CharField(label=_("Caller's name"), required=False, max_length=60)
    caller_phone = forms.CharField(
        label=_("Caller's phone"),
        required=False,
        max_length=40,
        widget=forms.TextInput({"inputmode": "tel", "autocomplete": "off"}),
    )
    ticket = forms.CharField(label=_("Ticket number"), required=False, max_length=64)
    category = forms.ChoiceField(label=_("Category"))
    description = forms.CharField(
        label=_("What the caller says"), max_length=4000, widget=forms.Textarea({"rows": 3})
    )
    grid = forms.ChoiceField(label=_("Grid"), required=False)
    becomes = forms.ChoiceField(
        label=_("It becomes"), choices=BECOMES, initial="alert", widget=forms.RadioSelect
    )

    def __init__(self, *args: Any, township: Township, **kwargs: Any) -> None:
        super().__init__(*args, initial={"channel": GridReport.Channel.PHONE}, **kwargs)
        self.township = township
        labels = dict(GridReport.Channel.choices)
        self.fields["channel"].choices = [(c.value, labels[c.value]) for c in DESK_CHANNELS]
        self.categories = {c.code: c for c in Category.objects.order_by("code")}
        self.fields["category"].choices = [
            (code, category.display_name) for code, category in self.categories.items()
        ]
        self.grids = {g.code: g for g in Grid.objects.filter(township=township).order_by("code")}
        self.fields["grid"].choices = [("", _("— not known —"))] + [
            (code, f"{grid.display_name} · {code}") for code, grid in self.grids.items()
        ]
        # Photos are uploaded first (POST /api/v1/photos); the form carries their addresses.
        self.photos = self.data.getlist("photos") if hasattr(self.data, "getlist") else []

    def filing(self) -> dict[str, Any]:
        """The keyword arguments of ``intake_file`` the form holds."""
        data = self.cleaned_data
        return {
            "channel": data["channel"],
            "township": self.township,
            "category": self.categories[data["category"]],
            "description": data["description"],
            "grid": self.grids.get(data["grid"]) if data["grid"] else None,
            "photos": self.photos,
            "caller_name": data["caller_name"],
            "caller_phone": data["caller_phone"],
            "external_id": data["ticket"],
            "open_incident": data["becomes"] == "incident",
        }


class ReachForm(forms.Form):
    """How a person is reached (督办): up to one channel per position, first to last, and the
    phone and e-mail those channels use. Without JavaScript: a select per position."""

    POSITIONS = len(NotifyChannel.values)

    phone = forms.CharField(label=_("Mobile phone"), required=False, max_length=40)
    email = forms.EmailField(label=_("E-mail"), required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = [("", _("(none)")), *NotifyChannel.choices]
        for position in range(1, self.POSITIONS + 1):
            self.fields[f"channel_{position}"] = forms.ChoiceField(
                label=_("Channel %(n)d") % {"n": position}, choices=choices, required=False
            )

    @classmethod
    def initial_for(cls, user: Any) -> dict[str, Any]:
        chosen = list(user.notify_by or DEFAULT_NOTIFY_BY)
        initial: dict[str, Any] = {"phone": user.phone, "email": user.email}
        for position in range(1, cls.POSITIONS + 1):
            initial[f"channel_{position}"] = chosen[position - 1] if position <= len(chosen) else ""
        return initial

    def position_fields(self) -> list[forms.BoundField]:
        return [self[f"channel_{position}"] for position in range(1, self.POSITIONS + 1)]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        # Empty positions are skipped: "SMS, (none), e-mail" is SMS then e-mail.
        chosen = [
            data[f"channel_{position}"]
            for position in range(1, self.POSITIONS + 1)
            if data.get(f"channel_{position}")
        ]
        validate_notify_by(chosen)  # the model's own rule: each channel once
        data["notify_by"] = chosen
        return data
