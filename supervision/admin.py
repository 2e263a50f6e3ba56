from django.contrib import admin

from supervision.models import (
    AssessmentCriterion,
    AssessmentScheme,
    DepartmentRating,
    MonthlyReport,
)


@admin.register(AssessmentScheme)
class AssessmentSchemeAdmin(admin.ModelAdmin):
    """How a district combines a department's score: the townships' share and the measured
    figures' weights (which must add up to 1). A rating keeps the computation it was given
    with; an edit here changes the ratings given after it."""

    list_display = [
        "__str__", "township_share", "on_time_arrival", "on_time_finishing", "first_time",
        "satisfaction", "orders", "order_penalty", "objection_days",
    ]  # fmt: skip


@admin.register(AssessmentCriterion)
class AssessmentCriterionAdmin(admin.ModelAdmin):
    list_display = ["display_name", "township", "weight", "position", "active"]
    list_filter = ["township", "active"]


class ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(DepartmentRating)
class DepartmentRatingAdmin(ReadOnly):
    """Ratings are given, objected to and answered on the pages; here they read."""

    list_display = ["period_start", "period", "township", "department", "score", "rated_at"]
    list_filter = ["period", "township", "department"]


@admin.register(MonthlyReport)
class MonthlyReportAdmin(ReadOnly):
    """Reports are generated and sent by the worker (or `whistle report monthly` on demand);
    here they read, the workbook is downloaded from the township's reports page."""

    list_display = ["month", "township", "status", "generated_at", "sent_at"]
    list_filter = ["status", "township"]
    exclude = ["workbook"]
