from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from alerts.models import Alert, AlertRule, Delivery, Notification


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


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    """The notification log (督办 reaching people): who was told what, by which channel, with
    every attempt's outcome and when it was read."""

    list_display = [
        "created_at",
        "user",
        "reason",
        "channel",
        "status",
        "attempts",
        "sent_at",
        "read_at",
    ]
    list_filter = ["status", "channel", "reason", "township"]
    search_fields = ["key", "text", "last_error", "user__username", "user__last_name"]
    list_select_related = ["user"]
    readonly_fields = [f.name for f in Notification._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(AlertRule)
class AlertRuleAdmin(admin.ModelAdmin):
    """Rules are validated on save (AlertRule.clean); ingest picks edits up within 30 s."""

    list_display = ["name", "name_en", "township", "kind", "category", "severity", "enabled"]
    list_filter = ["township", "kind", "enabled", "severity", "category"]
    search_fields = ["name", "name_en", "metric"]
    autocomplete_fields = ["device"]
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "township",
                    "name",
                    "name_en",
                    "kind",
                    "enabled",
                    "category",
                    "severity",
                    "device",
                )
            },
        ),
        (
            _("Camera detection"),
            {"fields": ("labels", "min_score", "zones", "active_from", "active_until")},
        ),
        (
            _("Sensor threshold or rate of change"),
            {
                "fields": (
                    "metric",
                    "operator",
                    "threshold",
                    "clear_at",
                    "hold_seconds",
                    "per_seconds",
                )
            },
        ),
        (_("Device offline"), {"fields": ("device_kinds",)}),
    )
