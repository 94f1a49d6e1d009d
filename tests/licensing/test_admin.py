from __future__ import annotations

import io

import pytest
from django.urls import reverse

from licensing.models import SerialNumber, generate_code
from portal.models import AuditEvent
from tests.licensing.factories import (
    LicenseFactory,
    ProductVersionFactory,
    ReadCounter,
    SerialNumberFactory,
)
from tests.licensing.wizard import walk
from tests.portal.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):  # type: ignore[no-untyped-def]
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


@pytest.mark.parametrize(
    "model",
    [
        "portal/user",
        "portal/organization",
        "portal/invitation",
        "portal/auditevent",
        "portal/outboundemail",
        "licensing/product",
        "licensing/productversion",
        "licensing/serialnumber",
        "licensing/license",
        "licensing/supportregistration",
    ],
)
def test_admin_changelists_and_forms_load(staff_client, model) -> None:  # type: ignore[no-untyped-def]
    app, name = model.split("/")
    MembershipFactory()
    SerialNumberFactory()
    assert staff_client.get(reverse(f"admin:{app}_{name}_changelist")).status_code == 200
    assert staff_client.get(reverse(f"admin:{app}_{name}_changelist") + "?q=x").status_code == 200


def test_admin_detail_pages_load(staff_client, client) -> None:  # type: ignore[no-untyped-def]
    member = MembershipFactory()
    serial = SerialNumberFactory()
    other = client.__class__()
    other.force_login(member.user)
    walk(other, serial.code)
    from licensing.models import License

    license = License.objects.get()
    for url in [
        reverse("admin:licensing_license_change", args=[license.pk]),
        reverse("admin:licensing_serialnumber_change", args=[serial.pk]),
        reverse("admin:portal_auditevent_change", args=[AuditEvent.objects.first().pk]),
        reverse("admin:licensing_serialnumber_add"),
        reverse("admin:licensing_product_add"),
    ]:
        assert staff_client.get(url).status_code == 200, url


def test_audit_log_is_read_only(staff_client) -> None:  # type: ignore[no-untyped-def]
    assert staff_client.get(reverse("admin:portal_auditevent_add")).status_code == 403


def test_generate_serials_action(staff_client) -> None:  # type: ignore[no-untyped-def]
    version = ProductVersionFactory()
    url = reverse("admin:licensing_productversion_changelist")
    form = staff_client.post(url, {"action": "generate_serials", "_selected_action": [version.pk]})
    assert form.status_code == 200 and b"How many serial numbers" in form.content
    response = staff_client.post(
        url,
        {
            "action": "generate_serials",
            "_selected_action": [version.pk],
            "apply": "1",
            "count": "12",
            "kind": "new",
            "quantity": "5",
            "maintenance_months": "12",
        },
    )
    assert response["Content-Type"] == "text/csv"
    lines = response.content.decode().strip().splitlines()
    assert len(lines) == 13
    assert SerialNumber.objects.filter(version=version, quantity=5).count() == 12


def test_void_action_asks_first_then_voids_the_open_serials(staff_client) -> None:  # type: ignore[no-untyped-def]
    serial = SerialNumberFactory()
    redeemed = SerialNumberFactory(status=SerialNumber.Status.VOID)
    url = reverse("admin:licensing_serialnumber_changelist")
    action = {"action": "void_serials", "_selected_action": [serial.pk, redeemed.pk]}
    page = staff_client.post(url, action)
    assert page.status_code == 200
    text = page.content.decode()
    assert "1 open serial number will stop working" in text
    assert "1 selected serial number is already redeemed or void" in text
    serial.refresh_from_db()
    assert serial.status == SerialNumber.Status.OPEN  # nothing changed yet
    staff_client.post(url, {**action, "apply": "1"})
    serial.refresh_from_db()
    assert serial.status == SerialNumber.Status.VOID
    event = AuditEvent.objects.get(action="serials.voided")
    assert event.details["codes"] == [serial.code]


def test_serials_licenses_and_audit_events_cannot_be_deleted_in_admin(staff_client) -> None:  # type: ignore[no-untyped-def]
    serial = SerialNumberFactory()
    for name, args in (
        ("admin:licensing_serialnumber_delete", [serial.pk]),
        ("admin:licensing_license_delete", [LicenseFactory().pk]),
    ):
        assert staff_client.get(reverse(name, args=args)).status_code == 403
    changelist = staff_client.get(reverse("admin:licensing_serialnumber_changelist"))
    assert "delete_selected" not in changelist.content.decode()


