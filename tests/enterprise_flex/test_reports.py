"""Deployment reports: prefilled from drawdowns, declared by the contract's users, submitted by
a super user, then read-only; the true-up reads them, with values for super users only."""

from __future__ import annotations

import csv
import io
import itertools
import secrets
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import translation
from pypdf import PdfReader
from reportlab.pdfgen.textobject import PDFTextObject

from enterprise_flex.models import EFDeploymentReport
from enterprise_flex.selectors import contract_for, true_up
from enterprise_flex.services import (
    DrawdownRequest,
    EFError,
    ReportLocked,
    deployment_report_save,
    deployment_report_submit,
    drawdown_create,
    quantity_problem,
    site_create,
)
from licensing import pdftext
from portal.models import AuditEvent
from portal.policy import OrganizationAccess
from tests.enterprise_flex.factories import EFContractFactory, EFLineFactory, World, make_world
from tests.licensing.factories import ProductFactory, ProductVersionFactory

pytestmark = pytest.mark.django_db


def world_in_report_window() -> World:
    """Year 1 ends in 44 days: its report can be submitted (from 60 days before the end)."""
    world = make_world(committed_quantity=10, overage_allowed=True, unit_value=Decimal("25.00"))
    contract = world.contract
    contract.period_start = date.today() - timedelta(days=320)
    contract.save()
    return world


def draw(world: World, quantity: int, *, site=None, line=None, today=None):  # type: ignore[no-untyped-def]
    return drawdown_create(
        contract=world.contract,
        request=DrawdownRequest(
            line_id=(line or world.line).pk, site_id=(site or world.site).pk, quantity=quantity
        ),
        actor=world.contract_user,
        token=secrets.token_urlsafe(8),
        today=today,
    )


def report_url(world: World, year: int = 1) -> str:
    return reverse("ef-report", args=[world.contract.number, year])


def test_the_report_is_prefilled_with_what_was_drawn_down_per_line_and_site(client) -> None:  # type: ignore[no-untyped-def]
    world = world_in_report_window()
    plant = site_create(contract=world.contract, values={"name": "Plant 2"}, actor=None)
    draw(world, 4)
    draw(world, 3)
    draw(world, 5, site=plant)
    client.force_login(world.contract_user)
    response = client.get(report_url(world))
    rows = {(r.line.pk, r.site.pk): (r.drawn, r.value) for r in response.context["view"].rows}
    assert rows == {(world.line.pk, world.site.pk): (7, 7), (world.line.pk, plant.pk): (5, 5)}
    assert not EFDeploymentReport.objects.exists()  # reading writes nothing


def test_a_contract_user_saves_a_draft_and_cannot_submit(client) -> None:  # type: ignore[no-untyped-def]
    world = world_in_report_window()
    draw(world, 4)
    client.force_login(world.contract_user)
    key = f"q_{world.line.pk}_{world.site.pk}"
    response = client.post(report_url(world), {key: "3", "save": "1"})
    assert response.status_code == 302
    report = EFDeploymentReport.objects.get()
    assert report.status == "draft" and report.entries.get().quantity == 3
    assert AuditEvent.objects.filter(action="ef.report_saved").count() == 1
    assert client.post(report_url(world), {key: "3", "submit": "1"}).status_code == 403
    report.refresh_from_db()
    assert report.status == "draft"


