"""The license certificate PDF: every fact fits on the page, however long it is, and is drawn
with real glyphs in whatever script it is written."""

from __future__ import annotations

import io
import unicodedata
from typing import Any

import pytest
import uharfbuzz
from django.test import Client
from django.urls import reverse
from pypdf import PdfReader
from reportlab.lib.pagesizes import A4
from reportlab.pdfbase.pdfmetrics import getFont, stringWidth
from reportlab.pdfgen.canvas import Canvas
from reportlab.pdfgen.textobject import PDFTextObject

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
    drawn = _drawn_text(monkeypatch)
    response = client.get(reverse("license-certificate-pdf", kwargs={"pk": license.pk}))
    assert response.status_code == 200 and response.content.startswith(b"%PDF")
    page_width = A4[0]
    for _font, text, right in drawn:
        assert right <= page_width, f"runs off the page: {text!r}"
    written = "".join(text for _font, text, _right in drawn)
    assert host_id in written, "the host ID is cut"
    assert organization.name.strip() in " ".join(text for _font, text, _right in drawn)


def _drawn_text(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, float]]:
    """(font, text, right edge) of every piece of text the certificate draws: pdftext's runs,
    each a textOut of one line's text object, and the license key, a drawString."""
    drawn: list[tuple[str, str, float]] = []
    text_out = PDFTextObject.textOut
    draw_string = Canvas.drawString

    def record_run(line: PDFTextObject, text: str) -> Any:
        drawn.append(
            (line._fontname, text, line._x + stringWidth(text, line._fontname, line._fontsize))
        )
        return text_out(line, text)

    def record_string(canvas: Canvas, x: float, y: float, text: str, *args: Any, **kw: Any) -> Any:
        width = stringWidth(text, canvas._fontname, canvas._fontsize)
        drawn.append((canvas._fontname, text, x + width))
        return draw_string(canvas, x, y, text, *args, **kw)

    monkeypatch.setattr(PDFTextObject, "textOut", record_run)
    monkeypatch.setattr(Canvas, "drawString", record_string)
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
    drawn = _drawn_text(monkeypatch)
    response = client.get(reverse("license-certificate-pdf", kwargs={"pk": license.pk}))
    assert response.status_code == 200 and response.content.startswith(b"%PDF")
    for font, text, _right in drawn:
        if font != "Courier-Bold":  # the license key, ASCII
            assert _has_glyphs(font, text), f"{text!r} in {font} has no glyphs"
            assert all(stringWidth(char, font, 11) > 0 for char in text), text
    written = "".join(text for _font, text, _right in drawn)
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


def _glyph_ids(font: str, text: str) -> list[int]:
    """The glyphs `text` is drawn with in `font`, one per character: the font's own character
    map, where reportlab's shaper also puts the glyphs of joined forms and conjuncts."""
    face = getFont(font).face
    return [face.charToGlyph[ord(char)] for char in text]


def _shaped(font: str, word: str) -> list[int]:
    """The glyphs HarfBuzz gives `word` in `font`, left to right as they are seen."""
    blob = uharfbuzz.Blob.from_file_path(str(pdftext.FONT_DIR / f"{font}-Regular.ttf"))
    buffer = uharfbuzz.Buffer()
    buffer.add_str(word)
    buffer.guess_segment_properties()
    uharfbuzz.shape(uharfbuzz.Font(uharfbuzz.Face(blob)), buffer, {})
    return [info.codepoint for info in buffer.glyph_infos]


def _drawn_at(drawn: list[tuple[str, str, float]], font: str, word: str) -> int:
    """Where `word` is among the pieces drawn, left to right on its line: a word in `font` by
    its shaped glyphs, a Latin one by its text."""
    if any(pdftext._within(char, blocks) for char in word for _f, blocks in pdftext._SCRIPTS):
        glyphs = _shaped(font, word)
        found = [n for n, (f, text, _right) in enumerate(drawn) if f == font]
        return next(n for n in found if _glyph_ids(font, drawn[n][1]) == glyphs)
    return next(n for n, (_f, text, _right) in enumerate(drawn) if word in text)


