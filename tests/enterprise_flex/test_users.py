"""Super users add users of the customer organization, re-level and remove them, and invite
people by email; a contract always keeps one super user."""

from __future__ import annotations

import importlib
from datetime import timedelta
from typing import Any

import pytest
from django.apps import apps
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from enterprise_flex import views
from enterprise_flex.models import EFContractUser, EFInvitation
from enterprise_flex.services import (
    EFError,
    contract_access_end,
    contract_user_remove,
    contract_user_set,
    invitation_accept,
    invitation_revoke,
    reminders_send,
)
from portal.models import AuditEvent, Invitation, Membership, OutboundEmail
from portal.services import PortalError, membership_update
from tests.enterprise_flex.factories import World, contract_member, make_world
from tests.portal.factories import PASSWORD, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(client) -> World:  # type: ignore[no-untyped-def]
    world = make_world()
    client.force_login(world.super_user)
    return world


def users_url(world: World) -> str:
    return reverse("ef-users", args=[world.contract.number])


def level_of(world: World, user) -> str | None:  # type: ignore[no-untyped-def]
    row = EFContractUser.objects.filter(contract=world.contract, user=user).first()
    return row.level if row else None


def test_add_a_member_of_the_organization(client, world) -> None:  # type: ignore[no-untyped-def]
    membership = world.member.memberships.get()
    page = client.get(users_url(world)).content.decode()
    assert world.member.email in page
    response = client.post(
        users_url(world), {"add": "1", "add-member": membership.pk, "add-level": "configuration"}
    )
    assert response.status_code == 302
    assert level_of(world, world.member) == "configuration"
    email = OutboundEmail.objects.filter(template="ef_user_added").order_by("created_at").last()
    assert email is not None
    assert email.to == [world.member.email] and world.contract.number in email.subject
    event = AuditEvent.objects.filter(action="ef.user_added").order_by("created_at").last()
    assert event is not None and event.actor == world.super_user
    assert (
        event.details["email"] == world.member.email and event.details["level"] == "configuration"
    )


def test_users_of_other_organizations_cannot_be_added(client, world) -> None:  # type: ignore[no-untyped-def]
    outsider = world.stranger.memberships.get()
    response = client.post(
        users_url(world), {"add": "1", "add-member": outsider.pk, "add-level": "super"}
    )
    assert response.status_code == 400
    assert "Choose a user of your organization." in response.content.decode()
    assert level_of(world, world.stranger) is None
    with pytest.raises(EFError, match="is not a user of"):
        contract_user_set(
            contract=world.contract, user=world.stranger, level="contract", actor=world.super_user
        )


def test_re_level_and_remove(client, world) -> None:  # type: ignore[no-untyped-def]
    row = EFContractUser.objects.get(contract=world.contract, user=world.contract_user)
    url = reverse("ef-user-update", args=[world.contract.number, row.pk])
    assert client.post(url, {"level": "super"}).status_code == 302
    assert level_of(world, world.contract_user) == "super"
    client.post(url, {"level": "god"})
    assert level_of(world, world.contract_user) == "super"
    client.post(url, {"remove": "1", "confirm": "1"})
    assert level_of(world, world.contract_user) is None
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"ef.user_level_changed", "ef.user_removed"} <= actions


def test_the_last_super_user_cannot_leave_or_step_down(client, world) -> None:  # type: ignore[no-untyped-def]
    row = EFContractUser.objects.get(contract=world.contract, user=world.super_user)
    url = reverse("ef-user-update", args=[world.contract.number, row.pk])
    response = client.post(url, {"level": "contract"}, follow=True)
    assert "at least one super user" in response.content.decode()
    response = client.post(url, {"remove": "1", "confirm": "1"}, follow=True)
    assert "at least one super user" in response.content.decode()
    assert level_of(world, world.super_user) == "super"
    contract_user_set(
        contract=world.contract, user=world.contract_user, level="super", actor=world.super_user
    )
    contract_user_remove(contract_user=row, actor=world.super_user)
    assert level_of(world, world.super_user) is None