def test_a_super_user_submits_and_the_report_becomes_read_only(client) -> None:  # type: ignore[no-untyped-def]
    world = world_in_report_window()
    draw(world, 4)
    client.force_login(world.super_user)
    key = f"q_{world.line.pk}_{world.site.pk}"
    extra_site = site_create(contract=world.contract, values={"name": "Lab"}, actor=None)
    response = client.post(
        report_url(world),
        {key: "12", "add_line": world.line.pk, "add_site": extra_site.pk, "add_quantity": "2",
         "submit": "1"},
    )  # fmt: skip
    assert response.status_code == 302
    report = EFDeploymentReport.objects.get()
    assert report.is_submitted and report.submitted_by == world.super_user
    assert sorted(report.entries.values_list("quantity", flat=True)) == [2, 12]
    event = AuditEvent.objects.get(action="ef.report_submitted")
    assert event.details == {
        "contract": world.contract.number,
        "year": 1,
        "deployed_by_line": {str(world.line.pk): 14},
        "ip": "127.0.0.1",  # every event written for a request records the client's address
    }
    # Read-only: a later save or submit changes nothing and says why.
    response = client.post(report_url(world), {key: "1", "save": "1"}, follow=True)
    assert "can no longer change" in response.content.decode()
    assert sorted(report.entries.values_list("quantity", flat=True)) == [2, 12]
    page = client.get(report_url(world)).content.decode()
    assert "<input" not in page.split('data-testid="ef-report"')[1].split("</table>")[0]
    with pytest.raises(ReportLocked):
        deployment_report_save(contract=world.contract, year=1, entries={}, actor=world.super_user)


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"KEY": "-1"}, "at least 0"),
        ({"KEY": "lots"}, "whole number"),
        ({"KEY": "10000000"}, "at most"),
        ({"add_line": "LINE", "add_quantity": "3"}, "choose a product and a site"),
        (
            {"add_line": "999999", "add_site": "SITE", "add_quantity": "1"},
            "this contract&#x27;s products",
        ),
    ],
)
def test_bad_report_input_is_a_form_error(client, data, error) -> None:  # type: ignore[no-untyped-def]
    world = world_in_report_window()
    draw(world, 4)
    client.force_login(world.super_user)
    key = f"q_{world.line.pk}_{world.site.pk}"
    payload = {
        (key if k == "KEY" else k): (
            str(world.line.pk) if v == "LINE" else str(world.site.pk) if v == "SITE" else v
        )
        for k, v in data.items()
    }
    response = client.post(report_url(world), {**payload, "save": "1"})
    assert response.status_code == 400
    assert error in response.content.decode()
    assert not EFDeploymentReport.objects.exists()


def test_reports_only_take_the_contracts_own_lines_and_sites() -> None:
    world = world_in_report_window()
    other_line = world.other_contract.lines.get()
    with pytest.raises(EFError, match="products and sites of this contract"):
        deployment_report_save(
            contract=world.contract,
            year=1,
            entries={(other_line.pk, world.site.pk): 3},
            actor=world.super_user,
        )
    assert not EFDeploymentReport.objects.filter(entries__isnull=False).exists()


def test_submission_window_and_future_years() -> None:
    world = make_world()  # started 30 days ago: year 1 ends in about 11 months
    with pytest.raises(EFError, match="can be submitted from"):
        deployment_report_submit(
            contract=world.contract, year=1, entries={}, actor=world.super_user
        )
    with pytest.raises(EFError, match="starts on"):
        deployment_report_save(contract=world.contract, year=2, entries={}, actor=world.super_user)
    with pytest.raises(EFError, match="has no year 9"):
        deployment_report_save(contract=world.contract, year=9, entries={}, actor=world.super_user)


def test_report_pages_for_missing_years_are_404(client) -> None:  # type: ignore[no-untyped-def]
    world = make_world()
    client.force_login(world.super_user)
    for year in (0, 4, 999999):
        assert client.get(report_url(world, year)).status_code == 404
        assert (
            client.get(reverse("ef-true-up", args=[world.contract.number, year])).status_code == 404
        )


# -- true-up -----------------------------------------------------------------------------------


def _reach(world: World, user):  # type: ignore[no-untyped-def]
    membership = user.memberships.get(organization=world.contract.organization)
    access = OrganizationAccess(organization=world.contract.organization, role=membership.role)
    return contract_for(actor=user, access=access, number=world.contract.number)


