"""Who reads the conversion email, in which language and with which words: each recipient in
their own language, the submitter in the one it converted in; for licenses a channel partner
obtained, the customer reads who obtained them, and the partner what it did, for whom."""

from __future__ import annotations

import pytest

from portal.models import Delegation, Membership, OutboundEmail, User
from portal.policy import Scope
from portal.requestcontext import acting_under
from tests.licensing.factories import REGISTRATION
from tests.portal.factories import DelegationFactory, MembershipFactory, PartnerFactory
from tests.vouchers.factories import vouchers
from vouchers.services import vouchers_convert

pytestmark = pytest.mark.django_db

EN = "[Licensing Portal]"
PT = "[Portal de licenciamento]"
TECH = REGISTRATION["technical_email"]


@pytest.fixture
def customer() -> Membership:
    membership = MembershipFactory(role=Membership.Role.ADMIN)
    User.objects.filter(pk=membership.user.pk).update(language="en")
    return membership


@pytest.fixture
def partner_user() -> Membership:
    membership = MembershipFactory(role=Membership.Role.MEMBER, organization=PartnerFactory())
    User.objects.filter(pk=membership.user.pk).update(language="pt-br")
    return membership


@pytest.fixture
def delegation(customer: Membership, partner_user: Membership) -> Delegation:
    return DelegationFactory(
        customer=customer.organization,
        partner=partner_user.organization,
        scopes=[Scope.OBTAIN_KEYS],
    )


def _emails() -> dict[str, OutboundEmail]:
    emails = OutboundEmail.objects.filter(template="vouchers_converted")
    return {address: email for email in emails for address in email.to}


def _convert(membership: Membership, count: int, *, organization=None, language="pt-br") -> None:  # type: ignore[no-untyped-def]
    vouchers_convert(
        codes=[v.code for v in vouchers(count)],
        organization=organization or membership.organization,
        registration=REGISTRATION,
        acting_user=membership.user,
        combine=False,
        language=language,
    )


@pytest.mark.parametrize("count", [1, 3])
def test_a_partners_conversion_reads_who_obtained_it_in_each_readers_language(
    customer, partner_user, delegation, count
) -> None:  # type: ignore[no-untyped-def]
    with acting_under(delegation):
        _convert(partner_user, count, organization=customer.organization)

    emails = _emails()
    assert set(emails) == {customer.user.email, partner_user.user.email, TECH}
    partner_name = partner_user.organization.name
    customer_name = customer.organization.name

    # The customer's administrator reads its own language, and who obtained the licenses.
    admin_copy = emails[customer.user.email]
    assert admin_copy.subject.startswith(EN)
    assert admin_copy.to == [customer.user.email]
    by = f"obtained on your behalf by {partner_name} ({partner_user.user.email})."
    for body in (admin_copy.body_text, admin_copy.body_html):
        assert by in body
        assert "You obtained" not in body

    # The technical contact, who has no account, reads the submitter's language, the
    # customer's wording.
    tech_copy = emails[TECH]
    assert tech_copy.subject.startswith(PT) and 'lang="pt-br"' in tech_copy.body_html
    assert f"{partner_name} ({partner_user.user.email})" in tech_copy.body_text

    # The partner's user reads what it did, for whom, in the language it converted in.
    partner_copy = emails[partner_user.user.email]
    assert partner_copy.to == [partner_user.user.email]
    assert partner_copy.subject.startswith(PT)
    for body in (partner_copy.body_text, partner_copy.body_html):
        assert f"({partner_user.user.email})" not in body  # not "obtained on your behalf by"
        assert customer_name in body
    # Every copy lists every key.
    keys = [line for line in admin_copy.body_text.splitlines() if "License key:" in line]
    assert len(keys) == count


@pytest.mark.parametrize(
    ("count", "partner_reads", "customer_reads"),
    [
        (
            1,
            "You obtained this license for {customer} as its channel partner; its "
            "administrators received it too.",
            "This license was obtained on your behalf by {partner} ({user}).",
        ),
        (
            2,
            "You obtained these licenses for {customer} as its channel partner; its "
            "administrators received them too.",
            "These licenses were obtained on your behalf by {partner} ({user}).",
        ),
    ],
)
def test_the_partner_and_the_customer_read_their_own_words(
    customer, partner_user, delegation, count, partner_reads, customer_reads
) -> None:  # type: ignore[no-untyped-def]
    User.objects.filter(pk=partner_user.user.pk).update(language="en")
    with acting_under(delegation):
        _convert(partner_user, count, organization=customer.organization, language="en")
    words = {
        "customer": customer.organization.name,
        "partner": partner_user.organization.name,
        "user": partner_user.user.email,
    }
    emails = _emails()
    for address in (customer.user.email, TECH):
        for body in (emails[address].body_text, emails[address].body_html):
            assert customer_reads.format(**words) in body
    for body in (
        emails[partner_user.user.email].body_text,
        emails[partner_user.user.email].body_html,
    ):
        assert partner_reads.format(**words) in body


def test_a_members_conversion_reaches_each_reader_in_their_language(customer) -> None:  # type: ignore[no-untyped-def]
    # The submitter converts in Portuguese; a colleague named as technical contact reads English.
    colleague = MembershipFactory(organization=customer.organization, user__email=TECH)
    User.objects.filter(pk=colleague.user.pk).update(language="en")
    User.objects.filter(pk=customer.user.pk).update(language="en")  # its profile; it acts in pt-BR

    _convert(customer, 2)

    emails = _emails()
    assert emails[customer.user.email].subject.startswith(PT)
    assert "Chave de licença" in emails[customer.user.email].body_text
    assert emails[TECH].subject.startswith(EN)
    assert "License key:" in emails[TECH].body_text
    for email in emails.values():
        assert "on your behalf" not in email.body_text and "You obtained" not in email.body_text