def test_a_contract_user_row_of_another_contract_is_a_404(client, world) -> None:  # type: ignore[no-untyped-def]
    other = MembershipFactory(organization=world.other_contract.organization)
    contract_user_set(contract=world.other_contract, user=other.user, level="super", actor=None)
    row = EFContractUser.objects.get(contract=world.other_contract)
    url = reverse("ef-user-update", args=[world.contract.number, row.pk])
    assert client.post(url, {"remove": "1"}).status_code == 404
    assert EFContractUser.objects.filter(pk=row.pk).exists()


def test_invite_by_email_sign_up_and_accept(client, world) -> None:  # type: ignore[no-untyped-def]
    response = client.post(
        users_url(world),
        {
            "invite": "1",
            "invite-email": " New.Person@Example.com ",
            "invite-level": "configuration",
        },
    )
    assert response.status_code == 302
    invitation = EFInvitation.objects.get()
    assert invitation.email == "new.person@example.com"
    email = OutboundEmail.objects.get(template="ef_invitation")
    link = reverse("ef-invitation", args=[invitation.token])
    assert email.to == ["new.person@example.com"] and link in email.body_text
    # The invitee has no account: the landing page sends them to log in or sign up.
    client.logout()
    page = client.get(link)
    assert page.status_code == 200 and "Sign up" in page.content.decode()
    assert f"next={link}" in page.content.decode().replace("%2F", "/")
    newcomer = UserFactory(email="new.person@example.com")
    client.login(email=newcomer.email, password=PASSWORD)
    response = client.post(link)
    assert response.status_code == 302
    assert response["Location"] == reverse("ef-contract", args=[world.contract.number])
    assert level_of(world, newcomer) == "configuration"
    membership = Membership.objects.get(user=newcomer)
    assert membership.organization == world.contract.organization and membership.role == "member"
    assert client.get(response["Location"]).status_code == 200
    # Used once: the link is now invalid.
    assert client.get(link).status_code == 404


def test_an_invitation_is_accepted_only_by_its_address(client, world) -> None:  # type: ignore[no-untyped-def]
    client.post(
        users_url(world), {"invite": "1", "invite-email": "x@example.com", "invite-level": "super"}
    )
    invitation = EFInvitation.objects.get()
    link = reverse("ef-invitation", args=[invitation.token])
    client.force_login(world.stranger)
    response = client.post(link)
    assert response.status_code == 400 and "was sent to x@example.com" in response.content.decode()
    assert level_of(world, world.stranger) is None
    assert not Membership.objects.filter(
        user=world.stranger, organization=world.contract.organization
    ).exists()


def test_expired_withdrawn_and_unknown_invitations_are_invalid(client, world) -> None:  # type: ignore[no-untyped-def]
    client.post(
        users_url(world),
        {"invite": "1", "invite-email": "a@example.com", "invite-level": "contract"},
    )
    client.post(
        users_url(world),
        {"invite": "1", "invite-email": "b@example.com", "invite-level": "contract"},
    )
    expired, withdrawn = EFInvitation.objects.order_by("email")
    EFInvitation.objects.filter(pk=expired.pk).update(
        created_at=timezone.now() - timedelta(days=15)
    )
    response = client.post(
        reverse("ef-invitation-revoke", args=[world.contract.number, withdrawn.pk]),
        {"confirm": "1"},
    )
    assert response.status_code == 302
    for token in (expired.token, withdrawn.token, "nope"):
        assert client.get(reverse("ef-invitation", args=[token])).status_code == 404


def test_inviting_someone_already_on_the_contract_says_so(client, world) -> None:  # type: ignore[no-untyped-def]
    response = client.post(
        users_url(world),
        {"invite": "1", "invite-email": world.contract_user.email.upper(), "invite-level": "super"},
        follow=True,
    )
    assert "already a user of this contract" in response.content.decode()
    assert not EFInvitation.objects.exists()


