"""Every page a customer, a partner and staff can reach, in Chromium at desktop and phone size:
no server error, no horizontal scrolling on a phone, no serious or critical axe-core violation.

The page list is checked against the URL patterns (test_every_page_is_visited_or_exempt), so a
new page fails here until it is visited or exempted with a reason. Phone screenshots land in
test-results/e2e/a11y/; every violation found (all impacts) in test-results/e2e/a11y/violations.json
and a summary table, for tests/e2e/A11Y.md.

One world for the whole module: built once, committed, and flushed at the end (as
transactional tests do), served by a module-scoped live server, one session per role. Each
page is loaded once at desktop size, checked, then resized to the phone's 390x844 (the layout
follows the window's width) and checked again. Wizard steps are reached by walking the
wizard from its first step with a fresh serial, voucher or notification, as a person would.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.conf import settings
from django.contrib import admin
from django.core.management import call_command
from django.db import connections, models
from django.test import Client, override_settings
from django.urls import get_resolver, reverse
from django.utils import timezone
from playwright.sync_api import Browser, BrowserContext, Page, Response, expect
from pytest_django import live_server_helper

from licensing.codes import generate_code
from licensing.models import LicenseShare, SerialNumber
from portal.models import Invitation, Membership, User
from portal.policy import Scope
from portal.selectors import SESSION_ACTING_FOR_KEY
from tests.conftest import celery_conf
from tests.e2e.conftest import DESKTOP, PHONE, RESULTS_DIR, TIMEOUT_MS
from tests.fileconnect.factories import add_file
from tests.licensing.factories import (
    LicenseFactory,
    ProductFactory,
    ProductVersionFactory,
    SerialNumberFactory,
)
from tests.portal.factories import (
    DelegationFactory,
    MembershipFactory,
    OrganizationFactory,
    PartnerFactory,
    UserFactory,
)
from tests.test_permissions import POST_ONLY, _routes
from tests.upgrades.factories import catalog, licensed
from tests.vouchers.factories import VoucherBatchFactory, vouchers
from vouchers.models import Voucher

pytestmark = [pytest.mark.e2e]

VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": PHONE}
assert DESKTOP["width"] == VIEWPORTS["desktop"]["width"]
FAILING_IMPACTS = {"serious", "critical"}
SCREENSHOTS = RESULTS_DIR / "a11y"
REGISTRATION = {
    "Address": "Av. Paulista 1000",
    "Primary contact phone": "+55 11 5555-0100",
    "Technical contact phone": "+55 11 5555-0101",
}
# What a Django error page or our 500 template shows.
ERROR_PAGE = re.compile(r"Traceback|Server Error|Internal Server Error|Erro no servidor")

World = dict[str, Any]
Walk = Callable[[Page, str, World], None]


@dataclass(frozen=True)
class Visit:
    id: str  # the test id and the screenshot's name
    role: str
    names: tuple[str, ...]  # the URL names this visit covers
    url: Callable[[World], str] | None = None  # a plain GET...
    walk: Walk | None = None  # ...or the clicks that reach the page
    status: int = 200  # what the final page answers (404 and 403 for the error pages)
    xfail_rules: dict[str, str] = field(default_factory=dict)  # rule id -> why it is not ours


# -- walking the wizards ---------------------------------------------------------------------


def _step(page: Page) -> Any:
    return page.locator('.wizard-steps [aria-current="step"]')


def _next(page: Page, name: str = "Next") -> None:
    page.get_by_role("main").get_by_role("button", name=name, exact=True).click()


def _fill_registration(page: Page) -> None:
    """Keeps what the portal prefilled and completes whatever it left empty."""
    expect(_step(page)).to_contain_text(re.compile("registration", re.I))
    for label, value in REGISTRATION.items():
        box = page.get_by_label(re.compile(rf"^{label}"))
        if box.count() and not box.input_value():
            box.fill(value)
    country = page.get_by_label(re.compile("^Country"))
    if country.count() and not country.input_value():
        country.select_option("BR")


def _finish(page: Page, until: str, result: str, *, registration: bool = False) -> None:
    """The wizards' common tail: the registration step (when the wizard has one), Confirm, and
    the result page at `result`; stops on the step named by `until`."""
    if registration:
        if until == "registration":
            expect(_step(page)).to_contain_text(re.compile("registration", re.I))
            return
        _fill_registration(page)
        _next(page)
    expect(_step(page)).to_contain_text("Confirm")
    if until == "confirm":
        return
    _next(page, "Confirm")
    expect(page).to_have_url(re.compile(result))


def _open_fresh(page: Page, url: str) -> None:
    """Opens a wizard at its first step. Opening one again resumes what an earlier visit of the
    session left in progress (tabs share it): "Start over" first, then the address again."""
    page.goto(url)
    start_over = page.get_by_role("main").get_by_role("button", name="Start over", exact=True)
    if start_over.count():
        start_over.click()
        page.goto(url)


def _get_a_key(kind: str, until: str) -> Walk:
    def walk(page: Page, base: str, world: World) -> None:
        version = world["old"] if kind != SerialNumber.Kind.NEW else world["new"]
        # The seats of the world's license: a renewal serial must cover every one of them.
        serial = SerialNumberFactory(version=version, kind=kind, quantity=10)
        _open_fresh(page, f"{base}/get-a-key/")
        if until == "serial":
            return
        page.get_by_label("Serial number").fill(serial.code)
        _next(page)
        _finish(page, until, r"/get-a-key/result/", registration=True)

    return walk


def _upgrade(until: str) -> Walk:
    def walk(page: Page, base: str, world: World) -> None:
        if until == "notification":
            page.goto(f"{base}/upgrades/")
            return
        _open_fresh(page, f"{base}/upgrades/?notification={world['notification'].code}")
        expect(_step(page)).to_contain_text("Product")
        if until == "line":
            return
        page.get_by_role("radio").first.check()
        _next(page)
        expect(_step(page)).to_contain_text("Quantity")
        if until == "quantity":
            return
        page.get_by_label("Quantity").fill("1")
        _next(page)
        _finish(page, until, r"/get-a-key/result/", registration=True)

    return walk


def _vouchers(until: str) -> Walk:
    def walk(page: Page, base: str, world: World) -> None:
        page.goto(f"{base}/vouchers/")
        if until == "codes":
            return
        good = vouchers(2, quantity_per_voucher=1, version=world["old"])
        page.get_by_label("Voucher codes").fill("\n".join([v.code for v in good] + ["BAD-CODE"]))
        page.get_by_role("button", name="Check codes").click()
        expect(page).to_have_url(re.compile(r"/vouchers/preview/"))
        if until == "preview":
            return
        _next(page)
        _finish(page, until, r"/vouchers/conversions/", registration=True)

    return walk


def _drawdown(until: str) -> Walk:
    def walk(page: Page, base: str, world: World) -> None:
        _open_fresh(page, f"{base}/enterprise-flex/{world['contract'].number}/draw-down/")
        if until == "line":
            return
        page.get_by_role("radio").first.check()
        _next(page)
        expect(page.get_by_label("Quantity")).to_be_visible()
        if until == "quantity":
            return
        page.get_by_label("Quantity").fill("1")
        _next(page)
        _finish(page, until, r"/drawdowns/\d+/")

    return walk


def _rehost_confirm(page: Page, base: str, world: World) -> None:
    page.goto(f"{base}/licenses/{world['node_locked'].pk}/")
    page.get_by_label("New host ID").fill("HOST-NEW-0002")
    page.get_by_role("button", name=re.compile("Move|Rehost")).click()
    expect(page.get_by_role("main")).to_contain_text("HOST-NEW-0002")


def _renew_refused(page: Page, base: str, world: World) -> None:
    """The renewal form on a license: a wrong serial is refused at its field, kept as typed."""
    page.goto(f"{base}/licenses/{world['license'].pk}/")
    page.get_by_label("Renewal serial number").fill("AAAA-BBBB-CCCC-DDDD")
    page.get_by_role("button", name="Renew").click()
    expect(page.locator(".alert").first).to_be_visible()
    expect(page.get_by_label("Renewal serial number")).to_have_value("AAAA-BBBB-CCCC-DDDD")
    expect(page.locator("#id_serial_error")).to_be_visible()


def _password_reset_done(page: Page, base: str, world: World) -> None:
    page.goto(f"{base}/accounts/password/reset/")
    page.get_by_label("Email").fill(world["admin"].user.email)
    page.get_by_role("main").get_by_role("button").last.click()
    expect(page).to_have_url(re.compile(r"/accounts/password/reset/done/"))


def _get(path: str) -> Callable[[World], str]:
    return lambda world: path


def _url(name: str, *keys: str) -> Callable[[World], str]:
    """reverse(name) with arguments read from the world: "license.pk", "contract.number"."""

    def build(world: World) -> str:
        args = []
        for key in keys:
            obj, _, attr = key.partition(".")
            args.append(getattr(world[obj], attr) if attr else world[obj])
        return reverse(name, args=args)

    return build


# -- the pages -------------------------------------------------------------------------------

ADMIN, MEMBER, PARTNER, OEM, ANON, STAFF = (
    "customer_admin",
    "customer_member",
    "partner",
    "oem",
    "anonymous",
    "staff",
)
EF = "contract.number"

VISITS: list[Visit] = [
    # anyone
    Visit("home", ANON, ("home",), _get("/")),
    Visit("login", ANON, ("account_login",), _get("/accounts/login/")),
    Visit("signup", ANON, ("account_signup",), _get("/accounts/signup/")),
    Visit("password-reset", ANON, ("account_reset_password",), _get("/accounts/password/reset/")),
    Visit("password-reset-done", ANON, ("account_reset_password_done",), walk=_password_reset_done),
    Visit(
        "password-reset-bad-key",
        ANON,
        ("account_reset_password_from_key",),
        _get("/accounts/password/reset/key/1-x-y/"),
    ),
    Visit(
        "confirm-email-bad-key",
        ANON,
        ("account_confirm_email",),
        _get("/accounts/confirm-email/nokey/"),
    ),
    Visit(
        "email-verification-sent",
        ANON,
        ("account_email_verification_sent",),
        _get("/accounts/confirm-email/"),
    ),
    Visit("signing-key", ANON, ("signing-key",), _get("/signing-key/")),
    Visit("invitation", ANON, ("invitation",), _url("invitation", "invitation.token")),
    Visit("share-landing", ANON, ("share-landing",), _url("share-landing", "share.token")),
    Visit("ef-invitation", ANON, ("ef-invitation",), _url("ef-invitation", "ef_invitation.token")),
    Visit("error-404", ANON, (), _get("/no-such-page/"), status=404),
    Visit("admin-login", ANON, ("admin:login",), _get("/admin/login/")),
    # the customer's administrator
    Visit("dashboard", ADMIN, ("dashboard",), _get("/dashboard/")),
    Visit("organization-create", ADMIN, ("organization-create",), _get("/organization/new/")),
    Visit("members", ADMIN, ("members",), _get("/organization/members/")),
    Visit("partners", ADMIN, ("partners",), _get("/organization/partners/")),
    Visit("get-a-key-serial", ADMIN, ("get-a-key",), walk=_get_a_key("new", "serial")),
    Visit("get-a-key-registration", ADMIN, ("get-a-key",), walk=_get_a_key("new", "registration")),
    Visit("get-a-key-confirm", ADMIN, ("get-a-key",), walk=_get_a_key("new", "confirm")),
    Visit("get-a-key-result", ADMIN, ("get-a-key-result",), walk=_get_a_key("new", "result")),
    Visit(
        "renewal-registration", ADMIN, ("get-a-key",), walk=_get_a_key("renewal", "registration")
    ),
    Visit("license-list", ADMIN, ("license-list",), _get("/licenses/")),
    Visit("license-list-filtered", ADMIN, ("license-list",), _get("/licenses/?q=no-such-thing")),
    Visit("license-detail", ADMIN, ("license-detail",), _url("license-detail", "license.pk")),
    Visit(
        "license-detail-node-locked",
        ADMIN,
        ("license-detail",),
        _url("license-detail", "node_locked.pk"),
    ),
    Visit(
        "license-certificate",
        ADMIN,
        ("license-certificate",),
        _url("license-certificate", "license.pk"),
    ),
    Visit(
        "license-registration",
        ADMIN,
        ("license-registration",),
        _url("license-registration", "license.pk"),
    ),
    Visit("license-rehost-confirm", ADMIN, ("license-rehost",), walk=_rehost_confirm),
    Visit("license-renew-refused", ADMIN, ("license-renew",), walk=_renew_refused, status=400),
    Visit("custom-fields", ADMIN, ("custom-fields",), _get("/organization/custom-fields/")),
    Visit(
        "custom-field-edit",
        ADMIN,
        ("custom-field-edit",),
        _url("custom-field-edit", "custom_field.pk"),
    ),
    Visit("custom-values-csv", ADMIN, ("custom-values-csv",), _get("/licenses/custom-data/csv/")),
    Visit("upgrade-notification-step", ADMIN, ("upgrade",), walk=_upgrade("notification")),
    Visit("upgrade-line", ADMIN, ("upgrade",), walk=_upgrade("line")),
    Visit("upgrade-quantity", ADMIN, ("upgrade",), walk=_upgrade("quantity")),
    Visit("upgrade-registration", ADMIN, ("upgrade",), walk=_upgrade("registration")),
    Visit("upgrade-confirm", ADMIN, ("upgrade",), walk=_upgrade("confirm")),
    Visit("upgrade-result", ADMIN, ("get-a-key-result",), walk=_upgrade("result")),
    Visit("upgrades-pending", ADMIN, ("upgrades-pending",), _get("/upgrades/pending/")),
    Visit(
        "upgrade-notification",
        ADMIN,
        ("upgrade-notification",),
        _url("upgrade-notification", "notification.pk"),
    ),
    Visit("voucher-codes", ADMIN, ("voucher-center",), walk=_vouchers("codes")),
    Visit("voucher-preview", ADMIN, ("voucher-center-preview",), walk=_vouchers("preview")),
    Visit(
        "voucher-registration",
        ADMIN,
        ("voucher-center-registration",),
        walk=_vouchers("registration"),
    ),
    Visit("voucher-confirm", ADMIN, ("voucher-center-confirm",), walk=_vouchers("confirm")),
    Visit("voucher-result", ADMIN, ("voucher-conversion",), walk=_vouchers("result")),
    Visit("ef-contracts", ADMIN, ("ef-contracts",), _get("/enterprise-flex/")),
    Visit("ef-contract", ADMIN, ("ef-contract",), _url("ef-contract", EF)),
    Visit("ef-drawdown-line", ADMIN, ("ef-drawdown",), walk=_drawdown("line")),
    Visit("ef-drawdown-quantity", ADMIN, ("ef-drawdown",), walk=_drawdown("quantity")),
    Visit("ef-drawdown-confirm", ADMIN, ("ef-drawdown",), walk=_drawdown("confirm")),
    Visit("ef-drawdown-result", ADMIN, ("ef-drawdown-result",), walk=_drawdown("result")),
    Visit("ef-drawdowns", ADMIN, ("ef-drawdowns",), _url("ef-drawdowns", EF)),
    Visit("ef-licenses", ADMIN, ("ef-licenses",), _url("ef-licenses", EF)),
    Visit("ef-site-create", ADMIN, ("ef-site-create",), _url("ef-site-create", EF)),
    Visit("ef-site-edit", ADMIN, ("ef-site-edit",), _url("ef-site-edit", EF, "ef_site.pk")),
    Visit("ef-users", ADMIN, ("ef-users",), _url("ef-users", EF)),
    Visit(
        "ef-report",
        ADMIN,
        ("ef-report",),
        lambda w: reverse("ef-report", args=[w["contract_number"], 1]),
    ),
    Visit(
        "ef-true-up",
        ADMIN,
        ("ef-true-up",),
        lambda w: reverse("ef-true-up", args=[w["contract_number"], 1]),
    ),
    Visit("fileconnect", ADMIN, ("fileconnect",), _get("/fileconnect/")),
    Visit(
        "fileconnect-license",
        ADMIN,
        ("fileconnect-license",),
        _url("fileconnect-license", "license.pk"),
    ),
    Visit("fileconnect-log", ADMIN, ("fileconnect-log",), _get("/fileconnect/log/")),
    Visit("account-email", ADMIN, ("account_email",), _get("/accounts/email/")),
    Visit(
        "account-password-change",
        ADMIN,
        ("account_change_password",),
        _get("/accounts/password/change/"),
    ),
    Visit(
        "account-reauthenticate",
        ADMIN,
        ("account_reauthenticate",),
        _get("/accounts/reauthenticate/"),
    ),
    Visit("mfa-index", ADMIN, ("mfa_index",), _get("/accounts/2fa/")),
    Visit("mfa-activate-totp", ADMIN, ("mfa_activate_totp",), _get("/accounts/2fa/totp/activate/")),
    Visit(
        "mfa-recovery-codes-generate",
        ADMIN,
        ("mfa_generate_recovery_codes",),
        _get("/accounts/2fa/recovery-codes/generate/"),
    ),
    Visit("logout", ADMIN, ("account_logout",), _get("/accounts/logout/")),
    # a plain member of the customer
    Visit("member-dashboard", MEMBER, ("dashboard",), _get("/dashboard/")),
    Visit("member-license-list", MEMBER, ("license-list",), _get("/licenses/")),
    Visit(
        "member-license-detail", MEMBER, ("license-detail",), _url("license-detail", "license.pk")
    ),
    Visit("member-members", MEMBER, ("members",), _get("/organization/members/")),
    Visit("member-ef-contracts", MEMBER, ("ef-contracts",), _get("/enterprise-flex/")),
    Visit("error-403", MEMBER, (), _get("/licenses/custom-data/csv/"), status=403),
    # the recipient of a share, logged in
    Visit(
        "share-recipient-license",
        "share_recipient",
        ("license-detail",),
        _url("license-detail", "license.pk"),
    ),
    # a channel partner acting for the customer
    Visit("partner-dashboard", PARTNER, ("dashboard",), _get("/dashboard/")),
    Visit("partner-license-list", PARTNER, ("license-list",), _get("/licenses/")),
    Visit(
        "partner-license-detail", PARTNER, ("license-detail",), _url("license-detail", "license.pk")
    ),
    Visit("partner-get-a-key", PARTNER, ("get-a-key",), walk=_get_a_key("new", "registration")),
    Visit("partner-ef-contract", PARTNER, ("ef-contract",), _url("ef-contract", EF)),
    # the OEM partner in its own organization
    Visit("oem-dashboard", OEM, ("dashboard",), _get("/dashboard/")),
    Visit("oem-customers", OEM, ("partner-customers",), _get("/partners/customers/")),
    Visit(
        "oem-customer-create", OEM, ("partner-customer-create",), _get("/partners/customers/new/")
    ),
    Visit("oem-voucher-batches", OEM, ("voucher-batches",), _get("/vouchers/batches/")),
    Visit("oem-voucher-batch", OEM, ("voucher-batch",), _url("voucher-batch", "batch.pk")),
    # staff
    Visit("admin-index", STAFF, ("admin:index",), _get("/admin/")),
    Visit("admin-app-licensing", STAFF, ("admin:app_list",), _get("/admin/licensing/")),
    Visit(
        "admin-serial-import",
        STAFF,
        ("admin:licensing_serialnumber_import",),
        lambda w: reverse("admin:licensing_serialnumber_import"),
    ),
    Visit(
        "admin-serial-export",
        STAFF,
        ("admin:licensing_serialnumber_export",),
        _get("/admin/licensing/serialnumber/export/"),
    ),
    Visit(
        "admin-password-change", STAFF, ("admin:password_change",), _get("/admin/password_change/")
    ),
]


def _admin_visits() -> list[Visit]:
    """A changelist and a change form of every model registered in admin, and the add forms
    that have their own form (the others are the change form's fields, empty)."""
    own_add_forms = {"licensing.serialnumber", "vouchers.voucherbatch", "fileconnect.release"}
    visits = []
    for model in admin.site._registry:
        opts = model._meta
        base = f"admin:{opts.app_label}_{opts.model_name}"
        label = f"{opts.app_label}-{opts.model_name}"
        visits.append(
            Visit(
                f"admin-{label}-changelist",
                STAFF,
                (f"{base}_changelist",),
                lambda w, base=base: reverse(f"{base}_changelist"),
            )
        )
        visits.append(
            Visit(
                f"admin-{label}-change",
                STAFF,
                (f"{base}_change",),
                lambda w, model=model, base=base: _admin_change_url(model, base),
            )
        )
        if opts.label_lower in own_add_forms:
            visits.append(
                Visit(
                    f"admin-{label}-add",
                    STAFF,
                    (f"{base}_add",),
                    lambda w, base=base: reverse(f"{base}_add"),
                )
            )
    return visits


def _admin_change_url(model: type[models.Model], base: str) -> str:
    obj = model._default_manager.order_by("pk").first()
    assert obj is not None, f"the world has no {model._meta.label} to open in admin"
    return reverse(f"{base}_change", args=[obj.pk])


VISITS += _admin_visits()

# URL names no visit covers, each with the reason.
EXEMPT: dict[str, str] = {
    # Files, not pages: no markup to check (their links are on pages that are checked).
    "license-export": "a CSV/XLSX download",
    "license-file": "the license file download",
    "license-certificate-pdf": "a PDF",
    "signing-key-well-known": "a PEM file",
    "voucher-conversion-zip": "a ZIP download",
    "ef-licenses-export": "a CSV download",
    "ef-true-up-csv": "a CSV download",
    "ef-true-up-pdf": "a PDF",
    "fileconnect-download": "the installer download itself",
    # Redirects without a page of their own.
    "set_language": "POST only; redirects back",
    "fileconnect-serial": "opens only for a serial entered in this session; same template as "
    "fileconnect-license, which is visited",
    # Pages that need a state the world does not have.
    "account_request_login_code": "login by code is off (ACCOUNT_LOGIN_BY_CODE_ENABLED): a 404",
    "account_confirm_login_code": "only during a login by code (mail round trip)",
    "account_confirm_reauthentication_code": "only during a reauthentication by code",
    "account_request_reauthentication_code": "redirects unless login by code is enabled",
    "account_set_password": "redirects: every portal user has a password",
    "account_inactive": "only for a deactivated account; allauth's own layout as login",
    "account_reset_password_from_key_done": "allauth's one-line message in the same layout",
    "account_login_code_confirm": "only during a login by code",
    "mfa_authenticate": "only in the middle of a login with two factors",
    "mfa_reauthenticate": "only with two factors active",
    "mfa_deactivate_totp": "only with two factors active",
    "mfa_view_recovery_codes": "only with two factors active",
    "mfa_download_recovery_codes": "a text download",
    "ef-invitation-revoke": "POST only",
}
# Admin pages beyond the changelists and change forms: Django's own templates, the same markup.
ADMIN_EXEMPT_SUFFIXES = {
    "_add": "Django's add form: the change form's fields, empty (custom ones are visited)",
    "_delete": "Django's delete confirmation",
    "_history": "Django's history table",
    "_password_change": "Django's user password form",
}
ADMIN_EXEMPT = {
    "admin:logout": "POST only",
    "admin:password_change_done": "Django's one-line message",
    "admin:jsi18n": "JavaScript",
    "admin:autocomplete": "JSON",
    "admin:view_on_site": "a redirect",
    "admin:auth_user_password_change": "Django's user password form",
    "admin:None": "the catch-all 404",
    "admin:licensing_serialnumber_process_import": "POST only",
}

# (visit id, axe rule) -> why the violation is not ours to fix: Django admin's own widgets.
SPLIT_DATETIME = "Django admin's date/time widget: two inputs under one label"
TABULAR_INLINE = "Django admin's tabular inline: the column header names its inputs"
FILTER_HORIZONTAL = "Django admin's filter_horizontal widget (SelectFilter2.js) markup"
XFAIL: dict[tuple[str, str], str] = {
    ("admin-portal-user-change", "label"): SPLIT_DATETIME,
    ("admin-portal-user-change", "aria-prohibited-attr"): FILTER_HORIZONTAL,
    ("admin-auth-group-change", "aria-prohibited-attr"): FILTER_HORIZONTAL,
    ("admin-mfa-authenticator-change", "label"): SPLIT_DATETIME,
    ("admin-portal-invitation-change", "label"): SPLIT_DATETIME,
    ("admin-upgrades-upgradenotice-change", "label"): SPLIT_DATETIME,
    ("admin-portal-organization-change", "label"): TABULAR_INLINE,
    ("admin-portal-organization-change", "select-name"): TABULAR_INLINE,
    ("admin-licensing-product-change", "label"): TABULAR_INLINE,
    ("admin-enterprise_flex-efcontract-change", "label"): TABULAR_INLINE,
    ("admin-enterprise_flex-efcontract-change", "select-name"): TABULAR_INLINE,
    ("admin-enterprise_flex-efcontract-change", "label-title-only"): TABULAR_INLINE,
    ("admin-fileconnect-release-add", "scrollable-region-focusable"): TABULAR_INLINE,
    ("admin-serial-export", "label"): "django-import-export's select-all checkbox has no label",
}


# -- the world, the server and the sessions ---------------------------------------------------


def build_world(tmp: Path) -> World:
    """The customer (an admin, a member), its licenses and contract, a share, a partner acting for
    it, an OEM with a voucher batch, and staff."""
    from enterprise_flex.models import EFContractUser
    from enterprise_flex.services import (
        DrawdownRequest,
        contract_user_set,
        drawdown_create,
        invitation_create,
    )
    from licensing.models import CustomField
    from tests.enterprise_flex.factories import EFContractFactory, EFLineFactory
    from upgrades.models import UpgradeNotification
    from upgrades.services import notifications_create

    today = timezone.localdate()
    admin_m = MembershipFactory(role=Membership.Role.ADMIN, organization__name="Acme Manufacturing")
    customer = admin_m.organization
    member = MembershipFactory(organization=customer, role=Membership.Role.MEMBER)
    old, new = catalog()
    license = licensed(customer, old, quantity=10, host_id="")
    node_product = ProductFactory(name="Data Loss Prevention", node_locked=True)
    node_locked = LicenseFactory(
        owner=customer, version=ProductVersionFactory(product=node_product), host_id="HOST-0001"
    )
    notifications_create(version=new, today=today)
    recipient = MembershipFactory(role=Membership.Role.ADMIN)
    share = LicenseShare.objects.create(
        license=license, email=recipient.user.email, user=recipient.user, access="read"
    )
    partner = MembershipFactory(organization=PartnerFactory(name="Prime Channel Partners"))
    DelegationFactory(customer=customer, partner=partner.organization)
    oem = MembershipFactory(organization=PartnerFactory(name="Hardware OEM S.A."))
    DelegationFactory(
        customer=OrganizationFactory(),
        partner=oem.organization,
        scopes=[Scope.DOWNLOAD_SOFTWARE.value],
    )
    batch = VoucherBatchFactory(oem=oem.organization, version=old)
    Voucher.objects.bulk_create([Voucher(code=generate_code(), batch=batch) for _ in range(3)])
    staff = UserFactory(is_staff=True, is_superuser=True, full_name="Ada Admin")

    contract = EFContractFactory(organization=customer, period_start=today - timedelta(days=320))
    line = EFLineFactory(contract=contract, version=old, committed_quantity=50)
    contract_user_set(
        contract=contract, user=admin_m.user, level=EFContractUser.Level.SUPER, actor=None
    )
    site = contract.sites.get()
    drawdown_create(
        contract=contract,
        request=DrawdownRequest(line_id=line.pk, site_id=site.pk, quantity=2),
        actor=admin_m.user,
        token="a11y-world",
    )
    ef_invitation = invitation_create(
        contract=contract, email="new-ef@acme.example", level="contract", actor=admin_m.user
    )
    release_file = add_file(old)
    _admin_only_records(staff, admin_m.user)
    _more_records(admin_m, license, contract, release_file, old)
    return {
        "admin": admin_m,
        "member": member,
        "customer": customer,
        "old": old,
        "new": new,
        "license": license,
        "node_locked": node_locked,
        "share": share,
        "recipient": recipient,
        "partner": partner,
        "oem": oem,
        "batch": batch,
        "staff": staff,
        "invitation": Invitation.objects.create(
            organization=customer, email="new@acme.example", invited_by=admin_m.user
        ),
        "custom_field": CustomField.objects.create(organization=customer, name="Cost center"),
        "notification": UpgradeNotification.objects.get(organization=customer),
        "contract": contract,
        "contract_number": contract.number,
        "ef_site": site,
        "ef_invitation": ef_invitation,
    }


def _admin_only_records(staff: User, user: User) -> None:
    """Rows that only admin shows and no customer page creates on its own."""
    from allauth.account.models import EmailAddress
    from allauth.mfa.models import Authenticator
    from django.contrib.auth.models import Group

    Group.objects.create(name="Support")
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    Authenticator.objects.create(
        user=staff, type=Authenticator.Type.RECOVERY_CODES, data={"seed": "00" * 20}
    )


def _more_records(
    admin_m: Membership, license: Any, contract: Any, release_file: Any, old: Any
) -> None:
    """What the customer's earlier work left: a redeemed serial, an upgrade, a voucher
    conversion, a download, a deployment report and reminders (admin lists them)."""
    from enterprise_flex.models import EFDeploymentReport, EFReminder
    from fileconnect.models import DownloadEvent
    from licensing.services.issue import serial_redeem
    from tests.licensing.factories import REGISTRATION
    from upgrades.models import UpgradeLine, UpgradeNotice
    from upgrades.services import upgrade_redeem
    from vouchers.models import VoucherConversion, VoucherConversionLicense

    customer, user = admin_m.organization, admin_m.user
    serial_redeem(
        code=SerialNumberFactory(version=old).code,
        organization=customer,
        registration=REGISTRATION,
        acting_user=user,
    )
    line = UpgradeLine.objects.filter(notification__organization=customer).first()
    assert line is not None
    upgrade_redeem(
        line_id=line.pk,
        quantity=1,
        organization=customer,
        registration=REGISTRATION,
        actor=user,
        token="a11y-upgrade",
    )
    UpgradeNotice.objects.create(notification=line.notification, email=user.email)
    conversion = VoucherConversion.objects.create(
        organization=customer,
        created_by=user,
        status=VoucherConversion.Status.DONE,
        finished_at=timezone.now(),
        registration_data=REGISTRATION,
        result={"refused": []},
    )
    VoucherConversionLicense.objects.create(conversion=conversion, position=0, license=license)
    DownloadEvent.objects.create(
        user=user,
        organization=customer,
        file=release_file,
        license=license,
        bytes_requested=1024,
        delivery=DownloadEvent.Delivery.choices[0][0],
    )
    EFDeploymentReport.objects.create(contract=contract, year=1)
    EFReminder.objects.create(
        contract=contract, year=1, reason=EFReminder.Reason.YEAR_END_60, recipients=[user.email]
    )


@dataclass
class Site:
    url: str
    world: World
    browser: Browser
    contexts: dict[str, BrowserContext] = field(default_factory=dict)

    def page(self, role: str) -> Page:
        if role not in self.contexts:
            self.contexts[role] = self._context(role)
        return self.contexts[role].new_page()

    def _context(self, role: str) -> BrowserContext:
        # Desktop size first; each page is then resized to the phone's width (CSS media queries
        # follow the window), so a page and its wizard walk are loaded once for both sizes.
        context = self.browser.new_context(
            viewport=VIEWPORTS["desktop"],  # type: ignore[arg-type]
            locale="en-US",
            bypass_csp=True,  # axe-core is injected as a script
        )
        context.set_default_timeout(TIMEOUT_MS)
        context.set_default_navigation_timeout(TIMEOUT_MS)
        user = self._user(role)
        if user is not None:
            # One session per role: the wizards' state is per session.
            client = Client()
            client.force_login(user)
            if role == PARTNER:
                session = client.session
                session[SESSION_ACTING_FOR_KEY] = self.world["customer"].pk
                session.save()
            cookie = client.cookies[settings.SESSION_COOKIE_NAME]
            context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": self.url}])
        return context

    def _user(self, role: str) -> User | None:
        return {
            ANON: None,
            ADMIN: self.world["admin"].user,
            MEMBER: self.world["member"].user,
            "share_recipient": self.world["recipient"].user,
            PARTNER: self.world["partner"].user,
            OEM: self.world["oem"].user,
            STAFF: self.world["staff"],
        }[role]


FOUND: list[dict[str, Any]] = []


@pytest.fixture(scope="module")
def site(
    django_db_setup: None,
    django_db_blocker: Any,
    chromium_browser: Browser,
    signing_key_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("a11y")
    overrides = override_settings(
        LICENSE_SIGNING_KEY_FILE=signing_key_path,
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
        STORAGES={
            **settings.STORAGES,
            "fileconnect": {
                "BACKEND": "django.core.files.storage.FileSystemStorage",
                "OPTIONS": {"location": tmp / "fileconnect"},
            },
        },
        FILECONNECT_X_ACCEL_LOCATION="",
    )
    with django_db_blocker.unblock(), overrides:
        celery_conf(task_always_eager=True)
        server = live_server_helper.LiveServer("localhost")
        server._live_server_modified_settings.enable()
        try:
            world = build_world(tmp)
            yield Site(url=server.url, world=world, browser=chromium_browser)
        finally:
            server._live_server_modified_settings.disable()
            server.stop()
            # What transactional tests do after each test: the next tests start empty.
            call_command("flush", verbosity=0, interactive=False)
            connections.close_all()
            _write_report()


@pytest.fixture
def db(django_db_blocker: Any) -> Iterator[None]:
    """Replaces pytest-django's `db` in this module: the name still makes pytest-django create
    the test database, but no test is wrapped in a transaction (the live server's thread must
    see the committed world) nor flushed after it (the world is built once)."""
    with django_db_blocker.unblock():
        yield


def _write_report() -> None:
    if not FOUND:
        return
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    (SCREENSHOTS / "violations.json").write_text(json.dumps(FOUND, indent=1))
    pages: dict[tuple[str, str], set[str]] = defaultdict(set)
    for item in FOUND:
        pages[(item["rule"], item["impact"])].add(item["page"])
    lines = ["| Rule | Impact | Pages |", "|---|---|---|"]
    for (rule, impact), ids in sorted(pages.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        lines.append(f"| {rule} | {impact} | {len(ids)} |")
    (SCREENSHOTS / "violations.md").write_text("\n".join(lines) + "\n")


# -- the checks ------------------------------------------------------------------------------

AXE = Axe()
# What sticks out on a phone, to name it in the failure.
NEXT_FRAME = "() => new Promise(done => requestAnimationFrame(() => done(null)))"
WIDER_THAN_THE_SCREEN = """() => [...document.querySelectorAll('body *')]
    .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
    .slice(0, 5).map(e => e.tagName + '.' + e.className)"""


def _open(page: Page, visit: Visit, site: Site) -> int:
    responses: list[Response] = []
    page.on(
        "response",
        lambda r: (
            responses.append(r)
            if r.request.is_navigation_request() and r.frame == page.main_frame
            else None
        ),
    )
    if visit.walk is not None:
        visit.walk(page, site.url, site.world)
    else:
        assert visit.url is not None
        page.goto(site.url + visit.url(site.world))
    page.wait_for_load_state()
    assert responses, f"{visit.id}: no page was loaded"
    return responses[-1].status


@pytest.mark.parametrize("visit", VISITS, ids=[v.id for v in VISITS])
def test_page_is_accessible_and_fits(visit: Visit, site: Site, db: None) -> None:
    page = site.page(visit.role)
    excused: list[str] = []
    problems: list[str] = []
    where = visit.id
    try:
        status = _open(page, visit, site)
        where = f"{visit.id} at {page.url}"
        assert status < 500, f"{where}: server error {status}"
        assert not ERROR_PAGE.search(page.title()), f"{where}: an error page"
        assert status == visit.status, f"{where}: answered {status}, expected {visit.status}"
        for viewport, size in VIEWPORTS.items():
            page.set_viewport_size(size)  # type: ignore[arg-type]
            page.evaluate(NEXT_FRAME)  # the layout for the new size
            found = _axe_problems(page, visit, viewport, excused)
            problems += [f"[{viewport}] {problem}" for problem in found]
            if viewport != "phone":
                continue
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / f"{visit.id}.png"), full_page=True)
            widths = page.evaluate(
                "() => [document.documentElement.scrollWidth, window.innerWidth]"
            )
            if widths[0] > min(widths[1], PHONE["width"]):
                wide = page.evaluate(WIDER_THAN_THE_SCREEN)
                FOUND.append(
                    {
                        "page": visit.id,
                        "viewport": viewport,
                        "rule": "phone-overflow",
                        "impact": "serious",
                        "nodes": wide,
                    }
                )
                problems.append(f"[phone] horizontal scrolling {widths}: {wide}")
    except Exception:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"failed-{visit.id}.png"), full_page=True)
        raise
    finally:
        page.close()
    assert not problems, f"{where}:\n" + "\n".join(problems)
    if excused:  # only violations outside our markup: reported as expected failures
        pytest.xfail("; ".join(dict.fromkeys(excused)))


