"""portal.middleware.PortalAuthenticationMiddleware: the user and its memberships in one query,
with every check of Django's own get_user."""

from __future__ import annotations

import pytest
from django.contrib.auth import SESSION_KEY
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.portal.factories import PASSWORD, MembershipFactory, OrganizationFactory, UserFactory

pytestmark = pytest.mark.django_db


def _user_queries(captured) -> list[str]:  # type: ignore[no-untyped-def]
    return [q["sql"] for q in captured if '"portal_user"' in q["sql"]]


def test_user_and_memberships_in_one_query(client) -> None:  # type: ignore[no-untyped-def]
    membership = MembershipFactory()
    MembershipFactory(user=membership.user, organization=OrganizationFactory(name="Another"))
    client.force_login(membership.user)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(reverse("dashboard"))
    assert response.status_code == 200
    user_reads = _user_queries(captured)
    assert len(user_reads) == 1
    assert '"portal_membership"' in user_reads[0]
    membership_reads = [q for q in captured if 'FROM "portal_membership"' in q["sql"]]
    assert len(membership_reads) == 1  # the switcher and the acting organization reuse it
    # Both organizations are offered by the switcher.
    assert response.context["all_memberships"][0].organization.name == "Another"
    assert len(response.context["all_memberships"]) == 2


def test_user_without_organization_is_logged_in(client) -> None:  # type: ignore[no-untyped-def]
    user = UserFactory()
    client.force_login(user)
    response = client.get(reverse("dashboard"))
    assert response.status_code == 302
    assert response["Location"] == reverse("organization-create")


def test_password_change_logs_out_other_sessions(client) -> None:  # type: ignore[no-untyped-def]
    membership = MembershipFactory()
    user = membership.user
    other = Client()
    other.force_login(user)
    client.force_login(user)
    assert other.get(reverse("dashboard")).status_code == 200
    user.set_password("another-correct-horse-staple")
    user.save()
    response = other.get(reverse("dashboard"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))
    assert SESSION_KEY not in other.session


def test_inactive_user_is_anonymous(client) -> None:  # type: ignore[no-untyped-def]
    membership = MembershipFactory()
    client.force_login(membership.user)
    membership.user.is_active = False
    membership.user.save()
    response = client.get(reverse("dashboard"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


def test_session_of_a_removed_backend_is_anonymous(client, settings) -> None:  # type: ignore[no-untyped-def]
    membership = MembershipFactory()
    client.login(email=membership.user.email, password=PASSWORD)
    settings.AUTHENTICATION_BACKENDS = ["allauth.account.auth_backends.AuthenticationBackend"]
    session = client.session
    session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
    session.save()
    response = client.get(reverse("dashboard"))
    assert response.status_code == 302
