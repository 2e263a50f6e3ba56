from django.contrib import admin

from alerts.models import Alert, Delivery


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


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    """The delivery log: every push to a department's system, its attempts and last error."""

    list_display = [
        "created_at",
        "event",
        "department",
        "channel",
        "status",
        "attempts",
        "response_status",
        "delivered_at",
    ]
    list_filter = ["status", "channel", "event", "department"]
    search_fields = ["key", "last_error"]
    readonly_fields = [f.name for f in Delivery._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False
