"""The custom data CSV upload drops Unicode's directional controls from its cells, as every
typed value loses them (portal.middleware.BidiControlsMiddleware): a cell "\u202eNIAM\u202c HQ"
was stored as is, and showed reversed on every page after it."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from licensing.models import CustomField, CustomFieldValue
from portal.models import Membership
from tests.licensing.factories import LicenseFactory
from tests.portal.factories import MembershipFactory

pytestmark = pytest.mark.django_db

RLO, PDF, LRI, PDI, RLM = "\u202e", "\u202c", "\u2066", "\u2069", "\u200f"


def test_an_uploaded_cell_is_stored_without_the_directional_controls(client) -> None:  # type: ignore[no-untyped-def]
    admin = MembershipFactory(role=Membership.Role.ADMIN)
    client.force_login(admin.user)
    field = CustomField.objects.create(organization=admin.organization, name="Site")
    license = LicenseFactory(owner=admin.organization)
    content = f"key,Site\n{license.key},{RLO}NIAM{PDF} {LRI}HQ{PDI}{RLM}\n".encode()

    preview = client.post(
        reverse("custom-values-csv"),
        {"file": SimpleUploadedFile("site.csv", content, "text/csv")},
    )
    assert preview.status_code == 200
    client.post(
        reverse("custom-values-csv"),
        {"confirm": "1", "preview": preview.context["preview_token"]},
    )

    # The marks that only nudge a neighbour (RLM) are ordinary text and stay.
    assert CustomFieldValue.objects.get(license=license, field=field).value == f"NIAM HQ{RLM}"
