"""The conversion email's links go only to recipients who can open them, as the license
email's do (tests/licensing/test_license_email_link.py): the owner's members get them; a
technical contact who is no member reads where to find the licenses instead; a channel
partner's user gets the conversion's result page, which its scopes open, not the customer's
license list, which the obtain-keys scope alone does not."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from licensing.codes import generate_code
from portal.models import Delegation, Membership
from portal.models import OutboundEmail as Email
from portal.policy import Scope
from portal.requestcontext import acting_under
from tests.licensing.factories import REGISTRATION
from tests.portal.factories import (
    DelegationFactory,
    MembershipFactory,
    PartnerFactory,
    UserFactory,
)
from tests.vouchers.factories import vouchers
from vouchers.models import VoucherConversion
from vouchers.services import vouchers_convert

pytestmark = pytest.mark.django_db

TECH = REGISTRATION["technical_email"]
LICENSE_LIST = reverse("license-list")
WHERE_TO_FIND = "find these licenses under Manage my licenses"


def _by_recipient() -> dict[str, Email]:
    return {
        address: email
        for email in Email.objects.filter(template="vouchers_converted")
        for address in email.to
    }


def _convert(
    membership: Membership, count: int, *, organization: Any = None, unknown: int = 0
) -> VoucherConversion:
    codes = [v.code for v in vouchers(count)] + [generate_code() for _ in range(unknown)]
    return vouchers_convert(
        codes=codes,
        organization=organization or membership.organization,
        registration=REGISTRATION,
        acting_user=membership.user,
        combine=False,
        language="en",
    ).conversion


def _links(conversion: VoucherConversion) -> list[str]:
    """Every page of the portal the email may link to."""
    return [
        LICENSE_LIST,
        reverse("voucher-conversion", args=[conversion.pk]),
        reverse("voucher-conversion-zip", args=[conversion.pk]),
    ]


def test_a_technical_contact_who_is_no_member_gets_no_link_the_member_does(
    client: Client,
) -> None:
    # The technical contact has an account in another organization: the links would be "not
    # found" there, or its own organization's licenses.
    member = MembershipFactory(role=Membership.Role.MEMBER, user__language="en")
    contact = UserFactory(email=TECH, language="pt-br")
    MembershipFactory(user=contact)
    conversion = _convert(member, 2, unknown=1)
    emails = _by_recipient()
    assert set(emails) == {member.user.email, TECH}
    ours, theirs = emails[member.user.email], emails[TECH]
    assert ours.pk != theirs.pk
    # The member: the license list and the result page (which says why a code was refused).
    for link in _links(conversion)[:2]:
        assert link in ours.body_text and f'href="http://testserver{link}"' in ours.body_html
    assert WHERE_TO_FIND not in ours.body_text
    # The contact: no link, where to find them and whom to ask, in its own language.
    for link in _links(conversion):
        assert link not in theirs.body_text and link not in theirs.body_html
    assert theirs.subject.startswith("[Portal de licenciamento]")
    name = conversion.organization.name
    for body in (theirs.body_text, theirs.body_html):
        assert f"Membros de {name} encontram estas licenças em Gerenciar minhas licenças" in body
        assert f"peça a um administrador de {name} que o convide ou que as compartilhe" in body
        assert f"Membros de {name} veem o motivo na página de resultados da conversão" in body
    # Both list every key, with the files attached.
    keys = list(conversion.issued.values_list("license__key", flat=True))
    for email in (ours, theirs):
        assert all(key in email.body_text for key in keys) and len(email.attachments) == 2
    # What the links promise: the member opens them, the contact would not.
    client.force_login(member.user)
    assert client.get(_links(conversion)[1]).status_code == 200
    client.force_login(contact)
    assert client.get(_links(conversion)[1]).status_code == 404


def test_a_technical_contact_who_is_a_member_gets_the_links_in_one_email() -> None:
    member = MembershipFactory(user__email=TECH)
    _convert(member, 1)
    (email,) = Email.objects.filter(template="vouchers_converted")
    assert email.to == [TECH]
    assert LICENSE_LIST in email.body_text and WHERE_TO_FIND not in email.body_text


def test_past_the_attachment_limit_only_members_get_the_zips_link(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from vouchers import emails

    monkeypatch.setattr(emails, "ATTACH_MAX_LICENSES", 1)
    member = MembershipFactory()
    conversion = _convert(member, 2)
    zip_link = reverse("voucher-conversion-zip", args=[conversion.pk])
    by = _by_recipient()
    ours, theirs = by[member.user.email], by[TECH]
    assert zip_link in ours.body_text and f'href="http://testserver{zip_link}"' in ours.body_html
    name = conversion.organization.name
    for body in (theirs.body_text, theirs.body_html):
        assert "too many license files to attach" in body and zip_link not in body
        assert f"ask an administrator of {name} for the files" in body
    assert not ours.attachments and not theirs.attachments


@pytest.fixture
def customer_admin() -> Membership:
    return MembershipFactory(role=Membership.Role.ADMIN, user__language="en")


@pytest.fixture
def partner_user() -> Membership:
    return MembershipFactory(organization=PartnerFactory(), user__language="en")


def _delegation(customer_admin: Membership, partner_user: Membership, *scopes: str) -> Delegation:
    return DelegationFactory(
        customer=customer_admin.organization,
        partner=partner_user.organization,
        scopes=list(scopes),
    )


@pytest.mark.parametrize(
    "scopes",
    [(Scope.OBTAIN_KEYS,), (Scope.OBTAIN_KEYS, Scope.VIEW_LICENSES)],
    ids=["obtain-keys", "obtain-keys-and-view"],
)
def test_a_partners_copy_links_the_result_page_its_scopes_open(
    client: Client, customer_admin: Membership, partner_user: Membership, scopes: tuple[str, ...]
) -> None:
    delegation = _delegation(customer_admin, partner_user, *scopes)
    with acting_under(delegation):
        conversion = _convert(partner_user, 2, organization=customer_admin.organization)
    result_page = reverse("voucher-conversion", args=[conversion.pk])
    emails = _by_recipient()
    assert set(emails) == {customer_admin.user.email, partner_user.user.email, TECH}
    ours = emails[partner_user.user.email]
    # The customer's license list is not the partner's to open (obtain keys alone); the
    # result page lists every license the partner obtained, whatever its scopes.
    assert LICENSE_LIST not in ours.body_text and LICENSE_LIST not in ours.body_html
    assert result_page in ours.body_text and f'href="http://testserver{result_page}"' in (
        ours.body_html
    )
    customer = customer_admin.organization.name
    assert f"while you act for {customer}" in ours.body_text
    # The customer's administrator: its own license list.
    admin_copy = emails[customer_admin.user.email]
    assert LICENSE_LIST in admin_copy.body_text and WHERE_TO_FIND not in admin_copy.body_text
    # The technical contact, no account: no link.
    for link in _links(conversion):
        assert link not in emails[TECH].body_text
    assert WHERE_TO_FIND in emails[TECH].body_text
    # What the partner's link promises: it opens while the partner acts for the customer.
    client.force_login(partner_user.user)
    client.post(reverse("partner-act", args=[delegation.pk]))
    assert client.get(result_page).status_code == 200
    if Scope.VIEW_LICENSES not in scopes:
        assert client.get(LICENSE_LIST).status_code == 403


def test_a_conversion_stopped_when_the_partners_access_ended_links_for_the_customer(
    customer_admin: Membership, partner_user: Membership, monkeypatch: Any
) -> None:
    from portal.services import delegation_revoke
    from vouchers import services
    from vouchers.services import voucher_conversion_create, voucher_conversion_run

    monkeypatch.setattr(services, "CHUNK_LICENSES", 1)
    delegation = _delegation(customer_admin, partner_user, Scope.OBTAIN_KEYS)
    with acting_under(delegation):
        conversion, _created = voucher_conversion_create(
            codes=[v.code for v in vouchers(2)],
            organization=customer_admin.organization,
            registration=REGISTRATION,
            acting_user=partner_user.user,
            combine=False,
        )
        services._conversion_step(conversion.pk)  # the plan
        services._conversion_step(conversion.pk)  # the first license
    delegation_revoke(delegation=delegation, actor=customer_admin.user)
    finished = voucher_conversion_run(conversion_id=conversion.pk)
    assert finished.stopped.get("reason") == "access_ended"
    emails = _by_recipient()
    assert set(emails) == {customer_admin.user.email, TECH}
    assert LICENSE_LIST in emails[customer_admin.user.email].body_text
    assert LICENSE_LIST not in emails[TECH].body_text
    assert WHERE_TO_FIND.replace("these licenses", "this license") in emails[TECH].body_text
    # Both still read who obtained it.
    by = f"{partner_user.organization.name} ({partner_user.user.email})"
    assert all(by in email.body_text for email in emails.values())