@pytest.mark.parametrize(
    ("organization_name", "product_name", "font", "left_to_right", "latin"),
    [
        (
            "บริษัท ทดสอบ จำกัด",
            "โปรแกรม ป้องกันไวรัส",
            pdftext.THAI,
            [("บริษัท", "จำกัด"), ("โปรแกรม", "ป้องกันไวรัส")],
            "",
        ),
        (
            "क्षत्रिय सॉफ्टवेयर प्राइवेट लिमिटेड",
            "सुरक्षा सर्वर",
            pdftext.DEVANAGARI,
            [("क्षत्रिय", "लिमिटेड"), ("सुरक्षा", "सर्वर")],
            "",
        ),
        # Right to left: the first word typed is drawn rightmost, Latin and digits inside
        # keep their own order.
        (
            "شركة ABC 123",
            "برنامج الحماية",
            pdftext.ARABIC,
            [("ABC", "شركة"), ("الحماية", "برنامج")],
            "ABC 123",
        ),
        ('בע"מ Acme', "שרת אבטחה", pdftext.HEBREW, [("Acme", "בע"), ("אבטחה", "שרת")], "Acme"),
    ],
)
def test_complex_scripts_are_shaped_in_their_noto_face_and_right_to_left_drawn_in_visual_order(
    client: Client,
    monkeypatch: pytest.MonkeyPatch,
    organization_name: str,
    product_name: str,
    font: str,
    left_to_right: list[tuple[str, str]],
    latin: str,
) -> None:
    # Thai and Devanagari came out as empty boxes, Arabic and Hebrew drawn in typed order
    # from left to right, the Arabic letters unjoined.
    admin = MembershipFactory(organization__name=organization_name)
    client.force_login(admin.user)
    license = LicenseFactory(owner=admin.organization, version__product__name=product_name)
    drawn = _drawn_text(monkeypatch)
    response = client.get(reverse("license-certificate-pdf", kwargs={"pk": license.pk}))
    assert response.status_code == 200
    page = PdfReader(io.BytesIO(response.content)).pages[0]
    embedded = {
        str(reference.get_object()["/BaseFont"]).partition("+")[2]
        for reference in page["/Resources"]["/Font"].values()
    }
    assert f"{font}-Regular" in embedded
    drawn_words = [_glyph_ids(font, text) for f, text, _right in drawn if f == font]
    changed = False
    for name in (organization_name, product_name):
        for run in pdftext.runs(name):
            if run.font != font:
                continue
            shaped = _shaped(font, run.text)
            assert shaped in drawn_words, f"{run.text!r} is not drawn as HarfBuzz shapes it"
            typed = _glyph_ids(font, run.text)  # isolated forms, in the order typed
            if font == pdftext.HEBREW:
                assert shaped == typed[::-1]  # no joining, but right to left
            changed = changed or shaped not in (typed, typed[::-1])
    if font != pdftext.HEBREW:
        # Joined Arabic forms, Devanagari conjuncts and reordered vowel signs, Thai marks moved
        # off a tall consonant: glyphs that no character maps to alone.
        assert changed
    for left, right in left_to_right:
        assert _drawn_at(drawn, font, left) < _drawn_at(drawn, font, right)
    extracted = page.extract_text()
    assert latin in extracted and license.version.product.sku in extracted


def test_right_to_left_and_indic_text_wraps_measured_as_shaped() -> None:
    text = 'شركة الاتصالات السعودية ABC 123 بع"م'
    lines = pdftext.wrap(text * 3, size=11, width=120)
    assert len(lines) > 3
    assert all(pdftext.measure(line, 11) <= 120 for line in lines)
    assert " ".join("".join(run.text for run in line) for line in lines) == " ".join(
        (text * 3).split()
    )
    # A conjunct is narrower than its letters side by side: widths are the shaped ones.
    conjunct = pdftext.runs("क्ष")
    assert conjunct == [pdftext.Run(pdftext.DEVANAGARI, "क्ष")]
    assert pdftext.measure(conjunct, 11) < sum(
        stringWidth(char, pdftext.DEVANAGARI, 11) for char in "क्ष"
    )
    # A word wider than a line breaks between letters, not before a vowel sign or after a
    # virama, which would tear a syllable apart.
    word = "क्षत्रियसॉफ्टवेयरप्राइवेटलिमिटेड" * 2
    lines = pdftext.wrap(word, size=11, width=60)
    assert len(lines) > 2 and "".join(run.text for line in lines for run in line) == word
    assert all(pdftext.measure(line, 11) <= 60 for line in lines)
    for line in lines[1:]:
        assert not unicodedata.category(line[0].text[0]).startswith("M")
    for line in lines[:-1]:
        assert line[-1].text[-1] != "\u094d"