def test_bad_invitation_input_is_a_form_error(client, world) -> None:  # type: ignore[no-untyped-def]
    for data in ({"invite-email": "not-an-address", "invite-level": "super"},
                 {"invite-email": "a@example.com", "invite-level": "emperor"},
                 {"invite-email": "a" * 400 + "@x.com", "invite-level": "super"}):  # fmt: skip
        response = client.post(users_url(world), {"invite": "1", **data})
        assert response.status_code == 400
    assert not EFInvitation.objects.exists()


def test_contract_invitations_share_the_hourly_limit_of_invitations_and_shares(
    client, world, settings
) -> None:  # type: ignore[no-untyped-def]
    # Each one emails an address a user typed: without the limit a super user could send any
    # number, and re-inviting one address re-sends to it every time.
    settings.PORTAL_INVITES_PER_USER_PER_HOUR = 3
    for _ in range(3):
        response = client.post(
            users_url(world),
            {"invite": "1", "invite-email": "victim@example.com", "invite-level": "contract"},
        )
        assert response.status_code == 302
    response = client.post(
        users_url(world),
        {"invite": "1", "invite-email": "other@example.com", "invite-level": "contract"},
        follow=True,
    )
    assert "sent many invitations and shares in the last hour" in response.content.decode()
    assert OutboundEmail.objects.filter(template="ef_invitation").count() == 3
    assert not EFInvitation.objects.filter(email="other@example.com").exists()
    # The organization's own invitations count against the same budget, and these against it.
    client.force_login(world.super_user)
    membership = Membership.objects.get(user=world.super_user)
    membership.role = "admin"
    membership.save()
    response = client.post(
        reverse("members"), {"email": "third@example.com", "role": "member"}, follow=True
    )
    assert "sent many invitations and shares in the last hour" in response.content.decode()


def test_a_super_user_who_left_the_organization_is_neither_reminded_nor_counted(
    client, world
) -> None:  # type: ignore[no-untyped-def]
    # A contract row left by a removal from the organization (as removals did before they took
    # people off the contracts too; migration 0003 ends those): its user kept receiving the
    # contract's reminders, and counted as the super user that let the last one inside the
    # organization step down.
    leaver = contract_member(world.contract, "super")
    Membership.objects.filter(user=leaver, organization=world.contract.organization).delete()
    year = world.contract.years()[0]
    assert reminders_send(today=year.end - timedelta(days=30)) == 1
    reminder = OutboundEmail.objects.get(template="ef_reminder")
    assert reminder.to == [world.super_user.email]
    row = EFContractUser.objects.get(contract=world.contract, user=world.super_user)
    response = client.post(
        reverse("ef-user-update", args=[world.contract.number, row.pk]),
        {"level": "contract"},
        follow=True,
    )
    assert "at least one super user" in response.content.decode()
    assert level_of(world, world.super_user) == "super"
    # The leaver's row can still be taken off the contract.
    leaver_row = EFContractUser.objects.get(contract=world.contract, user=leaver)
    contract_user_remove(contract_user=leaver_row, actor=world.super_user)
    assert level_of(world, leaver) is None


def _rejoin(client, world: World, leaver) -> None:  # type: ignore[no-untyped-def]
    """An administrator removes `leaver` on the Members page, invites them back, and they accept."""
    admin = MembershipFactory(organization=world.contract.organization, role="admin").user
    client.force_login(admin)
    membership = Membership.objects.get(user=leaver, organization=world.contract.organization)
    response = client.post(
        reverse("member-update", args=[membership.pk]), {"remove": "1", "confirm": "1"}
    )
    assert response.status_code == 302
    assert not Membership.objects.filter(pk=membership.pk).exists()
    client.post(reverse("members"), {"email": leaver.email, "role": "member"})
    invitation = Invitation.objects.get(email=leaver.email, accepted_at__isnull=True)
    client.force_login(leaver)
    assert client.post(reverse("invitation", args=[invitation.token])).status_code == 302
    assert Membership.objects.filter(user=leaver, organization=world.contract.organization).exists()