def test_true_up_figures_follow_the_report_and_the_drawdowns() -> None:
    world = world_in_report_window()
    second = EFLineFactory(contract=world.contract, committed_quantity=5, unit_value=Decimal("100"))
    contract = world.contract
    year_one = contract.year(1)
    assert year_one is not None
    draw(world, 6, today=year_one.start + timedelta(days=1))
    draw(world, 6)  # 12 on a line committed to 10: 2 drawn beyond the commitment
    draw(world, 3, line=second)
    result = true_up(_reach(world, world.super_user), 1, today=date.today())
    rows = {row.line.pk: row for row in result.rows}
    first_row = rows[world.line.pk]
    assert (first_row.committed, first_row.drawn_to_date, first_row.drawn_in_year) == (10, 12, 12)
    assert (first_row.deployed, first_row.overage) == (12, 2)  # no report: deployed = drawn
    assert first_row.overage_value == Decimal("50.00")
    assert (rows[second.pk].deployed, rows[second.pk].overage) == (3, 0)
    assert result.totals == {"USD": Decimal("50.00")}
    assert result.deployed_source == "drawdowns"
    # The report declares 15 deployed on the first line, 7 on the second.
    deployment_report_submit(
        contract=contract,
        year=1,
        entries={(world.line.pk, world.site.pk): 15, (second.pk, world.site.pk): 7},
        actor=world.super_user,
    )
    result = true_up(_reach(world, world.super_user), 1, today=date.today())
    rows = {row.line.pk: row for row in result.rows}
    assert (rows[world.line.pk].deployed, rows[world.line.pk].overage) == (15, 5)
    assert (rows[second.pk].deployed, rows[second.pk].overage) == (7, 2)
    assert result.totals == {"USD": Decimal("325.00")}  # 5 x 25 + 2 x 100
    assert result.deployed_source == "submitted"


def test_a_year_that_has_not_begun_has_no_true_up_figures_page_or_exports(client) -> None:  # type: ignore[no-untyped-def]
    # Year 2 used to show year 1's drawdowns as deployed, and their overage valued again.
    world = world_in_report_window()
    draw(world, 12)  # 2 over the commitment of 10 in year 1
    n = world.contract.number
    year_two = world.contract.year(2)
    assert year_two is not None and year_two.start > date.today()
    result = true_up(_reach(world, world.super_user), 2, today=date.today())
    assert (result.started, result.rows, result.totals) == (False, [], {})
    assert true_up(_reach(world, world.super_user), 2, today=year_two.start).started
    client.force_login(world.super_user)
    content = client.get(reverse("ef-true-up", args=[n, 2])).content.decode()
    starts = year_two.start.isoformat()  # English dates are ISO
    assert f"Contract year 2 starts on {starts}: its true-up is available from then on." in content
    assert 'data-testid="ef-true-up"' not in content and "ef-true-up-chart" not in content
    assert "USD 50.00" not in content and "Total overage value" not in content
    assert "Export PDF" not in content and "what was drawn down" not in content
    for name in ("ef-true-up-csv", "ef-true-up-pdf"):
        response = client.get(reverse(name, args=[n, 2]))
        assert response.status_code == 302
        assert response["Location"] == reverse("ef-true-up", args=[n, 2])
        page = client.get(response["Location"]).content.decode()
        assert f"There is nothing to export yet: contract year 2 starts on {starts}" in page
    # The year that has begun keeps its figures and exports.
    assert "USD 50.00" in client.get(reverse("ef-true-up", args=[n, 1])).content.decode()
    assert client.get(reverse("ef-true-up-csv", args=[n, 1])).status_code == 200


