"""An email's HTML body says what its text body says: most customers read only the HTML."""

from __future__ import annotations

import html
import re

import pytest

from portal.emails import render_email
from tests.licensing.factories import LicenseFactory
from tests.portal.factories import DelegationFactory

pytestmark = pytest.mark.django_db


def _visible(markup: str) -> str:
    """The HTML's text and link targets, as a reader sees and follows them."""
    links = " ".join(re.findall(r'href="([^"]+)"', markup))
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", markup)).split()) + " " + links


def _facts(text: str) -> list[str]:
    """The labelled values ("Quantity: 10") and the links of a text body, footer excluded."""
    body = text.split("\n-- \n")[0]
    facts = []
    for line in body.splitlines():
        label, sep, value = line.partition(": ")
        if sep and value:
            facts += [label.strip(), value.strip()]
        facts += re.findall(r"https?://\S+", line)
    return facts


@pytest.mark.parametrize("event", ["issued", "rehosted", "renewed"])
def test_license_email_html_has_every_fact_of_the_text(event: str) -> None:
    license = LicenseFactory(host_id="00:1A:2B:3C:4D:5E")
    _subject, text, markup = render_email(
        f"license_{event}",
        {"license": license, "product": license.version.product, "acting_partner": None},
    )
    visible = _visible(markup)
    missing = [fact for fact in _facts(text) if fact not in visible and fact != "License key"]
    assert not missing, missing


@pytest.mark.parametrize("for_partner", [False, True])
@pytest.mark.parametrize(
    "template", ["delegation_revoked", "delegation_declined", "delegation_expired"]
)
def test_delegation_email_html_has_the_texts_link(template: str, for_partner: bool) -> None:
    delegation = DelegationFactory()
    _subject, text, markup = render_email(
        template,
        {
            "delegation": delegation,
            "customer": delegation.customer,
            "partner": delegation.partner,
            "for_partner": for_partner,
        },
    )
    links = re.findall(r"https?://\S+", text.split("\n-- \n")[0])
    assert links and all(link in _visible(markup) for link in links), links
