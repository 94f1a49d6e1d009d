from __future__ import annotations

from allauth.account.decorators import secure_admin_login
from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.utils.functional import Promise, lazy
from django.utils.translation import gettext_lazy as _

from . import benchfloor, views


def _with_site_name(sentence: str | Promise) -> str:
    """`sentence` in the active language, naming the portal as PORTAL_SITE_NAME does."""
    return str(sentence) % {"site": settings.PORTAL_SITE_NAME}


# Lazy: the language and the site name are those of the request that renders the admin.
admin.site.site_header = lazy(_with_site_name, str)(_("%(site)s administration"))
admin.site.site_title = lazy(_with_site_name, str)(_("%(site)s admin"))
# Staff sign in through the portal's login (its rate limits and lockout, the audit of failed
# attempts, two-factor), not through Django's own admin form, which knew none of them: a staff
# password alone gave a full session. Someone logged in without staff status is refused.
admin.site.login = secure_admin_login(admin.site.login)  # type: ignore[method-assign]
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
    # Tokens are token_urlsafe: anything else (a NUL, a slash) is a 404 before any query.
    path("invitations/<slug:token>/", views.invitation_landing, name="invitation"),
    path("organization/partners/", views.partners, name="partners"),
    path("organization/partners/<int:pk>/", views.partner_update, name="partner-update"),
    path("partners/customers/", views.partner_customers_view, name="partner-customers"),
    path("partners/customers/new/", views.partner_customer_create, name="partner-customer-create"),
    path("partners/customers/<int:pk>/act/", views.partner_act, name="partner-act"),
    path("partners/customers/<int:pk>/decline/", views.partner_decline, name="partner-decline"),
    path(
        "partners/customers/<int:pk>/invite/",
        views.partner_customer_invite,
        name="partner-customer-invite",
    ),
    path("partners/stop/", views.partner_stop, name="partner-stop"),
    path("", include("licensing.urls")),
    path("vouchers/", include("vouchers.urls")),
    path("upgrades/", include("upgrades.urls")),
    path("fileconnect/", include("fileconnect.urls")),
    path("enterprise-flex/", include("enterprise_flex.urls")),
    # allauth's email addresses page, with Make Primary guarded (views.AccountEmailView).
    path("accounts/email/", views.AccountEmailView.as_view(), name="account_email"),
    path("accounts/", include("allauth.urls")),
    path("i18n/setlang/", views.language_set, name="set_language"),
    path("admin/", admin.site.urls),
]
# Benchmarks only (PORTAL_BENCH_FLOOR, never in production): the session floor.
urlpatterns += benchfloor.urlpatterns()