def test_removing_a_member_ends_their_contract_access_and_rejoining_does_not_restore_it(
    client, world
) -> None:  # type: ignore[no-untyped-def]
    # Removal left the contract row, which counted for nothing while they were out; invited
    # back to the organization (as a plain member), they were a super user of the contract
    # again, unannounced.
    leaver = contract_member(world.contract, "super")
    sibling = world.sibling
    contract_user_set(contract=sibling, user=leaver, level="configuration", actor=None)
    other_org = contract_member(world.other_contract, "contract")  # another organization's
    _rejoin(client, world, leaver)
    assert level_of(world, leaver) is None
    assert not EFContractUser.objects.filter(user=leaver).exists()
    assert client.get(reverse("ef-contract", args=[world.contract.number])).status_code == 404
    assert client.get(reverse("ef-contracts")).status_code == 200
    # Audited as a removal from each contract, by the administrator who removed the member.
    removed = AuditEvent.objects.filter(action="ef.user_removed")
    assert sorted((e.details["contract"], e.details["level"]) for e in removed) == sorted(
        [(world.contract.number, "super"), (sibling.number, "configuration")]
    )
    remover = AuditEvent.objects.get(action="membership.removed").actor
    assert all(e.actor == remover and e.details["reason"] == "left_organization" for e in removed)
    assert all(e.details["email"] == leaver.email for e in removed)
    # Nobody else lost anything.
    assert level_of(world, world.super_user) == "super"
    assert EFContractUser.objects.filter(user=other_org, contract=world.other_contract).exists()


def test_the_last_super_user_of_a_contract_cannot_be_removed_from_the_organization(
    client, world
) -> None:  # type: ignore[no-untyped-def]
    # The removal took them off the contract as well: nobody was left to manage its users, and
    # only staff could give it a super user again.
    contract_user_set(contract=world.sibling, user=world.super_user, level="super", actor=None)
    admin = MembershipFactory(organization=world.contract.organization, role="admin").user
    client.force_login(admin)
    membership = world.super_user.memberships.get()
    before = AuditEvent.objects.count()
    response = client.post(
        reverse("member-update", args=[membership.pk]),
        {"remove": "1", "confirm": "1"},
        follow=True,
    )
    assert response.status_code == 200
    first, second = world.contract.number, world.sibling.number  # in the order they were made
    message = (
        f"{world.super_user.email} is the last super user of contracts {first}, {second}. "
        "Make another user super user of each of these contracts first, then remove "
        f"{world.super_user.email}."
    )
    assert _messages(response) == [message]
    assert message in response.content.decode()
    # Nothing changed: still a member, still the super user of both, nothing audited.
    assert Membership.objects.filter(pk=membership.pk).exists()
    assert level_of(world, world.super_user) == "super"
    assert (
        EFContractUser.objects.get(contract=world.sibling, user=world.super_user).level == "super"
    )
    assert AuditEvent.objects.count() == before

    # Another super user on one of them: refused for the other one only, named alone.
    contract_user_set(contract=world.contract, user=world.member, level="super", actor=None)
    with pytest.raises(PortalError) as refused:
        membership_update(membership=world.super_user.memberships.get(), actor=admin, remove=True)
    assert str(refused.value) == (
        f"{world.super_user.email} is the last super user of contract {world.sibling.number}. "
        f"Make another user super user of contract {world.sibling.number} first, then remove "
        f"{world.super_user.email}."
    )
    contract_user_set(contract=world.sibling, user=world.member, level="super", actor=None)
    membership_update(membership=world.super_user.memberships.get(), actor=admin, remove=True)
    assert not EFContractUser.objects.filter(user=world.super_user).exists()


def test_a_super_user_who_left_does_not_count_as_another_one(client, world) -> None:  # type: ignore[no-untyped-def]
    # A super user row left behind by a removal from before removals ended contract rows.
    ghost = contract_member(world.contract, "super")
    Membership.objects.filter(user=ghost).delete()
    admin = MembershipFactory(organization=world.contract.organization, role="admin").user
    with pytest.raises(PortalError, match="is the last super user of contract"):
        membership_update(membership=world.super_user.memberships.get(), actor=admin, remove=True)
    assert level_of(world, world.super_user) == "super"


