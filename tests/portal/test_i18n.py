"""The pt-BR catalog: complete, compiled from the current .po, and used by the site."""

from __future__ import annotations

import ast
import gettext
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from django.utils import translation

pytestmark = pytest.mark.django_db

LC_MESSAGES = Path(settings.LOCALE_PATHS[0]) / "pt_BR" / "LC_MESSAGES"
PO_FILE = LC_MESSAGES / "django.po"
MO_FILE = LC_MESSAGES / "django.mo"

FORMAT_SPEC = re.compile(r"%\([A-Za-z_][A-Za-z0-9_]*\)[-#0 +]*\d*(?:\.\d+)?[sdifr]")
HTML_TAG = re.compile(r"</?[A-Za-z][^>]*>")


@dataclass
class Entry:
    line: int
    flags: set[str] = field(default_factory=set)
    msgctxt: str | None = None
    msgid: str = ""
    msgid_plural: str | None = None
    msgstr: dict[int, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"line {self.line}: {self.msgid!r}"


def parse_po(path: Path) -> list[Entry]:
    """A small .po reader: enough for the files makemessages writes (no obsolete #~ entries)."""
    entries: list[Entry] = []
    entry: Entry | None = None
    target: tuple[str, int] = ("", 0)

    def append(keyword: str, index: int, text: str) -> None:
        assert entry is not None
        value = ast.literal_eval(text)
        if keyword == "msgctxt":
            entry.msgctxt = (entry.msgctxt or "") + value
        elif keyword == "msgid":
            entry.msgid += value
        elif keyword == "msgid_plural":
            entry.msgid_plural = (entry.msgid_plural or "") + value
        else:
            entry.msgstr[index] = entry.msgstr.get(index, "") + value

    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line:
            entry = None
            continue
        if line.startswith("#~"):
            continue
        if entry is None:
            entry = Entry(line=number)
            entries.append(entry)
        if line.startswith("#,"):
            entry.flags |= {flag.strip() for flag in line[2:].split(",") if flag.strip()}
        elif line.startswith("#"):
            continue
        elif line.startswith('"'):
            append(*target, line)
        else:
            keyword, _, rest = line.partition(" ")
            match = re.fullmatch(r"msgstr\[(\d+)\]", keyword)
            target = ("msgstr", int(match.group(1))) if match else (keyword, 0)
            append(*target, rest)
    return entries


@pytest.fixture(scope="module")
def po_entries() -> list[Entry]:
    assert PO_FILE.is_file(), f"{PO_FILE} is missing: run `make messages`"
    entries = parse_po(PO_FILE)
    assert entries and entries[0].msgid == "", "the .po file has no header entry"
    return entries


def test_po_header_declares_brazilian_portuguese(po_entries: list[Entry]) -> None:
    header = po_entries[0].msgstr[0]
    assert "Language: pt_BR\n" in header
    assert "charset=UTF-8" in header
    # Brazilian usage puts zero in the plural ("0 licenças"), unlike gettext's default for pt_BR
    # ((n > 1), which would print "0 licença").
    assert "Plural-Forms: nplurals=2; plural=(n != 1);" in header


def test_every_message_is_translated_and_reviewed(po_entries: list[Entry]) -> None:
    messages = po_entries[1:]
    assert messages, "the catalog holds no messages"
    fuzzy = [e.label for e in po_entries if "fuzzy" in e.flags]
    assert not fuzzy, f"fuzzy entries need review: {fuzzy}"
    untranslated = [
        e.label for e in messages if not e.msgstr or any(not s.strip() for s in e.msgstr.values())
    ]
    assert not untranslated, f"untranslated messages: {untranslated}"
    wrong_plurals = [e.label for e in messages if e.msgid_plural and sorted(e.msgstr) != [0, 1]]
    assert not wrong_plurals, f"plural entries need msgstr[0] and msgstr[1]: {wrong_plurals}"


def test_translations_keep_format_specs_html_and_newlines(po_entries: list[Entry]) -> None:
    problems = []
    for e in po_entries[1:]:
        sources = [e.msgid, e.msgid_plural or e.msgid]
        for index, text in e.msgstr.items():
            source = sources[min(index, 1)]
            for what, pattern in (("format specifiers", FORMAT_SPEC), ("HTML tags", HTML_TAG)):
                if sorted(pattern.findall(text)) != sorted(pattern.findall(source)):
                    problems.append(f"{e.label} [{index}]: {what} differ")
            if text.count("\n") != source.count("\n"):
                problems.append(f"{e.label} [{index}]: newlines differ")
    assert not problems, "\n".join(problems)


def _msgfmt() -> str:
    msgfmt = shutil.which("msgfmt")
    if msgfmt is None:
        pytest.skip("GNU gettext's msgfmt is not installed (apt-get install gettext)")
    return msgfmt


def test_msgfmt_accepts_the_catalog() -> None:
    result = subprocess.run(
        [_msgfmt(), "--check", "--statistics", "-o", "-", str(PO_FILE)],
        capture_output=True,
        text=False,
        check=False,
    )
    report = result.stderr.decode("utf-8", "replace")
    assert result.returncode == 0, report
    assert "untranslated" not in report, report
    assert "fuzzy" not in report, report


def test_committed_mo_matches_the_po(tmp_path: Path) -> None:
    """Compile the .po afresh and compare: mtimes mean nothing in a fresh git clone."""
    assert MO_FILE.is_file(), f"{MO_FILE} is missing: run `make messages`"
    fresh = tmp_path / "django.mo"
    subprocess.run([_msgfmt(), "--check", "-o", str(fresh), str(PO_FILE)], check=True)
    with fresh.open("rb") as f:
        expected = gettext.GNUTranslations(f)._catalog  # type: ignore[attr-defined]
    with MO_FILE.open("rb") as f:
        committed = gettext.GNUTranslations(f)._catalog  # type: ignore[attr-defined]
    expected = {k: v for k, v in expected.items() if k != ""}  # the header is not a message
    committed = {k: v for k, v in committed.items() if k != ""}
    assert expected, "the fresh compile holds no messages"
    stale = sorted(str(k) for k, v in expected.items() if committed.get(k) != v)
    assert not stale, f"django.mo is out of date, run `make messages`; stale: {stale}"
    extra = sorted(str(k) for k in committed.keys() - expected.keys())
    assert not extra, f"django.mo holds messages the .po no longer has: {extra}"


def test_portal_terms_follow_the_brazilian_portal() -> None:
    with translation.override("pt-br"):
        assert translation.gettext("Get a license key") == "Obter uma chave de licença"
        assert translation.gettext("Serial number") == "Número de série"
        assert translation.gettext("Licensing Portal") == "Portal de licenciamento"


def test_home_page_follows_accept_language(client: Client) -> None:
    response = client.get("/", HTTP_ACCEPT_LANGUAGE="pt-BR")
    assert response.status_code == 200
    assert response["Content-Language"] == "pt-br"
    assert "Portal de licenciamento" in response.content.decode()


def test_home_page_stays_english_by_default(client: Client) -> None:
    response = client.get("/", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    content = response.content.decode()
    assert "Licensing Portal" in content
    assert "Portal de licenciamento" not in content


def test_zero_reads_plural_in_portuguese() -> None:
    with translation.override("pt-br"):
        zero = translation.ngettext(
            "%(count)d serial number created.", "%(count)d serial numbers created.", 0
        ) % {"count": 0}
        one = translation.ngettext(
            "%(count)d serial number created.", "%(count)d serial numbers created.", 1
        ) % {"count": 1}
    assert zero.startswith("0 números de série"), zero
    assert one.startswith("1 número de série"), one
