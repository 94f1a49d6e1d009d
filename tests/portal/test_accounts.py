from __future__ import annotations

import re

import pytest
from django.core import mail
from django.urls import reverse

from portal.models import AuditEvent, Invitation, Membership, Organization, User
from portal.services import (
    PortalError,
    invitation_accept,
    invitation_create,
    invitation_revoke,
    membership_update,
)
from tests.portal.factories import PASSWORD, MembershipFactory, OrganizationFactory, UserFactory

pytestmark = pytest.mark.django_db

SIGNUP = {
    "full_name": "Marina Silva",
    "email": "marina@acme.example",
    "password1": "a-long-and-unusual-passphrase",
    "password2": "a-long-and-unusual-passphrase",
    "organization_name": "Acme Manufacturing",
}


def test_signup_creates_the_organization_with_the_user_as_admin(client) -> None:  # type: ignore[no-untyped-def]
    response = client.post(reverse("account_signup"), SIGNUP)
    assert response.status_code == 302
    user = User.objects.get(email="marina@acme.example")
    membership = Membership.objects.get(user=user)
    assert membership.role == Membership.Role.ADMIN
    assert membership.organization.name == "Acme Manufacturing"
    assert re.fullmatch(r"\d{8}", membership.organization.account_number)
    assert user.full_name == "Marina Silva"
    assert client.get(reverse("dashboard")).status_code == 200
    assert AuditEvent.objects.filter(action="organization.created").exists()


@pytest.mark.parametrize("name", ["", " ", "   "])
def test_signup_without_organization_name_is_refused(client, name) -> None:  # type: ignore[no-untyped-def]
    response = client.post(reverse("account_signup"), {**SIGNUP, "organization_name": name})
    assert response.status_code == 200
    # One error at the field, the one that says what to do (it also said "This field is
    # required." above it).
    assert response.context["form"].errors["organization_name"] == [
        "Enter your organization's name, or use the invitation link your administrator sent you."
    ]
    assert "This field is required" not in response.content.decode()
    assert not User.objects.exists()


def test_login_with_email_lands_on_dashboard(client) -> None:  # type: ignore[no-untyped-def]
    membership = MembershipFactory()
    response = client.post(
        reverse("account_login"), {"login": membership.user.email, "password": PASSWORD}
    )
    assert response.status_code == 302 and response["Location"] == reverse("dashboard")


def test_user_without_organization_is_asked_to_create_one(client) -> None:  # type: ignore[no-untyped-def]
    user = UserFactory()
    client.force_login(user)
    response = client.get(reverse("dashboard"))
    assert response["Location"] == reverse("organization-create")
    response = client.post(reverse("organization-create"), {"name": "Solo Co", "country": "BR"})
    assert response["Location"] == reverse("dashboard")
    assert Membership.objects.get(user=user).role == Membership.Role.ADMIN


def _invite(client, admin, email="new@acme.example", role="member"):  # type: ignore[no-untyped-def]
    client.force_login(admin.user)
    return client.post(reverse("members"), {"email": email, "role": role})


