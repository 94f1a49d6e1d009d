from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from . import views

admin.site.site_header = "Licensing Portal administration"
admin.site.site_title = "Licensing Portal admin"
handler500 = "portal.views.server_error"

urlpatterns = [
    path("", views.home, name="home"),
    path("dashboard/", views.dashboard, name="dashboard"),
    path("organization/new/", views.organization_create_view, name="organization-create"),
    path("organization/switch/", views.organization_switch, name="organization-switch"),
    path("organization/members/", views.members, name="members"),
    path("organization/members/<int:pk>/", views.member_update, name="member-update"),
    path(
        "organization/invitations/<int:pk>/revoke/",
        views.invitation_revoke_view,
        name="invitation-revoke",
    ),
    path("invitations/<str:token>/", views.invitation_landing, name="invitation"),
    path("", include("licensing.urls")),
    path("vouchers/", include("vouchers.urls")),
    path("upgrades/", include("upgrades.urls")),
    path("accounts/", include("allauth.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
]
