"""The true-up report as CSV and as PDF (reportlab: a table and a bar chart, in the user's
language). Values are included: only super users run these exports."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from xml.sax.saxutils import escape

from django.utils import formats, timezone
from django.utils.translation import gettext as _
from reportlab.graphics.charts.barcharts import HorizontalBarChart
from reportlab.graphics.charts.legends import Legend
from reportlab.graphics.shapes import Drawing
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_LEFT, TA_RIGHT
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle
from reportlab.platypus.flowables import Flowable

from licensing import pdftext
from portal.formats import short_date

from .selectors import TrueUp, TrueUpRow

BOM = "\ufeff"
SERIES_COLORS = (colors.HexColor("#6c757d"), colors.HexColor("#0d6efd"), colors.HexColor("#198754"))


def _csv_safe(value: object) -> object:
    # Spreadsheet apps run cells that start with these as formulas (CSV injection).
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def true_up_csv(result: TrueUp) -> str:
    """One row per line, with the report's context in the first rows (a year that has begun:
    the view refuses the others)."""
    buffer = io.StringIO()
    # A UTF-8 BOM, as the license export writes (licensing.views.licenses.BOM): without it
    # Excel reads the file as ANSI and a customer named "São Paulo Ltda" comes out garbled.
    buffer.write(BOM)
    writer = csv.writer(buffer)
    year = result.contract_year
    writer.writerow(["contract", result.contract.number])
    writer.writerow(["customer", _csv_safe(result.contract.organization.name)])
    writer.writerow(["year", year.number, year.start.isoformat(), year.end.isoformat()])
    source: list[object] = ["deployed_from", result.deployed_source]
    if result.carried and result.report is not None:
        source.append(result.report.year)  # the earlier year whose report is carried forward
    writer.writerow(source)
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
    # As the page writes it (floatformat:"2g"): "USD 1.199.986.800,00" in Portuguese,
    # "USD 1,199,986,800.00" in English; ungrouped, ten digits were hard to read.
    return f"{currency} {formats.number_format(value, decimal_pos=2, force_grouping=True)}"


def _count(value: int) -> str:
    return str(formats.number_format(value, force_grouping=True))


BAR_GROUP = 3 * 7 + 6  # three bars of 7 pt and the gap between products
# Products per chart: a drawing cannot break across pages, so 50 lines make several charts.
ROWS_PER_CHART = 14
LABEL_SIZE = 7  # the products' names beside their bars
LABEL_LEADING = 8


def _charts(result: TrueUp, width: float) -> list[Flowable]:
    rows = result.rows
    # One label column for every chart of the report, as wide as its longest name on one line,
    # within limits that leave the bars most of the width (a longer name wraps).
    longest = max(
        (
            pdftext.measure(
                pdftext.wrap(row.product_label, size=LABEL_SIZE, width=10_000)[0], LABEL_SIZE
            )
            for row in rows
        ),
        default=0.0,
    )
    labels_width = min(max(140.0, longest), width * 0.35)
    return [
        _chart(rows[first : first + ROWS_PER_CHART], width, labels_width)
        for first in range(0, len(rows), ROWS_PER_CHART)
    ]


def _chart(rows: list[TrueUpRow], width: float, labels_width: float) -> Flowable:
    height = max(60.0, len(rows) * BAR_GROUP) + 40
    drawing = Drawing(width, height)
    chart = HorizontalBarChart()
    chart.x, chart.y = labels_width + 10, 30
    chart.width, chart.height = width - chart.x - 20, height - 40
    chart.data = [
        [row.committed for row in rows],
        [row.deployed for row in rows],
        [row.drawn_to_date for row in rows],
    ]
    # The product names are drawn beside the chart by pdftext (_LabelledChart): an axis label
    # is in one font and typed order, Arabic or Hebrew would read backwards.
    chart.categoryAxis.categoryNames = [""] * len(rows)
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
    legend.x, legend.y = chart.x, 12
    legend.fontSize = 8
    legend.fontName = pdftext.sans()
    legend.alignment = "right"
    legend.columnMaximum = 1
    legend.colorNamePairs = list(
        zip(SERIES_COLORS, [_("Committed"), _("Deployed"), _("Drawn down")], strict=True)
    )
    drawing.add(legend)
    labels = [(row.line.version.product.name, row.line.version.version) for row in rows]
    return _LabelledChart(drawing, chart, labels)


class _LabelledChart(Flowable):
    """A bar chart drawing with its category labels, right-aligned left of its axis, drawn by
    licensing.pdftext in the faces and the order their script needs."""

    def __init__(
        self, drawing: Drawing, chart: HorizontalBarChart, labels: list[tuple[str, str]]
    ) -> None:
        super().__init__()
        self.drawing = drawing
        self.chart = chart
        self.labels = labels  # (product name, version)

    def wrap(self, availWidth: float, availHeight: float) -> tuple[float, float]:
        self.width, self.height = self.drawing.wrap(availWidth, availHeight)
        return self.width, self.height

    def draw(self) -> None:
        self.drawing.drawOn(self.canv, 0, 0)
        chart, size = self.chart, LABEL_SIZE
        band = chart.height / len(self.labels)
        fits = max(1, int(band // LABEL_LEADING))
        for n, (name, version) in enumerate(self.labels):  # the first at the top (reverseDirection)
            lines = _label_lines(name, version, width=chart.x - 10, max_lines=fits)
            # The lines centred on the product's bars.
            top = chart.y + chart.height - (n + 0.5) * band + (len(lines) - 1) * LABEL_LEADING / 2
            for index, line in enumerate(lines):
                x = chart.x - 5 - pdftext.measure(line, size)
                y = top - index * LABEL_LEADING - size * 0.35
                pdftext.draw(self.canv, x, y, line, size=size)


def _label_lines(name: str, version: str, *, width: float, max_lines: int) -> list[pdftext.Line]:
    """A product's chart label in at most `max_lines` lines: all of it where it fits (its
    first line alone dropped the version of "Data Loss Prevention Network Monitor 16.0"),
    otherwise the name cut short with an ellipsis, never the version that tells lines apart."""

    def lines_of(label: str) -> list[pdftext.Line]:
        return pdftext.wrap(label, size=LABEL_SIZE, width=width)

    lines = lines_of(f"{name} {version}")
    if len(lines) <= max_lines:
        return lines
    shortest, longest = 0, len(name)
    while shortest < longest:  # the longest start of the name that fits, found by halving
        middle = (shortest + longest + 1) // 2
        if len(lines_of(f"{name[:middle].rstrip()}… {version}")) <= max_lines:
            shortest = middle
        else:
            longest = middle - 1
    return lines_of(f"{name[:shortest].rstrip()}… {version}")[:max_lines]


def true_up_pdf(result: TrueUp) -> bytes:
    """A landscape A4 report: heading, figures table, totals and the chart (a year that has
    begun: the view refuses the others)."""
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
        _Text(
            _("True-up, contract %(number)s, year %(year)s")
            % {"number": contract.number, "year": year.number},
            styles["Title"],
            bold=True,
        ),
        _Text(
            _("%(customer)s · %(start)s to %(end)s · printed on %(today)s")
            % {
                "customer": pdftext.embed(contract.organization.name),
                "start": short_date(year.start),
                "end": short_date(year.end),
                "today": short_date(timezone.localdate()),
            },
            styles["Normal"],
        ),
        Paragraph(escape(_deployed_note(result)), styles["Italic"]),
        Spacer(1, 6 * mm),
    ]
    # Headers wrap within their column, right-aligned over their figures: on one line, the
    # longer ones ("Valor do excedente") ran into their neighbours.
    header_style = ParagraphStyle(
        "header", fontName=pdftext.sans(bold=True), fontSize=8, leading=10, alignment=TA_RIGHT
    )
    product_style = ParagraphStyle("product", header_style, alignment=TA_LEFT)
    header: list[str | Flowable] = [Paragraph(escape(_("Product")), product_style)]
    header += [
        Paragraph(escape(label), header_style)
        for label in (
            _("Committed"),
            _("Deployed"),
            _("Drawn down"),
            _("Drawn this year"),
            _("Overage"),
            _("Unit value"),
            _("Overage value"),
        )
    ]
    label_style = ParagraphStyle("label", fontName=pdftext.sans(), fontSize=8, leading=10)
    data: list[list[str | Flowable]] = [header]
    for row in result.rows:
        data.append(
            [
                _Text(row.product_label, label_style),
                _count(row.committed),
                _count(row.deployed),
                _count(row.drawn_to_date),
                _count(row.drawn_in_year),
                _count(row.overage),
                _money(row.line.unit_value, row.line.currency),
                _money(row.overage_value, row.line.currency),
            ]
        )
    for currency, total in sorted(result.totals.items()):
        data.append([_("Total overage value"), "", "", "", "", "", "", _money(total, currency)])
    # Within the 267 mm between the margins (less the frame's padding): counts in 26 mm, whose
    # longest header word ("Comprometido", bold) takes 23.4, money in 29 mm (USD 12345678,00),
    # the product in the rest; the figures' columns with half the default padding.
    table = Table(data, repeatRows=1, colWidths=[72 * mm] + [26 * mm] * 5 + [29 * mm] * 2)
    table.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, -1), pdftext.sans()),
                ("FONTNAME", (0, 0), (-1, 0), pdftext.sans(bold=True)),
                ("FONTSIZE", (0, 0), (-1, -1), 8),
                ("ALIGN", (1, 0), (-1, -1), "RIGHT"),
                ("LEFTPADDING", (1, 0), (-1, -1), 3),
                ("RIGHTPADDING", (1, 0), (-1, -1), 3),
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


class _Text(Flowable):
    """Customer text (a company or product name) as a paragraph, drawn by licensing.pdftext in
    fonts that have its glyphs ("株式会社", "Москва", "شركة"), shaped, right-to-left words in
    visual order: reportlab's Paragraph cannot order them without rlbidi, and reads markup that
    each text would have to be escaped into ("A&B <Ltd>")."""

    def __init__(self, text: str, style: ParagraphStyle, *, bold: bool = False) -> None:
        super().__init__()
        self.text = text
        self.style = style
        self.bold = bold
        self.lines: list[pdftext.Line] = []

    def wrap(self, availWidth: float, availHeight: float) -> tuple[float, float]:
        size = self.style.fontSize
        self.lines = pdftext.wrap(self.text, size=size, width=availWidth, bold=self.bold)
        self.width = availWidth
        self.height = len(self.lines) * self.style.leading
        return self.width, self.height

    def getSpaceBefore(self) -> float:
        return float(self.style.spaceBefore)

    def getSpaceAfter(self) -> float:
        return float(self.style.spaceAfter)

    def draw(self) -> None:
        size = self.style.fontSize
        for n, line in enumerate(self.lines):
            x = 0.0
            if self.style.alignment == TA_CENTER:
                x = (self.width - pdftext.measure(line, size)) / 2
            elif pdftext.right_to_left(self.text):  # a product named in Arabic or Hebrew
                x = self.width - pdftext.measure(line, size)
            baseline = self.height - size - n * self.style.leading
            pdftext.draw(self.canv, x, baseline, line, size=size)


def _deployed_note(result: TrueUp) -> str:
    if result.report is None:
        return _("No deployment report yet: deployed figures are what was drawn down.")
    if result.carried:
        return _(
            "No deployment report for this year: deployed figures are those of the submitted "
            "report of year %(year)s, plus what was drawn down since."
        ) % {"year": result.report.year}
    if result.report.is_submitted:
        return _("Deployed figures from the submitted deployment report.")
    return _("Deployed figures from the draft deployment report.")
