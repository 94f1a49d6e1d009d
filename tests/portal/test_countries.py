"""Countries are codes from a select, shown translated; free text from before is converted."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from django.urls import reverse
from django.utils import translation

from portal.countries import country_code
from portal.models import Organization
from portal.templatetags.portal_format import country_name
from tests.portal.factories import UserFactory

BEFORE = [
    ("portal", "0005_auditevent_append_only"),
    ("licensing", "0009_license_partner"),
    ("enterprise_flex", "0001_initial"),
]
AFTER = [
    ("portal", "0006_countries_as_codes"),
    ("licensing", "0010_countries_as_codes"),
    ("enterprise_flex", "0002_countries_as_codes"),
]


@pytest.mark.parametrize(
    ("typed", "code"),
    [
        ("Brazil", "BR"),
        ("Brasil", "BR"),
        ("  brasil ", "BR"),
        ("br", "BR"),
        ("BRA", "BR"),
        ("Alemanha", "DE"),
        ("Estados Unidos", "US"),
        ("USA", "US"),
        ("México", "MX"),
        ("Mexico", "MX"),
        ("Narnia", None),
        ("", None),
    ],
)
def test_typed_countries_are_recognised_in_english_and_portuguese(
    typed: str, code: str | None
) -> None:
    assert country_code(typed) == code


def test_country_names_follow_the_language() -> None:
    assert country_name("DE") == "Germany"
    with translation.override("pt-br"):
        assert country_name("DE") == "Alemanha"
    assert country_name("") == ""
    assert country_name("Narnia") == "Narnia"  # not a code: shown as it is


@pytest.mark.django_db(transaction=True)
def test_migration_turns_free_text_into_codes_and_keeps_what_it_cannot_read() -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    apps = executor.loader.project_state(BEFORE).apps
    old_org = apps.get_model("portal", "Organization")
    old_reg = apps.get_model("licensing", "SupportRegistration")
    brazil = old_org.objects.create(name="A", account_number="10000001", country="Brasil")
    germany = old_org.objects.create(name="B", account_number="10000002", country="Germany")
    unknown = old_org.objects.create(name="C", account_number="10000003", country="Narnia")
    empty = old_org.objects.create(name="D", account_number="10000004", country="")
    registration = old_reg.objects.create(
        organization_id=brazil.pk,
        company="A",
        address="x",
        country="brazil",
        primary_name="p",
        primary_email="p@a.example",
        primary_phone="1",
        technical_name="t",
        technical_email="t@a.example",
        technical_phone="2",
    )

    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)
    executor.loader.build_graph()
    rows = {
        org.pk: (str(org.country), org.country_legacy)
        for org in Organization.objects.filter(pk__in=[brazil.pk, germany.pk, unknown.pk, empty.pk])
    }
    assert rows == {
        brazil.pk: ("BR", ""),
        germany.pk: ("DE", ""),
        unknown.pk: ("", "Narnia"),  # kept for staff to see
        empty.pk: ("", ""),
    }
    from licensing.models import SupportRegistration

    assert SupportRegistration.objects.get(pk=registration.pk).country == "BR"
    Organization.objects.filter(pk__in=rows).delete()
    SupportRegistration.objects.filter(pk=registration.pk).delete()
    # Back to the latest schema, not AFTER: the tests that follow need every later migration.
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db
def test_organization_form_offers_a_select_of_countries_and_stores_the_code(
    client: Client,
) -> None:
    client.force_login(UserFactory())
    page = client.get(reverse("organization-create"), HTTP_ACCEPT_LANGUAGE="pt-br")
    html = page.content.decode()
    assert '<select name="country"' in html
    assert '<option value="DE">Alemanha</option>' in html
    client.post(reverse("organization-create"), {"name": "Solo Co", "country": "DE"})
    assert Organization.objects.get(name="Solo Co").country == "DE"
    refused = client.post(
        reverse("organization-create", query={"new": "1"}), {"name": "X", "country": "Narnia"}
    )
    assert refused.status_code == 200
    assert not Organization.objects.filter(name="X").exists()


@pytest.mark.django_db
def test_staff_see_a_country_that_was_not_recognised(admin_client: Any) -> None:
    organization = Organization.objects.create(name="Legacy", country_legacy="Narnia")
    page = admin_client.get(reverse("admin:portal_organization_change", args=[organization.pk]))
    assert "Narnia" in page.content.decode()


def test_country_names_read_as_brazilians_write_them() -> None:
    # django-countries' pt_BR catalog has European Portuguese names ("Eslovénia", "Iémen") and
    # calls Dominica "Dominicana"; the portal's catalog overrides them (portal/country_names.py).
    from django.utils import translation
    from django_countries import countries

    with translation.override("pt-br"):
        names = {code: str(countries.name(code)) for code in ("SI", "LV", "YE", "DM", "MC", "AX")}
    assert names == {
        "SI": "Eslovênia",
        "LV": "Letônia",
        "YE": "Iêmen",
        "DM": "Dominica",
        "MC": "Mônaco",
        "AX": "Ilhas Åland",
    }
