"""Forms of the pages: what the board asks an officer before it changes anything."""

from __future__ import annotations

from typing import Any

from django import forms
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from command.org.models import Department
from incidents.models import Incident, Whistle
from incidents.services.whistles import SummonedDepartment, report_within, suggested_departments


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
    departments = forms.MultipleChoiceField(label=_("Summon"), widget=forms.CheckboxSelectMultiple)
    reason = forms.CharField(
        label=_("Reason for departments not on the responsibility list"),
        required=False,
        max_length=200,
    )
    note = forms.CharField(label=_("Note"), required=False, widget=forms.Textarea({"rows": 2}))

    def __init__(self, *args: Any, incident: Incident, **kwargs: Any) -> None:
        self.incident = incident
        self.suggested = suggested_departments(category=incident.category)
        suggested_ids = {d.pk for d in self.suggested}
        others = (
            Department.objects.filter(Q(township__isnull=True) | Q(township=incident.township))
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

    def summoned(self) -> list[SummonedDepartment]:
        reason = self.cleaned_data.get("reason", "").strip()
        return [
            SummonedDepartment(self.by_code[code], "" if code in self.suggested_codes else reason)
            for code in self.cleaned_data["departments"]
        ]
