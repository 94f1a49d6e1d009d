"""A refused form outside the wizards, in Chromium at a phone's width: the page reloaded at its
top with the focus on <body>, nothing announced, the only error below the fold; allauth's wrong
password was a black bullet list. Now the errors are summarised in an alert (role=alert) and the
focus is on the first field in error, or on the alert when the error is about the whole form.
"""

from __future__ import annotations

from typing import Any, cast

import pytest
from playwright.sync_api import Page, expect

from licensing.models import License
from portal.models import Membership
from tests.e2e.conftest import PHONE, NewContext
from tests.licensing.factories import LicenseFactory
from tests.portal.factories import PASSWORD, MembershipFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def phone_page(open_context: NewContext) -> Page:
    return open_context(viewport=PHONE).new_page()


def log_in(page: Page, base_url: str, email: str, password: str = PASSWORD) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def test_a_wrong_password_is_announced_and_focused(
    live_server: Any, open_context: NewContext
) -> None:
    page = phone_page(open_context)
    member = cast(Membership, MembershipFactory())
    log_in(page, live_server.url, member.user.email, password="not-the-password")
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("not correct")
    expect(alert).to_have_class("alert alert-danger form-errors")
    expect(alert).to_be_focused()
    # No bullet list of its own beside it.
    expect(page.locator("ul.errorlist.nonfield")).to_have_count(0)


def test_a_refused_registration_save_focuses_the_field_in_error(
    live_server: Any, open_context: NewContext
) -> None:
    page = phone_page(open_context)
    member = cast(Membership, MembershipFactory())
    license = cast(License, LicenseFactory(owner=member.organization))
    log_in(page, live_server.url, member.user.email)
    expect(page).to_have_url(f"{live_server.url}/dashboard/")
    page.goto(f"{live_server.url}/licenses/{license.pk}/registration/")
    phone = page.get_by_label("Technical contact phone")
    phone.fill("")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".invalid-feedback")).to_be_visible()
    expect(phone).to_be_focused()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Correct the field marked below: Technical contact phone")
    # The summary's link leads to the field.
    expect(alert.get_by_role("link", name="Technical contact phone")).to_have_attribute(
        "href", "#id_technical_phone"
    )
