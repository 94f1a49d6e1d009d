"""Who reaches which page: every URL pattern of the project, requested as every role.

The expectations are one table, EXPECTED: a URL name (or a group of third-party URLs) maps to one
outcome per role. The test enumerates the URL patterns from the resolver, so a new page without
an entry fails here until someone decides who may reach it.

Outcomes are what the role gets at the door, with the world below (one customer with a license,
a share, partners in every state):
- OK: the page or action works (a 2xx, a 4xx form error, or a redirect inside the feature);
- REFUSED: 403 or 404, and nothing of the customer's in the response;
- LOGIN: sent to the login page; NO_ORG: a logged-in user without an organization is sent to
  create one; ADMIN_LOGIN: a non-staff user is sent to Django admin's login.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from licensing.models import CustomField, LicenseShare
from portal.models import Delegation, Invitation, Membership, User
from portal.policy import Scope
from portal.selectors import SESSION_ACTING_FOR_KEY
from tests.fileconnect.factories import add_file
from tests.licensing.factories import LicenseFactory, SerialNumberFactory
from tests.portal.factories import (
    DelegationFactory,
    MembershipFactory,
    OrganizationFactory,
    PartnerFactory,
    UserFactory,
)
from tests.upgrades.factories import catalog, licensed
from tests.vouchers.factories import VoucherBatchFactory
from upgrades.models import UpgradeNotification
from upgrades.services import notifications_create
from vouchers.models import VoucherConversion, VoucherConversionLicense

pytestmark = pytest.mark.django_db

OK, REFUSED, LOGIN, NO_ORG, ADMIN_LOGIN = "ok", "refused", "login", "no-org", "admin-login"

ROLES = [
    "anonymous",
    "customer_admin",
    "customer_member",
    "share_recipient",  # a read-only share of the customer's license; admin of its own org
    "partner_in_scope",  # acting for the customer, every scope
    "partner_out_of_scope",  # acting for the customer, only "download software"
    "partner_expired",  # its delegation ended yesterday; the session still acts for it
    "partner_revoked",  # revoked; the session still acts for it
    "other_partner",  # a partner the customer never delegated to, with a forged session
    "unrelated",  # admin of another customer organization
    "staff",  # Django staff without an organization
]


ADMIN_ROLES = ["anonymous", "customer_admin", "partner_in_scope", "staff"]


def row(**outcomes: str) -> dict[str, str]:
    assert set(outcomes) == set(ROLES), set(ROLES) ^ set(outcomes)
    return outcomes


# Rows shared by several URLs: each is an explicit decision per role, not derived from the code.
PUBLIC = row(**dict.fromkeys(ROLES, OK))
LOGGED_IN = row(**{**dict.fromkeys(ROLES, OK), "anonymous": LOGIN})
_CLOSED = {**dict.fromkeys(ROLES, REFUSED), "anonymous": LOGIN, "staff": NO_ORG}
# Pages of the organization the request acts in: a partner's expired or revoked delegation is
# refused; a partner without a delegation works in its own organization.
ANY_ORGANIZATION = row(
    **{
        **dict.fromkeys(ROLES, OK),
        "anonymous": LOGIN,
        "staff": NO_ORG,
        "partner_expired": REFUSED,
        "partner_revoked": REFUSED,
    }
)
MEMBERS_ONLY = row(
    **{**ANY_ORGANIZATION, "partner_in_scope": REFUSED, "partner_out_of_scope": REFUSED}
)
NEEDS_SCOPE = row(**{**ANY_ORGANIZATION, "partner_out_of_scope": REFUSED})
# Admin-only pages of one's own organization that a partner reaches with a scope.
ADMIN_OR_SCOPE = row(**{**NEEDS_SCOPE, "customer_member": REFUSED})
ADMIN_OF_OWN = row(**{**MEMBERS_ONLY, "customer_member": REFUSED})
# One object of the customer's (a membership, an invitation, a delegation, a share, a field).
CUSTOMER_ADMIN_ONLY = row(**{**_CLOSED, "customer_admin": OK})
# The customer's license: its members, the share recipient and a partner allowed to view.
LICENSE_VIEW = row(
    **{**_CLOSED, "customer_admin": OK, "customer_member": OK, "share_recipient": OK}
    | {"partner_in_scope": OK}
)
LICENSE_MANAGE = row(**{**LICENSE_VIEW, "share_recipient": REFUSED})
CUSTOMER_OBJECT = LICENSE_MANAGE  # a conversion, a notification: not shared with anyone
# The result page names the people the key was emailed to: the owner's context only.
LICENSE_RESULT = row(**{**LICENSE_VIEW, "share_recipient": REFUSED})
EF_CONTRACT_USER = row(**{**CUSTOMER_ADMIN_ONLY, "partner_in_scope": OK})
PARTNER_OWN = row(
    **{
        **_CLOSED,
        "partner_in_scope": OK,
        "partner_out_of_scope": OK,
        "other_partner": OK,
    }
)
PARTNER_IN_SCOPE_ONLY = row(**{**_CLOSED, "partner_in_scope": OK})
ADMIN_SITE = row(**{**dict.fromkeys(ROLES, ADMIN_LOGIN), "staff": OK})

EXPECTED: dict[str, dict[str, str]] = {
    # portal
    "home": PUBLIC,
    "dashboard": ANY_ORGANIZATION,
    "organization-create": LOGGED_IN,
    "organization-switch": LOGGED_IN,
    "members": MEMBERS_ONLY,
    "member-update": CUSTOMER_ADMIN_ONLY,
    "invitation-revoke": CUSTOMER_ADMIN_ONLY,
    "invitation": PUBLIC,
    # allauth's email addresses page, served by portal.views.AccountEmailView.
    "account_email": LOGGED_IN,
    "partners": MEMBERS_ONLY,
    "partner-update": CUSTOMER_ADMIN_ONLY,
    "partner-customers": PARTNER_OWN,
    "partner-customer-create": PARTNER_OWN,
    "partner-act": PARTNER_IN_SCOPE_ONLY,
    "partner-decline": PARTNER_IN_SCOPE_ONLY,
    "partner-customer-invite": PARTNER_IN_SCOPE_ONLY,
    "partner-stop": PARTNER_OWN,
    # licensing
    "get-a-key": NEEDS_SCOPE,
    "get-a-key-result": LICENSE_RESULT,
    "license-list": NEEDS_SCOPE,
    "license-export": NEEDS_SCOPE,
    "license-share": ADMIN_OF_OWN,
    "share-revoke": CUSTOMER_ADMIN_ONLY,
    "share-landing": PUBLIC,
    "custom-values-bulk": ADMIN_OR_SCOPE,
    "custom-values-csv": ADMIN_OR_SCOPE,
    "license-detail": LICENSE_VIEW,
    "license-file": LICENSE_VIEW,
    "license-email": LICENSE_MANAGE,
    "license-registration": LICENSE_MANAGE,
    "license-custom-values": LICENSE_MANAGE,
    "license-renew": LICENSE_MANAGE,
    "license-rehost": LICENSE_MANAGE,
    "license-certificate": LICENSE_VIEW,
    "license-certificate-pdf": LICENSE_VIEW,
    "custom-fields": NEEDS_SCOPE,
    "custom-field-edit": CUSTOMER_ADMIN_ONLY,
    "signing-key": PUBLIC,
    "signing-key-well-known": PUBLIC,
    # vouchers
    "voucher-center": NEEDS_SCOPE,
    "voucher-center-preview": NEEDS_SCOPE,
    "voucher-center-registration": NEEDS_SCOPE,
    "voucher-center-confirm": NEEDS_SCOPE,
    "voucher-conversion": CUSTOMER_OBJECT,
    "voucher-conversion-zip": CUSTOMER_OBJECT,
    # An OEM's batches are its own, never a customer's: only a partner in its own organization.
    "voucher-batches": row(**{**_CLOSED, "other_partner": OK}),
    "voucher-batch": row(**_CLOSED),  # the batch belongs to the partner in scope's own OEM
    # fileconnect: the partner "out of scope" holds exactly the download scope
    "fileconnect": ANY_ORGANIZATION,
    "fileconnect-license": row(**{**LICENSE_VIEW, "partner_out_of_scope": OK}),
    "fileconnect-serial": row(**_CLOSED),  # only a serial entered in this session opens it
    "fileconnect-download": row(**_CLOSED),  # a link is personal: a forged one is refused
    "fileconnect-link": row(**{**LICENSE_VIEW, "partner_out_of_scope": OK}),
    "fileconnect-log": ADMIN_OF_OWN,
    # enterprise_flex: the customer's admin is the contract's super user; its member is on no
    # contract; a partner with the obtain-keys scope draws down as a contract user does
    "ef-contracts": NEEDS_SCOPE,
    "ef-invitation": PUBLIC,
    "ef-contract": EF_CONTRACT_USER,
    "ef-drawdown": EF_CONTRACT_USER,
    "ef-drawdowns": EF_CONTRACT_USER,
    "ef-drawdown-result": CUSTOMER_ADMIN_ONLY,  # the super user's own drawdown
    "ef-licenses": EF_CONTRACT_USER,
    "ef-licenses-export": EF_CONTRACT_USER,
    # Drawdowns only for a partner: the deployment report is the customer's (its users').
    "ef-report": CUSTOMER_ADMIN_ONLY,
    "ef-site-create": CUSTOMER_ADMIN_ONLY,
    "ef-site-edit": CUSTOMER_ADMIN_ONLY,
    "ef-users": CUSTOMER_ADMIN_ONLY,
    "ef-user-update": CUSTOMER_ADMIN_ONLY,
    "ef-invitation-revoke": CUSTOMER_ADMIN_ONLY,
    "ef-true-up": CUSTOMER_ADMIN_ONLY,
    "ef-true-up-csv": CUSTOMER_ADMIN_ONLY,
    "ef-true-up-pdf": CUSTOMER_ADMIN_ONLY,
    # upgrades
    "upgrade": NEEDS_SCOPE,
    "upgrades-pending": NEEDS_SCOPE,
    "upgrade-notification": CUSTOMER_OBJECT,
    # Django's language switch and the admin site
    "set_language": PUBLIC,
    "admin:*": ADMIN_SITE,
    # The portal's login (its limits, two-factor) for staff; nobody else signs in there.
    "admin:login": row(**{**dict.fromkeys(ROLES, REFUSED), "anonymous": LOGIN, "staff": OK}),
    "admin:logout": PUBLIC,
    # Read-only records: staff may look, never add or delete (the services write them).
    "admin:read-only": row(**{**dict.fromkeys(ROLES, ADMIN_LOGIN), "staff": REFUSED}),
    # Unknown admin pages, a view-on-site link to nothing, autocomplete without its parameters.
    "admin:not-found": row(**{**dict.fromkeys(ROLES, ADMIN_LOGIN), "staff": REFUSED}),
    # django-allauth's account pages: public ones, and those for a logged-in user
    "allauth:public": PUBLIC,
    "allauth:login-required": LOGGED_IN,
    # Recovery codes and deactivation exist only once two-factor authentication is on.
    "allauth:mfa-active": row(**{**dict.fromkeys(ROLES, REFUSED), "anonymous": LOGIN}),
}

ALLAUTH_MFA_ACTIVE = {
    "mfa_deactivate_totp",
    "mfa_view_recovery_codes",
    "mfa_download_recovery_codes",
}
ADMIN_READ_ONLY = {
    f"admin:{model}_{verb}"
    for model in (
        "enterprise_flex_efdeploymentreport",
        "enterprise_flex_efdrawdown",
        "enterprise_flex_efinvitation",
        "enterprise_flex_efreminder",
        "fileconnect_downloadevent",
        "fileconnect_release",
        "fileconnect_releasefile",
        "licensing_license",
        "licensing_serialnumber",
        "licensing_serialredemption",
        "portal_auditevent",
        "portal_delegation",
        "portal_invitation",
        "portal_outboundemail",
        "upgrades_upgradenotice",
        "upgrades_upgradenotification",
        "upgrades_upgraderedemption",
        "vouchers_voucher",
        "vouchers_voucherbatch",
        "vouchers_voucherconversion",
    )
    for verb in ("add", "delete")
} - {
    # Staff create batches (through services); nothing here is ever deleted: serials, licenses,
    # notifications, vouchers and audit events are voided, revoked, expire or stay.
    "admin:vouchers_voucherbatch_add",
    # Releases are created and files uploaded in admin; withdrawn, never deleted.
    "admin:fileconnect_release_add",
    "admin:fileconnect_releasefile_add",
    # Staff create serial numbers (one by one, generated or imported); void, never delete.
    "admin:licensing_serialnumber_add",
}
# Users are deactivated, never deleted: their memberships and contract access stay checked.
ADMIN_READ_ONLY |= {"admin:portal_user_delete"}
ADMIN_NOT_FOUND = {"admin:autocomplete", "admin:view_on_site"}
ALLAUTH_LOGIN_REQUIRED = {
    "mfa_authenticate",  # the second step of a login in progress
    "account_confirm_login_code",
    "account_email",
    "account_change_password",
    "account_set_password",
    "account_reauthenticate",
    "account_request_reauthentication_code",
    "account_confirm_reauthentication_code",
    "mfa_index",
    "mfa_reauthenticate",
    "mfa_activate_totp",
    "mfa_generate_recovery_codes",
}
POST_ONLY = {
    "organization-switch",
    "member-update",
    "invitation-revoke",
    "partner-update",
    "partner-act",
    "partner-decline",
    "partner-customer-invite",
    "partner-stop",
    "license-share",
    "share-revoke",
    "custom-values-bulk",
    "admin:logout",
    "admin:licensing_serialnumber_process_import",
    "license-email",
    "license-custom-values",
    "license-renew",
    "license-rehost",
    "fileconnect-link",
    "ef-user-update",
    "ef-invitation-revoke",
}


@dataclass(frozen=True)
class Route:
    name: str  # the URL name, namespaced ("admin:index")
    pattern: str
    module: str
    key: str  # its entry in EXPECTED


def _routes(resolver: URLResolver, prefix: str = "", namespace: str = "") -> Iterator[Route]:
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            yield from _routes(entry, prefix + str(entry.pattern), entry.namespace or namespace)
            continue
        assert isinstance(entry, URLPattern)
        name = f"{namespace}:{entry.name}" if namespace else str(entry.name)
        module = getattr(entry.callback, "__module__", "")
        pattern = prefix + str(entry.pattern)
        yield Route(name, pattern, module, _key(name, module, pattern))


def _key(name: str, module: str, pattern: str) -> str:
    if name.startswith("admin:"):
        if name in ADMIN_READ_ONLY:
            return "admin:read-only"
        if name in ADMIN_NOT_FOUND or (name == "admin:None" and "(?P<url>" in pattern):
            return "admin:not-found"
        return name if name in EXPECTED else "admin:*"
    if module.startswith("allauth."):
        if name in ALLAUTH_MFA_ACTIVE:
            return "allauth:mfa-active"
        return "allauth:login-required" if name in ALLAUTH_LOGIN_REQUIRED else "allauth:public"
    return name


ROUTES = sorted(_routes(get_resolver()), key=lambda r: (r.key, r.pattern))


def test_every_url_pattern_has_an_expectation() -> None:
    missing = sorted({route.name for route in ROUTES if route.key not in EXPECTED})
    assert not missing, f"URL patterns without an access expectation in EXPECTED: {missing}"


# -- the world ------------------------------------------------------------------------------


@pytest.fixture
def world(settings: Any, tmp_path: Any) -> dict[str, Any]:
    settings.STORAGES = {
        **settings.STORAGES,
        "fileconnect": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": tmp_path / "fileconnect"},
        },
    }
    settings.FILECONNECT_X_ACCEL_LOCATION = ""
    today = timezone.localdate()
    admin = MembershipFactory(role=Membership.Role.ADMIN)
    customer = admin.organization
    member = MembershipFactory(organization=customer, role=Membership.Role.MEMBER)
    old, new = catalog()
    license = licensed(customer, old, quantity=10, host_id="")
    notifications_create(version=new, today=today)
    recipient = MembershipFactory(role=Membership.Role.ADMIN)
    share = LicenseShare.objects.create(
        license=license, email=recipient.user.email, user=recipient.user, access="read"
    )
    partners: dict[str, Membership] = {}
    delegations: dict[str, Delegation] = {}
    for role, fields in {
        "partner_in_scope": {},
        "partner_out_of_scope": {"scopes": [Scope.DOWNLOAD_SOFTWARE.value]},
        "partner_expired": {
            "starts_on": today - timedelta(days=30),
            "ends_on": today - timedelta(days=1),
        },
        "partner_revoked": {"status": Delegation.Status.REVOKED},
    }.items():
        partners[role] = MembershipFactory(organization=PartnerFactory())
        delegations[role] = DelegationFactory(
            customer=customer, partner=partners[role].organization, **fields
        )
    partners["other_partner"] = MembershipFactory(organization=PartnerFactory())
    conversion = VoucherConversion.objects.create(
        organization=customer,
        created_by=admin.user,
        status=VoucherConversion.Status.DONE,
        finished_at=timezone.now(),
        registration_data={"technical_email": "tech@customer.example"},
        result={"refused": []},
    )
    VoucherConversionLicense.objects.create(conversion=conversion, position=0, license=license)
    return {
        "admin": admin,
        "member": member,
        "customer": customer,
        "license": license,
        "share": share,
        "recipient": recipient,
        "partners": partners,
        "delegations": delegations,
        "unrelated": MembershipFactory(organization=OrganizationFactory()),
        "staff": UserFactory(is_staff=True, is_superuser=True),
        "invitation": Invitation.objects.create(
            organization=customer, email="new@customer.example", invited_by=admin.user
        ),
        "field": CustomField.objects.create(organization=customer, name="Cost center"),
        "notification": UpgradeNotification.objects.get(organization=customer),
        "conversion": conversion,
        "batch": VoucherBatchFactory(oem=partners["partner_in_scope"].organization),
        "release_file": add_file(old),
        **_ef_world(admin.user, member.user, old),
        "serial": SerialNumberFactory(version=old),
    }


def _ef_world(super_user: User, member: User, version: Any) -> dict[str, Any]:
    """An EF contract of the customer: its admin the super user, a drawdown of theirs, an open
    invitation; the customer's member is on no contract."""
    from enterprise_flex.models import EFContractUser
    from enterprise_flex.services import (
        DrawdownRequest,
        contract_user_set,
        drawdown_create,
        invitation_create,
    )
    from tests.enterprise_flex.factories import EFContractFactory, EFLineFactory

    contract = EFContractFactory(organization=super_user.memberships.get().organization)
    line = EFLineFactory(contract=contract, version=version, committed_quantity=50)
    contract_user_set(
        contract=contract, user=super_user, level=EFContractUser.Level.SUPER, actor=None
    )
    site = contract.sites.get()
    drawdown = drawdown_create(
        contract=contract,
        request=DrawdownRequest(line_id=line.pk, site_id=site.pk, quantity=2),
        actor=super_user,
        token="permissions-world",
    )
    invitation = invitation_create(
        contract=contract, email="new-ef@customer.example", level="contract", actor=super_user
    )
    return {
        "contract": contract,
        "ef_site": site,
        "ef_drawdown": drawdown,
        "ef_invitation": invitation,
        "ef_contract_user": contract.users.get(user=super_user),
    }