def _axe_problems(page: Page, visit: Visit, viewport: str, excused: list[str]) -> list[str]:
    """Records every axe-core violation; returns the serious and critical ones not excused."""
    problems = []
    for violation in AXE.run(page).response["violations"]:
        FOUND.append(
            {
                "page": visit.id,
                "viewport": viewport,
                "rule": violation["id"],
                "impact": violation["impact"],
                "nodes": [node["target"] for node in violation["nodes"]][:5],
            }
        )
        if violation["impact"] not in FAILING_IMPACTS:
            continue
        reason = visit.xfail_rules.get(violation["id"]) or XFAIL.get((visit.id, violation["id"]))
        if reason:
            excused.append(f"{violation['id']}: {reason}")
            continue
        problems.append(
            f"{violation['id']} ({violation['impact']}): {violation['help']} at "
            + ", ".join(str(node["target"]) for node in violation["nodes"][:3])
        )
    return problems


def test_every_page_is_visited_or_exempt() -> None:
    """A named page that can be opened with GET is either visited above or exempt with a reason."""
    visited = {name for visit in VISITS for name in visit.names}
    missing = []
    for route in _routes(get_resolver()):
        name = route.name
        if name in visited or name in POST_ONLY:
            continue
        if name.startswith("admin:"):
            if name in ADMIN_EXEMPT or any(name.endswith(s) for s in ADMIN_EXEMPT_SUFFIXES):
                continue
        elif name in EXEMPT or name.split(":")[-1] in EXEMPT:
            continue
        missing.append(f"{name} ({route.pattern})")
    assert not missing, f"pages neither visited nor exempt: {sorted(set(missing))}"
    stale = set(EXEMPT) & visited
    assert not stale, f"exempt but visited: {stale}"
