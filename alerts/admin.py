from django.contrib import admin

from alerts.models import Alert


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = ["last_seen", "title", "category", "severity", "status", "count", "township"]
    list_filter = ["status", "severity", "source", "category", "township"]
    search_fields = ["title", "dedupe_key"]
    list_select_related = ["category", "township"]
    readonly_fields = ["dedupe_key", "count", "first_seen", "last_seen", "detail"]

    def has_add_permission(self, request) -> bool:
        # Alerts are raised by ingest and reports; state changes go through services.
        return False
