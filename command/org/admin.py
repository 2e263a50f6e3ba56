from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db import models
from django.utils.translation import gettext_lazy as _

from command.org.models import (
    ApiToken,
    Category,
    Department,
    Device,
    District,
    Grid,
    OnCallOverride,
    OnCallShift,
    Responsibility,
    Township,
    User,
)


@admin.register(District)
class DistrictAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "name_en"]
    search_fields = ["code", "name", "name_en"]


@admin.register(Township)
class TownshipAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "name_en", "district", "time_zone"]
    list_filter = ["district"]
    search_fields = ["code", "name", "name_en"]
    autocomplete_fields = ["district"]


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "name_en"]
    search_fields = ["code", "name", "name_en"]


class ResponsibilityInline(admin.TabularInline):
    model = Responsibility
    extra = 1
    autocomplete_fields = ["category"]


class OnCallShiftInline(admin.TabularInline):
    """The weekly rota (值班表, AB岗): who answers a summons at each hour of the week."""

    model = OnCallShift
    extra = 1
    autocomplete_fields = ["primary", "backup"]


class OnCallOverrideInline(admin.TabularInline):
    """Leave and swaps: for a while, someone else answers instead of the rota's people."""

    model = OnCallOverride
    extra = 0
    autocomplete_fields = ["primary", "backup"]


@admin.register(Department)
class DepartmentAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "name_en", "kind", "township", "head", "contact_phone"]
    list_filter = ["kind", "township"]
    search_fields = ["code", "name", "name_en"]
    inlines = [ResponsibilityInline, OnCallShiftInline, OnCallOverrideInline]
    readonly_fields = ["webhook_secret"]
    autocomplete_fields = ["head"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    fieldsets = (
        (None, {"fields": ("code", "name", "name_en", "kind", "township")}),
        (_("People"), {"fields": ("head", "contact_name", "contact_phone")}),
        (
            _("The department's own system"),
            {"fields": ("webhook_url", "webhook_secret", "mqtt_downlink")},
        ),
        (_("Work group robot"), {"fields": ("robot", "robot_url", "robot_secret")}),
    )


@admin.register(Responsibility)
class ResponsibilityAdmin(admin.ModelAdmin):
    list_display = ["category", "department", "lead"]
    list_filter = ["lead", "category", "department__kind"]
    autocomplete_fields = ["category", "department"]


@admin.register(Grid)
class GridAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "name_en", "kind", "township", "head"]
    list_filter = ["kind", "township"]
    search_fields = ["code", "name", "name_en"]
    autocomplete_fields = ["head", "members"]


@admin.register(Device)
class DeviceAdmin(admin.ModelAdmin):
    list_display = [
        "code",
        "name",
        "kind",
        "sensor_type",
        "township",
        "grid",
        "online",
        "last_seen",
    ]
    list_filter = ["kind", "online", "sensor_type", "township"]
    search_fields = ["code", "name", "name_en"]
    autocomplete_fields = ["grid", "gateway"]
    readonly_fields = ["online", "last_seen"]


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = [
        "username",
        "last_name",
        "first_name",
        "role",
        "district",
        "township",
        "department",
    ]
    list_filter = ["role", "district", "township", "department", "is_active"]
    autocomplete_fields = ["district", "township", "department"]
    fieldsets = (
        *DjangoUserAdmin.fieldsets,
        (
            _("Role and scope"),
            {"fields": ("role", "district", "township", "department", "phone", "discipline")},
        ),
        (_("How this person is reached"), {"fields": ("notify_by",)}),
    )
    add_fieldsets = (
        *DjangoUserAdmin.add_fieldsets,
        (_("Role and scope"), {"fields": ("role", "district", "township", "department")}),
    )


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "user", "prefix", "created_at", "last_used_at", "revoked"]
    list_filter = ["revoked"]
    readonly_fields = ["user", "name", "prefix", "key_hash", "created_at", "last_used_at"]
    fields = ["user", "name", "prefix", "created_at", "last_used_at", "revoked"]

    def has_add_permission(self, request) -> bool:
        # Created with `whistle create-api-token`, which shows the secret once.
        return False