def test_invitation_by_email_then_signup_joins_the_organization(
    client, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    admin = MembershipFactory()
    with django_capture_on_commit_callbacks(execute=True):
        response = _invite(client, admin)
    assert response.status_code == 302
    (email,) = mail.outbox
    assert email.to == ["new@acme.example"]
    assert admin.organization.name in email.body  # not in the subject: user-entered text
    link = re.search(r"http://testserver(/invitations/[\w-]+/)", email.body).group(1)

    client.logout()
    landing = client.get(link)
    assert landing.status_code == 200 and admin.organization.name in landing.content.decode()
    signup_page = client.get(reverse("account_signup"))
    assert "organization_name" not in signup_page.content.decode()
    data = {k: v for k, v in SIGNUP.items() if k != "organization_name"}
    response = client.post(reverse("account_signup"), {**data, "email": "new@acme.example"})
    assert response.status_code == 302
    assert response["Location"] == link
    response = client.post(link)
    assert response["Location"] == reverse("dashboard")
    user = User.objects.get(email="new@acme.example")
    assert list(Membership.objects.filter(user=user).values_list("organization", "role")) == [
        (admin.organization_id, "member")
    ]
    assert Organization.objects.count() == 1
    assert Invitation.objects.get().accepted_at is not None


def test_invitation_for_another_address_is_refused(client) -> None:  # type: ignore[no-untyped-def]
    admin = MembershipFactory()
    invitation = invitation_create(
        organization=admin.organization,
        email="someone@acme.example",
        role="member",
        invited_by=admin.user,
    )
    intruder = MembershipFactory()
    client.force_login(intruder.user)
    response = client.post(reverse("invitation", args=[invitation.token]), follow=True)
    assert "This invitation was sent to someone@acme.example" in response.content.decode()
    assert not Membership.objects.filter(
        user=intruder.user, organization=admin.organization
    ).exists()


def test_an_invitation_opened_by_someone_else_offers_to_log_in_as_the_invitee(client) -> None:  # type: ignore[no-untyped-def]
    import html

    admin = MembershipFactory()
    invitation = invitation_create(
        organization=admin.organization,
        email="Someone@acme.example",
        role="member",
        invited_by=admin.user,
    )
    link = reverse("invitation", args=[invitation.token])
    other = MembershipFactory(user__email="other@globex.example")
    client.force_login(other.user)
    page = html.unescape(client.get(link).content.decode())
    # No button that would only be refused; who is logged in, and a way to the right account.
    assert "Accept invitation" not in page
    assert "You are logged in as other@globex.example." in page
    assert "Log out and log in as someone@acme.example" in page
    assert f'action="{reverse("account_logout")}"' in page
    login_next = f"{reverse('account_login')}?next={link}"
    assert f'name="next" value="{login_next}"' in page
    # The button logs out and goes to the login page, which comes back to the invitation.
    response = client.post(reverse("account_logout"), {"next": login_next})
    assert response.status_code == 302 and response["Location"] == login_next
    assert "_auth_user_id" not in client.session
    # The invitee, in any letter case, still gets the button.
    client.force_login(UserFactory(email="someone@acme.example"))
    page = client.get(link).content.decode()
    assert "Accept invitation" in page and "Log out and log in as" not in page


def test_unknown_invitation_token_is_404(client) -> None:  # type: ignore[no-untyped-def]
    assert client.get(reverse("invitation", args=["nope"])).status_code == 404


def test_members_cannot_invite(client) -> None:  # type: ignore[no-untyped-def]
    member = MembershipFactory(role=Membership.Role.MEMBER)
    response = _invite(client, member)
    assert response.status_code == 403
    assert "administrators" in response.content.decode()
    assert not Invitation.objects.exists()


def test_inviting_an_existing_member_says_so(client) -> None:  # type: ignore[no-untyped-def]
    admin = MembershipFactory()
    response = _invite(client, admin, email=admin.user.email)
    assert "already a member" in response.content.decode()


def test_bad_invitation_email_is_a_form_error(client) -> None:  # type: ignore[no-untyped-def]
    admin = MembershipFactory()
    response = _invite(client, admin, email="not-an-email")
    assert response.status_code == 200
    assert "Enter a valid email address" in response.content.decode()
    assert not Invitation.objects.exists()


def test_last_admin_cannot_leave_or_be_demoted() -> None:
    admin = MembershipFactory()
    with pytest.raises(PortalError, match="at least one administrator"):
        membership_update(membership=admin, actor=admin.user, role=Membership.Role.MEMBER)
    with pytest.raises(PortalError):
        membership_update(membership=admin, actor=admin.user, remove=True)
    second = MembershipFactory(organization=admin.organization)
    membership_update(membership=admin, actor=second.user, role=Membership.Role.MEMBER)
    admin.refresh_from_db()
    assert admin.role == Membership.Role.MEMBER


def test_admin_changes_role_and_removes_member(client) -> None:  # type: ignore[no-untyped-def]
    admin = MembershipFactory()
    member = MembershipFactory(organization=admin.organization, role="member")
    client.force_login(admin.user)
    client.post(reverse("member-update", args=[member.pk]), {"role": "admin"})
    member.refresh_from_db()
    assert member.role == "admin"
    client.post(
        reverse("member-update", args=[member.pk]), {"remove": "1", "role": "admin", "confirm": "1"}
    )
    assert not Membership.objects.filter(pk=member.pk).exists()
    assert AuditEvent.objects.filter(action="membership.removed").exists()


def test_members_of_other_organizations_are_out_of_reach(client) -> None:  # type: ignore[no-untyped-def]
    admin = MembershipFactory()
    stranger = MembershipFactory()
    client.force_login(admin.user)
    response = client.post(reverse("member-update", args=[stranger.pk]), {"remove": "1"})
    assert response.status_code == 404
    assert Membership.objects.filter(pk=stranger.pk).exists()


def test_switching_organization(client) -> None:  # type: ignore[no-untyped-def]
    user = UserFactory()
    first = MembershipFactory(user=user, organization=OrganizationFactory(name="Alpha"))
    second = MembershipFactory(user=user, organization=OrganizationFactory(name="Beta"))
    client.force_login(user)
    page = client.get(reverse("dashboard")).content.decode()
    assert "Alpha dashboard" in page
    client.post(reverse("organization-switch"), {"organization": second.organization_id})
    assert "Beta dashboard" in client.get(reverse("dashboard")).content.decode()
    # An organization the user does not belong to is refused and nothing changes.
    other = OrganizationFactory(name="Gamma")
    client.post(reverse("organization-switch"), {"organization": other.pk})
    assert "Beta dashboard" in client.get(reverse("dashboard")).content.decode()
    assert first.organization.name == "Alpha"


def test_switch_ignores_offsite_next(client) -> None:  # type: ignore[no-untyped-def]
    membership = MembershipFactory()
    client.force_login(membership.user)
    response = client.post(
        reverse("organization-switch"),
        {"organization": membership.organization_id, "next": "https://evil.example/"},
    )
    assert response["Location"] == reverse("dashboard")


def test_switching_on_a_page_about_one_object_goes_to_its_sections_list(client) -> None:  # type: ignore[no-untyped-def]
    # The license belongs to the organization switched away from: back to its URL was a 404
    # ("No such license") that also lost "You are now working in ...".
    from tests.licensing.factories import LicenseFactory

    user = UserFactory()
    acme = MembershipFactory(user=user, organization=OrganizationFactory(name="Acme"))
    initech = MembershipFactory(user=user, organization=OrganizationFactory(name="Initech"))
    license = LicenseFactory(owner=acme.organization)
    client.force_login(user)
    for page, expected in (
        (reverse("license-detail", args=[license.pk]), reverse("license-list")),
        (reverse("license-renew", args=[license.pk]) + "?x=1", reverse("license-list")),
        (reverse("license-list") + "?q=abc", reverse("license-list") + "?q=abc"),
        (reverse("members"), reverse("members")),
    ):
        response = client.post(
            reverse("organization-switch"),
            {"organization": initech.organization_id, "next": page},
            follow=True,
        )
        assert response.redirect_chain[0][0] == expected, page
        assert response.status_code == 200, page
        assert "You are now working in Initech" in response.content.decode()


def test_a_link_to_a_license_of_another_organization_of_the_users_offers_to_switch(client) -> None:  # type: ignore[no-untyped-def]
    from tests.licensing.factories import LicenseFactory
    from tests.portal.factories import DelegationFactory, PartnerFactory

    user = UserFactory()
    acme = MembershipFactory(user=user, organization=OrganizationFactory(name="Acme"))
    MembershipFactory(user=user, organization=OrganizationFactory(name="Initech"))
    license = LicenseFactory(owner=acme.organization)
    client.force_login(user)
    url = reverse("license-detail", args=[license.pk])
    client.post(
        reverse("organization-switch"),
        {
            "organization": Membership.objects.get(
                user=user, organization__name="Initech"
            ).organization_id
        },
    )
    response = client.get(url)
    assert response.status_code == 404
    page = response.content.decode()
    assert "This license belongs to Acme" in page
    switched = client.post(
        reverse("organization-switch"),
        {"organization": acme.organization_id, "next": url, "same_page": "1"},
        follow=True,
    )
    assert switched.redirect_chain[0][0] == url and switched.status_code == 200
    # A partner of the owner that is not acting for it is told to act for it.
    partner_user = MembershipFactory(organization=PartnerFactory())
    DelegationFactory(customer=acme.organization, partner=partner_user.organization)
    client.force_login(partner_user.user)
    page = client.get(url).content.decode()
    assert "This license belongs to Acme" in page and "Act for Acme" in page
    # Anyone else: the plain 404, nothing about the owner.
    client.force_login(MembershipFactory().user)
    response = client.get(url)
    assert response.status_code == 404 and "Acme" not in response.content.decode()


def test_password_reset_email_goes_through_the_outbox(
    client, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    membership = MembershipFactory()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("account_reset_password"), {"email": membership.user.email})
    (email,) = mail.outbox
    assert email.to == [membership.user.email]
    assert "/accounts/password/reset/key/" in email.body


def test_two_factor_setup_page(client) -> None:  # type: ignore[no-untyped-def]
    membership = MembershipFactory()
    client.force_login(membership.user)
    assert client.get("/accounts/2fa/").status_code == 200
    response = client.get("/accounts/2fa/totp/activate/")
    assert response.status_code in (200, 302)


def test_anonymous_pages(client) -> None:  # type: ignore[no-untyped-def]
    assert client.get("/").status_code == 200
    assert client.get(reverse("dashboard"))["Location"].startswith("/accounts/login/")
    assert client.get(reverse("signing-key")).status_code == 200
    keys = client.get("/.well-known/license-signing-key").json()["keys"]
    assert len(keys[0]["hex"]) == 64 and "BEGIN PUBLIC KEY" in keys[0]["pem"]


def test_inviting_again_with_another_role_changes_the_invitations_role(client) -> None:  # type: ignore[no-untyped-def]
    # An administrator invites someone as administrator by mistake, then again as member: the
    # link already sent must make them a member, as the page and the audit trail say.
    admin = MembershipFactory()
    _invite(client, admin, email="bob@acme.example", role="admin")
    _invite(client, admin, email="bob@acme.example", role="member")
    invitation = Invitation.objects.get(revoked_at__isnull=True)
    assert invitation.role == Membership.Role.MEMBER
    bob = UserFactory(email="bob@acme.example")
    client.force_login(bob)
    client.post(reverse("invitation", args=[invitation.token]))
    assert Membership.objects.get(user=bob, organization=admin.organization).role == "member"


def test_withdrawing_an_invitation_accepted_meanwhile_says_so(client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # The administrator's Members page listed the invitation; the invitee accepted it before
    # the click on Withdraw. The page said "Invitation withdrawn." and the audit trail recorded
    # a withdrawal, while the invitee had joined.
    from portal import views

    admin = MembershipFactory()
    invitation = invitation_create(
        organization=admin.organization,
        email="bob@acme.example",
        role="member",
        invited_by=admin.user,
    )
    listed = views.open_invitations

    def accepted_meanwhile(**kwargs):  # type: ignore[no-untyped-def]
        pending = list(listed(**kwargs))
        if not User.objects.filter(email="bob@acme.example").exists():
            invitation_accept(invitation=invitation, user=UserFactory(email="bob@acme.example"))
        return Invitation.objects.filter(pk__in=[i.pk for i in pending])

    monkeypatch.setattr(views, "open_invitations", accepted_meanwhile)
    client.force_login(admin.user)
    response = client.post(reverse("invitation-revoke", args=[invitation.pk]), follow=True)
    messages = [str(m) for m in response.context["messages"]]
    assert messages == [
        "bob@acme.example already accepted this invitation: remove them from the list of "
        "members if they should not be there."
    ]
    assert not AuditEvent.objects.filter(action="invitation.revoked").exists()
    invitation.refresh_from_db()
    assert invitation.revoked_at is None


def test_withdrawing_an_invitation_twice_withdraws_and_audits_once() -> None:
    admin = MembershipFactory()
    invitation = invitation_create(
        organization=admin.organization,
        email="bob@acme.example",
        role="member",
        invited_by=admin.user,
    )
    invitation_revoke(invitation=invitation, actor=admin.user)
    invitation_revoke(invitation=invitation, actor=admin.user)
    assert AuditEvent.objects.filter(action="invitation.revoked").count() == 1
    invitation.refresh_from_db()
    assert invitation.revoked_at is not None


def test_an_unknown_role_is_refused_with_a_message(client) -> None:  # type: ignore[no-untyped-def]
    # It was silently ignored: the page came back with no message and nothing changed.
    admin = MembershipFactory()
    member = MembershipFactory(organization=admin.organization, role="member")
    client.force_login(admin.user)
    response = client.post(
        reverse("member-update", args=[member.pk]), {"role": "owner"}, follow=True
    )
    assert [str(m) for m in response.context["messages"]] == [
        "Choose a role: Administrator or Member."
    ]
    member.refresh_from_db()
    assert member.role == "member"


def test_members_table_stacks_on_a_phone_with_labelled_actions(client) -> None:  # type: ignore[no-untyped-def]
    """Each member a card on a phone, the role form under its label: in four columns the
    buttons to change a role or remove a member were off the screen's edge."""
    admin = MembershipFactory()
    client.force_login(admin.user)
    page = client.get(reverse("members")).content.decode()
    table = page.split('data-testid="members"')[1].split("</table>")[0]
    assert "table-stack" in page.split('data-testid="members"')[0].rsplit("<table", 1)[1]
    for label in ("Email", "Name", "Role", "Actions"):
        assert f'data-label="{label}"' in table