def test_csv_import_of_serials(staff_client) -> None:  # type: ignore[no-untyped-def]
    version = ProductVersionFactory(product__sku="WSS-GW", version="7.2")
    good = SerialNumberFactory.build().code
    csv = (
        "code,product,version,kind,quantity,maintenance_months,expires_on,printed_key\n"
        f"{good.lower()},WSS-GW,7.2,new,10,12,,\n"
        "LEGACY-000123,WSS-GW,7.2,new,1,12,2027-01-31,\n"
    )
    url = reverse("admin:licensing_serialnumber_import")
    page = staff_client.get(url)
    assert page.status_code == 200
    changelist = staff_client.get(reverse("admin:licensing_serialnumber_changelist"))
    assert url in changelist.content.decode()
    upload = io.BytesIO(csv.encode())
    upload.name = "serials.csv"
    response = staff_client.post(url, {"import_file": upload})
    assert response.status_code == 200
    assert response.context["preview"] is not None, response.content.decode()[:2000]
    staff_client.post(url, {"confirm": "1"})
    assert SerialNumber.objects.filter(code=good, version=version, quantity=10).exists()
    assert SerialNumber.objects.filter(code="LEGACY000123").exists()


@pytest.mark.parametrize(
    ("quantity", "months"), [("3000000000", "12"), ("1000001", "12"), ("1", "40000"), ("1", "121")]
)
def test_generate_serials_refuses_what_an_import_refuses(staff_client, quantity, months) -> None:  # type: ignore[no-untyped-def]
    # A quantity or a maintenance term past the database's integer gave a 500; within it but
    # past what a CSV import accepts (1,000,000 seats, 120 months) it made serials no import
    # would.
    version = ProductVersionFactory()
    response = staff_client.post(
        reverse("admin:licensing_productversion_changelist"),
        {
            "action": "generate_serials",
            "_selected_action": [version.pk],
            "apply": "1",
            "count": "1",
            "kind": "new",
            "quantity": quantity,
            "maintenance_months": months,
        },
    )
    assert response.status_code == 200
    assert b"less than or equal to" in response.content
    assert not SerialNumber.objects.exists()


def test_staff_cannot_reopen_or_rewrite_an_invitation_in_admin(staff_client) -> None:  # type: ignore[no-untyped-def]
    # Clearing "revoked at" on a withdrawn invitation while a newer one was open gave a 500
    # (one open invitation per address); otherwise it reopened a link its administrator had
    # withdrawn, or changed its role or address, with no audit event. Administrators invite
    # and withdraw on the Members page; staff look.
    from portal.models import Invitation
    from portal.services import invitation_create, invitation_revoke

    admin = MembershipFactory()
    old = invitation_create(
        organization=admin.organization, email="a@x.example", role="member", invited_by=admin.user
    )
    invitation_revoke(invitation=old, actor=admin.user)
    invitation_create(
        organization=admin.organization, email="a@x.example", role="member", invited_by=admin.user
    )
    url = reverse("admin:portal_invitation_change", args=[old.pk])
    assert staff_client.get(url).status_code == 200
    response = staff_client.post(
        url,
        {
            "organization": admin.organization.pk,
            "email": "a@x.example",
            "role": "admin",
            "invited_by": admin.user.pk,
            "revoked_at_0": "",
            "revoked_at_1": "",
        },
    )
    assert response.status_code == 403
    old.refresh_from_db()
    assert old.revoked_at is not None and old.role == "member"
    assert staff_client.get(reverse("admin:portal_invitation_add")).status_code == 403
    assert Invitation.objects.count() == 2


def _organization_form(organization, memberships, **changes):  # type: ignore[no-untyped-def]
    data = {
        "name": organization.name,
        "kind": organization.kind,
        "address": organization.address,
        "country": str(organization.country or ""),
        "memberships-TOTAL_FORMS": str(len(memberships)),
        "memberships-INITIAL_FORMS": str(len(memberships)),
        "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000",
    }
    for i, membership in enumerate(memberships):
        data[f"memberships-{i}-id"] = str(membership.pk)
        data[f"memberships-{i}-organization"] = str(organization.pk)
        data[f"memberships-{i}-user"] = str(membership.user_id)
        data[f"memberships-{i}-role"] = membership.role
    data.update(changes)
    return data


