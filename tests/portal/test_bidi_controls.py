"""Unicode's directional overrides, embeddings and isolates are dropped from submitted text.

A company name starting with RIGHT-TO-LEFT OVERRIDE was stored as typed, and every page that
showed it after it (the result page's "Registered to … · account number") showed the rest of
the line reversed.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from licensing.models import License
from licensing.services import REGISTRATION_FIELDS
from portal.models import Membership, User
from tests.licensing.factories import LicenseFactory
from tests.portal.factories import MembershipFactory

pytestmark = pytest.mark.django_db

RLO, PDF, RLI, PDI = "\u202e", "\u202c", "\u2067", "\u2069"
RLM = "\u200f"


def test_a_registration_keeps_its_text_without_the_directional_controls(client) -> None:  # type: ignore[no-untyped-def]
    admin = MembershipFactory(role=Membership.Role.ADMIN)
    license = LicenseFactory(owner=admin.organization)
    client.force_login(admin.user)
    data = {name: str(getattr(license.registration, name)) for name in REGISTRATION_FIELDS}
    data["company"] = f"{RLO}שלום شركة{PDF} Ltd"
    data["technical_name"] = f"{RLI}Tiago{PDI}{RLM}"

    response = client.post(reverse("license-registration", kwargs={"pk": license.pk}), data)

    assert response.status_code == 302
    registration = License.objects.get(pk=license.pk).registration
    assert registration.company == "שלום شركة Ltd"
    # The marks that only nudge a neighbour (RLM, LRM) are ordinary text and stay.
    assert registration.technical_name == f"Tiago{RLM}"


def test_passwords_are_left_as_typed_and_names_are_cleaned(client) -> None:  # type: ignore[no-untyped-def]
    password = f"a-long-{RLO}unusual-passphrase"
    response = client.post(
        reverse("account_signup"),
        {
            "full_name": f"{RLO}Marina Silva",
            "email": "marina@acme.example",
            "password1": password,
            "password2": password,
            "organization_name": f"Acme{RLO} Manufacturing",
        },
    )
    assert response.status_code == 302
    user = User.objects.get(email="marina@acme.example")
    assert user.check_password(password)
    assert user.full_name == "Marina Silva"
    assert Membership.objects.get(user=user).organization.name == "Acme Manufacturing"
