"""The POST-only addresses of a license's actions and of the bulk custom-data page: a page a
refused form rendered there sends the switchers back to a page a GET shows, and a GET of them
(the language switcher's return, a reload, Back) lands on that page instead of an empty 405."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from licensing.models import CustomField
from tests.licensing.factories import LicenseFactory, ProductFactory, ProductVersionFactory
from tests.portal.factories import MembershipFactory

pytestmark = pytest.mark.django_db

ACTIONS = ["license-renew", "license-rehost", "license-custom-values", "license-email"]


@pytest.fixture
def admin(client):  # type: ignore[no-untyped-def]
    membership = MembershipFactory()
    client.force_login(membership.user)
    return membership


@pytest.fixture
def license(admin):  # type: ignore[no-untyped-def]
    version = ProductVersionFactory(product=ProductFactory(node_locked=True, rehost_limit=3))
    return LicenseFactory(owner=admin.organization, version=version, host_id="HOST-A")


def _switch_next(response) -> str:  # type: ignore[no-untyped-def]
    """The `next` of the language switcher on the page."""
    page = response.content.decode()
    form = re.search(r'<form action="/i18n/setlang/".*?</form>', page, re.S)
    assert form, "no language switcher"
    found = re.search(r'name="next" type="hidden" value="([^"]*)"', form.group())
    assert found, form.group()
    return found.group(1)


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("license-renew", {"serial": ""}),
        ("license-rehost", {"host_id": ""}),
        ("license-rehost", {"host_id": "HOST-B"}),  # the confirmation page
    ],
)
def test_a_page_shown_at_a_post_only_address_switches_back_to_the_license(
    client, admin, license, name, data
) -> None:  # type: ignore[no-untyped-def]
    response = client.post(reverse(name, kwargs={"pk": license.pk}), data)
    detail = reverse("license-detail", kwargs={"pk": license.pk})
    assert response.status_code in (200, 400)
    assert _switch_next(response) == detail
    # …and choosing Português there shows the license page in it.
    switched = client.post(
        reverse("set_language"), {"language": "pt-br", "next": _switch_next(response)}, follow=True
    )
    assert switched.redirect_chain[-1] == (detail, 302) and switched.status_code == 200
    assert '<html lang="pt-br"' in switched.content.decode()


def test_a_refused_custom_data_save_switches_back_to_the_license(client, admin, license) -> None:  # type: ignore[no-untyped-def]
    CustomField.objects.create(
        organization=admin.organization, name="Seats", field_type=CustomField.Type.NUMBER
    )
    field = CustomField.objects.get()
    response = client.post(
        reverse("license-custom-values", kwargs={"pk": license.pk}), {f"cf_{field.pk}": "many"}
    )
    assert response.status_code == 400
    assert _switch_next(response) == reverse("license-detail", kwargs={"pk": license.pk})


def test_the_bulk_custom_data_page_switches_back_to_the_list(client, admin, license) -> None:  # type: ignore[no-untyped-def]
    CustomField.objects.create(organization=admin.organization, name="Site")
    response = client.post(reverse("custom-values-bulk"), {"licenses": [license.pk]})
    assert response.status_code == 200
    assert _switch_next(response) == reverse("license-list")
    matching = client.post(
        reverse("custom-values-bulk"),
        {"all_matching": "1", "matching": f"product={license.version.product_id}&sort=key"},
    )
    assert _switch_next(matching) == (
        reverse("license-list") + f"?product={license.version.product_id}&amp;sort=key"
    )


def test_other_pages_switch_back_to_themselves(client, admin, license) -> None:  # type: ignore[no-untyped-def]
    url = reverse("license-list") + "?q=abc"
    assert _switch_next(client.get(url)) == url.replace("&", "&amp;")
    # A form shown again at its own address (GET and POST): that address.
    wizard = client.post(reverse("get-a-key"), {"get_a_key_wizard-current_step": "serial"})
    assert _switch_next(wizard) == reverse("get-a-key")


@pytest.mark.parametrize("name", ACTIONS)
def test_a_get_of_a_license_action_goes_to_the_license_page(client, admin, license, name) -> None:  # type: ignore[no-untyped-def]
    url = reverse(name, kwargs={"pk": license.pk})
    detail = reverse("license-detail", kwargs={"pk": license.pk})
    for method in (client.get, client.head):
        response = method(url)
        assert response.status_code == 302 and response["Location"] == detail
    assert client.put(url).status_code == 405


def test_a_get_of_the_bulk_custom_data_page_goes_to_the_list(client, admin) -> None:  # type: ignore[no-untyped-def]
    response = client.get(reverse("custom-values-bulk"))
    assert response.status_code == 302 and response["Location"] == reverse("license-list")


def test_a_get_of_a_license_action_logged_out_asks_to_log_in(client, license) -> None:  # type: ignore[no-untyped-def]
    client.logout()
    response = client.get(reverse("license-renew", kwargs={"pk": license.pk}), follow=True)
    assert response.redirect_chain[-1][0].startswith(reverse("account_login"))
