"""Text on a reportlab PDF in the scripts our customers write their names in.

The standard PDF fonts (Helvetica…) cover Latin-1 only: "Łódź", "Ελληνική", "Москва", "€" or
"株式会社" came out as black boxes. Text is drawn in runs: DejaVu Sans (vendored in
licensing/fonts, embedded as a subset) for every character it has, which is all of Latin with
Vietnamese, Greek and Cyrillic; reportlab's CID fonts for Chinese, Japanese and Korean. Those are
Adobe's standard Asian fonts, referenced by name and not embedded (a CJK TrueType font is 10-20 MB
and reportlab cannot embed the OpenType ones): PDF readers bring or substitute them.

Arabic, Hebrew, Thai and Devanagari are drawn in their Noto Sans faces (vendored and embedded
like DejaVu Sans), shaped by HarfBuzz (uharfbuzz, through reportlab's shaper): Arabic letters
join, Devanagari consonants form conjuncts and vowel signs move before them, Thai marks stack.
Right-to-left text is put in visual order per line by the Unicode bidi algorithm (python-bidi),
since reportlab's own bidi needs rlbidi, which we do not install. Lines are kept in logical
order (a Line is what the customer typed, cut into runs) until they are measured or drawn.

reportlab is imported lazily, like in the views that draw PDFs, and the fonts are registered by
the first PDF a process draws.
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from reportlab.pdfgen.canvas import Canvas

logger = logging.getLogger(__name__)

FONT_DIR = Path(__file__).resolve().parent / "fonts"
SANS = "DejaVuSans"
SANS_BOLD = "DejaVuSans-Bold"
# The sans-serif faces where there is one; reportlab has no sans-serif simplified Chinese.
CJK_CHINESE = "STSong-Light"
CJK_JAPANESE = "HeiseiKakuGo-W5"
CJK_KOREAN = "HYGothic-Medium"
ARABIC = "NotoSansArabic"
HEBREW = "NotoSansHebrew"
THAI = "NotoSansThai"
DEVANAGARI = "NotoSansDevanagari"

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
# The scripts drawn in their own face even where DejaVu Sans has a glyph (it has unjoined Arabic
# and Hebrew): their letters take their shape from their neighbours, which only the face's
# OpenType tables say, and one face per word keeps its letters joined and its marks in place.
_SCRIPTS = (
    (
        ARABIC,
        ((0x0600, 0x06FF), (0x0750, 0x077F), (0x0870, 0x08FF), (0xFB50, 0xFDFF), (0xFE70, 0xFEFF)),
    ),
    (HEBREW, ((0x0590, 0x05FF), (0xFB1D, 0xFB4F))),
    (THAI, ((0x0E00, 0x0E7F),)),
    (DEVANAGARI, ((0x0900, 0x097F), (0xA8E0, 0xA8FF), (0x1CD0, 0x1CFF))),
)
SHAPED = frozenset(font for font, _blocks in _SCRIPTS)
_JOINERS = "\u200c\u200d"  # zero width (non-)joiner: they steer the shaping of their word
_VIRAMA = "\u094d"
_FSI, _PDI = "\u2068", "\u2069"  # first strong isolate … pop directional isolate


class Run(NamedTuple):
    """Consecutive characters drawn in one font."""

    font: str
    text: str


Line = list[Run]


class _Glyphs(NamedTuple):
    """Part of a line ready to draw: a font, its glyphs (a reportlab ShapedStr for a shaped
    face) in visual order, and their width in points."""

    font: str
    text: str
    width: float


# One lock for registering the fonts and for shaping: reportlab's shaper gives glyphs that
# have no character (a conjunct, a joined form) a private-use one in the font's shared maps.
_lock = threading.RLock()


@cache
def _register() -> dict[str, frozenset[int]]:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfbase.ttfonts import TTFont

    coverage = {}
    files = {SANS: SANS, SANS_BOLD: SANS_BOLD} | {font: f"{font}-Regular" for font in SHAPED}
    for name, file in files.items():
        font = TTFont(name, str(FONT_DIR / f"{file}.ttf"), shapable=name in SHAPED)
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


def _font(char: str, previous: str | None, sans: str, cjk: str) -> str:
    code = ord(char)
    if (
        previous in SHAPED
        and (char in _JOINERS or unicodedata.category(char).startswith("M"))
        and code in _coverage(previous)
    ):
        return previous  # a mark or joiner belongs to the letter before it
    for font, blocks in _SCRIPTS:
        if _within(char, blocks) and code in _coverage(font):
            return font
    if code in _coverage(sans) or not _within(char, _CJK):
        # What no font has stays in DejaVu Sans, whose empty box at least shows the gap.
        return sans
    return cjk


def runs(text: str, *, bold: bool = False, cjk: str | None = None) -> Line:
    """`text` cut into runs of one font each: a Noto face for Arabic, Hebrew, Thai and
    Devanagari, DejaVu Sans for the rest it has, a CID font for CJK."""
    # Composed forms: reportlab places no combining marks, and "Công" typed on a Mac arrives
    # decomposed; DejaVu has the precomposed Vietnamese letters.
    text = unicodedata.normalize("NFC", text)
    sans = SANS_BOLD if bold else SANS
    cjk = cjk or _cjk_font(text)
    line: Line = []
    for char in text:
        _extend(line, _font(char, line[-1].font if line else None, sans, cjk), char)
    return line


def sans(*, bold: bool = False) -> str:
    """The name of the DejaVu Sans face, registered: for table cells, chart axes and legends,
    which draw in one font (numbers, money, our own labels)."""
    name = SANS_BOLD if bold else SANS
    _coverage(name)
    return name


def _shape(font: str, text: str, size: float) -> str:
    """`text` in `font` shaped by HarfBuzz, its glyphs in visual order (reversed for
    right-to-left text), with their advances and offsets."""
    from reportlab.pdfbase.ttfonts import shapeStr

    # force: a ShapedStr even where shaping changes nothing, so that its width is known.
    with _lock:
        return shapeStr(text, font, size, force=True)


def _width(font: str, text: str, size: float) -> float:
    from reportlab.pdfbase.pdfmetrics import stringWidth
    from reportlab.pdfbase.ttfonts import ShapedStr

    if isinstance(text, ShapedStr):
        return sum(data.x_advance for data in text.__shapeData__) * size / 1000
    return stringWidth(text, font, size)


def _strong(text: str, rtl: bool) -> bool:
    """Whether `text` has a letter of direction `rtl`, which makes HarfBuzz (guessing from the
    script) shape it in that direction."""
    kinds = ("R", "AL") if rtl else ("L",)
    return any(unicodedata.bidirectional(char) in kinds for char in text)


def _levels(text: str) -> list[int]:
    """The bidi embedding level of each character of `text` (a line).

    From python-bidi's Rust analysis (_analysed_levels); should a release of python-bidi
    change what that analysis says, from its Python algorithm, which knows neither isolates
    nor bracket pairs: a certificate whose brackets may face the wrong way, logged, rather
    than no certificate at all.
    """
    try:
        return _analysed_levels(text)
    except Exception:
        logger.warning("python-bidi's analysis could not be read; its Python levels are used")
        return _python_levels(text)


def _python_levels(text: str) -> list[int]:
    """The levels of python-bidi's Python algorithm (rules P2 to I2), which predates isolates:
    theirs are read as neutral punctuation. The paragraph's level for every character where it
    dropped explicit embedding marks (rule X9), or failed."""
    from bidi import algorithm

    # The paragraph's direction from its first strong letter outside isolates (rule P2).
    base = algorithm.get_base_level(_ISOLATED.sub("", text))
    text = text.translate(_ISOLATES_AS_NEUTRAL)
    storage: dict[str, Any] = algorithm.get_empty_storage()
    storage["base_level"], storage["base_dir"] = base, ("L", "R")[base]
    try:
        algorithm.get_embedding_levels(text, storage)
        algorithm.explicit_embed_and_overrides(storage)
        algorithm.resolve_weak_types(storage)
        algorithm.resolve_neutral_types(storage, False)
        algorithm.resolve_implicit_levels(storage, False)
    except Exception:
        return [base] * len(text)
    levels = [char["level"] for char in storage["chars"]]
    return levels if len(levels) == len(text) else [base] * len(text)


# FSI, LRI, RLI, PDI, read as "!", a neutral, by an algorithm that does not know them.
_ISOLATED = re.compile("[\u2066-\u2068][^\u2069]*\u2069?")
_ISOLATES_AS_NEUTRAL = str.maketrans(dict.fromkeys("\u2068\u2066\u2067\u2069", "!"))


def _analysed_levels(text: str) -> list[int]:
    """The bidi embedding level of each character of `text` (a line), by the Unicode bidi
    algorithm: python-bidi's Rust get_display, which knows isolates and bracket pairs. It
    returns only the reordered text, or with debug=True (documented: "return the calculated
    levels") its analysis, where the levels are listed per byte of the UTF-8 text."""
    from bidi import get_display

    analysis = str(get_display(text, debug=True))
    listed = analysis.partition("levels:")[2].partition("paragraphs:")[0]
    by_byte = [int(level) for level in re.findall(r"Level\(\s*(\d+),?\s*\)", listed)]
    levels, position = [], 0
    for char in text:
        levels.append(by_byte[position])
        position += len(char.encode())
    if position != len(by_byte):
        raise RuntimeError("python-bidi's analysis no longer lists one level per byte")
    return levels


def _visual(line: Line, size: float) -> list[_Glyphs]:
    """`line` as pieces of one font and one direction, in the order they are drawn from left
    to right, shaped where their font is."""
    from bidi import algorithm, get_base_level

    text = "".join(run.text for run in line)
    fonts = [run.font for run in line for _char in run.text]
    if not any(font in SHAPED for font in fonts) and _FSI not in text and _PDI not in text:
        return [_Glyphs(run.font, run.text, _width(run.font, run.text, size)) for run in line]
    # python-bidi's Python steps reorder a line (rule L1, the line's trailing spaces at the
    # paragraph's level; L2, reversing) and mirror brackets, with the levels given, each
    # character keeping its index for its font.
    chars = [
        {"ch": char, "index": index, "level": level, "orig": unicodedata.bidirectional(char)}
        for index, (char, level) in enumerate(zip(text, _levels(text), strict=True))
    ]
    storage: dict[str, Any] = {"base_level": get_base_level(text), "chars": chars}
    algorithm.reorder_resolved_levels(storage, False)
    algorithm.apply_mirroring(storage, False)
    pieces: list[list[dict[str, Any]]] = []
    for char in storage["chars"]:
        last = pieces[-1][-1] if pieces else None
        if (
            last is not None
            and fonts[last["index"]] == fonts[char["index"]]
            and last["level"] == char["level"]
        ):
            pieces[-1].append(char)
        else:
            pieces.append([char])
    glyphs = []
    for piece in pieces:
        font = fonts[piece[0]["index"]]
        rtl = piece[0]["level"] % 2 == 1
        if font in SHAPED:
            # HarfBuzz shapes the piece as typed, and gives its glyphs in visual order.
            logical = "".join(text[index] for index in sorted(char["index"] for char in piece))
            if _strong(logical, rtl):
                drawn = _shape(font, logical, size)
            else:
                # Arabic-Indic digits within Arabic, or marks alone: HarfBuzz would guess
                # the direction from their script, so each is shaped on its own.
                shaped = [_shape(font, char["ch"], size) for char in piece]
                drawn = shaped[0]
                for more in shaped[1:]:
                    drawn += more  # a ShapedStr's sum keeps its glyphs' positions
        else:
            # Reordered and mirrored; direction marks and joiners steer, they are not drawn.
            drawn = "".join(
                char["ch"] for char in piece if unicodedata.category(char["ch"]) != "Cf"
            )
        glyphs.append(_Glyphs(font, drawn, _width(font, drawn, size)))
    return glyphs


def embed(value: str) -> str:
    """`value` (a customer's name) to put in a sentence of ours, kept in its own direction:
    "شركة ABC 123" stays one right-to-left unit in "شركة ABC 123 · 2026-01-18 to …", and the
    sentence stays left to right, as our languages are, where the name comes first."""
    return f"{_FSI}{value}{_PDI}"


def right_to_left(text: str) -> bool:
    """Whether `text` reads right to left as a paragraph: its first letter with a direction is
    Arabic or Hebrew (Unicode's rules P2 and P3), what is inside an isolate not counted."""
    for char in _ISOLATED.sub("", text):
        kind = unicodedata.bidirectional(char)
        if kind in ("R", "AL"):
            return True
        if kind == "L":
            return False
    return False


def measure(line: Line, size: float) -> float:
    """The width of `line` in points at `size`, measured in the fonts it is drawn with, as
    shaped."""
    return sum(glyphs.width for glyphs in _visual(line, size))


def _clusters(run: Run) -> list[str]:
    """`run.text` in the pieces a line may break between: not before a mark, and not around a
    joiner or a virama, which bind their neighbours into one conjunct."""
    clusters: list[str] = []
    for char in run.text:
        if clusters and (
            unicodedata.category(char).startswith("M")
            or char in _JOINERS
            or clusters[-1][-1] in _JOINERS + _VIRAMA
        ):
            clusters[-1] += char
        else:
            clusters.append(char)
    return clusters


def wrap(text: str, *, size: float, width: float, bold: bool = False) -> list[Line]:
    """`text` in lines no wider than `width` points: broken between words, and a word wider
    than a line (a host ID of many MAC addresses, 200 characters without a space; a Chinese or
    Japanese name, written without spaces) between characters, since drawString would run it
    off the page."""
    cjk = _cjk_font(text)
    space = Run(SANS_BOLD if bold else SANS, " ")
    lines: list[Line] = []
    line: Line = []
    for word in text.split():
        word_line = runs(word, bold=bold, cjk=cjk)
        if line:
            longer = line.copy()
            for run in (space, *word_line):
                _extend(longer, *run)
            if measure(longer, size) <= width:
                line = longer
                continue
            lines.append(line)
            line = []
        if measure(word_line, size) <= width:
            line = word_line
            continue
        for run in word_line:
            for cluster in _clusters(run):
                longer = line.copy()
                _extend(longer, run.font, cluster)
                if line and measure(longer, size) > width:
                    lines.append(line)
                    longer = [Run(run.font, cluster)]
                line = longer
    if line or not lines:
        lines.append(line)
    return lines


def draw(
    pdf: Canvas, x: float, y: float, text: str | Line, *, size: float, bold: bool = False
) -> None:
    """Draw `text` (a string, or a line from `wrap`) at (x, y), each run in its font."""
    # One text object for the line, each piece going on where the one before ends: a reader
    # copying the text (or pypdf extracting it) then sees one line, not a line per piece.
    line = pdf.beginText(x, y)
    for glyphs in _visual(runs(text, bold=bold) if isinstance(text, str) else text, size):
        line.setFont(glyphs.font, size)
        line.textOut(glyphs.text)
    pdf.drawText(line)