def test_the_last_super_user_leaves_when_nobody_else_is_left_in_the_organization(
    world,
) -> None:  # type: ignore[no-untyped-def]
    # Staff emptying the organization in admin: there is nobody to make super user instead, and
    # one outside the organization could not act on the contract anyway.
    organization = world.contract.organization
    Membership.objects.filter(organization=organization).exclude(user=world.super_user).delete()
    Membership.objects.filter(user=world.super_user).delete()
    contract_access_end(organization=organization, user=world.super_user, actor=None)
    assert level_of(world, world.super_user) is None


def test_a_removed_member_cannot_rejoin_through_a_contract_invitation_sent_before(
    client, world
) -> None:  # type: ignore[no-untyped-def]
    # Accepting a contract invitation makes one a member of the organization: one still open
    # when its addressee was removed would have brought them back.
    client.post(
        users_url(world),
        {"invite": "1", "invite-email": world.member.email, "invite-level": "super"},
    )
    invitation = EFInvitation.objects.get(email=world.member.email)
    admin = MembershipFactory(organization=world.contract.organization, role="admin").user
    membership_update(membership=world.member.memberships.get(), actor=admin, remove=True)
    invitation.refresh_from_db()
    assert invitation.revoked_at is not None and invitation.accepted_at is None
    event = AuditEvent.objects.get(action="ef.invitation_revoked")
    assert event.actor == admin and event.details["reason"] == "left_organization"
    client.force_login(world.member)
    assert client.post(reverse("ef-invitation", args=[invitation.token])).status_code == 404
    assert not Membership.objects.filter(user=world.member).exists()
    assert level_of(world, world.member) is None


def test_staff_removing_a_member_in_admin_ends_their_contract_access(client, world) -> None:  # type: ignore[no-untyped-def]
    staff = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(staff)
    organization = world.contract.organization
    data = _members_form(organization, removed=world.configuration_user, first_admin=True)
    row = next(k for k, v in data.items() if k.endswith("-user") and v == world.contract_user.pk)
    # Another person on the row: the one it named leaves the organization.
    data[row] = UserFactory().pk
    response = client.post(
        reverse("admin:portal_organization_change", args=[organization.pk]), data
    )
    assert response.status_code == 302, response.context and response.context["errors"]
    assert level_of(world, world.configuration_user) is None
    assert level_of(world, world.contract_user) is None
    assert level_of(world, world.super_user) == "super"
    removed = AuditEvent.objects.filter(action="ef.user_removed")
    assert sorted(e.details["email"] for e in removed) == sorted(
        [world.configuration_user.email, world.contract_user.email]
    )
    assert all(e.actor == staff for e in removed)
    left = AuditEvent.objects.filter(action="membership.removed")
    assert sorted(e.details["email"] for e in left) == sorted(
        [world.configuration_user.email, world.contract_user.email]
    )


def _staff_removes_the_super_user(client, world) -> tuple[str, dict[str, Any]]:  # type: ignore[no-untyped-def]
    """Staff logged in, and the organization's admin form removing the contract's super user
    from the Members inline (another administrator stays)."""
    staff = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(staff)
    organization = world.contract.organization
    MembershipFactory(organization=organization, role="admin")
    data = _members_form(organization, removed=world.super_user)
    return reverse("admin:portal_organization_change", args=[organization.pk]), data


