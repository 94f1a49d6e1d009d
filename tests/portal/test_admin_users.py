"""Staff end a person's access in admin by deactivating the login, never by deleting it."""

from __future__ import annotations

import pytest
from django.urls import reverse

from enterprise_flex.models import EFContractUser
from portal.models import AuditEvent, Membership, User
from tests.enterprise_flex.factories import EFContractFactory, contract_member
from tests.portal.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):  # type: ignore[no-untyped-def]
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def _user_form(user: User, **changes: str) -> dict[str, str]:
    data = {
        "email": user.email,
        "full_name": user.full_name,
        "language": user.language,
        "is_active": "on" if user.is_active else "",
        "last_login_0": "",
        "last_login_1": "",
        "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value != ""}


def test_a_user_cannot_be_deleted_in_admin(staff_client) -> None:  # type: ignore[no-untyped-def]
    # Deleting alice left Acme with no administrator and its contract with no super user
    # (memberships and contract access cascaded), unchecked and unaudited.
    admin = MembershipFactory()
    contract = EFContractFactory(organization=admin.organization)
    alice = contract_member(contract, EFContractUser.Level.SUPER)
    Membership.objects.filter(user=alice).update(role=Membership.Role.ADMIN)
    url = reverse("admin:portal_user_delete", args=[alice.pk])
    assert staff_client.get(url).status_code == 403
    assert staff_client.post(url, {"post": "yes"}).status_code == 403
    changelist = reverse("admin:portal_user_changelist")
    response = staff_client.post(
        changelist, {"action": "delete_selected", "_selected_action": [alice.pk], "post": "yes"}
    )
    assert User.objects.filter(pk=alice.pk).exists()
    assert Membership.objects.filter(user=alice).exists()
    assert EFContractUser.objects.filter(user=alice).exists()
    # The change page says what to do instead.
    page = staff_client.get(reverse("admin:portal_user_change", args=[alice.pk]))
    assert "untick Active" in page.content.decode()
    assert response.status_code in (200, 302)


def test_deactivating_the_last_administrator_warns_and_is_audited(staff_client) -> None:  # type: ignore[no-untyped-def]
    admin = MembershipFactory()
    organization = admin.organization
    MembershipFactory(organization=organization, role=Membership.Role.MEMBER)
    contract = EFContractFactory(organization=organization)
    from enterprise_flex.services import contract_user_set

    contract_user_set(
        contract=contract, user=admin.user, level=EFContractUser.Level.SUPER, actor=None
    )
    url = reverse("admin:portal_user_change", args=[admin.user.pk])
    response = staff_client.post(url, _user_form(admin.user, is_active=""), follow=True)
    assert response.status_code == 200
    admin.user.refresh_from_db()
    assert not admin.user.is_active
    text = response.content.decode()
    assert "has no other active administrator" in text
    assert "last super user of contract" in text
    event = AuditEvent.objects.get(action="user.deactivated")
    assert event.actor is not None and event.actor.is_staff
    assert (event.object_type, event.object_id) == ("portal.user", str(admin.user.pk))
    assert event.details["without_administrator"] == [organization.account_number]
    # Nothing was taken from them: reactivated, they are the administrator again.
    assert Membership.objects.get(pk=admin.pk).role == Membership.Role.ADMIN
    response = staff_client.post(url, _user_form(admin.user, is_active="on"), follow=True)
    assert "has no other active administrator" not in response.content.decode()
    assert AuditEvent.objects.filter(action="user.reactivated").count() == 1


def test_deactivating_one_of_two_administrators_says_nothing(staff_client) -> None:  # type: ignore[no-untyped-def]
    admin = MembershipFactory()
    MembershipFactory(organization=admin.organization)  # a second administrator
    url = reverse("admin:portal_user_change", args=[admin.user.pk])
    response = staff_client.post(url, _user_form(admin.user, is_active=""), follow=True)
    assert "has no other active administrator" not in response.content.decode()
    event = AuditEvent.objects.get(action="user.deactivated")
    assert event.details["without_administrator"] == []
    # A save that leaves Active alone writes no event.
    admin.user.refresh_from_db()
    staff_client.post(url, _user_form(admin.user, full_name="Someone Else"))
    assert AuditEvent.objects.filter(action__startswith="user.").count() == 1


def test_staff_changing_what_a_login_may_do_is_audited(staff_client) -> None:  # type: ignore[no-untyped-def]
    from django.contrib.auth.models import Group

    user = UserFactory()
    support = Group.objects.create(name="Support desk")
    url = reverse("admin:portal_user_change", args=[user.pk])
    response = staff_client.post(
        url, _user_form(user, is_staff="on", is_superuser="on", groups=str(support.pk))
    )
    assert response.status_code == 302
    event = AuditEvent.objects.get(action="user.changed")
    assert event.object_id == str(user.pk)
    assert event.details["changes"] == {
        "is_staff": {"from": False, "to": True},
        "is_superuser": {"from": False, "to": True},
        "groups": {"from": [], "to": ["Support desk"]},
    }
    # Saving again unchanged writes nothing more.
    user.refresh_from_db()
    staff_client.post(
        url, _user_form(user, is_staff="on", is_superuser="on", groups=str(support.pk))
    )
    assert AuditEvent.objects.filter(action="user.changed").count() == 1


def test_staff_setting_a_users_password_is_audited(staff_client) -> None:  # type: ignore[no-untyped-def]
    user = UserFactory()
    url = reverse("admin:auth_user_password_change", args=[user.pk])
    password = "a-new-long-password-2026"
    response = staff_client.post(
        url, {"password1": password, "password2": password, "usable_password": "true"}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    event = AuditEvent.objects.get(action="user.changed")
    assert event.details["password_set"] is True and event.details["changes"] == {}
    user.refresh_from_db()
    assert user.check_password(password)
