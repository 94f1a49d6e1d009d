"""Text on a reportlab PDF in the scripts our customers write their names in.

The standard PDF fonts (Helvetica…) cover Latin-1 only: "Łódź", "Ελληνική", "Москва", "€" or
"株式会社" came out as black boxes. Text is drawn in runs: DejaVu Sans (vendored in
licensing/fonts, embedded as a subset) for every character it has, which is all of Latin with
Vietnamese, Greek and Cyrillic; reportlab's CID fonts for Chinese, Japanese and Korean. Those are
Adobe's standard Asian fonts, referenced by name and not embedded (a CJK TrueType font is 10-20 MB
and reportlab cannot embed the OpenType ones): PDF readers bring or substitute them.

reportlab is imported lazily, like in the views that draw PDFs, and the fonts are registered by
the first PDF a process draws.
"""

from __future__ import annotations

import threading
import unicodedata
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple
from xml.sax.saxutils import escape

if TYPE_CHECKING:
    from reportlab.pdfgen.canvas import Canvas

FONT_DIR = Path(__file__).resolve().parent / "fonts"
SANS = "DejaVuSans"
SANS_BOLD = "DejaVuSans-Bold"
# The sans-serif faces where there is one; reportlab has no sans-serif simplified Chinese.
CJK_CHINESE = "STSong-Light"
CJK_JAPANESE = "HeiseiKakuGo-W5"
CJK_KOREAN = "HYGothic-Medium"

# The blocks the CID fonts cover, all in the BMP: their UCS-2 encodings cannot say more.
_CJK = (
    (0x1100, 0x11FF),  # Hangul Jamo
    (0x2E80, 0x2FFF),  # CJK and Kangxi radicals, ideographic description
    (0x3000, 0x9FFF),  # CJK punctuation, kana, bopomofo, Hangul jamo, CJK ideographs
    (0xA960, 0xA97F),  # Hangul Jamo Extended-A
    (0xAC00, 0xD7FF),  # Hangul syllables, Jamo Extended-B
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0xFE30, 0xFE4F),  # CJK compatibility forms
    (0xFF00, 0xFFEF),  # halfwidth and fullwidth forms
)
_KANA = ((0x3040, 0x30FF), (0x31F0, 0x31FF), (0xFF66, 0xFF9F))
_HANGUL = ((0x1100, 0x11FF), (0x3130, 0x318F), (0xA960, 0xA97F), (0xAC00, 0xD7FF), (0xFFA0, 0xFFDC))


class Run(NamedTuple):
    """Consecutive characters drawn in one font."""

    font: str
    text: str


Line = list[Run]

_lock = threading.Lock()


@cache
def _register() -> dict[str, frozenset[int]]:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfbase.ttfonts import TTFont

    coverage = {}
    for name in (SANS, SANS_BOLD):
        font = TTFont(name, str(FONT_DIR / f"{name}.ttf"))
        pdfmetrics.registerFont(font)
        coverage[name] = frozenset(font.face.charToGlyph)
    for name in (CJK_CHINESE, CJK_JAPANESE, CJK_KOREAN):
        pdfmetrics.registerFont(UnicodeCIDFont(name))
    return coverage


def _coverage(font: str) -> frozenset[int]:
    """The code points `font` has glyphs for, registering the fonts on first use."""
    # The lock keeps two threads of one process from registering twice: a canvas that began
    # with one TTFont object and went on with its replacement would mix their subsets.
    with _lock:
        return _register()[font]


def _within(char: str, blocks: tuple[tuple[int, int], ...]) -> bool:
    code = ord(char)
    return any(low <= code <= high for low, high in blocks)


def _cjk_font(text: str) -> str:
    # Han characters alone do not say the language: kana make it Japanese, Hangul Korean. The
    # choice is made for the whole value, so that every line of a wrapped name keeps one face.
    if any(_within(char, _HANGUL) for char in text):
        return CJK_KOREAN
    if any(_within(char, _KANA) for char in text):
        return CJK_JAPANESE
    return CJK_CHINESE


def _extend(line: Line, font: str, text: str) -> None:
    if line and line[-1].font == font:
        line[-1] = Run(font, line[-1].text + text)
    else:
        line.append(Run(font, text))


def runs(text: str, *, bold: bool = False, cjk: str | None = None) -> Line:
    """`text` cut into runs of one font each: DejaVu Sans for what it has, a CID font for CJK."""
    # Composed forms: reportlab places no combining marks, and "Công" typed on a Mac arrives
    # decomposed; DejaVu has the precomposed Vietnamese letters.
    text = unicodedata.normalize("NFC", text)
    sans = SANS_BOLD if bold else SANS
    covered = _coverage(sans)
    cjk = cjk or _cjk_font(text)
    line: Line = []
    for char in text:
        # What neither font has stays in DejaVu Sans, whose empty box at least shows the gap.
        _extend(line, cjk if ord(char) not in covered and _within(char, _CJK) else sans, char)
    return line


def markup(text: str, *, bold: bool = False) -> str:
    """`text` as the markup of a reportlab Paragraph: escaped, each run in its font."""
    return "".join(
        f'<font face="{run.font}">{escape(run.text)}</font>' for run in runs(text, bold=bold)
    )


def sans(*, bold: bool = False) -> str:
    """The name of the DejaVu Sans face, registered: for table cells and chart labels, which
    draw in one font (numbers, money, Latin, Greek and Cyrillic names)."""
    name = SANS_BOLD if bold else SANS
    _coverage(name)
    return name


def measure(line: Line, size: float) -> float:
    """The width of `line` in points at `size`, measured in the fonts it is drawn with."""
    from reportlab.pdfbase.pdfmetrics import stringWidth

    return sum(stringWidth(run.text, run.font, size) for run in line)


def wrap(text: str, *, size: float, width: float, bold: bool = False) -> list[Line]:
    """`text` in lines no wider than `width` points: broken between words, and a word wider
    than a line (a host ID of many MAC addresses, 200 characters without a space; a Chinese or
    Japanese name, written without spaces) between characters, since drawString would run it
    off the page."""
    from reportlab.pdfbase.pdfmetrics import stringWidth

    cjk = _cjk_font(text)
    space = Run(SANS_BOLD if bold else SANS, " ")
    space_width = stringWidth(space.text, space.font, size)
    lines: list[Line] = []
    line: Line = []
    line_width = 0.0
    for word in text.split():
        word_line = runs(word, bold=bold, cjk=cjk)
        word_width = sum(stringWidth(run.text, run.font, size) for run in word_line)
        if line and line_width + space_width + word_width <= width:
            for run in (space, *word_line):
                _extend(line, *run)
            line_width += space_width + word_width
            continue
        if line:
            lines.append(line)
            line, line_width = [], 0.0
        for run in word_line:
            for char in run.text:
                char_width = stringWidth(char, run.font, size)
                if line and line_width + char_width > width:
                    lines.append(line)
                    line, line_width = [], 0.0
                _extend(line, run.font, char)
                line_width += char_width
    if line or not lines:
        lines.append(line)
    return lines


def draw(
    pdf: Canvas, x: float, y: float, text: str | Line, *, size: float, bold: bool = False
) -> None:
    """Draw `text` (a string, or a line from `wrap`) at (x, y), each run in its font."""
    from reportlab.pdfbase.pdfmetrics import stringWidth

    for run in runs(text, bold=bold) if isinstance(text, str) else text:
        pdf.setFont(run.font, size)
        pdf.drawString(x, y, run.text)
        x += stringWidth(run.text, run.font, size)
