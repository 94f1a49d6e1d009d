"""The true-up report as CSV and as PDF (reportlab: a table and a bar chart, in the user's
language). Values are included: only super users run these exports."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from xml.sax.saxutils import escape

from django.utils import timezone
from django.utils.translation import gettext as _
from reportlab.graphics.charts.barcharts import HorizontalBarChart
from reportlab.graphics.charts.legends import Legend
from reportlab.graphics.shapes import Drawing
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle
from reportlab.platypus.flowables import Flowable

from licensing import pdftext
from portal.formats import short_date

from .selectors import TrueUp, TrueUpRow

SERIES_COLORS = (colors.HexColor("#6c757d"), colors.HexColor("#0d6efd"), colors.HexColor("#198754"))


def _csv_safe(value: object) -> object:
    # Spreadsheet apps run cells that start with these as formulas (CSV injection).
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def true_up_csv(result: TrueUp) -> str:
    """One row per line, with the report's context in the first rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    year = result.contract_year
    writer.writerow(["contract", result.contract.number])
    writer.writerow(["customer", _csv_safe(result.contract.organization.name)])
    writer.writerow(["year", year.number, year.start.isoformat(), year.end.isoformat()])
    writer.writerow(["deployed_from", result.deployed_source])
    writer.writerow([])
    writer.writerow(
        [
            "sku",
            "product",
            "version",
            "committed",
            "deployed",
            "drawn_down_to_date",
            "drawn_down_in_year",
            "overage",
            "unit_value",
            "currency",
            "overage_value",
        ]
    )
    for row in result.rows:
        product = row.line.version.product
        writer.writerow(
            [
                _csv_safe(product.sku),
                _csv_safe(product.name),
                _csv_safe(row.line.version.version),
                row.committed,
                row.deployed,
                row.drawn_to_date,
                row.drawn_in_year,
                row.overage,
                row.line.unit_value,
                row.line.currency,
                row.overage_value,
            ]
        )
    for currency, total in sorted(result.totals.items()):
        writer.writerow(["total", "", "", "", "", "", "", "", "", currency, total])
    return buffer.getvalue()


def _money(value: Decimal, currency: str) -> str:
    return f"{currency} {value:,.2f}"


BAR_GROUP = 3 * 7 + 6  # three bars of 7 pt and the gap between products
# Products per chart: a drawing cannot break across pages, so 50 lines make several charts.
ROWS_PER_CHART = 14


def _charts(result: TrueUp, width: float) -> list[Flowable]:
    rows = result.rows
    return [
        _chart(rows[first : first + ROWS_PER_CHART], width)
        for first in range(0, len(rows), ROWS_PER_CHART)
    ]


def _chart(rows: list[TrueUpRow], width: float) -> Flowable:
    height = max(60.0, len(rows) * BAR_GROUP) + 40
    drawing = Drawing(width, height)
    chart = HorizontalBarChart()
    chart.x, chart.y = 150, 30
    chart.width, chart.height = width - 170, height - 40
    chart.data = [
        [row.committed for row in rows],
        [row.deployed for row in rows],
        [row.drawn_to_date for row in rows],
    ]
    chart.categoryAxis.categoryNames = [row.product_label[:38] for row in rows]
    chart.categoryAxis.labels.fontSize = 7
    chart.categoryAxis.labels.fontName = pdftext.sans()
    chart.categoryAxis.reverseDirection = 1
    chart.valueAxis.valueMin = 0
    chart.valueAxis.labels.fontSize = 7
    chart.valueAxis.labels.fontName = pdftext.sans()
    chart.barWidth = 6
    chart.groupSpacing = 6
    for index, color in enumerate(SERIES_COLORS):
        chart.bars[index].fillColor = color
        chart.bars[index].strokeColor = None
    drawing.add(chart)
    legend = Legend()
    legend.x, legend.y = 150, 12
    legend.fontSize = 8
    legend.fontName = pdftext.sans()
    legend.alignment = "right"
    legend.columnMaximum = 1
    legend.colorNamePairs = list(
        zip(SERIES_COLORS, [_("Committed"), _("Deployed"), _("Drawn down")], strict=True)
    )
    drawing.add(legend)
    return drawing


def true_up_pdf(result: TrueUp) -> bytes:
    """A landscape A4 report: heading, figures table, totals and the chart."""
    buffer = io.BytesIO()
    year = result.contract_year
    contract = result.contract
    document = SimpleDocTemplate(
        buffer,
        pagesize=landscape(A4),
        leftMargin=15 * mm,
        rightMargin=15 * mm,
        topMargin=15 * mm,
        bottomMargin=15 * mm,
        title=_("True-up") + f" {contract.number} " + _("year %(year)s") % {"year": year.number},
    )
    styles = getSampleStyleSheet()
    story: list[Flowable] = [
        # Paragraphs read markup: every text is escaped (a customer named "A&B <Ltd>"), and
        # drawn in fonts that have its glyphs ("株式会社", "Москва"; licensing.pdftext).
        Paragraph(
            pdftext.markup(
                _("True-up, contract %(number)s, year %(year)s")
                % {"number": contract.number, "year": year.number},
                bold=True,
            ),
            styles["Title"],
        ),
        Paragraph(
            pdftext.markup(
                _("%(customer)s · %(start)s to %(end)s · printed on %(today)s")
                % {
                    "customer": contract.organization.name,
                    "start": short_date(year.start),
                    "end": short_date(year.end),
                    "today": short_date(timezone.localdate()),
                }
            ),
            styles["Normal"],
        ),
        Paragraph(escape(_deployed_note(result)), styles["Italic"]),
        Spacer(1, 6 * mm),
    ]
    header = [
        _("Product"),
        _("Committed"),
        _("Deployed"),
        _("Drawn down"),
        _("Overage"),
        _("Unit value"),
        _("Overage value"),
    ]
    label_style = ParagraphStyle("label", fontName=pdftext.sans(), fontSize=8, leading=10)
    data: list[list[str | Paragraph]] = [header]
    for row in result.rows:
        data.append(
            [
                Paragraph(pdftext.markup(row.product_label), label_style),
                f"{row.committed:,}",
                f"{row.deployed:,}",
                f"{row.drawn_to_date:,}",
                f"{row.overage:,}",
                _money(row.line.unit_value, row.line.currency),
                _money(row.overage_value, row.line.currency),
            ]
        )
    for currency, total in sorted(result.totals.items()):
        data.append([_("Total overage value"), "", "", "", "", "", _money(total, currency)])
    table = Table(data, repeatRows=1, colWidths=[95 * mm] + [27 * mm] * 6)
    table.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, -1), pdftext.sans()),
                ("FONTNAME", (0, 0), (-1, 0), pdftext.sans(bold=True)),
                ("FONTSIZE", (0, 0), (-1, -1), 8),
                ("ALIGN", (1, 0), (-1, -1), "RIGHT"),
                ("LINEBELOW", (0, 0), (-1, 0), 0.6, colors.black),
                ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.HexColor("#f3f4f6")]),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
            ]
        )
    )
    story += [table, Spacer(1, 8 * mm)]
    # A little narrower than the frame, which pads its content.
    story += _charts(result, document.width - 24)
    document.build(story)
    return buffer.getvalue()


def _deployed_note(result: TrueUp) -> str:
    if result.report is None:
        return _("No deployment report yet: deployed figures are what was drawn down.")
    if result.report.is_submitted:
        return _("Deployed figures from the submitted deployment report.")
    return _("Deployed figures from the draft deployment report.")
