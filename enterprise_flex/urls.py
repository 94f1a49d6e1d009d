from __future__ import annotations

from django.urls import path

from . import views
from .wizard import DrawdownWizard

# Contract numbers look like EF-12345678, invitation tokens are token_urlsafe: a slug keeps
# other junk (a NUL, which PostgreSQL refuses in a query) out of the lookups, a 404 before any.
NUMBER = "<slug:number>"

urlpatterns = [
    path("", views.contract_list, name="ef-contracts"),
    path("invitations/<slug:token>/", views.invitation_landing, name="ef-invitation"),
    path(f"{NUMBER}/", views.contract_detail, name="ef-contract"),
    path(f"{NUMBER}/draw-down/", DrawdownWizard.as_view(), name="ef-drawdown"),
    path(f"{NUMBER}/drawdowns/", views.drawdown_list, name="ef-drawdowns"),
    path(f"{NUMBER}/drawdowns/<int:pk>/", views.drawdown_result, name="ef-drawdown-result"),
    path(f"{NUMBER}/licenses/", views.contract_licenses, name="ef-licenses"),
    path(
        f"{NUMBER}/licenses/export.csv", views.contract_licenses_export, name="ef-licenses-export"
    ),
    path(f"{NUMBER}/sites/new/", views.site_create_view, name="ef-site-create"),
    path(f"{NUMBER}/sites/<int:pk>/", views.site_edit_view, name="ef-site-edit"),
    path(f"{NUMBER}/users/", views.users_view, name="ef-users"),
    path(f"{NUMBER}/users/<int:pk>/", views.user_update_view, name="ef-user-update"),
    path(
        f"{NUMBER}/invitations/<int:pk>/revoke/",
        views.invitation_revoke_view,
        name="ef-invitation-revoke",
    ),
    path(f"{NUMBER}/reports/<int:year>/", views.report_view, name="ef-report"),
    path(f"{NUMBER}/true-up/<int:year>/", views.true_up_view, name="ef-true-up"),
    path(
        f"{NUMBER}/true-up/<int:year>/true-up.csv",
        views.true_up_export,
        {"fmt": "csv"},
        name="ef-true-up-csv",
    ),
    path(
        f"{NUMBER}/true-up/<int:year>/true-up.pdf",
        views.true_up_export,
        {"fmt": "pdf"},
        name="ef-true-up-pdf",
    ),
]
