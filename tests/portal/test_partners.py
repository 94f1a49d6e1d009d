"""Channel partners: delegations, acting for a customer, scopes, revocation and expiry."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format

from licensing.models import License
from portal.models import AuditEvent, Delegation, Invitation, Membership, Organization, User
from portal.models import OutboundEmail as Email
from portal.policy import Scope
from portal.services import delegations_refresh
from tests.licensing.factories import (
    REGISTRATION,
    LicenseFactory,
    ProductFactory,
    ProductVersionFactory,
    SerialNumberFactory,
)
from tests.licensing.wizard import PREFIX, instance_token, post_step, walk
from tests.portal.factories import (
    DelegationFactory,
    MembershipFactory,
    OrganizationFactory,
    PartnerFactory,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("license_email_writer")]


@pytest.fixture
def customer_admin() -> Membership:
    return MembershipFactory(role=Membership.Role.ADMIN)


@pytest.fixture
def partner_admin() -> Membership:
    return MembershipFactory(role=Membership.Role.ADMIN, organization=PartnerFactory())


def _grant(client, admin: Membership, partner: Organization, **extra):  # type: ignore[no-untyped-def]
    client.force_login(admin.user)
    data = {
        "partner_account_number": partner.account_number,
        "scopes": [Scope.VIEW_LICENSES, Scope.OBTAIN_KEYS],
        **extra,
    }
    return client.post(reverse("partners"), data)


def _act_for(client, partner_user: Membership, delegation: Delegation):  # type: ignore[no-untyped-def]
    client.force_login(partner_user.user)
    return client.post(reverse("partner-act", args=[delegation.pk]))


# -- granting -------------------------------------------------------------------------------


def test_customer_admin_grants_a_delegation_by_account_number(
    client, customer_admin, partner_admin
) -> None:  # type: ignore[no-untyped-def]
    response = _grant(client, customer_admin, partner_admin.organization)
    assert response.status_code == 302
    delegation = Delegation.objects.get()
    assert delegation.customer == customer_admin.organization
    assert delegation.partner == partner_admin.organization
    assert delegation.scopes == ["view_licenses", "obtain_keys"]
    assert delegation.status == Delegation.Status.ACTIVE
    assert delegation.granted_by == customer_admin.user
    email = Email.objects.get(template="delegation_granted")
    assert email.to == [partner_admin.user.email]
    # The customer's name is in the body, never in the subject (user-entered text).
    assert customer_admin.organization.name in email.body_text
    assert customer_admin.organization.name not in email.subject
    assert AuditEvent.objects.filter(action="delegation.granted").count() == 1


def test_a_deactivated_partner_administrator_is_not_emailed_the_grant(
    client, customer_admin, partner_admin
) -> None:  # type: ignore[no-untyped-def]
    # The partner's administrators were read whatever their account's state: an account staff
    # deactivated (it can no longer sign in) still read which customer delegated what.
    departed = MembershipFactory(
        role=Membership.Role.ADMIN, organization=partner_admin.organization
    )
    User.objects.filter(pk=departed.user.pk).update(is_active=False)
    _grant(client, customer_admin, partner_admin.organization)
    assert Email.objects.get(template="delegation_granted").to == [partner_admin.user.email]


def test_manage_data_without_view_licenses_is_refused(
    client, customer_admin, partner_admin
) -> None:  # type: ignore[no-untyped-def]
    # Alone it let the partner do nothing: every registration page was a 404 and an upload
    # refused every key; the form granted it without a word.
    response = _grant(client, customer_admin, partner_admin.organization, scopes=["manage_data"])
    assert response.status_code == 400
    refusal = "is for the licenses the partner can see: choose “View licenses” too"
    assert refusal in html.unescape(response.content.decode())
    assert not Delegation.objects.exists()
    _grant(client, customer_admin, partner_admin.organization)
    delegation = Delegation.objects.get()
    response = client.post(
        reverse("partner-update", args=[delegation.pk]),
        {f"d{delegation.pk}-scopes": ["obtain_keys", "manage_data"]},
    )
    assert any(refusal in str(m) for m in get_messages(response.wsgi_request))
    delegation.refresh_from_db()
    assert delegation.scopes == ["view_licenses", "obtain_keys"]


@pytest.mark.parametrize("number", ["", "00000000", "not a number"])
def test_unknown_partner_account_number_is_refused_with_a_message(
    client, customer_admin, number
) -> None:  # type: ignore[no-untyped-def]
    client.force_login(customer_admin.user)
    response = client.post(
        reverse("partners"), {"partner_account_number": number, "scopes": ["view_licenses"]}
    )
    assert response.status_code == 400
    assert not Delegation.objects.exists()
    assert "account number" in response.content.decode()


def test_a_customer_organization_is_not_a_partner(client, customer_admin) -> None:  # type: ignore[no-untyped-def]
    other_customer = OrganizationFactory()
    response = _grant(client, customer_admin, other_customer)
    assert response.status_code == 400
    assert "No channel partner has this account number" in response.content.decode()
    assert not Delegation.objects.exists()


def test_granting_needs_a_scope_and_ordered_dates(client, customer_admin, partner_admin) -> None:  # type: ignore[no-untyped-def]
    response = _grant(client, customer_admin, partner_admin.organization, scopes=[])
    assert response.status_code == 400
    yesterday = timezone.localdate() - timedelta(days=1)
    response = _grant(client, customer_admin, partner_admin.organization, ends_on=yesterday)
    assert response.status_code == 400
    assert "end date" in response.content.decode()
    assert not Delegation.objects.exists()


def test_granting_twice_to_one_partner_says_to_change_the_first(
    client, customer_admin, partner_admin
) -> None:  # type: ignore[no-untyped-def]
    _grant(client, customer_admin, partner_admin.organization)
    response = _grant(client, customer_admin, partner_admin.organization)
    assert response.status_code == 400
    assert "already acts for you" in response.content.decode()
    assert Delegation.objects.count() == 1


def test_a_future_start_is_offered_until_that_day(client, customer_admin, partner_admin) -> None:  # type: ignore[no-untyped-def]
    tomorrow = timezone.localdate() + timedelta(days=1)
    _grant(client, customer_admin, partner_admin.organization, starts_on=tomorrow)
    delegation = Delegation.objects.get()
    assert delegation.status == Delegation.Status.OFFERED
    response = _act_for(client, partner_admin, delegation)
    assert response.status_code == 404  # not in effect yet


def test_a_delegation_starting_later_is_on_the_partners_customers_page_to_decline(
    client, customer_admin, partner_admin
) -> None:  # type: ignore[no-untyped-def]
    # The email tells the partner to act for the customer from its Customers page, and that an
    # administrator can decline it there: a delegation that starts later must be listed there.
    later = timezone.localdate() + timedelta(days=7)
    response = _grant(client, customer_admin, partner_admin.organization, starts_on=later)
    delegation = Delegation.objects.get()
    # Neither the customer nor the partner is told it may act "now".
    shown = date_format(later, "SHORT_DATE_FORMAT")
    message = next(str(m) for m in get_messages(response.wsgi_request))
    assert f"may act for you from {shown}" in message
    email = Email.objects.get(template="delegation_granted")
    assert f"You can act for this customer from {shown}." in email.body_text
    assert f"You can act for this customer from {shown}." in email.body_html
    client.force_login(partner_admin.user)
    page = client.get(reverse("partner-customers")).content.decode()
    assert customer_admin.organization.name in page
    assert reverse("partner-decline", args=[delegation.pk]) in page
    assert reverse("partner-act", args=[delegation.pk]) not in page  # not before it starts
    client.post(reverse("partner-decline", args=[delegation.pk]), {"confirm": "1"})
    delegation.refresh_from_db()
    assert delegation.status == Delegation.Status.DECLINED


NO_CUSTOMER = "No customer has delegated to your organization yet."


def test_customers_page_says_no_customer_only_when_it_lists_none(client, partner_admin) -> None:  # type: ignore[no-untyped-def]
    # It said so above the "Starting later" list of a delegation starting next week.
    client.force_login(partner_admin.user)
    assert NO_CUSTOMER in client.get(reverse("partner-customers")).content.decode()
    offered = DelegationFactory(
        partner=partner_admin.organization,
        status=Delegation.Status.OFFERED,
        starts_on=timezone.localdate() + timedelta(days=7),
    )
    page = client.get(reverse("partner-customers")).content.decode()
    assert 'id="starting-later"' in page and offered.customer.name in page
    assert NO_CUSTOMER not in page
    offered.delete()
    DelegationFactory(partner=partner_admin.organization)
    page = client.get(reverse("partner-customers")).content.decode()
    assert NO_CUSTOMER not in page and 'id="starting-later"' not in page


def test_members_see_partners_but_only_admins_change_them(client, partner_admin) -> None:  # type: ignore[no-untyped-def]
    member = MembershipFactory(role=Membership.Role.MEMBER)
    delegation = DelegationFactory(customer=member.organization, partner=partner_admin.organization)
    client.force_login(member.user)
    assert client.get(reverse("partners")).status_code == 200
    assert _grant(client, member, PartnerFactory()).status_code == 403
    response = client.post(
        reverse("partner-update", args=[delegation.pk]), {"revoke": "1", "confirm": "1"}
    )
    assert response.status_code == 403
    delegation.refresh_from_db()
    assert delegation.status == Delegation.Status.ACTIVE


# -- changing, revoking, declining, expiring ------------------------------------------------


def test_scopes_change_and_revocation_take_effect_on_the_next_request(
    client, customer_admin, partner_admin
) -> None:  # type: ignore[no-untyped-def]
    delegation = DelegationFactory(
        customer=customer_admin.organization, partner=partner_admin.organization
    )
    partner_client = client.__class__()
    _act_for(partner_client, partner_admin, delegation)
    assert partner_client.get(reverse("license-list")).status_code == 200

    client.force_login(customer_admin.user)
    response = client.post(
        reverse("partner-update", args=[delegation.pk]),
        {f"d{delegation.pk}-scopes": ["obtain_keys"]},
    )
    assert response.status_code == 302
    assert partner_client.get(reverse("license-list")).status_code == 403
    assert partner_client.get(reverse("get-a-key")).status_code == 200

    client.post(reverse("partner-update", args=[delegation.pk]), {"revoke": "1", "confirm": "1"})
    delegation.refresh_from_db()
    assert delegation.status == Delegation.Status.REVOKED
    assert delegation.ended_by == customer_admin.user
    response = partner_client.get(reverse("get-a-key"))
    assert response.status_code == 403
    page = response.content.decode()
    assert "revoked its delegation" in page
    # Back in its own organization: no customer data, no banner.
    assert "Acting for" not in page
    assert partner_client.get(reverse("get-a-key")).context["request"].organization == (
        partner_admin.organization
    )
    # One email, a body for each side: the link the partner's administrators read is their
    # Customers page (the customer's Partners page, which the whole email linked, is not theirs).
    revoked = {tuple(e.to): e for e in Email.objects.filter(template="delegation_revoked")}
    assert set(revoked) == {(partner_admin.user.email,), (customer_admin.user.email,)}
    for_partner = revoked[(partner_admin.user.email,)].body_text
    for_customer = revoked[(customer_admin.user.email,)].body_text
    assert "/partners/customers/" in for_partner and "/organization/partners/" not in for_partner
    assert "/organization/partners/" in for_customer and "/partners/customers/" not in for_customer


def _delegation_card(client, delegation: Delegation) -> str:  # type: ignore[no-untyped-def]
    """The text of a delegation's card on the customer's Partners page."""
    page = client.get(reverse("partners")).content.decode()
    start = page.index(f'id="delegation-{delegation.pk}"')
    return " ".join(page[start : page.index("</section>", start)].split())


def test_an_ended_delegation_no_longer_says_until_you_revoke_it(
    client, customer_admin, partner_admin
) -> None:  # type: ignore[no-untyped-def]
    # It read "Revoked · From 2026-12-04 until you revoke it · ended 2026-12-04".
    delegation = DelegationFactory(
        customer=customer_admin.organization, partner=partner_admin.organization
    )
    client.force_login(customer_admin.user)
    assert "until you revoke it" in _delegation_card(client, delegation)
    client.post(reverse("partner-update", args=[delegation.pk]), {"revoke": "1", "confirm": "1"})
    ended = _delegation_card(client, delegation)
    assert "until you revoke it" not in ended
    today = date_format(timezone.localdate(), "SHORT_DATE_FORMAT")
    assert f"From {today} · ended {today}" in ended
    # With an end date, the card keeps it: what the access was to be.
    planned = DelegationFactory(
        customer=customer_admin.organization,
        partner=PartnerFactory(),
        ends_on=timezone.localdate() + timedelta(days=30),
        status=Delegation.Status.REVOKED,
        ended_at=timezone.now(),
    )
    end = date_format(planned.ends_on, "SHORT_DATE_FORMAT")
    assert f"From {today} until {end} · ended {today}" in _delegation_card(client, planned)


def test_partner_admin_declines_and_the_customer_is_told(
    client, customer_admin, partner_admin
) -> None:  # type: ignore[no-untyped-def]
    delegation = DelegationFactory(
        customer=customer_admin.organization, partner=partner_admin.organization
    )
    partner_member = MembershipFactory(
        organization=partner_admin.organization, role=Membership.Role.MEMBER
    )
    client.force_login(partner_member.user)
    client.post(reverse("partner-decline", args=[delegation.pk]), {"confirm": "1"})
    delegation.refresh_from_db()
    assert delegation.status == Delegation.Status.ACTIVE  # members cannot decline
    client.force_login(partner_admin.user)
    client.post(reverse("partner-decline", args=[delegation.pk]), {"confirm": "1"})
    delegation.refresh_from_db()
    assert delegation.status == Delegation.Status.DECLINED
    declined = {tuple(e.to): e for e in Email.objects.filter(template="delegation_declined")}
    assert set(declined) == {(customer_admin.user.email,), (partner_admin.user.email,)}
    # Each side reads its own body: the customer where to delegate again, the partner its own
    # Customers page (not the customer's Partners page, which is not its to open).
    email = declined[(customer_admin.user.email,)]
    assert "The customer's administrators can delegate to another partner" in email.body_text
    assert "Your Partners page" not in email.body_text + email.body_html
    theirs = declined[(partner_admin.user.email,)]
    for body in (theirs.body_text, theirs.body_html):
        assert "The customer is no longer on your Customers page." in body
        assert "/partners/customers/" in body
        assert "/organization/partners/" not in body and "can delegate" not in body
    event = AuditEvent.objects.get(action="delegation.declined")
    assert event.organization == partner_admin.organization
    assert event.acting_for == customer_admin.organization


def test_an_ended_delegation_expires_on_the_partners_next_request(
    client, customer_admin, partner_admin
) -> None:  # type: ignore[no-untyped-def]
    today = timezone.localdate()
    delegation = DelegationFactory(
        customer=customer_admin.organization,
        partner=partner_admin.organization,
        starts_on=today - timedelta(days=10),
        ends_on=today,
    )
    _act_for(client, partner_admin, delegation)
    assert client.get(reverse("dashboard")).status_code == 200  # the last day still counts
    Delegation.objects.filter(pk=delegation.pk).update(ends_on=today - timedelta(days=1))
    response = client.get(reverse("dashboard"))
    assert response.status_code == 403
    assert "has ended" in response.content.decode()
    delegation.refresh_from_db()
    assert delegation.status == Delegation.Status.EXPIRED
    assert AuditEvent.objects.filter(action="delegation.expired").count() == 1
    expired = {tuple(e.to): e for e in Email.objects.filter(template="delegation_expired")}
    assert set(expired) == {(customer_admin.user.email,), (partner_admin.user.email,)}
    # Each side its own body: the partner is pointed at its Customers page, the customer at
    # its Partners page.
    ours, theirs = expired[(customer_admin.user.email,)], expired[(partner_admin.user.email,)]
    for body in (ours.body_text, ours.body_html):
        assert "can grant a new delegation" in body and "/organization/partners/" in body
    for body in (theirs.body_text, theirs.body_html):
        assert "The customer is no longer on your Customers page." in body
        assert "/organization/partners/" not in body and "can grant" not in body
    # The daily task finds nothing more to do: never twice.
    assert delegations_refresh() == {"activated": 0, "expired": 0}
    assert Email.objects.filter(template="delegation_expired").count() == 2


def test_daily_refresh_starts_offered_and_expires_lapsed_delegations() -> None:
    today = timezone.localdate()
    starting = DelegationFactory(status=Delegation.Status.OFFERED, starts_on=today)
    lapsed = DelegationFactory(starts_on=today - timedelta(days=30), ends_on=today - timedelta(1))
    assert delegations_refresh() == {"activated": 1, "expired": 1}
    starting.refresh_from_db()
    lapsed.refresh_from_db()
    assert starting.status == Delegation.Status.ACTIVE
    assert lapsed.status == Delegation.Status.EXPIRED


# -- acting for a customer ------------------------------------------------------------------


def test_acting_for_a_customer_shows_the_banner_and_the_customers_data(
    client, customer_admin, partner_admin
) -> None:  # type: ignore[no-untyped-def]
    delegation = DelegationFactory(
        customer=customer_admin.organization, partner=partner_admin.organization
    )
    theirs = LicenseFactory(owner=customer_admin.organization)
    own = LicenseFactory(owner=partner_admin.organization)
    _act_for(client, partner_admin, delegation)
    page = client.get(reverse("license-list")).content.decode()
    assert f"Acting for <strong>{customer_admin.organization.name}</strong>" in page
    assert theirs.key in page or theirs.key[-5:] in page
    assert own.key[-5:] not in page
    assert client.get(reverse("license-detail", args=[theirs.pk])).status_code == 200
    # Back to the partner: its own data again.
    client.post(reverse("partner-stop"))
    page = client.get(reverse("license-list")).content.decode()
    assert "Acting for" not in page
    assert client.get(reverse("license-detail", args=[theirs.pk])).status_code == 404


def test_outside_its_scopes_a_partner_is_refused_never_shown_data(
    client, customer_admin, partner_admin
) -> None:  # type: ignore[no-untyped-def]
    delegation = DelegationFactory(
        customer=customer_admin.organization,
        partner=partner_admin.organization,
        scopes=[Scope.OBTAIN_KEYS],
    )
    license = LicenseFactory(owner=customer_admin.organization)
    _act_for(client, partner_admin, delegation)
    for name, args in [
        ("license-list", []),
        ("license-export", ["csv"]),
        ("members", []),
        ("partners", []),
        ("custom-fields", []),
    ]:
        response = client.get(reverse(name, args=args))
        assert response.status_code == 403, name
        assert license.key not in response.content.decode()
    assert client.get(reverse("license-detail", args=[license.pk])).status_code == 404
    assert "does not include this" in client.get(reverse("license-list")).content.decode()
    # Pages no scope opens do not send the partner to ask the customer for one.
    for name in ("members", "partners", "fileconnect-log"):
        page = client.get(reverse(name)).content.decode()
        assert "partner access never includes it" in page, name
        assert "Partners page" not in page, name


def test_a_partner_cannot_act_for_a_customer_that_did_not_delegate_to_it(
    client, partner_admin
) -> None:  # type: ignore[no-untyped-def]
    others = DelegationFactory()  # another partner's customer
    theirs = LicenseFactory(owner=others.customer)
    client.force_login(partner_admin.user)
    assert client.post(reverse("partner-act", args=[others.pk])).status_code == 404
    # Forging the session key is no better: the delegation is checked on every request.
    session = client.session
    session["portal:acting-for"] = others.customer_id
    session.save()
    response = client.get(reverse("license-list"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Acting for" not in page
    assert theirs.key[-5:] not in page
    assert "portal:acting-for" not in client.session


def test_customers_are_for_partner_organizations_only(client, customer_admin) -> None:  # type: ignore[no-untyped-def]
    client.force_login(customer_admin.user)
    response = client.get(reverse("partner-customers"))
    assert response.status_code == 403
    assert client.get(reverse("partner-customer-create")).status_code == 403


def test_customers_page_searches_and_paginates(client, partner_admin) -> None:  # type: ignore[no-untyped-def]
    for index in range(30):
        DelegationFactory(
            partner=partner_admin.organization,
            customer=OrganizationFactory(name=f"Customer {index:02d} Ltda"),
        )
    DelegationFactory(partner=partner_admin.organization, status=Delegation.Status.REVOKED)
    client.force_login(partner_admin.user)
    first = client.get(reverse("partner-customers"))
    assert first.context["page"].paginator.count == 30
    assert len(first.context["rows"]) == 25
    second = client.get(reverse("partner-customers"), {"page": 2})
    assert len(second.context["rows"]) == 5
    found = client.get(reverse("partner-customers"), {"q": "customer 07"})
    assert [r["delegation"].customer.name for r in found.context["rows"]] == ["Customer 07 Ltda"]


def test_the_next_page_of_a_search_keeps_the_search(client, partner_admin) -> None:  # type: ignore[no-untyped-def]
    # Names hold "&", "+" and "#": the page links must carry the search as it was typed.
    for index in range(30):
        DelegationFactory(
            partner=partner_admin.organization,
            customer=OrganizationFactory(name=f"Smith & Sons+#{index:02d}"),
        )
    DelegationFactory(partner=partner_admin.organization)
    client.force_login(partner_admin.user)
    first = client.get(reverse("partner-customers"), {"q": "smith & sons+#"})
    assert first.context["page"].paginator.count == 30
    link = re.search(r'href="(\?[^"]*page=2[^"]*)"', first.content.decode())
    assert link is not None
    second = client.get(reverse("partner-customers") + html.unescape(link.group(1)))
    assert second.context["query"] == "smith & sons+#"
    assert len(second.context["rows"]) == 5


def test_customers_page_query_count_does_not_grow(
    client, partner_admin, django_assert_max_num_queries
) -> None:  # type: ignore[no-untyped-def]
    for _ in range(40):
        DelegationFactory(partner=partner_admin.organization)
    client.force_login(partner_admin.user)
    with django_assert_max_num_queries(10):
        assert client.get(reverse("partner-customers")).status_code == 200


# -- keys obtained by a partner belong to the customer --------------------------------------


def test_a_key_a_partner_obtains_belongs_to_the_customer_and_reaches_it(
    client, customer_admin, partner_admin, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    delegation = DelegationFactory(
        customer=customer_admin.organization,
        partner=partner_admin.organization,
        scopes=[Scope.OBTAIN_KEYS],
    )
    serial = SerialNumberFactory()
    _act_for(client, partner_admin, delegation)
    with django_capture_on_commit_callbacks(execute=True):
        response = walk(client, serial.code)
    assert response.status_code == 302
    license = License.objects.get()
    assert license.owner == customer_admin.organization
    assert license.partner == partner_admin.organization
    assert license.issued_by == partner_admin.user
    # The partner (it may open the key it obtained) and the customer's administrators get the
    # link to the license's page; the technical contact, perhaps no member, reads where to find it.
    emails = {tuple(e.to): e for e in Email.objects.filter(template="license_issued")}
    assert set(emails) == {
        (partner_admin.user.email,),
        (customer_admin.user.email,),
        (REGISTRATION["technical_email"],),
    }
    link = f"/licenses/{license.pk}/"
    assert link not in emails[(REGISTRATION["technical_email"],)].body_text
    # The customer's side reads who did it for them; the partner reads what it did, for whom.
    for address in (customer_admin.user.email, REGISTRATION["technical_email"]):
        assert "on your behalf by" in emails[(address,)].body_text
    partner_copy = emails[(partner_admin.user.email,)].body_text
    assert "on your behalf" not in partner_copy and link in partner_copy
    assert f"You obtained this key for {customer_admin.organization.name}" in partner_copy
    # The partner sees the result page of the key it obtained, though it may not list licenses.
    result = client.get(response["Location"])
    assert result.status_code == 200
    assert license.key in result.content.decode()
    assert 'data-testid="result-downloads"' not in result.content.decode()  # may not download
    # The audit trail: the partner user, the partner organization, the customer.
    issued = AuditEvent.objects.get(action="license.issued")
    assert issued.actor == partner_admin.user
    assert issued.organization == partner_admin.organization
    assert issued.acting_for == customer_admin.organization
    # The customer sees it on its Partners page, and on the license page.
    client.force_login(customer_admin.user)
    partners_page = client.get(reverse("partners")).content.decode()
    assert "Obtained a license key" in partners_page
    assert partner_admin.user.email in partners_page
    detail = client.get(reverse("license-detail", args=[license.pk])).content.decode()
    assert "on your behalf" in detail


def test_the_customers_administrators_read_a_partners_key_in_their_own_language(
    client, customer_admin, partner_admin, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    User.objects.filter(pk=customer_admin.user.pk).update(language="pt-br")
    delegation = DelegationFactory(
        customer=customer_admin.organization,
        partner=partner_admin.organization,
        scopes=[Scope.OBTAIN_KEYS],
    )
    _act_for(client, partner_admin, delegation)
    with django_capture_on_commit_callbacks(execute=True):
        assert walk(client, SerialNumberFactory().code).status_code == 302  # partner: English
    subjects = {tuple(e.to): e.subject for e in Email.objects.filter(template="license_issued")}
    # The same body (a link to the license) in two languages; the contact reads the sender's.
    assert subjects[(customer_admin.user.email,)].startswith("[Portal de licenciamento]")
    assert subjects[(partner_admin.user.email,)].startswith("[Licensing Portal]")
    assert subjects[(REGISTRATION["technical_email"],)].startswith("[Licensing Portal]")


def test_a_partner_with_only_obtain_keys_sees_only_the_keys_it_obtained(
    client, customer_admin, partner_admin
) -> None:  # type: ignore[no-untyped-def]
    delegation = DelegationFactory(
        customer=customer_admin.organization,
        partner=partner_admin.organization,
        scopes=[Scope.OBTAIN_KEYS],
    )
    existing = LicenseFactory(owner=customer_admin.organization)
    _act_for(client, partner_admin, delegation)
    assert client.get(reverse("get-a-key-result", args=[existing.pk])).status_code == 404
    assert client.get(reverse("license-file", args=[existing.pk])).status_code == 404


# -- a partner opens a customer's account ---------------------------------------------------


def test_partner_adds_a_customer_that_claims_its_account_and_sees_everything(
    client, partner_admin
) -> None:  # type: ignore[no-untyped-def]
    client.force_login(partner_admin.user)
    response = client.post(
        reverse("partner-customer-create"),
        {
            "name": "Initech Brasil",
            "address": "Rua Funchal 200",
            "country": "BR",
            "contact_name": "Irene Initech",
            "contact_email": "Irene@Initech.example",
        },
    )
    assert response.status_code == 302
    customer = Organization.objects.get(name="Initech Brasil")
    assert customer.kind == Organization.Kind.CUSTOMER
    delegation = Delegation.objects.get(customer=customer)
    assert delegation.partner == partner_admin.organization
    assert sorted(delegation.scopes) == sorted(scope.value for scope in Scope)
    invitation = Invitation.objects.get(organization=customer)
    assert invitation.email == "irene@initech.example"
    assert invitation.role == Membership.Role.ADMIN
    claim = Email.objects.get(template="customer_account_created")
    assert claim.to == ["irene@initech.example"]
    assert f"/invitations/{invitation.token}/" in claim.body_text

    # The partner works for the new customer at once.
    client.post(reverse("partner-act", args=[delegation.pk]))
    assert client.get(reverse("get-a-key")).status_code == 200

    # The contact claims the account and becomes its administrator.
    claimer = MembershipFactory(organization=OrganizationFactory()).user
    claimer.email = "irene@initech.example"
    claimer.save()
    other = client.__class__()
    other.force_login(claimer)
    other.post(reverse("invitation", args=[invitation.token]))
    assert Membership.objects.get(user=claimer, organization=customer).role == "admin"
    page = other.get(reverse("partners")).content.decode()
    assert partner_admin.organization.name in page
    assert "Created the organization" in page
    # ...and can revoke.
    other.post(reverse("partner-update", args=[delegation.pk]), {"revoke": "1", "confirm": "1"})
    delegation.refresh_from_db()
    assert delegation.status == Delegation.Status.REVOKED


def test_a_partner_invites_the_administrator_of_an_unclaimed_customer_again(
    client, partner_admin
) -> None:  # type: ignore[no-untyped-def]
    # The contact's address was mistyped, or the 14-day link lapsed: nobody at the customer can
    # ask for a new one (it has no administrator yet), so the partner that added it invites again.
    client.force_login(partner_admin.user)
    client.post(
        reverse("partner-customer-create"),
        {
            "name": "Initech Brasil",
            "address": "Rua Funchal 200",
            "country": "BR",
            "contact_name": "Irene Initech",
            "contact_email": "irene@initehc.example",
        },
    )
    customer = Organization.objects.get(name="Initech Brasil")
    delegation = Delegation.objects.get(customer=customer)
    mistyped = Invitation.objects.get(organization=customer)
    page = client.get(reverse("partner-customers")).content.decode()
    assert "Awaiting its administrator" in page
    url = reverse("partner-customer-invite", args=[delegation.pk])
    assert url in page

    response = client.post(url, {"contact_email": "Irene@Initech.example"})
    assert response.status_code == 302
    mistyped.refresh_from_db()
    assert mistyped.revoked_at is not None  # the mistyped address can no longer claim it
    invitation = Invitation.objects.get(organization=customer, revoked_at__isnull=True)
    assert (invitation.email, invitation.role) == ("irene@initech.example", "admin")
    claim = Email.objects.filter(template="customer_account_created").latest("created_at")
    assert claim.to == ["irene@initech.example"]
    assert f"/invitations/{invitation.token}/" in claim.body_text
    sent = AuditEvent.objects.filter(action="invitation.sent").latest("created_at")
    assert (sent.organization, sent.acting_for) == (partner_admin.organization, customer)
    assert client.get(reverse("invitation", args=[mistyped.token])).status_code == 404

    # Once the customer has an administrator, it invites its own people: the partner cannot.
    MembershipFactory(organization=customer, role=Membership.Role.ADMIN)
    customers_page = client.get(reverse("partner-customers")).content.decode()
    assert "Awaiting its administrator" not in customers_page
    response = client.post(url, {"contact_email": "mallory@partner.example"}, follow=True)
    assert "has an administrator now" in response.content.decode()
    assert not Invitation.objects.filter(email="mallory@partner.example").exists()
    # Nor can another partner, or for a customer that delegated to another partner.
    stranger = MembershipFactory(role=Membership.Role.ADMIN, organization=PartnerFactory())
    client.force_login(stranger.user)
    assert client.post(url, {"contact_email": "x@example.com"}).status_code == 404


def test_adding_the_same_customer_twice_opens_one_account(client, partner_admin) -> None:  # type: ignore[no-untyped-def]
    # A double click on "Add the customer" (or a resubmitted page) must not open a second
    # account, which its contact would never claim and the partner would hold alone.
    client.force_login(partner_admin.user)
    data = {
        "name": "Initech Brasil",
        "address": "Rua Funchal 200",
        "country": "BR",
        "contact_name": "Irene Initech",
        "contact_email": "irene@initech.example",
    }
    assert client.post(reverse("partner-customer-create"), data).status_code == 302
    again = client.post(reverse("partner-customer-create"), {**data, "name": " initech brasil "})
    assert again.status_code == 200
    assert "You already added Initech Brasil" in again.content.decode()
    assert Organization.objects.filter(name__iexact="Initech Brasil").count() == 1
    assert Email.objects.filter(template="customer_account_created").count() == 1


def test_adding_a_customer_validates_the_form(client, partner_admin) -> None:  # type: ignore[no-untyped-def]
    client.force_login(partner_admin.user)
    response = client.post(reverse("partner-customer-create"), {"name": "", "contact_email": "x"})
    assert response.status_code == 200
    assert response.context["form"].errors
    assert Organization.objects.count() == 1


# -- every way of obtaining keys works for a partner, in the customer's name -----------------


@pytest.mark.parametrize("count", [3, 60])  # inline, and through the Celery task (> INLINE_MAX)
def test_a_partner_converts_vouchers_for_its_customer(
    client, customer_admin, partner_admin, count, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    from tests.vouchers import wizard as voucher_wizard
    from tests.vouchers.factories import vouchers

    delegation = DelegationFactory(
        customer=customer_admin.organization,
        partner=partner_admin.organization,
        scopes=[Scope.OBTAIN_KEYS],
    )
    codes = [v.code for v in vouchers(count)]
    _act_for(client, partner_admin, delegation)
    with django_capture_on_commit_callbacks(execute=True):
        response = voucher_wizard.walk(client, "\n".join(codes))
    assert response.status_code == 302
    license = License.objects.get()  # combined: one license for the product
    assert license.owner == customer_admin.organization
    assert license.partner == partner_admin.organization
    issued = AuditEvent.objects.get(action="license.issued")
    assert (issued.organization, issued.acting_for) == (
        partner_admin.organization,
        customer_admin.organization,
    )
    # The customer's side reads who obtained the license (its administrator with the links,
    # the technical contact, no member, without); the partner, its own copy.
    emails = {tuple(e.to): e for e in Email.objects.filter(template="vouchers_converted")}
    assert set(emails) == {
        (customer_admin.user.email,),
        (REGISTRATION["technical_email"],),
        (partner_admin.user.email,),
    }
    assert "on your behalf by" not in emails[(partner_admin.user.email,)].body_text
    page = client.get(response["Location"])
    assert page.status_code == 200
    assert customer_admin.user.email in page.content.decode()


def test_a_partner_upgrades_a_customers_license(client, customer_admin, partner_admin) -> None:  # type: ignore[no-untyped-def]
    from tests.upgrades import test_wizard as upgrade_wizard
    from tests.upgrades.factories import catalog, licensed
    from upgrades.models import UpgradeLine, UpgradeNotification
    from upgrades.services import notifications_create

    old, new = catalog()
    licensed(customer_admin.organization, old, quantity=10, host_id="")
    notifications_create(version=new, today=timezone.localdate())
    setup = {"notification": UpgradeNotification.objects.get(), "line": UpgradeLine.objects.get()}
    delegation = DelegationFactory(
        customer=customer_admin.organization,
        partner=partner_admin.organization,
        scopes=[Scope.OBTAIN_KEYS, Scope.VIEW_LICENSES],
    )
    _act_for(client, partner_admin, delegation)
    response = upgrade_wizard.walk(client, setup, quantity=4)
    assert response.status_code == 302
    upgraded = License.objects.get(version=new)
    assert upgraded.owner == customer_admin.organization
    assert upgraded.partner == partner_admin.organization
    assert AuditEvent.objects.filter(
        action="license.issued", acting_for=customer_admin.organization
    ).exists()


def test_a_partner_downloads_software_for_its_customer(
    client, customer_admin, partner_admin, settings, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    from fileconnect.models import DownloadEvent
    from tests.fileconnect.factories import add_file

    settings.STORAGES = {
        **settings.STORAGES,
        "fileconnect": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": tmp_path / "fileconnect"},
        },
    }
    settings.FILECONNECT_X_ACCEL_LOCATION = ""
    license = LicenseFactory(owner=customer_admin.organization)
    release_file = add_file(license.version, b"setup" * 100)
    delegation = DelegationFactory(
        customer=customer_admin.organization,
        partner=partner_admin.organization,
        scopes=[Scope.DOWNLOAD_SOFTWARE],  # not even "view licenses"
    )
    _act_for(client, partner_admin, delegation)
    assert client.get(reverse("license-list")).status_code == 403
    page = client.get(reverse("fileconnect-license", args=[license.pk]))
    assert page.status_code == 200
    link = client.post(reverse("fileconnect-link", args=[release_file.pk]))
    assert link.status_code == 302
    download = client.get(link["Location"])
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == b"setup" * 100
    event = DownloadEvent.objects.get()
    assert (event.user, event.organization, event.partner) == (
        partner_admin.user,
        customer_admin.organization,
        partner_admin.organization,
    )
    client.force_login(customer_admin.user)
    log = client.get(reverse("fileconnect-log")).content.decode()
    assert f"for you, by {partner_admin.organization.name}" in log


def test_adding_customers_counts_against_the_invitation_limit(
    client, partner_admin, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.PORTAL_INVITES_PER_USER_PER_HOUR = 2
    client.force_login(partner_admin.user)
    for index in range(3):
        response = client.post(
            reverse("partner-customer-create"),
            {
                "name": f"Customer {index}",
                "address": "Rua 1",
                "country": "BR",
                "contact_name": "Ana",
                "contact_email": f"ana{index}@customer.example",
            },
        )
    assert response.status_code == 200
    assert "many invitations" in response.content.decode()
    assert Email.objects.filter(template="customer_account_created").count() == 2
    assert Organization.objects.filter(name__startswith="Customer ").count() == 2


# -- keys a partner changes reach the customer too ------------------------------------------


def test_a_key_a_partner_rehosts_reaches_the_customers_administrators(
    client, customer_admin, partner_admin, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    # The customer obtained this license itself; the partner moves it to a new host, which gives
    # it a new key and revokes the old one. The customer must get the new key, whatever technical
    # contact the registration names.
    version = ProductVersionFactory(product=ProductFactory(node_locked=True))
    license = LicenseFactory(owner=customer_admin.organization, version=version, host_id="HOST-A")
    assert license.partner is None
    delegation = DelegationFactory(
        customer=customer_admin.organization,
        partner=partner_admin.organization,
        scopes=[Scope.VIEW_LICENSES, Scope.OBTAIN_KEYS],
    )
    _act_for(client, partner_admin, delegation)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("license-rehost", args=[license.pk]), {"host_id": "HOST-B", "confirm": "1"}
        )
    assert response.status_code == 302
    license.refresh_from_db()
    assert license.host_id == "HOST-B"
    (email,) = [
        e
        for e in Email.objects.filter(template="license_rehosted")
        if customer_admin.user.email in e.to
    ]
    assert license.key in email.body_text
    done = f"Done on your behalf by {partner_admin.organization.name} ({partner_admin.user.email})."
    assert done in email.body_text and done in email.body_html
    # The same rule for "Email the key again".
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("license-email", args=[license.pk]))
    again = Email.objects.filter(template="license_issued")
    assert any(customer_admin.user.email in e.to for e in again)


def test_a_get_a_key_begun_for_one_customer_never_finishes_for_another(
    client, customer_admin, partner_admin
) -> None:  # type: ignore[no-untyped-def]
    # The partner types a serial and customer A's contacts, then acts for customer B in the same
    # session (another tab, the Customers page) and confirms the page it had open. The key must
    # not be issued to B with A's contacts (B's key emailed to A's technical contact, A's
    # contacts stored in B's registration): the wizard starts over for B.
    other = MembershipFactory(role=Membership.Role.ADMIN)
    first = DelegationFactory(
        customer=customer_admin.organization,
        partner=partner_admin.organization,
        scopes=[Scope.OBTAIN_KEYS],
    )
    second = DelegationFactory(
        customer=other.organization, partner=partner_admin.organization, scopes=[Scope.OBTAIN_KEYS]
    )
    serial = SerialNumberFactory()
    _act_for(client, partner_admin, first)
    walk(client, serial.code, registration={"technical_email": "ana@first.example"}, confirm=False)
    client.post(reverse("partner-act", args=[second.pk]))
    response = post_step(client, "confirm")
    assert not License.objects.exists()
    assert response.status_code == 200
    assert response.context["wizard"]["steps"].current == "serial"
    page = response.content.decode()
    assert "started over" in page
    assert "ana@first.example" not in page
    assert not Email.objects.filter(template="license_issued").exists()


def test_a_partner_with_only_obtain_keys_renews_a_customers_license(
    client, customer_admin, partner_admin, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    # Renewing is part of Get a key. The partner may not list the customer's licenses, so it
    # chooses the license by its last group, not its whole key; after confirming, it sees the
    # result of what it did (the key is emailed to it as the one who acted), not a 404.
    from licensing.models import SerialNumber

    delegation = DelegationFactory(
        customer=customer_admin.organization,
        partner=partner_admin.organization,
        scopes=[Scope.OBTAIN_KEYS],
    )
    license = LicenseFactory(owner=customer_admin.organization)
    other = LicenseFactory(owner=customer_admin.organization, version=license.version)
    serial = SerialNumberFactory(version=license.version, kind=SerialNumber.Kind.RENEWAL)
    end = license.maintenance_end
    _act_for(client, partner_admin, delegation)
    client.get(reverse("get-a-key"))
    page = post_step(client, "serial", {"serial": serial.code}).content.decode()
    for shown in (license, other):
        assert shown.key not in page
        assert shown.key.split("-")[-1] in page
    confirm = post_step(client, "registration", {**REGISTRATION, "target_license": license.pk})
    assert license.key not in confirm.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = post_step(client, "confirm")
    assert response.status_code == 302
    license.refresh_from_db()
    assert license.maintenance_end > end
    result = client.get(response["Location"])
    assert result.status_code == 200
    assert license.key in result.content.decode()
    # The page says whom the renewal was emailed to: the partner and the customer's
    # administrators with the technical contact, not whoever obtained the license first.
    renewed = [a for e in Email.objects.filter(template="license_renewed") for a in e.to]
    emailed = result.content.decode().split("were emailed to", 1)[1].split("</dd>")[0]
    assert partner_admin.user.email in renewed and partner_admin.user.email in emailed
    assert customer_admin.user.email in renewed and customer_admin.user.email in emailed
    # Only the license it renewed: the other one stays out of its reach.
    assert client.get(reverse("get-a-key-result", args=[other.pk])).status_code == 404
    assert client.get(reverse("license-file", args=[other.pk])).status_code == 404


def test_a_serial_the_customer_redeemed_shows_an_obtain_keys_partner_only_its_last_group(
    client, customer_admin, partner_admin
) -> None:  # type: ignore[no-untyped-def]
    # "Your organization already redeemed this serial number: it is license …" named the
    # customer's whole key to a partner that may not see the customer's licenses.
    from licensing.services import serial_redeem

    serial = SerialNumberFactory()
    key = serial_redeem(
        code=serial.code,
        organization=customer_admin.organization,
        registration=REGISTRATION,
        acting_user=customer_admin.user,
    ).license.key
    delegation = DelegationFactory(
        customer=customer_admin.organization,
        partner=partner_admin.organization,
        scopes=[Scope.OBTAIN_KEYS],
    )
    _act_for(client, partner_admin, delegation)
    client.get(reverse("get-a-key"))
    page = html.unescape(post_step(client, "serial", {"serial": serial.code}).content.decode())
    assert "already redeemed this serial number" in page
    assert key not in page and key.split("-")[-1] in page
    # With the view-licenses scope it may see the customer's keys: the whole key.
    delegation.scopes = [Scope.OBTAIN_KEYS, Scope.VIEW_LICENSES]
    delegation.save(update_fields=["scopes"])
    client.get(reverse("get-a-key"))
    page = html.unescape(post_step(client, "serial", {"serial": serial.code}).content.decode())
    assert key in page


def test_an_obtain_keys_partner_reads_whole_the_keys_it_obtained_itself(
    client, customer_admin, partner_admin
) -> None:  # type: ignore[no-untyped-def]
    # One rule for whole keys on every page (licensing.selectors.keys_readable): the Voucher
    # center showed a partner the keys it obtained, Get a key masked them too.
    from licensing.models import SerialNumber

    delegation = DelegationFactory(
        customer=customer_admin.organization,
        partner=partner_admin.organization,
        scopes=[Scope.OBTAIN_KEYS],
    )
    _act_for(client, partner_admin, delegation)
    serial = SerialNumberFactory()
    walk(client, serial.code)
    serial.refresh_from_db()
    obtained = serial.license
    customers = LicenseFactory(owner=customer_admin.organization, version=obtained.version)
    # The serial it redeemed, typed again: its own license, whole.
    client.get(reverse("get-a-key"))
    page = html.unescape(post_step(client, "serial", {"serial": serial.code}).content.decode())
    assert "already redeemed this serial number" in page and obtained.key in page
    # A renewal that fits both: its own license whole, the customer's by its last group.
    renewal = SerialNumberFactory(
        version=obtained.version, kind=SerialNumber.Kind.RENEWAL, quantity=obtained.quantity
    )
    client.get(reverse("get-a-key"))
    page = post_step(client, "serial", {"serial": renewal.code}).content.decode()
    assert obtained.key in page
    assert customers.key not in page and customers.key.split("-")[-1] in page
    for target, shown in ((obtained, obtained.key), (customers, customers.key.split("-")[-1])):
        confirm = post_step(
            client, "registration", {**REGISTRATION, "target_license": target.pk}
        ).content.decode()
        summary = confirm.split('data-testid="target-license"', 1)[1].split("</span>", 1)[0]
        assert shown in summary and (target is obtained or target.key not in summary)
        back = {f"{PREFIX}-current_step": "confirm", "wizard_goto_step": "registration"}
        client.post(reverse("get-a-key"), {**back, f"{PREFIX}-instance": instance_token(client)})


def test_a_partner_with_only_obtain_keys_upgrades_without_seeing_the_old_key(
    client, customer_admin, partner_admin
) -> None:  # type: ignore[no-untyped-def]
    from tests.upgrades import test_wizard as upgrade_wizard
    from tests.upgrades.factories import catalog, licensed
    from upgrades.models import UpgradeLine, UpgradeNotification
    from upgrades.services import notifications_create

    old, new = catalog()
    source = licensed(customer_admin.organization, old, quantity=10, host_id="")
    notifications_create(version=new, today=timezone.localdate())
    setup = {"notification": UpgradeNotification.objects.get(), "line": UpgradeLine.objects.get()}
    delegation = DelegationFactory(
        customer=customer_admin.organization,
        partner=partner_admin.organization,
        scopes=[Scope.OBTAIN_KEYS],
    )
    _act_for(client, partner_admin, delegation)
    # Every page of the wizard, not only the confirmation: the quantity step said "Upgrading
    # Endpoint Shield 14.3, license <the customer's whole key>".
    client.get(reverse("upgrade"))
    step = upgrade_wizard.step
    pages = [
        step(client, "notification", {"notification_id": setup["notification"].code}),
        step(client, "line", {"line": setup["line"].pk}),
        step(client, "quantity", {"quantity": 4}),
        step(client, "registration", REGISTRATION),
    ]
    assert upgrade_wizard.current(pages[-1]) == "confirm"
    for page in pages:
        assert source.key not in page.content.decode(), upgrade_wizard.current(page)
    assert source.key.split("-")[-1] in pages[1].content.decode()  # the quantity step
    assert source.key.split("-")[-1] in pages[-1].content.decode()
    response = upgrade_wizard.step(client, "confirm", {})
    upgraded = License.objects.get(version=new)
    assert client.get(response["Location"]).status_code == 200  # the key it obtained
    assert upgraded.key in client.get(response["Location"]).content.decode()


def test_a_partner_with_only_obtain_keys_sees_only_its_own_upgrades_of_a_notification(
    client, customer_admin, partner_admin
) -> None:  # type: ignore[no-untyped-def]
    # The notification's history named the customer's members and linked the licenses they
    # upgraded (a "not found" for this partner).
    from tests.upgrades import test_wizard as upgrade_wizard
    from tests.upgrades.factories import catalog, licensed
    from upgrades.models import UpgradeLine, UpgradeNotification
    from upgrades.services import notifications_create, upgrade_redeem

    old, new = catalog()
    licensed(customer_admin.organization, old, quantity=10, host_id="")
    notifications_create(version=new, today=timezone.localdate())
    notification, line = UpgradeNotification.objects.get(), UpgradeLine.objects.get()
    theirs = upgrade_redeem(
        line_id=line.pk,
        quantity=3,
        organization=customer_admin.organization,
        registration=REGISTRATION,
        actor=customer_admin.user,
        token="customer-token",
    )
    delegation = DelegationFactory(
        customer=customer_admin.organization,
        partner=partner_admin.organization,
        scopes=[Scope.OBTAIN_KEYS],
    )
    _act_for(client, partner_admin, delegation)
    client.get(reverse("upgrade"))
    step = upgrade_wizard.step
    step(client, "notification", {"notification_id": notification.code})
    step(client, "line", {"line": line.pk})
    step(client, "quantity", {"quantity": 2})
    step(client, "registration", REGISTRATION)
    step(client, "confirm", {})
    own = License.objects.get(version=new, issued_by=partner_admin.user)
    page = client.get(reverse("upgrade-notification", args=[notification.pk])).content.decode()
    assert customer_admin.user.email not in page
    assert reverse("license-detail", args=[theirs.pk]) not in page
    assert partner_admin.user.email in page
    assert reverse("license-detail", args=[own.pk]) in page
    # With the view-licenses scope, the customer's upgrades too.
    Delegation.objects.filter(pk=delegation.pk).update(
        scopes=[Scope.OBTAIN_KEYS, Scope.VIEW_LICENSES]
    )
    page = client.get(reverse("upgrade-notification", args=[notification.pk])).content.decode()
    assert customer_admin.user.email in page
    assert reverse("license-detail", args=[theirs.pk]) in page


def test_a_partner_with_only_obtain_keys_sees_only_its_own_voucher_conversions(
    client, customer_admin, partner_admin, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    # The conversion's page lists every key it issued: the customer's own conversion is for a
    # partner that may view the customer's licenses, not for one that may only obtain keys.
    from tests.vouchers import wizard as voucher_wizard
    from tests.vouchers.factories import vouchers

    client.force_login(customer_admin.user)
    with django_capture_on_commit_callbacks(execute=True):
        theirs = voucher_wizard.walk(client, vouchers(1)[0].code)["Location"]
    customer_key = License.objects.get().key
    delegation = DelegationFactory(
        customer=customer_admin.organization,
        partner=partner_admin.organization,
        scopes=[Scope.OBTAIN_KEYS],
    )
    _act_for(client, partner_admin, delegation)
    response = client.get(theirs)
    assert response.status_code == 404
    assert customer_key not in response.content.decode()
    assert client.get(theirs.rstrip("/") + "/licenses.zip").status_code in (404, 405)
    with django_capture_on_commit_callbacks(execute=True):
        own = voucher_wizard.walk(client, vouchers(1)[0].code)["Location"]
    assert client.get(own).status_code == 200
    # With the view-licenses scope, the customer's conversions too.
    Delegation.objects.filter(pk=delegation.pk).update(
        scopes=[Scope.OBTAIN_KEYS, Scope.VIEW_LICENSES]
    )
    assert customer_key in client.get(theirs).content.decode()


def test_a_partner_organization_cannot_delegate_itself_to_another_partner(
    client, partner_admin
) -> None:  # type: ignore[no-untyped-def]
    # Customers delegate to the partner that sold them a product. A partner granting another
    # partner access to itself would let that one act for it: see its voucher batches and the
    # names of every customer that converted them.
    other = MembershipFactory(role=Membership.Role.ADMIN, organization=PartnerFactory())
    response = _grant(client, partner_admin, other.organization)
    assert response.status_code in (400, 403)
    assert not Delegation.objects.exists()


def test_a_delegated_partner_never_sees_an_oems_voucher_batches(client, partner_admin) -> None:  # type: ignore[no-untyped-def]
    # Should a partner organization hold a delegation anyway (made before this check, or in the
    # admin), its batches stay its own members'.
    from tests.vouchers.factories import VoucherBatchFactory

    oem = PartnerFactory()
    batch = VoucherBatchFactory(oem=oem)
    delegation = DelegationFactory(customer=oem, partner=partner_admin.organization)
    _act_for(client, partner_admin, delegation)
    assert client.get(reverse("voucher-batch", args=[batch.pk])).status_code == 404
    assert batch.version.product.name not in client.get(reverse("voucher-batches")).content.decode()


def test_grants_and_changes_email_partners_within_the_invitation_limits(
    client, customer_admin, settings
) -> None:  # type: ignore[no-untyped-def]
    # Each grant or change emails a partner's administrators with the customer's name (text a
    # user chose) in the body, and partner account numbers are short: without a limit, one
    # account could mail every partner, or one partner over and over (grant, revoke, grant...).
    settings.PORTAL_INVITES_PER_USER_PER_HOUR = 2
    partner = MembershipFactory(role=Membership.Role.ADMIN, organization=PartnerFactory())
    client.force_login(customer_admin.user)
    for _ in range(2):
        assert _grant(client, customer_admin, partner.organization).status_code == 302
        delegation = Delegation.objects.get(status=Delegation.Status.ACTIVE)
        client.post(
            reverse("partner-update", args=[delegation.pk]), {"revoke": "1", "confirm": "1"}
        )
    refused = _grant(client, customer_admin, partner.organization)
    assert refused.status_code == 400
    assert "many invitations and shares in the last hour" in refused.content.decode()
    assert Email.objects.filter(template="delegation_granted").count() == 2
    # Changes count too.
    settings.PORTAL_INVITES_PER_USER_PER_HOUR = 4
    assert _grant(client, customer_admin, partner.organization).status_code == 302
    delegation = Delegation.objects.get(status=Delegation.Status.ACTIVE)
    for scopes in (["view_licenses"], ["obtain_keys"]):
        response = client.post(
            reverse("partner-update", args=[delegation.pk]),
            {f"d{delegation.pk}-scopes": scopes},
            follow=True,
        )
    assert "many invitations and shares in the last hour" in response.content.decode()
    assert Email.objects.filter(template="delegation_changed").count() == 1
    delegation.refresh_from_db()
    assert delegation.scopes == ["view_licenses"]  # the first change, not the refused one


def test_a_serial_the_customer_redeems_while_an_obtain_keys_partner_confirms_it(
    client, customer_admin, partner_admin
) -> None:  # type: ignore[no-untyped-def]
    # The partner reached Confirm; the customer's administrator redeemed the same serial
    # meanwhile. Confirming sent the partner to the result page of the customer's license,
    # which it may not see: a 404, and a second click on Confirm the same 404.
    from licensing.services import serial_redeem

    serial = SerialNumberFactory()
    delegation = DelegationFactory(
        customer=customer_admin.organization,
        partner=partner_admin.organization,
        scopes=[Scope.OBTAIN_KEYS],
    )
    _act_for(client, partner_admin, delegation)
    client.get(reverse("get-a-key"))
    post_step(client, "serial", {"serial": serial.code})
    confirm = post_step(client, "registration", REGISTRATION)
    assert confirm.context["wizard"]["steps"].current == "confirm"
    token = confirm.context["wizard"]["management_form"]["instance"].value()
    key = serial_redeem(
        code=serial.code,
        organization=customer_admin.organization,
        registration=REGISTRATION,
        acting_user=customer_admin.user,
    ).license.key
    response = post_step(client, "confirm", token=token)
    page = client.get(response["Location"])
    text = html.unescape(page.content.decode())
    assert page.status_code == 200
    assert "already redeemed this serial number" in text
    assert key not in text and key.split("-")[-1] in text
    # A second click on the same page: started over, not a 404 either.
    response = post_step(client, "confirm", token=token)
    assert response.status_code == 200 and key not in response.content.decode()
    assert License.objects.count() == 1
    # With the view-licenses scope, the customer's result page as before.
    delegation.scopes = [Scope.OBTAIN_KEYS, Scope.VIEW_LICENSES]
    delegation.save(update_fields=["scopes"])
    client.get(reverse("get-a-key"))
    post_step(client, "serial", {"serial": SerialNumberFactory().code})
    post_step(client, "registration", REGISTRATION)
    other = SerialNumberFactory()
    client.get(reverse("get-a-key"))
    post_step(client, "serial", {"serial": other.code})
    post_step(client, "registration", REGISTRATION)
    serial_redeem(
        code=other.code,
        organization=customer_admin.organization,
        registration=REGISTRATION,
        acting_user=customer_admin.user,
    )
    response = post_step(client, "confirm")
    assert response.status_code == 302 and client.get(response["Location"]).status_code == 200


def test_declining_an_account_the_partner_opened_withdraws_its_claim_and_says_so(
    client, partner_admin
) -> None:  # type: ignore[no-untyped-def]
    # Nobody claimed it yet: no administrator to tell, and an open claim link would offer
    # "Accept invitation" only to refuse ("ask one of its administrators": there are none).
    client.force_login(partner_admin.user)
    client.post(
        reverse("partner-customer-create"),
        {
            "name": "Umbrella Corp",
            "address": "Raccoon City 1",
            "country": "US",
            "contact_name": "Carol",
            "contact_email": "carol@globex.example",
        },
    )
    delegation = Delegation.objects.get(customer__name="Umbrella Corp")
    invitation = Invitation.objects.get(organization=delegation.customer)
    response = client.post(
        reverse("partner-decline", args=[delegation.pk]), {"confirm": "1"}, follow=True
    )
    page = html.unescape(response.content.decode())
    assert "has no administrator yet, so nobody can use its account now" in page
    assert "Its administrators were told by email" not in page
    invitation.refresh_from_db()
    assert invitation.revoked_at is not None
    withdrawn = AuditEvent.objects.get(action="invitation.revoked")
    assert withdrawn.organization == delegation.customer
    assert withdrawn.details["reason"] == "delegation.declined"
    assert client.get(reverse("invitation", args=[invitation.token])).status_code == 404
    # The contact hears that the link no longer works; the partner's email speaks of an
    # account without administrators, not of "the customer's administrators".
    told = Email.objects.get(template="customer_claim_withdrawn")
    assert told.to == ["carol@globex.example"]
    assert "Umbrella Corp" in told.body_text and "no longer works" in told.body_text
    declined = Email.objects.get(template="delegation_declined")
    assert declined.to == [partner_admin.user.email]
    assert "has no administrator yet" in declined.body_text
    assert "The customer's administrators can delegate" not in declined.body_text


def test_revoking_a_delegation_withdraws_the_partners_open_invitations_only(
    client, customer_admin, partner_admin
) -> None:  # type: ignore[no-untyped-def]
    delegation = DelegationFactory(
        customer=customer_admin.organization, partner=partner_admin.organization
    )
    customer = customer_admin.organization
    by_partner = Invitation.objects.create(
        organization=customer, email="a@x.example", role="admin", invited_by=partner_admin.user
    )
    by_admin = Invitation.objects.create(
        organization=customer, email="b@x.example", role="member", invited_by=customer_admin.user
    )
    client.force_login(customer_admin.user)
    client.post(reverse("partner-update", args=[delegation.pk]), {"revoke": "1", "confirm": "1"})
    by_partner.refresh_from_db()
    by_admin.refresh_from_db()
    assert by_partner.revoked_at is not None
    assert by_admin.revoked_at is None
    assert Email.objects.filter(template="customer_claim_withdrawn").get().to == ["a@x.example"]


def test_a_lapsed_delegation_withdraws_the_partners_open_invitations(partner_admin) -> None:  # type: ignore[no-untyped-def]
    delegation = DelegationFactory(
        partner=partner_admin.organization,
        starts_on=timezone.localdate() - timedelta(days=10),
        ends_on=timezone.localdate() - timedelta(days=1),
    )
    invitation = Invitation.objects.create(
        organization=delegation.customer,
        email="c@x.example",
        role="admin",
        invited_by=partner_admin.user,
    )
    assert delegations_refresh()["expired"] == 1
    invitation.refresh_from_db()
    assert invitation.revoked_at is not None
    event = AuditEvent.objects.get(action="invitation.revoked")
    assert event.details["reason"] == "delegation.expired"


def test_a_search_too_long_says_so_instead_of_listing_every_customer(client, partner_admin) -> None:  # type: ignore[no-untyped-def]
    DelegationFactory(partner=partner_admin.organization)
    client.force_login(partner_admin.user)
    response = client.get(reverse("partner-customers"), {"q": "x" * 200})
    assert response.status_code == 200
    page = html.unescape(response.content.decode())
    assert 'data-testid="search-error"' in page and "at most 100 characters" in page
    assert "0 customers" in page


def test_a_delegation_cannot_start_in_the_past(client, customer_admin, partner_admin) -> None:  # type: ignore[no-untyped-def]
    response = _grant(client, customer_admin, partner_admin.organization, starts_on="2020-01-01")
    assert response.status_code == 400
    assert "The start date cannot be in the past" in html.unescape(response.content.decode())
    assert not Delegation.objects.exists()
    today = timezone.localdate().isoformat()
    assert (
        _grant(client, customer_admin, partner_admin.organization, starts_on=today).status_code
        == 302
    )
