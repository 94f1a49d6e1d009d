"""Account email addresses (allauth's /accounts/email/): an address that is another account's
cannot be added or made primary, and a password reset never reaches an account through an
address it merely added without verifying it."""

from __future__ import annotations

import re
from typing import Any

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.test import Client
from django.urls import reverse

from portal.models import User
from tests.portal.factories import UserFactory

pytestmark = pytest.mark.django_db

TAKEN = "is the address of another account"


def _add(client: Client, email: str) -> Any:
    return client.post(reverse("account_email"), {"email": email, "action_add": ""})


def test_adding_another_users_address_is_refused(
    client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    alice, bob = UserFactory(email="alice@acme.example"), UserFactory(email="bob@acme.example")
    client.force_login(alice)
    with django_capture_on_commit_callbacks(execute=True):
        response = _add(client, "Bob@Acme.example")
    assert response.status_code == 200
    assert TAKEN in response.content.decode()
    assert not EmailAddress.objects.filter(user=alice, email__iexact=bob.email).exists()
    assert mail.outbox == []  # Bob gets no link to confirm his address for Alice's account


def test_adding_an_address_another_account_added_is_refused(client: Client) -> None:
    alice, carol = UserFactory(), UserFactory()
    EmailAddress.objects.create(user=carol, email="shared@acme.example", verified=True)
    client.force_login(alice)
    response = _add(client, "shared@acme.example")
    assert TAKEN in response.content.decode()
    assert not EmailAddress.objects.filter(user=alice, email="shared@acme.example").exists()


def test_adding_a_free_address_still_works(client: Client) -> None:
    alice = UserFactory()
    client.force_login(alice)
    response = _add(client, "alice.home@example.org")
    assert response.status_code == 302
    assert EmailAddress.objects.filter(user=alice, email="alice.home@example.org").exists()


def test_make_primary_with_another_users_address_is_refused_without_change(
    client: Client,
) -> None:
    # An address added before the check above, or by an administrator since.
    alice, bob = UserFactory(email="alice@acme.example"), UserFactory(email="bob@acme.example")
    EmailAddress.objects.create(user=alice, email="alice@acme.example", primary=True)
    EmailAddress.objects.create(user=alice, email="bob@acme.example")
    client.force_login(alice)
    response = client.post(
        reverse("account_email"), {"email": "bob@acme.example", "action_primary": ""}, follow=True
    )
    assert response.status_code == 200
    assert TAKEN in response.content.decode()
    alice.refresh_from_db()
    assert alice.email == "alice@acme.example"
    assert EmailAddress.objects.get(user=alice, primary=True).email == "alice@acme.example"
    assert User.objects.get(pk=bob.pk).email == "bob@acme.example"


def test_make_primary_of_a_free_address_still_works(client: Client) -> None:
    alice = UserFactory(email="alice@acme.example")
    EmailAddress.objects.create(user=alice, email="alice@acme.example", primary=True)
    EmailAddress.objects.create(user=alice, email="alice@home.example")
    client.force_login(alice)
    client.post(reverse("account_email"), {"email": "alice@home.example", "action_primary": ""})
    alice.refresh_from_db()
    assert alice.email == "alice@home.example"


def test_password_reset_ignores_an_address_someone_else_added_unverified(
    client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    alice, bob = UserFactory(email="alice@acme.example"), UserFactory(email="bob@acme.example")
    EmailAddress.objects.create(user=alice, email="bob@acme.example", verified=False)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("account_reset_password"), {"email": "bob@acme.example"})
    (message,) = mail.outbox
    assert message.to == ["bob@acme.example"]
    from allauth.account.utils import user_pk_to_url_str

    assert f"/{user_pk_to_url_str(bob)}-" in message.body
    assert f"/{user_pk_to_url_str(alice)}-" not in message.body


def test_password_reset_reaches_a_verified_secondary_address(
    client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    alice = UserFactory(email="alice@acme.example")
    EmailAddress.objects.create(user=alice, email="alice@home.example", verified=True)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("account_reset_password"), {"email": "alice@home.example"})
    (message,) = mail.outbox
    assert message.to == ["alice@home.example"]


def test_password_reset_for_an_unknown_address_sends_nothing_and_looks_the_same(
    client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    # The form emailed any address typed ("Unknown Account ... sign up"), outside the portal's
    # own limits on emails to others. The page must not tell known from unknown addresses.
    UserFactory(email="known@acme.example")
    with django_capture_on_commit_callbacks(execute=True):
        unknown = client.post(reverse("account_reset_password"), {"email": "nobody@example.org"})
    assert mail.outbox == []
    with django_capture_on_commit_callbacks(execute=True):
        known = client.post(reverse("account_reset_password"), {"email": "known@acme.example"})
    assert len(mail.outbox) == 1
    assert (unknown.status_code, unknown["Location"]) == (known.status_code, known["Location"])
    done = client.get(unknown["Location"])
    assert done.status_code == 200


def test_email_page_sets_remove_apart_and_spaces_the_add_section(client: Client) -> None:
    # At 390 px the "Add email address" heading sat against the buttons above it, and Remove
    # looked like Make Primary (checked in Chromium at 390 px when this was written).
    user = UserFactory()
    client.force_login(user)
    page = client.get(reverse("account_email")).content.decode()
    assert re.search(r'<button\s+class="btn btn-outline-danger"[^>]*name="action_remove"', page)
    assert re.search(r'<button\s+class="btn btn-outline-secondary"[^>]*name="action_send"', page)
    assert re.search(r'<h2 class="h5 mt-4">\s*Add email address', page)


def test_make_primary_with_a_nul_in_the_address_changes_nothing(client: Client) -> None:
    # The check of other accounts' addresses sent the NUL to PostgreSQL: a 500.
    alice = UserFactory(email="alice@acme.example")
    EmailAddress.objects.create(user=alice, email="alice@acme.example", primary=True)
    client.force_login(alice)
    response = client.post(
        reverse("account_email"), {"email": "a\x00b@x.example", "action_primary": ""}
    )
    assert response.status_code in (200, 302)
    alice.refresh_from_db()
    assert alice.email == "alice@acme.example"


def test_password_resets_to_one_address_are_limited_per_hour(
    client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    # allauth's default let anyone send one inbox five a minute (~300 an hour).
    UserFactory(email="known@acme.example")
    statuses = []
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(6):
            statuses.append(
                client.post(
                    reverse("account_reset_password"), {"email": "known@acme.example"}
                ).status_code
            )
    assert statuses == [302] * 5 + [429]
    assert len(mail.outbox) == 5
