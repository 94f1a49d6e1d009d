"""The license certificate PDF: every fact fits on the page, however long it is."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from reportlab.lib.pagesizes import A4
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas

from tests.licensing.factories import LicenseFactory
from tests.portal.factories import MembershipFactory

pytestmark = pytest.mark.django_db


def test_long_host_id_and_names_are_wrapped_within_the_page(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = MembershipFactory()
    client.force_login(admin.user)
    organization = admin.organization
    organization.name = "Companhia Brasileira de Distribuição e Engenharia " * 4
    organization.save(update_fields=["name"])
    host_id = ",".join(f"00:1A:2B:3C:4D:{n:02X}" for n in range(11))  # 197 characters
    license = LicenseFactory(owner=organization, host_id=host_id)
    drawn: list[tuple[float, str, float]] = []
    original = Canvas.drawString

    def record(canvas: Canvas, x: float, y: float, text: str, *args: Any, **kwargs: Any) -> Any:
        width = stringWidth(text, canvas._fontname, canvas._fontsize)
        drawn.append((x + width, text, y))
        return original(canvas, x, y, text, *args, **kwargs)

    monkeypatch.setattr(Canvas, "drawString", record)
    response = client.get(reverse("license-certificate-pdf", kwargs={"pk": license.pk}))
    assert response.status_code == 200 and response.content.startswith(b"%PDF")
    page_width = A4[0]
    for right, text, _y in drawn:
        assert right <= page_width, f"runs off the page: {text!r}"
    written = "".join(text for _right, text, _y in drawn)
    assert host_id in written, "the host ID is cut"
    assert organization.name.strip() in " ".join(text for _right, text, _y in drawn)