def _user(world: dict[str, Any], role: str) -> User | None:
    if role == "anonymous":
        return None
    if role.startswith("partner_") or role == "other_partner":
        return world["partners"][role].user
    if role == "staff":
        return world["staff"]
    key = {
        "customer_admin": "admin",
        "customer_member": "member",
        "share_recipient": "recipient",
        "unrelated": "unrelated",
    }[role]
    return world[key].user


def _client(world: dict[str, Any], role: str) -> Client:
    client = Client()
    user = _user(world, role)
    if user is None:
        return client
    client.force_login(user)
    if role.startswith("partner_") or role == "other_partner":
        session = client.session
        session[SESSION_ACTING_FOR_KEY] = world["customer"].pk
        session.save()
    return client


ARGUMENTS: dict[str, Callable[[dict[str, Any]], list[Any]]] = {
    "member-update": lambda w: [w["member"].pk],
    "invitation-revoke": lambda w: [w["invitation"].pk],
    "invitation": lambda w: [w["invitation"].token],
    "partner-update": lambda w: [w["delegations"]["partner_in_scope"].pk],
    "partner-act": lambda w: [w["delegations"]["partner_in_scope"].pk],
    "partner-decline": lambda w: [w["delegations"]["partner_in_scope"].pk],
    "partner-customer-invite": lambda w: [w["delegations"]["partner_in_scope"].pk],
    "get-a-key-result": lambda w: [w["license"].pk],
    "license-export": lambda w: ["csv"],
    "share-revoke": lambda w: [w["share"].pk],
    "share-landing": lambda w: [w["share"].token],
    "custom-field-edit": lambda w: [w["field"].pk],
    "voucher-conversion": lambda w: [w["conversion"].pk],
    "voucher-conversion-zip": lambda w: [w["conversion"].pk],
    "voucher-batch": lambda w: [w["batch"].pk],
    "upgrade-notification": lambda w: [w["notification"].pk],
    "fileconnect-license": lambda w: [w["license"].pk],
    "fileconnect-serial": lambda w: [w["serial"].pk],
    "fileconnect-download": lambda w: [w["release_file"].pk, "forged-token"],
    "fileconnect-link": lambda w: [w["release_file"].pk],
    "ef-invitation": lambda w: [w["ef_invitation"].token],
    "ef-drawdown-result": lambda w: [w["contract"].number, w["ef_drawdown"].pk],
    "ef-site-edit": lambda w: [w["contract"].number, w["ef_site"].pk],
    "ef-user-update": lambda w: [w["contract"].number, w["ef_contract_user"].pk],
    "ef-invitation-revoke": lambda w: [w["contract"].number, w["ef_invitation"].pk],
}
for _name in ("ef-report", "ef-true-up", "ef-true-up-csv", "ef-true-up-pdf"):
    ARGUMENTS[_name] = lambda w: [w["contract"].number, 1]