def test_a_year_without_its_own_report_keeps_the_latest_submitted_one(client) -> None:  # type: ignore[no-untyped-def]
    world = make_world(committed_quantity=10, overage_allowed=True, unit_value=Decimal("25.00"))
    contract = world.contract
    contract.period_start = date.today() - timedelta(days=400)  # year 2 began 35 days ago
    contract.save()
    year_one, year_two = contract.year(1), contract.year(2)
    assert year_one is not None and year_two is not None
    plant = site_create(contract=contract, values={"name": "Plant 2"}, actor=None)
    in_year_one = year_one.start + timedelta(days=1)
    draw(world, 8, today=in_year_one)
    draw(world, 1, site=plant, today=in_year_one)
    # Year 1's report declares more than was drawn down at the main site (12 of 8).
    deployment_report_submit(
        contract=contract,
        year=1,
        entries={(world.line.pk, world.site.pk): 12},
        actor=world.super_user,
        today=year_one.end,
    )
    draw(world, 3, today=year_two.start)  # drawn at the main site after year 1
    draw(world, 2, site=plant, today=year_two.start)
    # Year 2 has no report: the main site's 12 declared plus 3 drawn since; the plant, which
    # year 1's report left out, counts its drawdowns (1 + 2). It used to be the 14 drawn.
    result = true_up(_reach(world, world.super_user), 2, today=date.today())
    (row,) = result.rows
    assert (row.deployed, row.drawn_to_date, row.drawn_in_year, row.overage) == (18, 14, 5, 8)
    assert result.deployed_source == "earlier_report" and result.report is not None
    assert result.report.year == 1 and result.totals == {"USD": Decimal("200.00")}
    client.force_login(world.super_user)
    n = contract.number
    content = client.get(reverse("ef-true-up", args=[n, 2])).content.decode()
    assert "deployed figures are those of the submitted report of year 1" in content
    assert "USD 200.00" in content
    rows = list(
        csv.reader(
            io.StringIO(
                client.get(reverse("ef-true-up-csv", args=[n, 2])).content.decode("utf-8-sig")
            )
        )
    )
    assert ["deployed_from", "earlier_report", "1"] in rows
    text = _pdf_text(client.get(reverse("ef-true-up-pdf", args=[n, 2])).content)
    assert "submitted report of year 1" in text and "USD 200.00" in text
    # Year 1 itself is unchanged: its own report, 12 + 1 (the plant, drawn down in year 1).
    year_one_result = true_up(_reach(world, world.super_user), 1, today=date.today())
    assert year_one_result.rows[0].deployed == 13 and year_one_result.deployed_source == "submitted"
    # The year's report form starts from the same figures: 12 + 3 at the main site, the
    # plant's 3 drawn (it started from the drawdowns, 11 and 3, which the true-up no longer
    # counted).
    response = client.get(reverse("ef-report", args=[n, 2]))
    prefill = {(r.line.pk, r.site.pk): r.value for r in response.context["view"].rows}
    assert prefill == {(world.line.pk, world.site.pk): 15, (world.line.pk, plant.pk): 3}
    assert "Where the submitted report of year 1 declared a site" in response.content.decode()
    # The year's own draft takes over: 4 declared at the main site, the plant's 3 drawn.
    deployment_report_save(
        contract=contract,
        year=2,
        entries={(world.line.pk, world.site.pk): 4},
        actor=world.super_user,
    )
    result = true_up(_reach(world, world.super_user), 2, today=date.today())
    assert result.deployed_source == "draft" and result.rows[0].deployed == 7


def test_true_up_page_chart_and_exports(client) -> None:  # type: ignore[no-untyped-def]
    world = world_in_report_window()
    world.contract.organization.name = 'Acme & "Sons" <Ltd>'
    world.contract.organization.save()
    draw(world, 12)
    client.force_login(world.super_user)
    n = world.contract.number
    page = client.get(reverse("ef-true-up", args=[n, 1]))
    content = page.content.decode()
    chart = content.split('data-testid="ef-true-up-chart"')[1].split("</figure>")[0]
    assert "<svg" in chart and "<script" not in chart
    assert "Committed" in chart and "Deployed" in chart and "Drawn down" in chart
    assert "USD 50.00" in content  # 2 over the commitment at 25.00
    response = client.get(reverse("ef-true-up-csv", args=[n, 1]))
    assert response["Content-Type"].startswith("text/csv")
    # A UTF-8 BOM first, for Excel, as the license export (README).
    assert response.content.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0] == ["contract", n]
    header = rows.index(
        ["sku", "product", "version", "committed", "deployed", "drawn_down_to_date",
         "drawn_down_in_year", "overage", "unit_value", "currency", "overage_value"]
    )  # fmt: skip
    line = rows[header + 1]
    assert line[0] == world.line.version.product.sku
    assert line[3:9] == ["10", "12", "12", "12", "2", "25.00"] and line[10] == "50.00"
    assert rows[-1][-2:] == ["USD", "50.00"]
    pdf = client.get(reverse("ef-true-up-pdf", args=[n, 1]))
    assert pdf["Content-Type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF") and len(pdf.content) > 2000
    assert f"{n.lower()}-year-1-true-up.pdf" in pdf["Content-Disposition"]