@pytest.mark.parametrize(
    ("typed", "seen"),
    [
        # Hebrew letters are drawn with their own glyphs: what is drawn, left to right, is
        # the line as a reader sees it.
        ("שלום (abc) עולם", "םלוע (abc) םולש"),  # brackets turned to face their words
        ('חברת בע"מ Acme Ltd (1234)', 'Acme Ltd (1234) מ"עב תרבח'),
        ("Acme Ltd שרת 2.0", "Acme Ltd 2.0 תרש"),  # the number goes with the Hebrew before it
        # A name in a sentence of ours is one right-to-left unit, the sentence left to right.
        (pdftext.embed("שרת 2.0") + " to 2027", "2.0 תרש to 2027"),
    ],
)
def test_right_to_left_text_is_drawn_in_the_order_it_is_read(
    monkeypatch: pytest.MonkeyPatch, typed: str, seen: str
) -> None:
    drawn = _drawn_text(monkeypatch)
    pdftext.draw(Canvas(io.BytesIO()), 0, 0, typed, size=11)
    assert "".join(text for _font, text, _right in drawn) == seen


def test_right_to_left_text_is_still_drawn_if_python_bidis_analysis_cannot_be_read(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # The levels are read from python-bidi's Rust analysis (its debug output); a release that
    # words it otherwise raised, and every certificate with a right-to-left name was a 500.
    import bidi

    monkeypatch.setattr(bidi, "get_display", lambda text, **kwargs: "levels: paragraphs:")
    drawn = _drawn_text(monkeypatch)
    pdftext.draw(Canvas(io.BytesIO()), 0, 0, "Acme שלום עולם", size=11)
    assert "".join(text for _font, text, _right in drawn) == "Acme םלוע םולש"
    drawn.clear()
    # Its Python algorithm knows no isolates (pdftext.embed): they are read as neutrals.
    pdftext.draw(Canvas(io.BytesIO()), 0, 0, pdftext.embed("שרת") + " to 2027", size=11)
    assert "".join(text for _font, text, _right in drawn) == "תרש to 2027"
    assert "python-bidi's analysis could not be read" in caplog.text


@pytest.mark.parametrize(
    ("text", "rtl"),
    [
        ("شركة ABC", True),
        ('חברת בע"מ Acme', True),
        ("Acme שרת", False),
        ("(123) شركة", True),  # numbers and brackets have no direction of their own
        (pdftext.embed("شركة") + " Acme", False),  # an isolate does not decide
        ("12345", False),
    ],
)
def test_a_paragraphs_direction_is_its_first_letters(text: str, rtl: bool) -> None:
    assert pdftext.right_to_left(text) is rtl


def test_a_right_to_left_value_ends_at_its_columns_right_edge(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Right-to-left names started at the column's left edge, their lines ragged on the right,
    # where a reader of Arabic or Hebrew starts each line.
    from reportlab.lib.units import mm

    starts: dict[str, float] = {}
    draw = pdftext.draw

    def record(pdf: Canvas, x: float, y: float, text: Any, **kwargs: Any) -> None:
        written = text if isinstance(text, str) else "".join(run.text for run in text)
        starts[written] = x
        draw(pdf, x, y, text, **kwargs)

    monkeypatch.setattr(pdftext, "draw", record)
    admin = MembershipFactory()
    client.force_login(admin.user)
    organization = admin.organization
    organization.name = "شركة البرمجيات العربية"
    organization.save(update_fields=["name"])
    license = LicenseFactory(owner=organization, host_id="HOST-1")
    response = client.get(reverse("license-certificate-pdf", kwargs={"pk": license.pk}))
    assert response.status_code == 200
    value = f"{organization.name} ({organization.account_number})"
    (line,) = pdftext.wrap(value, size=11, width=A4[0] - 70 * mm - 25 * mm)
    assert starts[value] == pytest.approx(A4[0] - 25 * mm - pdftext.measure(line, 11))
    assert starts["HOST-1"] == pytest.approx(70 * mm)  # a left-to-right value as before
