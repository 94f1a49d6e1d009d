"""The certificate of an upgraded license says where its seats went, as the license page does,
instead of "Quantity 0" (HTML and PDF)."""

from __future__ import annotations

import io
import re

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from pypdf import PdfReader

from licensing.models import License
from portal.models import Membership
from tests.licensing.factories import REGISTRATION, LicenseFactory
from tests.portal.factories import MembershipFactory
from tests.upgrades.factories import catalog, licensed
from upgrades.models import UpgradeLine
from upgrades.services import notifications_create, upgrade_redeem

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin() -> Membership:
    return MembershipFactory(role=Membership.Role.ADMIN)


def _upgrade(admin: Membership, quantity: int, upgrades: list[int]) -> License:
    """A license of `quantity` seats of which each of `upgrades` went to version 15.0."""
    old, new = catalog()
    source = licensed(admin.organization, old, quantity=quantity)
    notifications_create(version=new, today=timezone.localdate())
    line = UpgradeLine.objects.get(source_license=source)
    for index, seats in enumerate(upgrades):
        upgrade_redeem(
            line_id=line.pk,
            quantity=seats,
            organization=admin.organization,
            registration=REGISTRATION,
            actor=admin.user,
            token=f"token-{index}",
        )
    source.refresh_from_db()
    return source


def _html_quantity(client: Client, license: License, language: str = "en") -> str:
    html = client.get(
        reverse("license-certificate", args=[license.pk]), HTTP_ACCEPT_LANGUAGE=language
    ).content.decode()
    facts = dict(re.findall(r"<dt[^>]*>(.*?)</dt>\s*<dd[^>]*>(.*?)</dd>", html, re.S))
    return " ".join(facts["Quantidade" if language == "pt-br" else "Quantity"].split())


def _pdf_text(client: Client, license: License) -> str:
    response = client.get(reverse("license-certificate-pdf", args=[license.pk]))
    assert response.status_code == 200
    page = PdfReader(io.BytesIO(response.content)).pages[0]
    return " ".join(page.extract_text().split())


def test_a_wholly_upgraded_licenses_certificate_says_where_its_seats_went(
    client: Client, admin: Membership
) -> None:
    source = _upgrade(admin, 25, [25])
    assert (source.quantity, source.status) == (0, License.Status.SUPERSEDED)
    client.force_login(admin.user)
    assert _html_quantity(client, source) == "All 25 seats were upgraded to version 15.0"
    assert _html_quantity(client, source, "pt-br") == (
        "Todas as 25 licenças de uso passaram por upgrade para versão 15.0"
    )
    text = _pdf_text(client, source)
    assert "All 25 seats were upgraded to version 15.0" in text
    assert not re.search(r"Quantity\s*0\b", text)


def test_several_upgrades_name_each_licenses_share(client: Client, admin: Membership) -> None:
    source = _upgrade(admin, 5, [3, 2])
    client.force_login(admin.user)
    assert _html_quantity(client, source) == (
        "All 5 seats were upgraded to version 15.0 (3), version 15.0 (2)"
    )


def test_a_partly_upgraded_licenses_certificate_keeps_its_quantity(
    client: Client, admin: Membership
) -> None:
    source = _upgrade(admin, 25, [20])
    client.force_login(admin.user)
    assert _html_quantity(client, source) == "5 (20 more seats were upgraded to version 15.0)"


def test_a_license_never_upgraded_prints_its_quantity(client: Client, admin: Membership) -> None:
    license = LicenseFactory(owner=admin.organization, quantity=7)
    client.force_login(admin.user)
    assert _html_quantity(client, license) == "7"
