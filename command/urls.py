from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.utils.translation import gettext_lazy as _

from api import open311
from api.v1 import api_urls
from frontend import (
    assessment,
    cases,
    district,
    monthly_reports,
    notifications,
    replay,
    supervision,
    supervisor_console,
    trends,
    views,
)

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("board/<slug:township>/", views.board, name="board"),
    path("district/<slug:district>/", district.district_board, name="district_board"),
    path("board/<slug:township>/alerts/", views.board_alerts, name="board_alerts"),
    path(
        "board/<slug:township>/devices/<slug:device>/",
        views.board_device,
        name="board_device",
    ),
    path(
        "board/<slug:township>/incidents/<int:incident>/whistle/",
        views.board_whistle,
        name="board_whistle",
    ),
    path(
        "board/<slug:township>/incidents/<int:incident>/close/",
        views.board_close,
        name="board_close",
    ),
    path("board/<slug:township>/incidents/new/", views.board_new_incident, name="board_incident"),
    path("board/<slug:township>/intake/", views.board_intake, name="board_intake"),
    path("intake/<int:report>/", views.intake_item, name="intake_item"),
    # Before "supervise/<township>/": "console" is not a township's code.
    path("supervise/console/", supervisor_console.supervisor_console, name="supervisor_console"),
    # Before "supervise/<township>/", like "console".
    path("supervise/district/", assessment.district, name="district"),
    path("supervise/<slug:township>/", supervision.performance, name="performance"),
    path("supervise/<slug:township>/ratings/", assessment.ratings, name="ratings"),
    path(
        "supervise/<slug:township>/ratings/<str:period>/<slug:department>/",
        assessment.rating_page,
        name="rating",
    ),
    path("supervise/<slug:township>/review/", cases.review_page, name="daily_review"),
    path(
        "supervise/<slug:township>/reports/",
        monthly_reports.monthly_reports_list,
        name="monthly_reports",
    ),
    path(
        "supervise/<slug:township>/reports/<str:month>/",
        monthly_reports.monthly_report_page,
        name="monthly_report",
    ),
    path(
        "supervise/<slug:township>/reports/<str:month>/workbook.xlsx",
        monthly_reports.monthly_report_workbook,
        name="monthly_report_workbook",
    ),
    path("supervise/<slug:township>/trends/", trends.trends_page, name="trends"),
    path("cases/", cases.case_library_page, name="cases"),
    path(
        "supervise/<slug:township>/incidents/<int:incident>/",
        supervision.incident_timeline,
        name="incident_timeline",
    ),
    path(
        "supervise/<slug:township>/incidents/<int:incident>/replay/",
        replay.player,
        name="replay",
    ),
    path(
        "supervise/<slug:township>/incidents/<int:incident>/replay/frame",
        replay.frame,
        name="replay_frame",
    ),
    path("console/<slug:department>/", views.console, name="console"),
    path(
        "console/<slug:department>/assessment/",
        assessment.department_assessment,
        name="department_assessment",
    ),
    path(
        "console/<slug:department>/summonses/",
        views.console_summonses,
        name="console_summonses",
    ),
    path(
        "console/<slug:department>/summonses/<int:summons>/",
        views.console_summons_details,
        name="console_summons_details",
    ),
    path("report/", views.report, name="report"),
    path("me/notifications/", notifications.my_notifications, name="my_notifications"),
    path(
        "notifications/<int:notification>/read",
        notifications.notification_read,
        name="notification_read",
    ),
    path("n/<str:token>", notifications.notification_link, name="notification_link"),
    path("photos/<uuid:photo>", views.photo, name="photo"),
    path("healthz", views.healthz, name="healthz"),
    path("metrics", views.metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("api/v1/", api_urls()),
    path("open311/v2/services.<str:fmt>", open311.services, name="open311_services"),
    path("open311/v2/services/<slug:code>.<str:fmt>", open311.service_definition),
    path("open311/v2/requests.<str:fmt>", open311.requests, name="open311_requests"),
    path("open311/v2/requests/<int:pk>.<str:fmt>", open311.request_detail),
]

admin.site.site_header = _("Whistle command center administration")
admin.site.site_title = _("Whistle administration")
admin.site.index_title = _("Organisation, devices and data")
