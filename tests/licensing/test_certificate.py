"""The license certificate PDF: every fact fits on the page, however long it is, and is drawn
with real glyphs in whatever script it is written."""

from __future__ import annotations

import io
import unicodedata
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from pypdf import PdfReader
from reportlab.lib.pagesizes import A4
from reportlab.pdfbase.pdfmetrics import getFont, stringWidth
from reportlab.pdfgen.canvas import Canvas

from licensing import pdftext
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


def _drawn_runs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """(font, text) of every drawString the certificate makes."""
    drawn: list[tuple[str, str]] = []
    original = Canvas.drawString

    def record(canvas: Canvas, x: float, y: float, text: str, *args: Any, **kwargs: Any) -> Any:
        drawn.append((canvas._fontname, text))
        return original(canvas, x, y, text, *args, **kwargs)

    monkeypatch.setattr(Canvas, "drawString", record)
    return drawn


def _has_glyphs(font: str, text: str) -> bool:
    """Whether `font` draws every character of `text` with a glyph of its own."""
    face = getattr(getFont(font), "face", None)
    if font in (pdftext.SANS, pdftext.SANS_BOLD):
        return all(ord(char) in face.charToGlyph for char in text)
    # A CID font (not embedded): only what its Unicode encoding maps, the CJK blocks.
    return font in CJK_FONTS and all(pdftext._within(char, pdftext._CJK) for char in text)


CJK_FONTS = (pdftext.CJK_CHINESE, pdftext.CJK_JAPANESE, pdftext.CJK_KOREAN)


@pytest.mark.parametrize(
    ("organization_name", "product_name", "host_id", "fonts"),
    [
        (
            "Łódź Sp. z o.o. — Zürich AG",
            "Công ty Cổ phần Phần mềm € 100",
            "İstanbul-Şişli-01",
            [pdftext.SANS],
        ),
        ("Ελληνική Εταιρεία Λογισμικού", "Москва ООО Антивирус", "", [pdftext.SANS]),
        (
            "株式会社テスト",
            "北京软件有限公司 Endpoint",
            "한국-주식회사-01",
            [pdftext.SANS, pdftext.CJK_JAPANESE, pdftext.CJK_CHINESE, pdftext.CJK_KOREAN],
        ),
    ],
)
def test_names_in_every_script_are_drawn_in_fonts_that_have_their_glyphs(
    client: Client,
    monkeypatch: pytest.MonkeyPatch,
    organization_name: str,
    product_name: str,
    host_id: str,
    fonts: list[str],
) -> None:
    admin = MembershipFactory(organization__name=organization_name)
    client.force_login(admin.user)
    license = LicenseFactory(
        owner=admin.organization,
        version__product__name=product_name,
        host_id=host_id,
    )
    drawn = _drawn_runs(monkeypatch)
    response = client.get(reverse("license-certificate-pdf", kwargs={"pk": license.pk}))
    assert response.status_code == 200 and response.content.startswith(b"%PDF")
    for font, text in drawn:
        if font != "Courier-Bold":  # the license key, ASCII
            assert _has_glyphs(font, text), f"{text!r} in {font} has no glyphs"
            assert all(stringWidth(char, font, 11) > 0 for char in text), text
    written = "".join(text for _font, text in drawn)
    for name in (organization_name, product_name, host_id):
        assert name.replace(" ", "") in written.replace(" ", "")
    pdf = response.content
    # DejaVu Sans embedded as a subset (with a ToUnicode map, so the text can be copied and
    # searched); the CID fonts referenced by name. (Helvetica is there too, as reportlab's
    # initial font of a page, but nothing is drawn in it: see _has_glyphs.)
    assert b"+DejaVuSans" in pdf and b"/FontFile2" in pdf and b"/ToUnicode" in pdf
    for font in fonts:
        assert f"/{font}".encode() in pdf or f"+{font}".encode() in pdf
    for font in set(CJK_FONTS) - set(fonts):
        assert f"/{font}".encode() not in pdf
    # What a reader copies out of the PDF (wrapped values come back on their lines).
    extracted = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    for name in (organization_name, product_name, host_id):
        assert name.replace(" ", "") in extracted.replace(" ", "").replace("\n", "")


def test_runs_keep_one_cjk_face_per_value_and_compose_decomposed_letters() -> None:
    # Kana make the kanji Japanese too, on every line a long name wraps into.
    name = "株式会社テスト東京本社開発部門" * 3
    lines = pdftext.wrap(name, size=11, width=100)
    assert len(lines) > 2
    assert {run.font for line in lines for run in line} == {pdftext.CJK_JAPANESE}
    assert all(pdftext.measure(line, 11) <= 100 for line in lines)
    assert "".join(run.text for line in lines for run in line) == name
    assert pdftext.runs("北京") == [pdftext.Run(pdftext.CJK_CHINESE, "北京")]
    assert pdftext.runs("서울 Seoul") == [
        pdftext.Run(pdftext.CJK_KOREAN, "서울"),
        pdftext.Run(pdftext.SANS, " Seoul"),
    ]
    decomposed = unicodedata.normalize("NFD", "Công ty Cổ phần")
    assert pdftext.runs(decomposed, bold=True) == [
        pdftext.Run(pdftext.SANS_BOLD, "Công ty Cổ phần")
    ]


def test_words_wrap_between_words_measured_in_the_drawing_fonts() -> None:
    text = "Москва ООО Антивирус Ελληνική Εταιρεία Łódź"
    lines = pdftext.wrap(text, size=11, width=120)
    assert [" ".join(run.text for run in line) for line in lines] == [
        "".join(run.text for run in line) for line in lines
    ]
    assert " ".join("".join(run.text for run in line) for line in lines) == text
    assert all(pdftext.measure(line, 11) <= 120 for line in lines)
    assert pdftext.wrap("", size=11, width=120) == [[]]
