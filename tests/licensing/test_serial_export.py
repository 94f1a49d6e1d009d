"""The serial number export cannot carry a spreadsheet formula, and a printed key is a key.

A row imported with printed_key =HYPERLINK("http://x") was accepted, and the admin's export
wrote it raw into the CSV, where a spreadsheet runs it.
"""

from __future__ import annotations

import csv
import io

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from licensing.models import SerialNumber, generate_code
from portal.models import AuditEvent
from tests.licensing.factories import ProductVersionFactory, SerialNumberFactory
from tests.portal.factories import UserFactory

pytestmark = pytest.mark.django_db

FORMULA = '=HYPERLINK("http://x")'
REFUSED = "letters, digits and dashes only"


@pytest.fixture
def staff_client(client):  # type: ignore[no-untyped-def]
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def _export(client) -> list[dict[str, str]]:  # type: ignore[no-untyped-def]
    fields = ["code", "product", "version", "printed_key"]
    response = client.post(
        reverse("admin:licensing_serialnumber_export"),
        {"resource": "0", "format": "0", **{f"serialnumberresource_{f}": "on" for f in fields}},
    )
    assert response.status_code == 200, response.content[:2000]
    return list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))


def test_the_export_escapes_what_a_spreadsheet_would_run(staff_client) -> None:  # type: ignore[no-untyped-def]
    # Stored before the import and the form refused such keys; SKU and version typed by staff.
    serial = SerialNumberFactory(
        printed_key=FORMULA, version__product__sku="@SUM(A1)", version__version="+1"
    )
    plain = SerialNumberFactory(printed_key="ABCDE-FGHJK-MNPQR-STVWX-YZ012")
    rows = {row["code"]: row for row in _export(staff_client)}
    assert rows[serial.code]["printed_key"] == "'" + FORMULA
    assert rows[serial.code]["product"] == "'@SUM(A1)"
    assert rows[serial.code]["version"] == "'+1"
    assert rows[plain.code]["printed_key"] == "ABCDE-FGHJK-MNPQR-STVWX-YZ012"


def test_the_import_refuses_a_printed_key_that_is_no_key(staff_client) -> None:  # type: ignore[no-untyped-def]
    ProductVersionFactory(product__sku="WSS-GW", version="7.2")
    code = generate_code()
    upload = io.BytesIO(
        (
            "code,product,version,kind,quantity,maintenance_months,expires_on,printed_key\n"
            f'{code},WSS-GW,7.2,new,1,12,,"{FORMULA.replace(chr(34), chr(34) * 2)}"\n'
        ).encode()
    )
    upload.name = "serials.csv"
    response = staff_client.post(
        reverse("admin:licensing_serialnumber_import"), {"import_file": upload}
    )
    assert response.status_code == 200
    assert REFUSED in response.content.decode()
    staff_client.post(reverse("admin:licensing_serialnumber_import"), {"confirm": "1"})
    assert not SerialNumber.objects.exists()


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("abcde fghjk mnpqr stvwx yz012", "ABCDE-FGHJK-MNPQR-STVWX-YZ012"),
        ("legacy-key-0042", "LEGACY-KEY-0042"),
        (FORMULA, None),
        ("KEY;1", None),
    ],
)
def test_the_admin_form_stores_a_printed_key_as_an_import_does(staff_client, typed, stored) -> None:  # type: ignore[no-untyped-def]
    version = ProductVersionFactory()
    response = staff_client.post(
        reverse("admin:licensing_serialnumber_add"),
        {
            "code": generate_code(),
            "version": version.pk,
            "kind": "new",
            "quantity": "1",
            "maintenance_months": "12",
            "printed_key": typed,
            "expires_on": "",
        },
    )
    if stored is None:
        assert response.status_code == 200
        assert REFUSED in str(response.context["adminform"].form.errors["printed_key"])
        assert not SerialNumber.objects.exists()
    else:
        assert response.status_code == 302
        assert SerialNumber.objects.get().printed_key == stored


def test_the_export_takes_the_change_permission_and_is_audited(client) -> None:  # type: ignore[no-untyped-def]
    # A view-only staff user exported every open serial number, with no trace.
    SerialNumberFactory()
    SerialNumberFactory(status=SerialNumber.Status.VOID)
    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.set(Permission.objects.filter(codename="view_serialnumber"))
    client.force_login(viewer)
    assert client.get(reverse("admin:licensing_serialnumber_export")).status_code == 403
    changelist = client.get(reverse("admin:licensing_serialnumber_changelist")).content.decode()
    assert reverse("admin:licensing_serialnumber_export") not in changelist
    assert not AuditEvent.objects.filter(action="serials.exported").exists()
    staff = UserFactory(is_staff=True)
    staff.user_permissions.set(
        Permission.objects.filter(codename__in=["view_serialnumber", "change_serialnumber"])
    )
    client.force_login(staff)
    assert len(_export(client)) == 2
    event = AuditEvent.objects.get(action="serials.exported")
    assert event.actor == staff
    assert (event.details["count"], event.details["open"]) == (2, 1)
