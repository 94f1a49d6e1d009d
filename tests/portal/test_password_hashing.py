"""Passwords are hashed with Argon2id at OWASP's minimum (portal/hashers.py); a password hashed
by Django's PBKDF2 (every account created before) still logs in and is re-hashed with Argon2id
on that login."""

from __future__ import annotations

import pytest
from django.conf import settings as project_settings
from django.contrib.auth.hashers import (
    PBKDF2PasswordHasher,
    check_password,
    get_hasher,
    identify_hasher,
    make_password,
)
from django.urls import reverse

from portal.hashers import PortalArgon2PasswordHasher
from tests.portal.factories import PASSWORD, MembershipFactory

# What settings.py says, captured before the tests' autouse fixture swaps in a fast hasher.
PROJECT_HASHERS = list(project_settings.PASSWORD_HASHERS)


@pytest.fixture
def project_hashers(settings):  # type: ignore[no-untyped-def]
    settings.PASSWORD_HASHERS = PROJECT_HASHERS


def test_new_passwords_are_argon2id_at_owasps_minimum(project_hashers) -> None:  # type: ignore[no-untyped-def]
    assert PROJECT_HASHERS[0] == "portal.hashers.PortalArgon2PasswordHasher"
    encoded = make_password(PASSWORD)
    assert encoded.startswith("argon2$argon2id$v=19$m=19456,t=2,p=1$")
    assert isinstance(identify_hasher(encoded), PortalArgon2PasswordHasher)
    assert check_password(PASSWORD, encoded)
    assert not check_password(PASSWORD + "x", encoded)
    # Django's stock hasher reads the same format.
    assert get_hasher("argon2").verify(PASSWORD, encoded)


@pytest.mark.django_db
def test_a_pbkdf2_password_logs_in_and_is_rehashed_with_argon2id(client, project_hashers) -> None:  # type: ignore[no-untyped-def]
    user = MembershipFactory().user
    user.password = PBKDF2PasswordHasher().encode(PASSWORD, "legacysaltvalue1")
    user.save(update_fields=["password"])

    response = client.post(reverse("account_login"), {"login": user.email, "password": PASSWORD})

    assert response.status_code == 302
    assert response["Location"] == reverse("dashboard")
    user.refresh_from_db()
    assert user.password.startswith("argon2$argon2id$v=19$m=19456,t=2,p=1$")
    assert check_password(PASSWORD, user.password)


@pytest.mark.django_db
def test_a_wrong_password_against_a_pbkdf2_hash_changes_nothing(client, project_hashers) -> None:  # type: ignore[no-untyped-def]
    user = MembershipFactory().user
    legacy = PBKDF2PasswordHasher().encode(PASSWORD, "legacysaltvalue2")
    user.password = legacy
    user.save(update_fields=["password"])

    response = client.post(reverse("account_login"), {"login": user.email, "password": "wrong-one"})

    assert response.status_code == 200
    user.refresh_from_db()
    assert user.password == legacy
