"""Staff side in admin: create a batch (codes generated), export CSV, void batches and vouchers."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from licensing.codes import canonical_code
from portal.models import AuditEvent, User
from tests.licensing.factories import REGISTRATION, ProductVersionFactory
from tests.portal.factories import MembershipFactory, OrganizationFactory, UserFactory
from tests.vouchers.factories import PartnerFactory, vouchers
from vouchers.models import Voucher, VoucherBatch
from vouchers.services import VoucherError, voucher_batch_create, vouchers_convert

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):  # type: ignore[no-untyped-def]
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


@pytest.mark.parametrize("model", ["voucherbatch", "voucher", "voucherconversion"])
def test_changelists_load(staff_client, model) -> None:  # type: ignore[no-untyped-def]
    batch = vouchers(3)[0].batch
    member = MembershipFactory()
    vouchers_convert(
        codes=[batch.vouchers.first().code],
        organization=member.organization,
        registration=REGISTRATION,
        acting_user=member.user,
    )
    url = reverse(f"admin:vouchers_{model}_changelist")
    assert staff_client.get(url).status_code == 200
    assert staff_client.get(url + "?q=x").status_code == 200


def test_batch_add_generates_the_codes(staff_client) -> None:  # type: ignore[no-untyped-def]
    oem = PartnerFactory()
    version = ProductVersionFactory()
    assert staff_client.get(reverse("admin:vouchers_voucherbatch_add")).status_code == 200
    response = staff_client.post(
        reverse("admin:vouchers_voucherbatch_add"),
        {
            "oem": oem.pk,
            "version": version.pk,
            "label": "PO 4711",
            "quantity_per_voucher": 5,
            "maintenance_months": 24,
            "expires_on": "2027-12-31",
            "count": 25,
        },
        follow=True,
    )
    assert response.status_code == 200
    batch = VoucherBatch.objects.get()
    assert (batch.oem, batch.version, batch.label) == (oem, version, "PO 4711")
    assert batch.created_by is not None and batch.created_by.is_staff
    codes = list(batch.vouchers.values_list("code", flat=True))
    assert len(codes) == 25 == len(set(codes))
    assert all(canonical_code(code) == code for code in codes)  # check character included
    assert "25 voucher codes generated" in response.content.decode()
    event = AuditEvent.objects.get(action="voucher_batch.created")
    assert event.details["count"] == 25 and event.organization == oem
    change = staff_client.get(reverse("admin:vouchers_voucherbatch_change", args=[batch.pk]))
    assert change.status_code == 200


def test_batch_add_refuses_a_customer_organization(staff_client) -> None:  # type: ignore[no-untyped-def]
    customer = OrganizationFactory()
    response = staff_client.post(
        reverse("admin:vouchers_voucherbatch_add"),
        {
            "oem": customer.pk,
            "version": ProductVersionFactory().pk,
            "quantity_per_voucher": 1,
            "maintenance_months": 12,
            "count": 5,
        },
    )
    assert response.status_code == 200
    assert "oem" in response.context["adminform"].form.errors
    assert not VoucherBatch.objects.exists()


def test_batch_add_refuses_node_locked_products(staff_client) -> None:  # type: ignore[no-untyped-def]
    response = staff_client.post(
        reverse("admin:vouchers_voucherbatch_add"),
        {
            "oem": PartnerFactory().pk,
            "version": ProductVersionFactory(product__node_locked=True).pk,
            "quantity_per_voucher": 1,
            "maintenance_months": 12,
            "count": 5,
        },
    )
    assert "version" in response.context["adminform"].form.errors


def test_export_codes_as_csv(staff_client) -> None:  # type: ignore[no-untyped-def]
    exported = vouchers(4, expires_on="2027-06-30")
    not_exported = vouchers(2)
    batch = exported[0].batch
    response = staff_client.post(
        reverse("admin:vouchers_voucherbatch_changelist"),
        {"action": "export_codes", "_selected_action": [batch.pk]},
    )
    assert response["Content-Type"] == "text/csv"
    assert f"vouchers-batch-{batch.pk}-" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [row["code"] for row in rows] == [v.code for v in exported]
    assert not {v.code for v in not_exported} & {row["code"] for row in rows}
    assert rows[0] == {
        "code": exported[0].code,
        "batch": str(batch.pk),
        "oem_account": batch.oem.account_number,
        "oem": batch.oem.name,
        "product": batch.version.product.sku,
        "version": batch.version.version,
        "quantity": "5",
        "maintenance_months": "12",
        "expires_on": "2027-06-30",
        "status": "open",
    }
    event = AuditEvent.objects.get(action="vouchers.exported")
    assert (event.details["batches"], event.details["count"]) == ([batch.pk], 4)


def test_exported_codes_guard_text_a_spreadsheet_would_run(staff_client) -> None:  # type: ignore[no-untyped-def]
    # The OEM's name is typed by the organization itself: it went into staff's CSV as it was.
    exported = vouchers(1)
    oem = exported[0].batch.oem
    oem.name = '=HYPERLINK("http://evil.example","Open")'
    oem.save(update_fields=["name"])
    response = staff_client.post(
        reverse("admin:vouchers_voucherbatch_changelist"),
        {"action": "export_codes", "_selected_action": [exported[0].batch_id]},
    )
    (row,) = csv.DictReader(io.StringIO(response.content.decode()))
    assert row["oem"] == "'" + oem.name
    assert row["quantity"] == "5"


def test_void_batch_asks_then_voids_only_open_vouchers(staff_client) -> None:  # type: ignore[no-untyped-def]
    batch_vouchers = vouchers(4)
    batch = batch_vouchers[0].batch
    member = MembershipFactory()
    vouchers_convert(
        codes=[batch_vouchers[0].code],
        organization=member.organization,
        registration=REGISTRATION,
        acting_user=member.user,
    )
    url = reverse("admin:vouchers_voucherbatch_changelist")
    ask = staff_client.post(url, {"action": "void_batches", "_selected_action": [batch.pk]})
    assert ask.status_code == 200 and "cannot be undone" in ask.content.decode()
    assert "3 open vouchers of these batches will no longer convert" in ask.content.decode()
    # The confirmation re-posts the same action and selection, enabled.
    form = ask.content.decode()
    assert '<input type="hidden" name="action" value="void_batches">' in form
    assert f'<input type="hidden" name="_selected_action" value="{batch.pk}">' in form
    assert 'value="Void" >' in form or 'value="Void">' in form
    assert Voucher.objects.filter(status=Voucher.Status.VOID).count() == 0
    staff_client.post(url, {"action": "void_batches", "_selected_action": [batch.pk], "apply": "1"})
    batch.refresh_from_db()
    assert batch.voided_at is not None
    statuses = sorted(Voucher.objects.values_list("status", flat=True))
    assert statuses == ["redeemed", "void", "void", "void"]
    event = AuditEvent.objects.get(action="voucher_batch.voided")
    assert event.details["vouchers_voided"] == 3


def test_void_selected_vouchers(staff_client) -> None:  # type: ignore[no-untyped-def]
    batch_vouchers = vouchers(3)
    url = reverse("admin:vouchers_voucher_changelist")
    chosen = [batch_vouchers[0].pk, batch_vouchers[2].pk]
    ask = staff_client.post(url, {"action": "void_vouchers", "_selected_action": chosen})
    assert "2 open vouchers will no longer convert" in ask.content.decode()
    staff_client.post(url, {"action": "void_vouchers", "_selected_action": chosen, "apply": "1"})
    assert list(Voucher.objects.order_by("pk").values_list("status", flat=True)) == [
        "void",
        "open",
        "void",
    ]
    event = AuditEvent.objects.get(action="vouchers.voided")
    assert sorted(event.details["codes"]) == sorted(
        [batch_vouchers[0].code, batch_vouchers[2].code]
    )


def test_search_finds_a_code_typed_loosely(staff_client) -> None:  # type: ignore[no-untyped-def]
    wanted, other = vouchers(2)
    url = reverse("admin:vouchers_voucher_changelist")
    response = staff_client.get(url, {"q": wanted.code.lower().replace("-", "")})
    page = response.content.decode()
    assert wanted.code in page and other.code not in page


def test_vouchers_cannot_be_added_or_deleted_in_admin(staff_client) -> None:  # type: ignore[no-untyped-def]
    voucher = vouchers(1)[0]
    assert staff_client.get(reverse("admin:vouchers_voucher_add")).status_code == 403
    assert (
        staff_client.get(reverse("admin:vouchers_voucher_delete", args=[voucher.pk])).status_code
        == 403
    )


def test_a_batch_changed_in_admin_is_audited(staff_client) -> None:  # type: ignore[no-untyped-def]
    # Batch 1's redeem-before date set to 2001-01-01 (every open voucher of it expired) left
    # no audit event.
    batch = vouchers(2, label="PO 4711")[0].batch
    url = reverse("admin:vouchers_voucherbatch_change", args=[batch.pk])
    form = {"label": "PO 4711", "expires_on": "2001-01-01"}
    assert staff_client.post(url, form).status_code == 302
    batch.refresh_from_db()
    assert batch.expires_on.isoformat() == "2001-01-01"
    event = AuditEvent.objects.get(action="voucher_batch.changed")
    assert event.actor is not None and event.actor.is_staff
    assert event.organization == batch.oem
    assert event.details["changes"] == {"expires_on": {"from": None, "to": "2001-01-01"}}
    assert staff_client.post(url, form).status_code == 302  # unchanged: nothing to audit
    assert AuditEvent.objects.filter(action="voucher_batch.changed").count() == 1


def _staff_with(*codenames: str) -> User:
    user = UserFactory(is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return User.objects.get(pk=user.pk)


@pytest.mark.parametrize(
    ("changelist", "selected"),
    [
        ("admin:vouchers_voucherbatch_changelist", lambda codes: [codes[0].batch_id]),
        ("admin:vouchers_voucher_changelist", lambda codes: [v.pk for v in codes]),
    ],
)
def test_exporting_codes_takes_the_change_permission_and_is_audited(
    client, changelist, selected
) -> None:  # type: ignore[no-untyped-def]
    # A view-only staff user took every open, bearer-usable code of a batch, with no trace.
    codes = vouchers(3)
    post = {"action": "export_codes", "_selected_action": selected(codes)}
    client.force_login(_staff_with("view_voucher", "view_voucherbatch"))
    form = client.get(reverse(changelist)).context["action_form"]
    assert form is None  # no action left for them at all
    refused = client.post(reverse(changelist), post)
    assert refused["Content-Type"] != "text/csv"
    assert not AuditEvent.objects.filter(action="vouchers.exported").exists()
    staff = _staff_with(
        "view_voucher", "view_voucherbatch", "change_voucher", "change_voucherbatch"
    )
    client.force_login(staff)
    response = client.post(reverse(changelist), post)
    assert response["Content-Type"] == "text/csv"
    event = AuditEvent.objects.get(action="vouchers.exported")
    assert event.actor == staff
    assert (event.details["batches"], event.details["count"]) == ([codes[0].batch_id], 3)


def _batch_form(expires_on: str) -> dict[str, object]:
    return {
        "oem": PartnerFactory().pk,
        "version": ProductVersionFactory().pk,
        "label": "PO 4711",
        "quantity_per_voucher": 1,
        "maintenance_months": 12,
        "expires_on": expires_on,
        "count": 5,
    }


def test_batch_add_refuses_a_date_that_has_passed(staff_client) -> None:  # type: ignore[no-untyped-def]
    # "Convert before 2020-01-01" made a batch whose codes were expired at once.
    response = staff_client.post(
        reverse("admin:vouchers_voucherbatch_add"), _batch_form("2020-01-01")
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["expires_on"]
    assert "Choose a date from today on" in str(errors)
    assert not VoucherBatch.objects.exists() and not Voucher.objects.exists()
    today = timezone.localdate().isoformat()
    staff_client.post(reverse("admin:vouchers_voucherbatch_add"), _batch_form(today))
    assert VoucherBatch.objects.get().expires_on.isoformat() == today  # the last day counts


def test_batch_create_service_refuses_a_date_that_has_passed() -> None:
    # The command and scripts create batches through the service: it refuses too.
    with pytest.raises(VoucherError, match="Choose a date from today on"):
        voucher_batch_create(
            oem=PartnerFactory(),
            version=ProductVersionFactory(),
            count=2,
            expires_on=timezone.localdate() - timedelta(days=1),
        )
    assert not VoucherBatch.objects.exists()
