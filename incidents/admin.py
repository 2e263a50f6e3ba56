from django.contrib import admin
from django.core.exceptions import ValidationError
from django.forms.models import BaseInlineFormSet
from django.utils.translation import gettext_lazy as _

from incidents.models import EscalationChain, EscalationStep, SupervisionOrder


class StepFormSet(BaseInlineFormSet):
    def clean(self) -> None:
        super().clean()
        steps = [
            form.cleaned_data
            for form in self.forms
            if form.cleaned_data and not form.cleaned_data.get("DELETE")
        ]
        steps.sort(key=lambda step: step.get("position") or 0)
        actions = [step.get("action") for step in steps]
        if not any(a in EscalationStep.NOTIFY_ACTIONS for a in actions):
            raise ValidationError(_("A chain needs at least one step that notifies someone."))
        if EscalationStep.Action.REPEAT in actions[:-1]:
            raise ValidationError(_("A repeat must be the last step: nothing after it is run."))


class EscalationStepInline(admin.TabularInline):
    model = EscalationStep
    formset = StepFormSet
    extra = 1
    fields = ["position", "action", "minutes", "times", "all_channels"]


@admin.register(EscalationChain)
class EscalationChainAdmin(admin.ModelAdmin):
    """Who is paged, and when, until a summoned department acknowledges. A whistle keeps the
    chain it was blown with: an edit here changes the whistles blown after it."""

    list_display = ["name", "township", "kind"]
    list_filter = ["township", "kind"]
    inlines = [EscalationStepInline]


@admin.register(SupervisionOrder)
class SupervisionOrderAdmin(admin.ModelAdmin):
    """Supervision orders are issued, acknowledged and answered on the pages; here they read."""

    list_display = ["issued_at", "department", "incident", "status", "due_at", "answered_at"]
    list_filter = ["status", "township", "department"]
    readonly_fields = [f.name for f in SupervisionOrder._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False