def _members_form(organization, *, removed, first_admin: bool = False) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """The organization's admin form as it stands, with `removed`'s row deleted from the
    Members inline (and the first row made an administrator, when asked)."""
    memberships = list(organization.memberships.order_by("pk"))
    data: dict[str, Any] = {
        "name": organization.name,
        "kind": organization.kind,
        "country": organization.country,
        "address": organization.address,
        "memberships-TOTAL_FORMS": str(len(memberships)),
        "memberships-INITIAL_FORMS": str(len(memberships)),
        "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000",
    }
    for i, membership in enumerate(memberships):
        data |= {
            f"memberships-{i}-id": membership.pk,
            f"memberships-{i}-organization": organization.pk,
            f"memberships-{i}-user": membership.user_id,
            f"memberships-{i}-role": "admin" if first_admin and i == 0 else membership.role,
        }
        if membership.user_id == removed.pk:
            data[f"memberships-{i}-DELETE"] = "on"
    return data


def test_staff_cannot_remove_the_last_super_user_of_a_contract_in_admin(client, world) -> None:  # type: ignore[no-untyped-def]
    # The save removed the row and took them off the contract; refused from the save instead,
    # after the rows were written, it would have been a server error. Said on the form.
    url, data = _staff_removes_the_super_user(client, world)
    response = client.post(url, data)
    assert response.status_code == 200
    message = (
        f"{world.super_user.email} is the last super user of contract {world.contract.number}. "
        f"Make another user super user of contract {world.contract.number} first, then remove "
        f"{world.super_user.email}."
    )
    assert response.context["inline_admin_formsets"][0].formset.non_form_errors() == [message]
    assert Membership.objects.filter(user=world.super_user).exists()
    assert level_of(world, world.super_user) == "super"
    # With another super user, the same save goes through.
    contract_user_set(contract=world.contract, user=world.member, level="super", actor=None)
    assert client.post(url, data).status_code == 302
    assert level_of(world, world.super_user) is None


def test_a_super_user_removal_refused_by_the_save_in_admin_is_a_message(  # type: ignore[no-untyped-def]
    client, world, monkeypatch
) -> None:
    # The form's check passed (another super user then), but by the save, under its locks, that
    # one had been demoted: the refusal came out of the save as a server error.
    from portal import admin as portal_admin

    monkeypatch.setattr(portal_admin, "membership_end_problem", lambda **kwargs: None)
    url, data = _staff_removes_the_super_user(client, world)
    response = client.post(url, data, follow=True)
    assert response.status_code == 200
    assert response.redirect_chain == [(url, 302)]
    # As written: Django's message list capitalised its first letter ("User0@…").
    assert f'<li class="error">{world.super_user.email} is the last super user of contract' in (
        response.content.decode()
    )
    assert Membership.objects.filter(user=world.super_user).exists()
    assert level_of(world, world.super_user) == "super"


def test_migration_0003_ends_the_contract_rows_earlier_removals_left(world) -> None:  # type: ignore[no-untyped-def]
    migration = importlib.import_module(
        "enterprise_flex.migrations.0003_end_contract_rows_of_leavers"
    )
    # Removed from the organization before removals ended contract rows: the rows stayed.
    leaver = contract_member(world.contract, "super")
    contract_user_set(contract=world.sibling, user=leaver, level="contract", actor=None)
    Membership.objects.filter(user=leaver).delete()
    # Still in the organization but on no contract, and a member of another one: untouched.
    kept = {
        (row.contract_id, row.user_id, row.level)
        for row in EFContractUser.objects.exclude(user=leaver)
    }
    before = AuditEvent.objects.count()

    migration.end_rows_of_leavers(apps, None)

    assert not EFContractUser.objects.filter(user=leaver).exists()
    assert {(r.contract_id, r.user_id, r.level) for r in EFContractUser.objects.all()} == kept
    events = AuditEvent.objects.filter(action="ef.user_removed")
    assert AuditEvent.objects.count() == before + 2
    assert sorted((e.details["contract"], e.details["level"]) for e in events) == sorted(
        [(world.contract.number, "super"), (world.sibling.number, "contract")]
    )
    assert all(
        e.actor is None
        and e.organization == world.contract.organization
        and e.details["email"] == leaver.email
        and e.details["reason"] == "left_organization"
        for e in events
    )
    migration.end_rows_of_leavers(apps, None)  # again: nothing left to end
    assert AuditEvent.objects.count() == before + 2


