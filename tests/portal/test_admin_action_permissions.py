"""Admin actions that change data are offered to, and run for, only staff who may change it.

A staff member with view permission only used to void serials and vouchers, generate serials,
publish versions, withdraw releases and resend emails: actions declared no permissions, so
Django offered them to anyone who could see the change list.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from allauth.account.models import EmailAddress
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from fileconnect.models import Release
from licensing.models import License, ProductVersion, SerialNumber
from portal.models import AuditEvent, OutboundEmail, User
from tests.licensing.factories import LicenseFactory, ProductVersionFactory, SerialNumberFactory
from tests.portal.factories import UserFactory
from tests.vouchers.factories import vouchers
from vouchers.models import Voucher, VoucherBatch

pytestmark = pytest.mark.django_db


def test_every_admin_action_declares_who_may_run_it() -> None:
    # An action without allowed_permissions is offered to whoever may view the change list.
    missing = []
    for model, model_admin in admin.site._registry.items():
        for func, name, _description in model_admin._get_base_actions():
            if not getattr(func, "allowed_permissions", None):
                missing.append(f"{model._meta.label}: {name}")
    assert missing == []


def _staff(*codenames: str) -> User:
    user = UserFactory(is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return User.objects.get(pk=user.pk)  # a fresh instance: no cached permissions


VIEW_ONLY = [
    "view_license",
    "view_serialnumber",
    "view_productversion",
    "view_voucher",
    "view_voucherbatch",
    "view_outboundemail",
    "view_release",
    "view_emailaddress",
]


def _offered(client: Client, changelist: str) -> list[str]:
    response = client.get(reverse(changelist))
    assert response.status_code == 200
    form = response.context["action_form"]
    return [name for name, _label in form.fields["action"].choices if name] if form else []


def _email() -> OutboundEmail:
    return OutboundEmail.objects.create(
        template="invitation",
        to=["someone@example.com"],
        subject="Hello",
        body_text="Hello",
        status=OutboundEmail.Status.FAILED,
        attempts=3,
    )


def _release(withdrawn: bool = False) -> Release:
    return Release.objects.create(
        version=ProductVersionFactory(), withdrawn_at=timezone.now() if withdrawn else None
    )


# (change list, action, the object it is run on, what stays as it was)
CASES: list[tuple[str, str, Callable[[], Any], Callable[[Any], Any]]] = [
    (
        "admin:licensing_serialnumber_changelist",
        "void_serials",
        SerialNumberFactory,
        lambda serial: SerialNumber.objects.get(pk=serial.pk).status,
    ),
    (
        "admin:licensing_productversion_changelist",
        "generate_serials",
        ProductVersionFactory,
        lambda version: SerialNumber.objects.filter(version=version).count(),
    ),
    (
        "admin:licensing_productversion_changelist",
        "publish_and_notify",
        ProductVersionFactory,
        lambda version: ProductVersion.objects.get(pk=version.pk).published_at,
    ),
    (
        "admin:licensing_license_changelist",
        "revoke_licenses",
        LicenseFactory,
        lambda license: License.objects.get(pk=license.pk).status,
    ),
    (
        "admin:licensing_license_changelist",
        "grant_rehost",
        lambda: LicenseFactory(version__product__node_locked=True),
        lambda license: License.objects.get(pk=license.pk).rehosts_granted,
    ),
    (
        "admin:vouchers_voucher_changelist",
        "void_vouchers",
        lambda: vouchers(1)[0],
        lambda voucher: Voucher.objects.get(pk=voucher.pk).status,
    ),
    (
        "admin:vouchers_voucherbatch_changelist",
        "void_batches",
        lambda: vouchers(1)[0].batch,
        lambda batch: (
            VoucherBatch.objects.get(pk=batch.pk).voided_at,
            list(batch.vouchers.values_list("status", flat=True)),
        ),
    ),
    (
        "admin:portal_outboundemail_changelist",
        "resend",
        _email,
        lambda email: OutboundEmail.objects.values_list("status", "attempts").get(pk=email.pk),
    ),
    (
        "admin:fileconnect_release_changelist",
        "withdraw_releases",
        _release,
        lambda release: Release.objects.get(pk=release.pk).withdrawn_at,
    ),
    (
        "admin:fileconnect_release_changelist",
        "restore_releases",
        lambda: _release(withdrawn=True),
        lambda release: Release.objects.get(pk=release.pk).withdrawn_at,
    ),
    (
        "admin:account_emailaddress_changelist",
        "make_verified",
        lambda: EmailAddress.objects.create(user=UserFactory(), email="x@example.com"),
        lambda address: EmailAddress.objects.get(pk=address.pk).verified,
    ),
]


@pytest.mark.parametrize(("changelist", "action", "make", "state"), CASES)
def test_view_only_staff_are_neither_offered_nor_can_forge_an_action(  # type: ignore[no-untyped-def]
    client, changelist, action, make, state
) -> None:
    obj = make()
    before = state(obj)
    events = AuditEvent.objects.count()
    client.force_login(_staff(*VIEW_ONLY))
    assert action not in _offered(client, changelist)
    # The confirmed step of the action, posted by hand (what its confirmation page sends).
    client.post(
        reverse(changelist),
        {
            "action": action,
            "_selected_action": [obj.pk],
            "apply": "1",
            "count": "3",
            "kind": "new",
            "reason": "A refund",
            "quantity": "1",
            "maintenance_months": "12",
        },
    )
    assert state(obj) == before
    assert AuditEvent.objects.count() == events


def test_staff_who_may_change_are_offered_the_actions(client) -> None:  # type: ignore[no-untyped-def]
    client.force_login(
        _staff(
            *VIEW_ONLY,
            "change_license",
            "change_serialnumber",
            "add_serialnumber",
            "change_productversion",
            "change_voucher",
            "change_voucherbatch",
            "change_outboundemail",
            "change_release",
            "change_emailaddress",
        )
    )
    assert "void_serials" in _offered(client, "admin:licensing_serialnumber_changelist")
    assert {"revoke_licenses", "grant_rehost"} <= set(
        _offered(client, "admin:licensing_license_changelist")
    )
    assert {"generate_serials", "publish_and_notify"} <= set(
        _offered(client, "admin:licensing_productversion_changelist")
    )
    assert {"void_vouchers", "export_codes"} <= set(
        _offered(client, "admin:vouchers_voucher_changelist")
    )
    assert "void_batches" in _offered(client, "admin:vouchers_voucherbatch_changelist")
    assert "resend" in _offered(client, "admin:portal_outboundemail_changelist")
    assert {"withdraw_releases", "restore_releases"} <= set(
        _offered(client, "admin:fileconnect_release_changelist")
    )
    assert "make_verified" in _offered(client, "admin:account_emailaddress_changelist")


def test_generating_serials_takes_the_permission_to_add_serials(client) -> None:  # type: ignore[no-untyped-def]
    # Changing the catalog is not creating sellable codes.
    client.force_login(_staff("view_productversion", "change_productversion"))
    assert "generate_serials" not in _offered(client, "admin:licensing_productversion_changelist")


def test_resend_runs_for_staff_who_may_change_outbound_emails(client) -> None:  # type: ignore[no-untyped-def]
    email = _email()
    client.force_login(_staff("view_outboundemail", "change_outboundemail"))
    client.post(
        reverse("admin:portal_outboundemail_changelist"),
        {"action": "resend", "_selected_action": [email.pk]},
    )
    email.refresh_from_db()
    assert (email.status, email.attempts) == (OutboundEmail.Status.PENDING, 0)
