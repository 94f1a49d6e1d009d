"""The license email's "Open this license" link goes only to recipients who can open the page:
a technical contact who is no member of the owner, or a partner that may not see the license,
reads where to find it instead of following a link to "not found"."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from licensing.models import License
from portal.models import Membership
from portal.models import OutboundEmail as Email
from portal.policy import Scope
from tests.licensing.factories import REGISTRATION, SerialNumberFactory
from tests.licensing.wizard import walk
from tests.portal.factories import (
    DelegationFactory,
    MembershipFactory,
    PartnerFactory,
    UserFactory,
)

# Each test twice: the email written by the request that acted and by its sender.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("license_email_writer")]

WHERE_TO_FIND = "find this license under Manage my licenses"


def _by_recipient(template: str) -> dict[str, Email]:
    return {
        address: email for email in Email.objects.filter(template=template) for address in email.to
    }


def test_a_technical_contact_who_is_no_member_gets_no_link_the_member_does(
    client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    member = MembershipFactory(role=Membership.Role.MEMBER)
    # The technical contact has an account, in another organization: the link would 404.
    contact = UserFactory(email=REGISTRATION["technical_email"])
    MembershipFactory(user=contact)
    client.force_login(member.user)
    with django_capture_on_commit_callbacks(execute=True):
        walk(client, SerialNumberFactory().code)
    license = License.objects.get()
    link = reverse("license-detail", args=[license.pk])
    emails = _by_recipient("license_issued")
    assert set(emails) == {member.user.email, contact.email}
    ours, theirs = emails[member.user.email], emails[contact.email]
    assert ours.pk != theirs.pk
    assert link in ours.body_text and f'href="http://testserver{link}"' in ours.body_html
    assert link not in theirs.body_text and link not in theirs.body_html
    # The software it is for, to those who can open it (FileConnect checks the rest).
    downloads = reverse("fileconnect-license", args=[license.pk])
    assert downloads in ours.body_text and f'href="http://testserver{downloads}"' in ours.body_html
    assert downloads not in theirs.body_text
    assert WHERE_TO_FIND in theirs.body_text and WHERE_TO_FIND in theirs.body_html
    assert license.owner.name in theirs.body_text
    # Both carry the key and the file; every person receives one message.
    for email in (ours, theirs):
        assert license.key in email.body_text and email.attachments
    assert len(mail.outbox) == 2 and all(len(message.to) == 1 for message in mail.outbox)
    # What the link promises: the member opens it, the contact would not.
    assert client.get(link).status_code == 200
    client.force_login(contact)
    assert client.get(link).status_code == 404


def test_the_technical_contact_who_is_the_member_gets_one_email_with_the_link(
    client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    member = MembershipFactory(user__email=REGISTRATION["technical_email"])
    client.force_login(member.user)
    with django_capture_on_commit_callbacks(execute=True):
        walk(client, SerialNumberFactory().code)
    (email,) = Email.objects.filter(template="license_issued")
    assert email.to == [member.user.email]
    assert reverse("license-detail", args=[License.objects.get().pk]) in email.body_text


def test_a_key_a_partner_obtains_links_for_the_partner_and_the_customers_administrators(
    client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    # With the obtain-keys scope alone the partner sees the keys it obtained: its link opens.
    customer_admin = MembershipFactory(role=Membership.Role.ADMIN)
    partner_user = MembershipFactory(organization=PartnerFactory())
    delegation = DelegationFactory(
        customer=customer_admin.organization,
        partner=partner_user.organization,
        scopes=[Scope.OBTAIN_KEYS],
    )
    client.force_login(partner_user.user)
    client.post(reverse("partner-act", args=[delegation.pk]))
    with django_capture_on_commit_callbacks(execute=True):
        walk(client, SerialNumberFactory().code)
    link = reverse("license-detail", args=[License.objects.get().pk])
    emails = _by_recipient("license_issued")
    assert emails[partner_user.user.email].pk != emails[REGISTRATION["technical_email"]].pk
    for address in (partner_user.user.email, customer_admin.user.email):
        assert link in emails[address].body_text
    assert link not in emails[REGISTRATION["technical_email"]].body_text
    assert client.get(link).status_code == 200


def test_an_upgrade_email_says_which_key_it_replaces(django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    from licensing.services import IssueSource, license_issue
    from tests.licensing.factories import LicenseFactory, ProductVersionFactory

    old = LicenseFactory()
    new_version = ProductVersionFactory(product=old.version.product, version="99.0")
    today = old.maintenance_start
    for retire, sentence in (
        (True, f"This key replaces license {old.key}, which is now superseded"),
        (False, f"These seats were upgraded from license {old.key}, which keeps its other seats"),
    ):
        with django_capture_on_commit_callbacks(execute=True):
            license_issue(
                source=IssueSource(
                    kind="upgrade",
                    ref="t",
                    version=new_version,
                    quantity=1,
                    maintenance_start=today,
                    maintenance_end=old.maintenance_end,
                    supersedes=old,
                    retire_superseded=retire,
                ),
                owner=old.owner,
                registration=old.registration,
                acting_user=None,
            )
        email = Email.objects.filter(template="license_issued").latest("created_at")
        assert sentence in email.body_text and sentence in email.body_html


ASK_TO_BE_INVITED = "ask an administrator of"


def _acme() -> tuple[Any, Any]:
    """Acme, with alice its administrator (reads Portuguese) and bob a member (English)."""
    alice = MembershipFactory(
        user__email="alice@acme.example", user__language="pt-br", role=Membership.Role.ADMIN
    )
    bob = MembershipFactory(
        organization=alice.organization,
        user__email="bob@acme.example",
        user__language="en",
        role=Membership.Role.MEMBER,
    )
    return alice, bob


def _license_of(owner: Any, *, technical_email: str, **fields: Any) -> License:
    from tests.licensing.factories import LicenseFactory, SupportRegistrationFactory

    registration = SupportRegistrationFactory(organization=owner, technical_email=technical_email)
    return LicenseFactory(owner=owner, registration=registration, **fields)


def test_a_technical_contact_who_is_a_member_gets_the_links_in_their_own_language(
    django_capture_on_commit_callbacks: Any,
) -> None:
    from django.utils import translation

    from licensing.services import IssueSource, license_issue
    from tests.licensing.factories import ProductVersionFactory

    alice, _bob = _acme()
    registration = _license_of(alice.organization, technical_email="BOB@acme.example").registration
    # Sent after the commit, in English: a worker writes alice's email in the language she
    # acted in, not its own.
    with django_capture_on_commit_callbacks(execute=True), translation.override("pt-br"):
        license = license_issue(
            source=IssueSource(
                kind="serial",
                ref="t",
                version=ProductVersionFactory(),
                quantity=1,
                maintenance_start=registration.created_at.date(),
                maintenance_end=registration.created_at.date(),
            ),
            owner=alice.organization,
            registration=registration,
            acting_user=alice.user,
        )
    emails = _by_recipient("license_issued")
    link = reverse("license-detail", args=[license.pk])
    theirs, ours = emails["bob@acme.example"], emails["alice@acme.example"]
    # bob is a member: the links, not "ask to be invited"; in English, which he chose.
    assert link in theirs.body_text and f'href="http://testserver{link}"' in theirs.body_html
    assert reverse("fileconnect-license", args=[license.pk]) in theirs.body_text
    assert ASK_TO_BE_INVITED not in theirs.body_text and ASK_TO_BE_INVITED not in theirs.body_html
    assert "Open this license" in theirs.body_text and "Quantity" in theirs.body_html
    # alice reads the language she acts in.
    assert "Abrir esta licença" in ours.body_text and "Quantidade" in ours.body_html


def test_a_share_recipients_renewal_gives_the_owners_admin_links_her_language_and_who(
    django_capture_on_commit_callbacks: Any,
) -> None:
    from django.utils import translation

    from licensing.services import license_renew

    alice, _bob = _acme()
    carol = MembershipFactory(user__email="carol@globex.example", user__language="en")
    license = _license_of(alice.organization, technical_email="alice@acme.example")
    with django_capture_on_commit_callbacks(execute=True), translation.override("en"):
        license_renew(
            license=license, months=12, registration=None, acting_user=carol.user, reference="R-1"
        )
    emails = _by_recipient("license_renewed")
    link = reverse("license-detail", args=[license.pk])
    ours, theirs = emails["alice@acme.example"], emails["carol@globex.example"]
    assert ours.pk != theirs.pk
    # alice, Acme's administrator: the links, in Portuguese, and who renewed.
    assert link in ours.body_text and f'href="http://testserver{link}"' in ours.body_html
    assert ASK_TO_BE_INVITED not in ours.body_text
    assert "Abrir esta licença" in ours.body_text
    assert "carol@globex.example" in ours.body_text and "carol@globex.example" in ours.body_html
    # carol, who renewed it in English, reads English and is not told she did it.
    assert "Open this license" in theirs.body_text
    assert "carol@globex.example" not in theirs.body_text


def test_a_renewal_by_a_member_names_nobody(django_capture_on_commit_callbacks: Any) -> None:
    from licensing.services import license_renew

    alice, bob = _acme()
    license = _license_of(alice.organization, technical_email="alice@acme.example")
    with django_capture_on_commit_callbacks(execute=True):
        license_renew(
            license=license, months=12, registration=None, acting_user=bob.user, reference="R"
        )
    assert Email.objects.filter(template="license_renewed").exists()
    for email in Email.objects.filter(template="license_renewed"):
        assert "Renewed by" not in email.body_text and "Renovad" not in email.body_text


def test_the_technical_contact_is_read_in_one_query_and_not_when_it_is_the_actor(
    django_assert_num_queries: Any,
) -> None:
    from licensing.services import license_email_audience

    alice, _bob = _acme()
    theirs = _license_of(alice.organization, technical_email="bob@acme.example")
    with django_assert_num_queries(1):
        openers, others, languages = license_email_audience(
            theirs, alice.user, partner_acting=False
        )
    assert openers == {"alice@acme.example", "bob@acme.example"} and not others
    assert languages == {"bob@acme.example": "en"}  # alice reads the language she acts in
    own = _license_of(alice.organization, technical_email="Alice@acme.example")
    with django_assert_num_queries(0):
        assert license_email_audience(own, alice.user, partner_acting=False) == (
            {"alice@acme.example"},
            set(),
            {},
        )


def test_a_rehost_email_names_the_old_key_and_host_and_links_for_a_member_contact(
    django_capture_on_commit_callbacks: Any,
) -> None:
    from licensing.services import license_rehost
    from tests.licensing.factories import ProductVersionFactory

    alice, _bob = _acme()
    license = _license_of(
        alice.organization,
        technical_email="bob@acme.example",
        host_id="OLD-HOST-1",
        version=ProductVersionFactory(product__node_locked=True),
    )
    old_key = license.key
    with django_capture_on_commit_callbacks(execute=True):
        license_rehost(license=license, host_id="NEW-HOST-2", actor=alice.user)
    email = _by_recipient("license_rehosted")["bob@acme.example"]
    for body in (email.body_text, email.body_html):
        assert old_key in body and "OLD-HOST-1" in body and "NEW-HOST-2" in body
    assert "Previous license key (no longer works)" in email.body_text
    assert reverse("license-detail", args=[license.pk]) in email.body_text
    assert ASK_TO_BE_INVITED not in email.body_text


def test_a_deactivated_administrator_is_not_copied_on_a_partners_key(
    django_capture_on_commit_callbacks: Any,
) -> None:
    # The owner's administrators copied on a key a partner obtained were read whatever their
    # account's state: a deactivated one (who can no longer sign in) still got every key.
    from licensing.services import license_email_again, license_email_recipients
    from portal.models import User
    from tests.licensing.factories import partner_obtained_licenses

    obtained = partner_obtained_licenses(1)
    license = License.objects.get(pk=obtained.licenses[0].pk)  # with its partner
    departed = MembershipFactory(
        organization=obtained.admin.organization,
        role=Membership.Role.ADMIN,
        user__email="departed@customer.example",
    )
    User.objects.filter(pk=departed.user.pk).update(is_active=False)
    # The page's list of recipients and the email agree: one rule.
    assert "departed@customer.example" not in license_email_recipients(license, obtained.member)
    with django_capture_on_commit_callbacks(execute=True):
        sent_to = license_email_again(license=license, actor=obtained.member)
    assert obtained.admin.user.email in sent_to and "departed@customer.example" not in sent_to
    delivered = {address for message in mail.outbox for address in message.to}
    assert obtained.admin.user.email in delivered
    assert "departed@customer.example" not in delivered


def test_a_share_recipients_email_again_names_who_asked_for_it(
    client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    # "Email key again" by someone of another organization the license is shared with (manage
    # access) sent bob, Acme's technical contact, "Here is your license key" naming nobody: a
    # key nobody at Acme asked for, as if the portal sent it on its own. He reads who asked,
    # as he would read who renewed or moved it; carol, who asked, gets her copy, without her
    # own name; Acme's administrators are not copied (the button emails the technical contact
    # and the person who pressed it: license_email_again).
    from licensing.services import license_share

    alice, _bob = _acme()
    carol = MembershipFactory(user__email="carol@globex.example", user__language="en")
    license = _license_of(alice.organization, technical_email="bob@acme.example")
    license_share(licenses=[license], email=carol.user.email, access="manage", actor=alice.user)
    Email.objects.all().delete()
    client.force_login(carol.user)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("license-email", args=[license.pk]))
    assert response.status_code == 302
    emails = _by_recipient("license_issued")
    assert set(emails) == {"bob@acme.example", "carol@globex.example"}
    theirs, ours = emails["bob@acme.example"], emails["carol@globex.example"]
    assert theirs.pk != ours.pk
    asked = "Sent again at the request of carol@globex.example."
    assert asked in theirs.body_text and asked in theirs.body_html
    assert license.key in theirs.body_text and theirs.attachments
    assert "carol@globex.example" not in ours.body_text
    assert "Sent again" not in ours.body_text and license.key in ours.body_text
    # Both can open the license: bob is Acme's member, carol has it shared.
    link = reverse("license-detail", args=[license.pk])
    assert link in theirs.body_text and link in ours.body_text


def test_a_members_email_again_names_nobody(
    client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    alice, _bob = _acme()
    license = _license_of(alice.organization, technical_email="bob@acme.example")
    client.force_login(alice.user)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("license-email", args=[license.pk]))
    emails = _by_recipient("license_issued")
    assert set(emails) == {"alice@acme.example", "bob@acme.example"}
    for email in emails.values():
        assert "Sent again" not in email.body_text and "alice@acme.example" not in email.body_text


def test_a_partners_email_again_names_the_partner_to_the_customer(
    client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    # A partner acting for Acme sends the key of a license Acme obtained itself: Acme's
    # administrators are copied (license_email_recipients) and read who asked; the partner's
    # own copy does not name it back to itself.
    alice, _bob = _acme()
    partner_user = MembershipFactory(
        organization=PartnerFactory(name="Prime Channel"), user__email="pedro@prime.example"
    )
    delegation = DelegationFactory(
        customer=alice.organization,
        partner=partner_user.organization,
        scopes=[Scope.VIEW_LICENSES, Scope.OBTAIN_KEYS],
    )
    license = _license_of(alice.organization, technical_email="bob@acme.example")
    client.force_login(partner_user.user)
    client.post(reverse("partner-act", args=[delegation.pk]))
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("license-email", args=[license.pk]))
    emails = _by_recipient("license_issued")
    assert set(emails) == {"alice@acme.example", "bob@acme.example", "pedro@prime.example"}
    asked = "Sent again at the request of Prime Channel (pedro@prime.example)."
    assert asked in emails["bob@acme.example"].body_text
    # alice, who reads Portuguese, is told the same: the partner and its user.
    assert "Prime Channel (pedro@prime.example)" in emails["alice@acme.example"].body_text
    assert "Sent again" not in emails["pedro@prime.example"].body_text