def _invite(client, world: World, email: str, level: str = "configuration") -> EFInvitation:  # type: ignore[no-untyped-def]
    response = client.post(
        users_url(world),
        {"invite": "1", "invite-email": email, "invite-level": level},
        follow=True,
    )
    assert _messages(response) == [f"Invitation sent to {email}."]
    return EFInvitation.objects.get(email=email, contract=world.contract)


def _withdraw(client, world: World, invitation: EFInvitation):  # type: ignore[no-untyped-def]
    url = reverse("ef-invitation-revoke", args=[world.contract.number, invitation.pk])
    return client.post(url, {"confirm": "1"}, follow=True)


def _messages(response) -> list[str]:  # type: ignore[no-untyped-def]
    return [str(m) for m in response.context["messages"]]


def test_withdrawing_an_invitation_accepted_meanwhile_says_who_accepted_it(client, world) -> None:  # type: ignore[no-untyped-def]
    # The page listed the invitation; the invitee accepted before Withdraw was pressed. It said
    # "Invitation withdrawn." while the invitee was on the contract.
    invitation = _invite(client, world, "bob@acme.example")
    bob = UserFactory(email="bob@acme.example")
    invitation_accept(invitation=invitation, user=bob)
    response = _withdraw(client, world, invitation)
    assert _messages(response) == [
        "bob@acme.example already accepted this invitation: take them off the contract's users "
        "if they should not have access."
    ]
    assert not AuditEvent.objects.filter(action="ef.invitation_revoked").exists()
    invitation.refresh_from_db()
    assert invitation.revoked_at is None
    assert level_of(world, bob) == "configuration"


def test_withdrawing_twice_withdraws_and_audits_once(client, world) -> None:  # type: ignore[no-untyped-def]
    invitation = _invite(client, world, "bob@acme.example")
    assert _messages(_withdraw(client, world, invitation)) == ["Invitation withdrawn."]
    assert _messages(_withdraw(client, world, invitation)) == ["Invitation withdrawn."]
    event = AuditEvent.objects.get(action="ef.invitation_revoked")
    assert event.actor == world.super_user and event.details["email"] == "bob@acme.example"


def test_withdraw_is_post_only_with_a_csrf_token(world) -> None:  # type: ignore[no-untyped-def]
    invitation = EFInvitation.objects.create(
        contract=world.contract, email="bob@acme.example", level="contract"
    )
    url = reverse("ef-invitation-revoke", args=[world.contract.number, invitation.pk])
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(world.super_user)
    assert browser.get(url).status_code == 405
    assert browser.post(url).status_code == 403  # no CSRF token
    invitation.refresh_from_db()
    assert invitation.revoked_at is None
    assert not AuditEvent.objects.filter(action="ef.invitation_revoked").exists()


def test_a_super_user_demoted_meanwhile_cannot_withdraw(client, world, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # The view checked the level; another super user demoted this one before the withdrawal
    # ran. The service checks again, under the super users' lock.
    invitation = _invite(client, world, "bob@acme.example")
    other = contract_member(world.contract, "super")
    found = views.invitation_for

    def demoted_meanwhile(reach, pk):  # type: ignore[no-untyped-def]
        contract_user_set(
            contract=world.contract, user=world.super_user, level="contract", actor=other
        )
        return found(reach, pk)

    monkeypatch.setattr(views, "invitation_for", demoted_meanwhile)
    response = _withdraw(client, world, invitation)
    assert _messages(response) == [
        f"Your level on contract {world.contract.number} does not allow this. Ask its super user."
    ]
    invitation.refresh_from_db()
    assert invitation.revoked_at is None
    assert not AuditEvent.objects.filter(action="ef.invitation_revoked").exists()
    # Nor may anyone outside the contract's super users, whoever calls the service.
    with pytest.raises(EFError, match="does not allow this"):
        invitation_revoke(invitation=invitation, actor=world.configuration_user)