def test_staff_cannot_leave_an_organization_without_an_administrator(staff_client) -> None:  # type: ignore[no-untyped-def]
    # The members inline let staff demote or delete the last administrator (nobody could then
    # invite, manage members or partners), and its changes were not audited.
    from portal.models import Membership

    admin = MembershipFactory()
    member = MembershipFactory(organization=admin.organization, role="member")
    organization = admin.organization
    url = reverse("admin:portal_organization_change", args=[organization.pk])
    for change in ({"memberships-0-role": "member"}, {"memberships-0-DELETE": "on"}):
        response = staff_client.post(
            url, _organization_form(organization, [admin, member], **change)
        )
        assert response.status_code == 200
        assert "at least one administrator" in response.content.decode()
        admin.refresh_from_db()
        assert admin.role == "admin"
    # Promoting the member first, then demoting the administrator, is allowed and audited.
    response = staff_client.post(
        url,
        _organization_form(
            organization,
            [admin, member],
            **{"memberships-0-role": "member", "memberships-1-role": "admin"},
        ),
    )
    assert response.status_code == 302
    assert dict(Membership.objects.filter(organization=organization).values_list("pk", "role")) == {
        admin.pk: "member",
        member.pk: "admin",
    }
    events = AuditEvent.objects.filter(action="membership.role_changed", organization=organization)
    assert sorted(e.details["email"] for e in events) == sorted(
        [admin.user.email, member.user.email]
    )
    admin.refresh_from_db()
    member.refresh_from_db()
    response = staff_client.post(
        url,
        _organization_form(
            organization,
            [admin, member],
            **{"memberships-0-DELETE": "on"},
        ),
    )
    assert response.status_code == 302
    assert list(Membership.objects.filter(organization=organization)) == [member]
    removed = AuditEvent.objects.get(action="membership.removed", organization=organization)
    assert removed.details["email"] == admin.user.email and removed.actor_email


def test_a_serial_added_in_admin_is_stored_as_customers_type_it(staff_client, client) -> None:  # type: ignore[no-untyped-def]
    # Typed with a separator or in lower case, as printed on an old certificate, it was stored
    # as typed and no customer could ever redeem it (the wizard looks up the canonical form).
    version = ProductVersionFactory()
    data = {
        "version": version.pk,
        "kind": "new",
        "quantity": "1",
        "maintenance_months": "12",
        "printed_key": "",
        "expires_on": "",
    }
    response = staff_client.post(
        reverse("admin:licensing_serialnumber_add"), {**data, "code": "legacy-4711"}
    )
    assert response.status_code == 302
    assert SerialNumber.objects.get().code == "LEGACY4711"
    customer = client.__class__()
    customer.force_login(MembershipFactory().user)
    walk(customer, "LEGACY-4711")
    assert SerialNumber.objects.get().status == SerialNumber.Status.REDEEMED
    # The same code in another spelling is the same serial; nonsense is refused, not stored.
    again = staff_client.post(
        reverse("admin:licensing_serialnumber_add"), {**data, "code": "Legacy 4711"}
    )
    assert again.status_code == 200 and SerialNumber.objects.count() == 1
    bad = staff_client.post(reverse("admin:licensing_serialnumber_add"), {**data, "code": "??"})
    assert bad.status_code == 200 and "is not a valid serial number" in bad.content.decode()
    # The code the add page proposes (a generated one) is kept as it is.
    proposed = generate_code()
    staff_client.post(reverse("admin:licensing_serialnumber_add"), {**data, "code": proposed})
    assert SerialNumber.objects.filter(code=proposed).exists()


def _serial_form(version, **fields):  # type: ignore[no-untyped-def]
    return {
        "version": version.pk,
        "kind": "new",
        "quantity": "1",
        "maintenance_months": "12",
        "printed_key": "",
        "expires_on": "",
        **fields,
    }


def test_a_serial_added_in_admin_is_audited_as_generated_ones_are(staff_client) -> None:  # type: ignore[no-untyped-def]
    version = ProductVersionFactory(product__sku="WSS-GW", version="7.2")
    response = staff_client.post(
        reverse("admin:licensing_serialnumber_add"),
        _serial_form(version, code="legacy-4711", quantity="5"),
    )
    assert response.status_code == 302
    serial = SerialNumber.objects.get()
    event = AuditEvent.objects.get(action="serials.created")
    assert event.actor is not None and event.actor.is_staff
    assert (event.object_type, event.object_id) == ("licensing.serialnumber", str(serial.pk))
    assert event.details["codes"] == ["LEGACY4711"]
    assert event.details["reason"] == "staff"
    assert (event.details["product"], event.details["version"]) == ("WSS-GW", "7.2")
    assert (event.details["count"], event.details["quantity"]) == (1, 5)
    # A refused add writes nothing.
    staff_client.post(reverse("admin:licensing_serialnumber_add"), _serial_form(version, code="??"))
    assert AuditEvent.objects.filter(action="serials.created").count() == 1