def _pdf_text(pdf: bytes) -> str:
    """The text a PDF reader extracts from every page."""
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def test_true_up_pdf_has_the_figures_and_the_chart(client) -> None:  # type: ignore[no-untyped-def]
    world = world_in_report_window()
    draw(world, 12)
    client.force_login(world.super_user)
    pdf = client.get(reverse("ef-true-up-pdf", args=[world.contract.number, 1])).content
    text = _pdf_text(pdf)
    assert f"True-up, contract {world.contract.number}, year 1" in text
    assert "USD 50.00" in text and "USD 25.00" in text  # overage value, unit value
    assert f"{world.line.version.product.name} {world.line.version.version}" in text
    assert "Deployed" in text and "Drawn down" in text  # the chart's legend
    assert "Drawn this year" in " ".join(text.split())  # a column, as on the page and CSV


def test_true_up_pdf_draws_names_in_every_script(client) -> None:  # type: ignore[no-untyped-def]
    # Helvetica has Latin-1 only: these came out as black boxes.
    world = world_in_report_window()
    organization = world.contract.organization
    organization.name = "株式会社テスト Москва Ελληνική Łódź"
    organization.save()
    product = world.line.version.product
    product.name = "Сервер Βάση €"
    product.save()
    draw(world, 12)
    client.force_login(world.super_user)
    pdf = client.get(reverse("ef-true-up-pdf", args=[world.contract.number, 1])).content
    text = _pdf_text(pdf)
    assert "株式会社テスト Москва Ελληνική Łódź" in text
    assert "Сервер Βάση €" in text
    assert b"+DejaVuSans" in pdf and b"/HeiseiKakuGo-W5" in pdf


def test_configuration_users_see_the_true_up_without_values_or_exports(client) -> None:  # type: ignore[no-untyped-def]
    world = world_in_report_window()
    draw(world, 12)
    client.force_login(world.configuration_user)
    n = world.contract.number
    content = client.get(reverse("ef-true-up", args=[n, 1])).content.decode()
    assert "Overage value" not in content and "25.00" not in content
    assert "Export PDF" not in content
    assert client.get(reverse("ef-true-up-csv", args=[n, 1])).status_code == 403


def test_second_contract_does_not_leak_into_the_true_up() -> None:
    world = world_in_report_window()
    other = EFContractFactory(organization=world.contract.organization)
    EFLineFactory(contract=other, version=world.line.version)
    result = true_up(_reach(world, world.super_user), 1, today=date.today())
    assert [row.line for row in result.rows] == [world.line]


