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
from django.utils.translation import ngettext

from portal.formats import short_date
from portal.http import PortalRequest, organization_required
from portal.policy import Action

from .. import pdftext
from ..models import License
from ..selectors import UpgradedSeats, license_for, license_upgraded_seats, related_licenses


def _quantity(license: License, upgraded: UpgradedSeats) -> str:
    """The quantity as the license page says it (license_detail.html and _upgraded_to.html, in
    plain text): a wholly upgraded license printed "Quantity 0"."""
    if not upgraded.count:
        return str(license.quantity)
    several = len(upgraded.to) > 1  # each license's share is named only when there are several
    versions = [
        _("version %(version)s (%(quantity)s)")
        % {"version": newer.version.version, "quantity": seats}
        if several
        else _("version %(version)s") % {"version": newer.version.version}
        for newer, seats in upgraded.to
    ]
    where = ", ".join(versions) or _("a newer version")
    if license.quantity == 0:
        went = ngettext(
            "The %(counter)s seat was upgraded to",
            "All %(counter)s seats were upgraded to",
            upgraded.count,
        )
        return f"{went % {'counter': upgraded.count}} {where}"
    more = ngettext(
        "%(counter)s more seat was upgraded to",
        "%(counter)s more seats were upgraded to",
        upgraded.count,
    )
    return f"{license.quantity} ({more % {'counter': upgraded.count}} {where})"


def _facts(license: License, upgraded: UpgradedSeats) -> list[tuple[str, str]]:
    product = license.version.product
    facts = [
        (_("Product"), f"{product.name} ({product.sku})"),
        (_("Version"), license.version.version),
        (_("Quantity"), _quantity(license, upgraded)),
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


def _upgraded(request: PortalRequest, license: License) -> UpgradedSeats:
    related = related_licenses(
        actor=request.user, organization=request.organization, license=license
    )
    return license_upgraded_seats(license, successors=related.successors)


@organization_required(action=(Action.VIEW_LICENSES, Action.VIEW_OWN_RESULTS))
def license_certificate(request: PortalRequest, pk: UUID) -> HttpResponse:
    license = license_for(actor=request.user, organization=request.organization, pk=pk)
    qr_svg = segno.make(license.key, error="m").svg_inline(scale=4, dark="#000")
    return render(
        request,
        "licensing/certificate.html",
        {
            "license": license,
            "facts": _facts(license, _upgraded(request, license)),
            "qr_svg": qr_svg,
            "printed_on": timezone.localdate(),
        },
    )


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
    pdftext.draw(pdf, 25 * mm, y, _("License certificate"), size=20, bold=True)
    y -= 10 * mm
    size = 45 * mm  # the QR code's, at the top right
    for line in pdftext.wrap(
        str(settings.PORTAL_SITE_NAME), size=10, width=width - 25 * mm - size - 30 * mm
    ):
        pdftext.draw(pdf, 25 * mm, y, line, size=10)
        y -= 4.5 * mm
    y -= 13.5 * mm
    pdftext.draw(pdf, 25 * mm, y, _("License key"), size=10)
    y -= 8 * mm
    # The key is Crockford base32: ASCII, and Courier keeps its groups in columns.
    pdf.setFont("Courier-Bold", 16)
    pdf.drawString(25 * mm, y, license.key)
    y -= 14 * mm
    label_width = 70 * mm - 25 * mm - 3 * mm
    value_width = width - 70 * mm - 25 * mm
    for label, value in _facts(license, _upgraded(request, license)):
        labels = pdftext.wrap(label, size=11, width=label_width, bold=True)
        values = pdftext.wrap(value, size=11, width=value_width)
        # A right-to-left value (a name in Arabic or Hebrew) starts at its column's right edge,
        # as it is read: left-aligned, its lines ended ragged where a reader starts them.
        rtl = pdftext.right_to_left(value)
        for n in range(max(len(labels), len(values))):
            if n < len(labels):
                pdftext.draw(pdf, 25 * mm, y, labels[n], size=11)
            if n < len(values):
                indent = value_width - pdftext.measure(values[n], 11) if rtl else 0
                pdftext.draw(pdf, 70 * mm + indent, y, values[n], size=11)
            y -= 5 * mm
        y -= 3 * mm
    widget = QrCodeWidget(license.key, barLevel="M")
    left, bottom, right, top = widget.getBounds()
    drawing = Drawing(
        size, size, transform=[size / (right - left), 0, 0, size / (top - bottom), 0, 0]
    )
    drawing.add(widget)
    renderPDF.draw(drawing, pdf, width - 25 * mm - size, height - 30 * mm - size)
    pdftext.draw(
        pdf,
        25 * mm,
        20 * mm,
        _("Printed on %(date)s. Keep this certificate with your records.")
        % {"date": short_date(timezone.localdate())},
        size=8,
    )
    pdf.showPage()
    pdf.save()
    response = HttpResponse(buffer.getvalue(), content_type="application/pdf")
    response["Content-Disposition"] = (
        f'attachment; filename="certificate-{license.key[-5:].lower()}.pdf"'
    )
    return response