def test_a_serial_changed_in_admin_is_audited(staff_client) -> None:  # type: ignore[no-untyped-def]
    # Only an open serial can change; a redemption or a void meanwhile is refused
    # (tests/licensing/test_admin_catalog_edits.py).
    serial = SerialNumberFactory(maintenance_months=12)
    url = reverse("admin:licensing_serialnumber_change", args=[serial.pk])
    form = {"maintenance_months": "24", "expires_on": "2030-01-31", "printed_key": ""}
    assert staff_client.post(url, form).status_code == 302
    serial.refresh_from_db()
    assert (serial.maintenance_months, serial.expires_on.isoformat()) == (24, "2030-01-31")
    assert serial.status == SerialNumber.Status.OPEN
    event = AuditEvent.objects.get(action="serial.changed")
    assert event.actor is not None and event.actor.is_staff
    assert {key: value for key, value in event.details.items() if key != "ip"} == {
        "code": serial.code,
        "from": {"maintenance_months": 12, "expires_on": None},
        "to": {"maintenance_months": 24, "expires_on": "2030-01-31"},
        "reason": "staff",
    }
    # Saved with no change: nothing to audit.
    assert staff_client.post(url, form).status_code == 302
    assert AuditEvent.objects.filter(action="serial.changed").count() == 1


def test_admin_filters_by_product_read_in_the_staff_language(staff_client) -> None:  # type: ignore[no-untyped-def]
    # The "By product" filter of the changelists is titled after ProductVersion.product, which
    # had no verbose name: pt-BR read "Por product". (The filter shows from two products on.)
    SerialNumberFactory()
    SerialNumberFactory()
    response = staff_client.get(
        reverse("admin:licensing_serialnumber_changelist"), HTTP_ACCEPT_LANGUAGE="pt-br"
    )
    text = response.content.decode()
    assert "Por produto" in text
    assert "Por product" not in text


def test_a_serial_import_is_read_no_further_than_its_limit(staff_client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # The staff import read the upload whole into memory, then refused it past 2 MB.
    from licensing import admin as licensing_admin
    from licensing.services import MAX_IMPORT_BYTES

    read: list[int] = []
    preview = licensing_admin.serials_import_preview

    def spy(*, upload):  # type: ignore[no-untyped-def]
        counted = ReadCounter(upload)
        result = preview(upload=counted)
        read.append(counted.total)
        return result

    monkeypatch.setattr(licensing_admin, "serials_import_preview", spy)
    upload = io.BytesIO(b"code,product,version\n" + b"x" * (3 * MAX_IMPORT_BYTES))
    upload.name = "serials.csv"
    response = staff_client.post(
        reverse("admin:licensing_serialnumber_import"), {"import_file": upload}
    )
    assert response.status_code == 200
    assert read == [MAX_IMPORT_BYTES + 1]
    assert "larger than 2 MB" in response.content.decode()
    assert not SerialNumber.objects.exists()


def test_staff_pages_of_the_portal_have_one_heading(staff_client) -> None:  # type: ignore[no-untyped-def]
    # The import, generate, void, publish and upload pages wrote their own <h1> under the one
    # the admin writes from their title: the title read twice, two top-level headings.
    version = ProductVersionFactory()
    generate = staff_client.post(
        reverse("admin:licensing_productversion_changelist"),
        {"action": "generate_serials", "_selected_action": [version.pk]},
    )
    serial = SerialNumberFactory()
    void = staff_client.post(
        reverse("admin:licensing_serialnumber_changelist"),
        {"action": "void_serials", "_selected_action": [serial.pk]},
    )
    pages = {
        "import": staff_client.get(reverse("admin:licensing_serialnumber_import")),
        "generate": generate,
        "void": void,
    }
    for name, page in pages.items():
        text = page.content.decode()
        assert page.status_code == 200, name
        assert text.count("<h1") == 1, (name, text.count("<h1"))
    generate_text = pages["generate"].content.decode()
    assert str(version) in generate_text.split("<h1")[1].split("</h1>")[0]
    # The browser tab says the same: the heading and the title come from one place.
    assert str(version) in generate_text.split("<title>")[1].split("</title>")[0]
