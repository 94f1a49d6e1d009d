"""The printable license certificate: an HTML print view and a PDF, both with a QR code."""

from __future__ import annotations

import io
from uuid import UUID

import segno
from django.conf import settings
from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.formats import short_date
from portal.http import PortalRequest, organization_required
from portal.policy import Action

from ..models import License
from ..selectors import license_for


def _facts(license: License) -> list[tuple[str, str]]:
    product = license.version.product
    facts = [
        (_("Product"), f"{product.name} ({product.sku})"),
        (_("Version"), license.version.version),
        (_("Quantity"), str(license.quantity)),
        (
            _("Maintenance"),
            f"{short_date(license.maintenance_start)} – {short_date(license.maintenance_end)}",
        ),
        (_("Licensed to"), f"{license.owner.name} ({license.owner.account_number})"),
        (_("Status"), str(license.get_status_display())),
    ]
    if license.host_id:
        facts.insert(3, (_("Host ID"), license.host_id))
    return facts


@organization_required(action=(Action.VIEW_LICENSES, Action.VIEW_OWN_RESULTS))
def license_certificate(request: PortalRequest, pk: UUID) -> HttpResponse:
    license = license_for(actor=request.user, organization=request.organization, pk=pk)
    qr_svg = segno.make(license.key, error="m").svg_inline(scale=4, dark="#000")
    return render(
        request,
        "licensing/certificate.html",
        {
            "license": license,
            "facts": _facts(license),
            "qr_svg": qr_svg,
            "printed_on": timezone.localdate(),
        },
    )


def _pdf_lines(text: str, font: str, size: float, width: float) -> list[str]:
    """`text` in lines no wider than `width` points: broken between words, and a word wider
    than a line (a host ID of many MAC addresses, 200 characters without a space) between
    characters, since drawString would run it off the page."""
    from reportlab.lib.utils import simpleSplit
    from reportlab.pdfbase.pdfmetrics import stringWidth

    lines: list[str] = []
    for line in simpleSplit(text, font, size, width) or [""]:
        while stringWidth(line, font, size) > width:
            cut = len(line) - 1
            while cut > 1 and stringWidth(line[:cut], font, size) > width:
                cut -= 1
            lines.append(line[:cut])
            line = line[cut:]
        lines.append(line)
    return lines


@organization_required(action=(Action.VIEW_LICENSES, Action.VIEW_OWN_RESULTS))
def license_certificate_pdf(request: PortalRequest, pk: UUID) -> HttpResponse:
    # reportlab is loaded by the first PDF a process renders, not by every web worker at start:
    # it is about 8 MB of a worker's resident memory, for a page few requests ask for.
    from reportlab.graphics import renderPDF
    from reportlab.graphics.barcode.qr import QrCodeWidget
    from reportlab.graphics.shapes import Drawing
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.pdfgen import canvas

    license = license_for(actor=request.user, organization=request.organization, pk=pk)
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4, pageCompression=1)
    pdf.setTitle(_("License certificate") + f" {license.key}")
    width, height = A4
    y = height - 30 * mm
    pdf.setFont("Helvetica-Bold", 20)
    pdf.drawString(25 * mm, y, _("License certificate"))
    y -= 10 * mm
    pdf.setFont("Helvetica", 10)
    pdf.drawString(25 * mm, y, str(settings.PORTAL_SITE_NAME))
    y -= 18 * mm
    pdf.setFont("Helvetica", 10)
    pdf.drawString(25 * mm, y, _("License key"))
    y -= 8 * mm
    pdf.setFont("Courier-Bold", 16)
    pdf.drawString(25 * mm, y, license.key)
    y -= 14 * mm
    value_width = width - 70 * mm - 25 * mm
    for label, value in _facts(license):
        pdf.setFont("Helvetica-Bold", 11)
        pdf.drawString(25 * mm, y, label)
        pdf.setFont("Helvetica", 11)
        for line in _pdf_lines(value, "Helvetica", 11, value_width):
            pdf.drawString(70 * mm, y, line)
            y -= 5 * mm
        y -= 3 * mm
    widget = QrCodeWidget(license.key, barLevel="M")
    left, bottom, right, top = widget.getBounds()
    size = 45 * mm
    drawing = Drawing(
        size, size, transform=[size / (right - left), 0, 0, size / (top - bottom), 0, 0]
    )
    drawing.add(widget)
    renderPDF.draw(drawing, pdf, width - 25 * mm - size, height - 30 * mm - size)
    pdf.setFont("Helvetica", 8)
    pdf.drawString(
        25 * mm,
        20 * mm,
        _("Printed on %(date)s. Keep this certificate with your records.")
        % {"date": short_date(timezone.localdate())},
    )
    pdf.showPage()
    pdf.save()
    response = HttpResponse(buffer.getvalue(), content_type="application/pdf")
    response["Content-Disposition"] = (
        f'attachment; filename="certificate-{license.key[-5:].lower()}.pdf"'
    )
    return response
