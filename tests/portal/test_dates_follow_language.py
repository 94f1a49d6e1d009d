"""Dates follow the active language: 02/12/2026 in pt-BR, ISO in English, on pages, in emails
and PDFs; CSV exports keep ISO."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import translation

from licensing.models import License
from licensing.selectors import UpgradedSeats
from licensing.services import license_email_again
from licensing.views.certificate import _facts
from portal.formats import short_date
from tests.licensing.factories import LicenseFactory
from tests.portal.factories import MembershipFactory

pytestmark = pytest.mark.django_db

TEMPLATES = Path(settings.BASE_DIR) / "templates"


def test_short_date_per_language() -> None:
    day = date(2026, 12, 2)
    with translation.override("en"):
        assert short_date(day) == "2026-12-02"
        assert short_date("2026-12-02") == "2026-12-02"
    with translation.override("pt-br"):
        assert short_date(day) == "02/12/2026"
        assert short_date("2026-12-02") == "02/12/2026"


@pytest.fixture
def licensed() -> Any:
    admin = MembershipFactory()
    license = LicenseFactory(
        owner=admin.organization,
        maintenance_start=date(2025, 12, 2),
        maintenance_end=date(2026, 12, 2),
    )
    return admin, license


def test_license_page_writes_dates_in_the_language(client: Client, licensed: Any) -> None:
    admin, license = licensed
    client.force_login(admin.user)
    url = reverse("license-detail", kwargs={"pk": license.pk})
    assert "02/12/2026" in client.get(url, HTTP_ACCEPT_LANGUAGE="pt-br").content.decode()
    english = client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "2026-12-02" in english and "02/12/2026" not in english


def test_email_writes_dates_in_the_language(
    licensed: Any, django_capture_on_commit_callbacks: Any
) -> None:
    admin, license = licensed
    with translation.override("pt-br"), django_capture_on_commit_callbacks(execute=True):
        license_email_again(license=license, actor=admin.user)
    assert "02/12/2025 – 02/12/2026" in mail.outbox[-1].body


def test_certificate_pdf_facts_write_dates_in_the_language(licensed: Any) -> None:
    _admin, license = licensed
    with translation.override("pt-br"):
        facts = {
            str(label): value for label, value in _facts(license, UpgradedSeats(count=0, to=None))
        }
    assert facts["Manutenção"] == "02/12/2025 – 02/12/2026"


def test_csv_export_keeps_iso_dates(client: Client, licensed: Any) -> None:
    admin, _license = licensed
    client.force_login(admin.user)
    response = client.get(
        reverse("license-export", kwargs={"fmt": "csv"}), HTTP_ACCEPT_LANGUAGE="pt-br"
    )
    body = b"".join(response.streaming_content).decode()
    assert "2026-12-02" in body and "02/12/2026" not in body


def test_no_template_hard_codes_an_iso_date_format() -> None:
    """Dates in templates go through SHORT_DATE_FORMAT (portal/formats/<lang>/formats.py)."""
    offenders = [
        str(path.relative_to(TEMPLATES))
        for path in TEMPLATES.rglob("*.*")
        if '|date:"Y-m-d' in path.read_text()
    ]
    assert not offenders, offenders


def test_license_history_is_written_in_the_language(client: Client, licensed: Any) -> None:
    # The history showed a renewal's dates in ISO, a registration change by its field names
    # ("technical_email, company") and a share's access by its stored value ("manage"), in
    # Portuguese as in English.
    from licensing.services import license_renew, license_share, registration_update

    admin, license = licensed
    # Renewed before it ends (one renewed after it lapsed starts a new period: another
    # sentence), whatever day the test runs.
    License.objects.filter(pk=license.pk).update(maintenance_end=date(2099, 12, 2))
    license.refresh_from_db()
    license_renew(
        license=license, months=12, registration=None, acting_user=admin.user, reference="R"
    )
    registration_update(
        license=license,
        actor=admin.user,
        data={"technical_email": "nova@acme.example", "company": "Acme Brasil"},
    )
    license_share(
        licenses=[license], email="ana@parceiro.example", access="manage", actor=admin.user
    )
    client.force_login(admin.user)
    url = reverse("license-detail", kwargs={"pk": license.pk})
    page = client.get(url, HTTP_ACCEPT_LANGUAGE="pt-br").content.decode()
    license.refresh_from_db()
    end = license.maintenance_end
    assert f"Manutenção renovada: 02/12/2099 → {end:%d/%m/%Y}" in page
    assert "e-mail do contato técnico" in page and "technical_email" not in page
    assert "(Gerenciar)" in page and "(manage)" not in page
    english = client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert f"Maintenance renewed: 2099-12-02 → {end.isoformat()}" in english
    assert "technical contact email" in english and "(Manage)" in english
