"""Countries are ISO 3166 codes (django-countries), shown by name in the reader's language.

`country_code` reads the free text people typed before countries were codes ("Brazil",
"Brasil", "BR", "EUA"…); the data migrations use it, and what it does not recognise is kept
beside the code (`country_legacy`) for staff to see and fix, never dropped.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from django.db import models
from django_countries import countries

# Names people commonly type that are neither the ISO name nor its translation.
ALIASES = {
    "usa": "US",
    "u.s.a.": "US",
    "us": "US",
    "u.s.": "US",
    "united states of america": "US",
    "america": "US",
    "eua": "US",
    "e.u.a.": "US",
    "estados unidos": "US",
    "estados unidos da america": "US",
    "uk": "GB",
    "u.k.": "GB",
    "great britain": "GB",
    "england": "GB",
    "scotland": "GB",
    "wales": "GB",
    "inglaterra": "GB",
    "reino unido": "GB",
    "brasil": "BR",
    "alemanha": "DE",
    "holland": "NL",
    "the netherlands": "NL",
    "holanda": "NL",
    "russia": "RU",
    "south korea": "KR",
    "korea": "KR",
    "coreia do sul": "KR",
}


def _plain(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    without_accents = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(without_accents.casefold().split())


def _names() -> dict[str, str]:
    """Every country's name in English and Brazilian Portuguese, without accents → code."""
    from django.utils import translation

    names: dict[str, str] = {}
    for language in ("en", "pt-br"):
        with translation.override(language):
            for code, name in countries:
                names.setdefault(_plain(str(name)), code)
    return names


def country_code(text: str | None) -> str | None:
    """The ISO code for a country as typed (a code, an English or Portuguese name, an alias)."""
    plain = _plain(text or "")
    if not plain:
        return None
    upper = plain.upper()
    if len(upper) == 2 and upper in countries:
        return upper
    if len(upper) == 3 and countries.alpha2(upper):
        return countries.alpha2(upper)
    return ALIASES.get(plain) or _names().get(plain)


def codes_from_text(model: Any) -> None:
    """Data migration step: a model's free-text `country` becomes a code where recognisable.

    One UPDATE per distinct value. What is not recognised moves to `country_legacy` (the code
    column holds only codes, and staff still see what was typed).
    """
    values = model.objects.exclude(country="").values_list("country", flat=True).distinct()
    for value in list(values):
        code = country_code(value)
        rows = model.objects.filter(country=value)
        if code:
            if code != value:
                rows.update(country=code)
        else:
            rows.update(country="", country_legacy=value[:100])


def text_from_codes(model: Any) -> None:
    """Reverse of codes_from_text: unrecognised text goes back to `country` (codes stay)."""
    model.objects.exclude(country_legacy="").update(country=models.F("country_legacy"))
