"""What every page carries: a favicon that is served, a language switcher that works with
JavaScript (submits on change, tests/e2e) and without it (its "Go" button), and a top bar that
marks the current section."""

from __future__ import annotations

import re

import pytest
from django.contrib.staticfiles import finders
from django.urls import reverse

from tests.licensing.factories import LicenseFactory
from tests.portal.factories import MembershipFactory

pytestmark = pytest.mark.django_db


def test_every_page_links_a_favicon_that_exists(client) -> None:  # type: ignore[no-untyped-def]
    html = client.get(reverse("account_login")).content.decode()
    icons = re.findall(r'<link rel="icon" href="/static/([^"]+)"', html)
    assert icons
    for icon in icons:
        assert finders.find(icon), icon


def test_the_language_switcher_works_without_javascript(client) -> None:  # type: ignore[no-untyped-def]
    html = client.get(reverse("account_login")).content.decode()
    form = html[html.index('action="/i18n/setlang/"') :]
    form = form[: form.index("</form>")]
    assert "data-submit-on-change" in form  # portal.js submits on change
    assert re.search(r'<button class="[^"]*no-js-only[^"]*" type="submit">Go</button>', form)
    response = client.post(
        reverse("set_language"), {"language": "pt-br", "next": reverse("account_login")}
    )
    assert response.status_code == 302 and response["Location"] == reverse("account_login")
    assert '<html lang="pt-br"' in client.get(reverse("account_login")).content.decode()


def test_the_certificate_has_a_print_button(client) -> None:  # type: ignore[no-untyped-def]
    membership = MembershipFactory()
    license = LicenseFactory(owner=membership.organization)
    client.force_login(membership.user)
    html = client.get(reverse("license-certificate", args=[license.pk])).content.decode()
    assert 'data-print data-testid="print-button"' in html and ">Print</button>" in html
    assert "js/portal.js" in html  # which shows the button and prints (e2e clicks it)


def test_the_top_bar_marks_the_current_section(client) -> None:  # type: ignore[no-untyped-def]
    client.force_login(MembershipFactory().user)

    def current(url: str) -> list[str]:
        html = client.get(url).content.decode()
        return re.findall(
            r'<a class="nav-link active" href="[^"]+" aria-current="page">([^<]+)</a>', html
        )

    assert current(reverse("dashboard")) == ["Dashboard"]
    assert current(reverse("license-list") + "?include=all") == ["My licenses"]
    assert current(reverse("upgrades-pending")) == ["Version upgrade"]
    assert current(reverse("account_email")) == []


def test_the_dashboard_heading_names_the_page_and_the_organization(client) -> None:  # type: ignore[no-untyped-def]
    # It read the site's name ("Licensing Portal"), which the top bar already shows and which
    # says nothing about the page; the title read "Dashboard" alone.
    membership = MembershipFactory(organization__name="Acme Ltda")
    client.force_login(membership.user)
    html = client.get(reverse("dashboard")).content.decode()
    heading = re.search(r"(?s)<h1[^>]*>(.*?)</h1>", html)
    title = re.search(r"(?s)<title>(.*?)</title>", html)
    assert heading and title
    assert heading.group(1).strip() == "Acme Ltda dashboard"
    assert " ".join(title.group(1).split()) == "Acme Ltda dashboard · Licensing Portal"
    account = membership.organization.account_number
    assert f"Account number {account}" in " ".join(html.split())