def test_true_up_pdf_draws_right_to_left_names_in_their_face_in_visual_order(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Drawn in typed order from left to right, the Arabic letters unjoined.
    world = world_in_report_window()
    organization = world.contract.organization
    organization.name = "شركة ABC 123"
    organization.save()
    product = world.line.version.product
    product.name = "שרת אבטחה Acme"
    product.save()
    draw(world, 12)
    client.force_login(world.super_user)
    drawn: list[str] = []
    fonts_drawn: list[str] = []
    text_out = PDFTextObject.textOut

    def record(line: PDFTextObject, text: str) -> None:
        drawn.append(text)
        fonts_drawn.append(line._fontname)
        text_out(line, text)

    monkeypatch.setattr(PDFTextObject, "textOut", record)
    pdf = client.get(reverse("ef-true-up-pdf", args=[world.contract.number, 1])).content
    fonts = {
        str(reference.get_object()["/BaseFont"]).partition("+")[2]
        for page in PdfReader(io.BytesIO(pdf)).pages
        for reference in page["/Resources"]["/Font"].values()
    }
    assert {"NotoSansArabic-Regular", "NotoSansHebrew-Regular"} <= fonts
    # Hebrew has no joined forms: its glyphs are its letters, drawn in the order they are
    # seen, the first word typed rightmost, the Latin and digits keeping their own order.
    assert f"Acme {world.line.version.version} החטבא תרש" in "".join(drawn)
    # The name is one right-to-left unit in our left-to-right sentence: its Latin left of its
    # Arabic, the sentence going on to the right of both.
    arabic = fonts_drawn.index("NotoSansArabic")
    assert drawn[arabic - 2 : arabic] == ["ABC 123", " "]
    assert drawn[arabic + 1].startswith(" · ")
    assert "ABC 123" in _pdf_text(pdf)


@pytest.mark.parametrize(
    ("text", "right_aligned"), [("תוכנה אבטחה 2.0", True), ("Endpoint Protection 15.0", False)]
)
def test_a_right_to_left_product_in_the_true_up_pdf_ends_at_its_cells_right_edge(
    monkeypatch: pytest.MonkeyPatch, text: str, right_aligned: bool
) -> None:
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.pdfgen.canvas import Canvas

    from enterprise_flex.exports import _Text
    from licensing import pdftext

    starts: list[float] = []
    draw = pdftext.draw

    def record(pdf: Canvas, x: float, y: float, line: pdftext.Line, **kwargs: float) -> None:
        starts.append(x)
        draw(pdf, x, y, line, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pdftext, "draw", record)
    flowable = _Text(text, getSampleStyleSheet()["Normal"])
    flowable.wrap(200, 100)
    flowable.canv = Canvas(io.BytesIO())
    flowable.draw()
    (line,) = flowable.lines
    expected = 200 - pdftext.measure(line, flowable.style.fontSize) if right_aligned else 0
    assert starts == [pytest.approx(expected)]


def _pdf_pieces(pdf: bytes) -> list[tuple[float, float, str]]:
    """The first page's pieces of text with where they start (x, baseline), in drawing order."""
    pieces: list[tuple[float, float, str]] = []

    def visit(text: str, cm: list[float], tm: list[float], font: object, size: float) -> None:
        if text.strip():
            x = tm[4] * cm[0] + tm[5] * cm[2] + cm[4]
            y = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
            pieces.append((x, y, text.rstrip("\n")))

    PdfReader(io.BytesIO(pdf)).pages[0].extract_text(visitor_text=visit)
    return pieces


def test_the_true_up_pdf_in_portuguese_reads_as_the_page(client) -> None:  # type: ignore[no-untyped-def]
    # The reviewer's PDF in pt-BR: "Valor unitário" printed over "Valor do excedente", money as
    # "USD 1,200.00" beside the page's "USD 1200,00", the chart's "Data Loss Prevention Network
    # Monitor" without its "16.0", and no "Drawn this year" column.
    from reportlab.pdfbase.pdfmetrics import stringWidth

    world = world_in_report_window()
    dlp = EFLineFactory(
        contract=world.contract,
        committed_quantity=10,
        unit_value=Decimal("1200.00"),
        overage_allowed=True,
        version=ProductVersionFactory(
            product=ProductFactory(name="Data Loss Prevention Network Monitor"), version="16.0"
        ),
    )
    draw(world, 12, line=dlp)
    client.force_login(world.super_user)
    with translation.override("en"):
        page = client.get(
            reverse("ef-true-up", args=[world.contract.number, 1]), HTTP_ACCEPT_LANGUAGE="pt-br"
        ).content.decode()
        pdf = client.get(
            reverse("ef-true-up-pdf", args=[world.contract.number, 1]),
            HTTP_ACCEPT_LANGUAGE="pt-br",
        ).content
    assert "USD 1.200,00" in page and "USD 2.400,00" in page
    text = _pdf_text(pdf)
    assert "USD 1.200,00" in text and "USD 2.400,00" in text and "1,200" not in text
    pieces = _pdf_pieces(pdf)
    drawn = [piece[2].strip() for piece in pieces]
    # The chart's label: its whole name and its version, beside the bars.
    assert drawn.count("Data Loss Prevention Network Monitor 16.0") == 2  # table and chart
    # The header, one column per figure, Drawn this year among them (as on the page).
    first = drawn.index("Produto")
    header = pieces[first : drawn.index("Data Loss Prevention Network Monitor 16.0")]
    assert " ".join(drawn[first : first + len(header)]) == (
        "Produto Comprometido Implantado Retirado Retirado neste ano Excedente "
        "Valor unitário Valor do excedente"
    )
    # Nothing printed over its neighbour: on each header line, each piece ends before the
    # next begins.
    bold = pdftext.sans(bold=True)
    for baseline in {round(y) for _, y, _ in header}:
        row = sorted((x, x + stringWidth(t, bold, 8)) for x, y, t in header if round(y) == baseline)
        for (_, end), (start, _) in itertools.pairwise(row):
            assert end <= start, (baseline, row)


def _label_text(lines: list[pdftext.Line]) -> str:
    return " ".join("".join(run.text for run in line) for line in lines)


def test_a_chart_label_is_drawn_whole_or_shortened_but_keeps_its_version() -> None:
    from enterprise_flex.exports import _label_lines

    lines = _label_lines("Data Loss Prevention Network Monitor", "16.0", width=140, max_lines=3)
    assert _label_text(lines) == "Data Loss Prevention Network Monitor 16.0"
    # A name too long for its bars' height is cut, not its version.
    name = " ".join(["Data Loss Prevention"] * 10)
    lines = _label_lines(name, "16.0.1", width=140, max_lines=3)
    assert len(lines) == 3
    text = _label_text(lines)
    assert text.startswith("Data Loss Prevention Data") and text.endswith("… 16.0.1")


@pytest.mark.parametrize(
    "language,money,count",
    [("en", "USD 1,199,986,800.00", "1,000"), ("pt-br", "USD 1.199.986.800,00", "1.000")],
)
def test_large_values_and_quantities_are_grouped(client, language, money, count) -> None:  # type: ignore[no-untyped-def]
    # They were written "USD 1199986800,00": ten digits to count by eye.
    world = world_in_report_window()
    big = EFLineFactory(
        contract=world.contract,
        committed_quantity=1000,
        unit_value=Decimal("599993400.00"),
        overage_allowed=True,
    )
    draw(world, 1002, line=big)
    client.force_login(world.super_user)
    n = world.contract.number
    # The request activates its language in this thread: `override` puts back what was active.
    with translation.override("en"):
        page = client.get(
            reverse("ef-true-up", args=[n, 1]), HTTP_ACCEPT_LANGUAGE=language
        ).content.decode()
        pdf = client.get(reverse("ef-true-up-pdf", args=[n, 1]), HTTP_ACCEPT_LANGUAGE=language)
        contract_page = client.get(
            reverse("ef-contract", args=[n]), HTTP_ACCEPT_LANGUAGE=language
        ).content.decode()
    assert money in page and money in _pdf_text(pdf.content)
    assert "1199986800" not in page
    table = page.split('data-testid="ef-true-up"')[1].split("</table>")[0]
    assert f">{count}<" in table  # committed
    summary = contract_page.split('data-testid="ef-summary"')[1].split("</table>")[0]
    assert f">{count}<" in summary
    # The CSV stays machine-readable: no grouping.
    csv_text = client.get(reverse("ef-true-up-csv", args=[n, 1])).content.decode("utf-8-sig")
    assert "1199986800.00" in csv_text


def test_quantity_limits_in_messages_are_grouped_as_the_language_does() -> None:
    world = make_world()
    with translation.override("en"):
        assert "1,000,000" in str(quantity_problem(2_000_000, line=world.line))
    with translation.override("pt-br"):
        assert "1.000.000" in str(quantity_problem(2_000_000, line=world.line))
        with pytest.raises(EFError, match=r"1\.000\.000"):
            deployment_report_save(
                contract=world.contract,
                year=1,
                entries={(world.line.pk, world.site.pk): 2_000_000},
                actor=world.super_user,
            )
