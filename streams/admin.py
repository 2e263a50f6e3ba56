from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from streams.ingest import dead_letters_replay
from streams.models import DeadLetter, GridReport


@admin.register(DeadLetter)
class DeadLetterAdmin(admin.ModelAdmin):
    list_display = ["received_at", "topic", "reason", "replayed_at"]
    list_filter = [("replayed_at", admin.EmptyFieldListFilter)]
    search_fields = ["topic", "reason"]
    readonly_fields = ["received_at", "topic", "payload_text", "reason", "replayed_at"]
    exclude = ["payload"]
    actions = ["replay"]

    @admin.display(description=_("raw payload"))
    def payload_text(self, obj: DeadLetter) -> str:
        return bytes(obj.payload).decode("utf-8", errors="backslashreplace")[:4000]

    @admin.action(description=_("Replay the selected dead letters"))
    def replay(self, request, queryset) -> None:
        replayed, failing = dead_letters_replay(ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(
            request,
            ngettext("%(n)d message stored.", "%(n)d messages stored.", replayed) % {"n": replayed},
            messages.SUCCESS,
        )
        if failing:
            self.message_user(
                request,
                ngettext(
                    "%(n)d message still fails; see its reason.",
                    "%(n)d messages still fail; see their reasons.",
                    failing,
                )
                % {"n": failing},
                messages.WARNING,
            )

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(GridReport)
class GridReportAdmin(admin.ModelAdmin):
    list_display = ["created_at", "channel", "category", "grid", "reporter", "alert"]
    list_filter = ["channel", "category", "township"]
    search_fields = ["description", "external_id"]
    readonly_fields = ["alert"]