for _name in (
    "ef-contract",
    "ef-drawdown",
    "ef-drawdowns",
    "ef-licenses",
    "ef-licenses-export",
    "ef-site-create",
    "ef-users",
):
    ARGUMENTS[_name] = lambda w: [w["contract"].number]
for _name in (
    "license-detail",
    "license-file",
    "license-email",
    "license-registration",
    "license-custom-values",
    "license-renew",
    "license-rehost",
    "license-certificate",
    "license-certificate-pdf",
):
    ARGUMENTS[_name] = lambda w: [w["license"].pk]


def _path(route: Route, world: dict[str, Any]) -> str:
    if route.name.startswith("admin:"):
        # Admin URLs are reached with placeholder arguments; staff get a page or a redirect.
        path = "/" + route.pattern
        for placeholder in ("<path:object_id>", "<path:content_type_id>"):
            path = path.replace(placeholder, "1")
        path = path.replace("<id>", str(world["staff"].pk))
        path = path.replace("^", "").replace("$", "")
        if "(?P<app_label>" in path:
            path = "/admin/licensing/"
        if "(?P<url>" in path:
            path = "/admin/no-such-page/"
        return path
    if route.name == "account_confirm_email":
        return reverse("account_confirm_email", args=["nokey"])
    if route.name == "account_reset_password_from_key":
        return reverse("account_reset_password_from_key", kwargs={"uidb36": "1", "key": "x-y"})
    name = route.name.split(":")[-1]
    return reverse(name, args=ARGUMENTS.get(name, lambda w: [])(world))


