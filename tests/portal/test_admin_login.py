"""Staff sign in to admin through the portal's own login (rate limits, lockout, two-factor), never
through Django's admin form, which knew none of them."""

from __future__ import annotations

import pytest
from django.urls import reverse

from portal.models import AuditEvent
from tests.portal.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-staff-password-2026"


def test_the_admin_login_sends_to_the_portals_login(client) -> None:  # type: ignore[no-untyped-def]
    response = client.get(reverse("admin:login") + "?next=/admin/portal/user/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))
    assert "next=%2Fadmin%2Fportal%2Fuser%2F" in response["Location"]


def test_a_staff_password_posted_to_the_admin_form_opens_no_session(client) -> None:  # type: ignore[no-untyped-def]
    # With two-factor on, the admin form let a password alone in (and counted no failure).
    staff = UserFactory(is_staff=True, is_superuser=True)
    staff.set_password(PASSWORD)
    staff.save()
    response = client.post(
        reverse("admin:login"), {"username": staff.email, "password": PASSWORD, "next": "/admin/"}
    )
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))
    assert "_auth_user_id" not in client.session
    assert client.get("/admin/").status_code == 302  # still not in


def test_wrong_passwords_are_counted_by_the_portals_login_only(client) -> None:  # type: ignore[no-untyped-def]
    staff = UserFactory(is_staff=True)
    for _ in range(3):
        client.post(reverse("admin:login"), {"username": staff.email, "password": "wrong"})
    assert not AuditEvent.objects.filter(action="account.login_failed").exists()
    client.post(reverse("account_login"), {"login": staff.email, "password": "wrong"})
    assert AuditEvent.objects.filter(action="account.login_failed").count() == 1


def test_someone_logged_in_without_staff_status_is_refused(client) -> None:  # type: ignore[no-untyped-def]
    client.force_login(MembershipFactory().user)
    assert client.get(reverse("admin:login")).status_code == 403


def test_staff_already_logged_in_go_on_to_admin(client) -> None:  # type: ignore[no-untyped-def]
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    response = client.get(reverse("admin:login"))
    assert response.status_code == 302 and response["Location"] == reverse("admin:index")