def _outcome(response: Any) -> str:
    status = response.status_code
    assert status < 500, response
    assert status != 405, f"{response}: the test uses the wrong method (see POST_ONLY)"
    if status in (403, 404):
        return REFUSED
    if status in (301, 302):
        location = response["Location"]
        if location.startswith(reverse("account_login")):
            return LOGIN
        if location.startswith("/admin/login/"):
            return ADMIN_LOGIN
        if location.startswith(reverse("organization-create")):
            return NO_ORG
    return OK


@pytest.fixture
def admin_world() -> dict[str, Any]:
    """The few people the admin site's door tells apart."""
    admin = MembershipFactory(role=Membership.Role.ADMIN)
    partner = MembershipFactory(organization=PartnerFactory())
    DelegationFactory(customer=admin.organization, partner=partner.organization)
    return {
        "admin": admin,
        "customer": admin.organization,
        "partners": {"partner_in_scope": partner},
        "staff": UserFactory(is_staff=True, is_superuser=True),
        "license": LicenseFactory(owner=admin.organization),
    }


@pytest.mark.parametrize("route", ROUTES, ids=[f"{r.name}:{r.pattern}" for r in ROUTES])
def test_each_role_gets_the_expected_outcome(route: Route, request: Any) -> None:
    is_admin = route.name.startswith("admin:")
    world = request.getfixturevalue("admin_world" if is_admin else "world")
    expected = EXPECTED[route.key]
    path = _path(route, world)
    method = "post" if route.name in POST_ONLY else "get"
    license_key = world["license"].key
    # At the admin site's door every non-staff user is the same (is_staff): three of them stand
    # for the rest, so 150 admin patterns do not cost 1,650 requests.
    roles = ADMIN_ROLES if is_admin else ROLES
    got = {}
    for role in roles:
        client = _client(world, role)
        # Each role's request is undone after it, so a decline or a revoke does not change what
        # the next role sees.
        with transaction.atomic():
            savepoint = transaction.savepoint()
            response = getattr(client, method)(path)
            got[role] = _outcome(response)
            if got[role] == REFUSED and hasattr(response, "content"):
                assert license_key not in response.content.decode(errors="replace"), role
            transaction.savepoint_rollback(savepoint)
    mismatches = {
        role: (expected[role], got[role]) for role in roles if expected[role] != got[role]
    }
    assert not mismatches, f"{method.upper()} {path}: (expected, got) {mismatches}"
