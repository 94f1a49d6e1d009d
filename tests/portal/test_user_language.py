"""Emails that someone else or a scheduled job sends a person are written in the language that
person reads the portal in (User.language), not in the sender's or the portal's default."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.core import mail
from django.urls import reverse
from django.utils import timezone, translation

from licensing.services import license_share
from licensing.services.reminders import maintenance_reminders_send
from portal.emails import queue_email
from portal.models import OutboundEmail, User
from portal.services import delegation_revoke
from tests.licensing.factories import LicenseFactory, SupportRegistrationFactory
from tests.portal.factories import (
    DelegationFactory,
    MembershipFactory,
    OrganizationFactory,
    UserFactory,
)
from tests.upgrades.factories import catalog, licensed
from upgrades.services import notifications_create, upgrade_notices_send

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-test-password-2026"


def _user(language: str = "", **kwargs) -> User:  # type: ignore[no-untyped-def]
    user = UserFactory(**kwargs)
    if language:
        User.objects.filter(pk=user.pk).update(language=language)
        user.language = language
    return user


# -- what the portal remembers -----------------------------------------------------------------


def test_the_language_switcher_remembers_the_choice_of_someone_logged_in(client) -> None:  # type: ignore[no-untyped-def]
    user = _user()
    client.force_login(user)
    response = client.post(reverse("set_language"), {"language": "pt-br", "next": "/dashboard/"})
    assert response.status_code == 302 and response["Location"] == "/dashboard/"
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "pt-br"
    user.refresh_from_db()
    assert user.language == "pt-br"
    client.post(reverse("set_language"), {"language": "en", "next": "/dashboard/"})
    user.refresh_from_db()
    assert user.language == "en"


def test_an_unknown_language_changes_nothing(client) -> None:  # type: ignore[no-untyped-def]
    user = _user("pt-br")
    client.force_login(user)
    response = client.post(reverse("set_language"), {"language": "xx", "next": "/dashboard/"})
    assert response.status_code == 302
    assert settings.LANGUAGE_COOKIE_NAME not in response.cookies
    user.refresh_from_db()
    assert user.language == "pt-br"


def test_the_switcher_without_an_account_only_sets_the_cookie(client) -> None:  # type: ignore[no-untyped-def]
    response = client.post(reverse("set_language"), {"language": "pt-br", "next": "/"})
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "pt-br"
    assert not User.objects.exclude(language="").exists()


def _login(client, user: User, **headers: str):  # type: ignore[no-untyped-def]
    user.set_password(PASSWORD)
    user.save()
    return client.post(
        reverse("account_login"), {"login": user.email, "password": PASSWORD}, headers=headers
    )


def test_logging_in_fills_a_blank_from_the_browser_but_never_overrides_a_choice(client) -> None:  # type: ignore[no-untyped-def]
    blank, chosen = _user(), _user("pt-br")
    assert _login(client, blank, accept_language="pt-BR,pt;q=0.9").status_code == 302
    blank.refresh_from_db()
    assert blank.language == "pt-br"

    client.logout()
    assert _login(client, chosen, accept_language="en-US,en;q=0.9").status_code == 302
    chosen.refresh_from_db()
    assert chosen.language == "pt-br"  # a browser in English is not a choice


def test_logging_in_on_a_browser_that_never_chose_continues_in_the_stored_language(client) -> None:  # type: ignore[no-untyped-def]
    user = _user("pt-br")
    response = _login(client, user, accept_language="en-US,en;q=0.9")
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "pt-br"
    page = client.get(response["Location"], headers={"accept-language": "en-US"}, follow=True)
    assert '<html lang="pt-br"' in page.content.decode()


def test_logging_in_after_choosing_with_the_switcher_keeps_that_browsers_choice(client) -> None:  # type: ignore[no-untyped-def]
    user = _user("pt-br")
    client.post(reverse("set_language"), {"language": "en", "next": "/"})  # logged out
    response = _login(client, user)
    assert settings.LANGUAGE_COOKIE_NAME not in response.cookies  # the cookie stays "en"


def test_logging_in_after_choosing_with_the_switcher_stores_the_choice(client) -> None:  # type: ignore[no-untyped-def]
    user = _user("pt-br")
    client.post(reverse("set_language"), {"language": "en", "next": "/"})  # logged out
    assert _login(client, user).status_code == 302
    user.refresh_from_db()
    assert user.language == "en"


# -- what the emails read ----------------------------------------------------------------------


def test_one_email_to_readers_of_two_languages_is_written_once_in_each() -> None:
    reader = _user("pt-br")
    other, stranger = _user("en"), "someone@elsewhere.example"
    with translation.override("en"):
        queue_email(
            template="license_shared",
            to=[reader.email, other.email, stranger],
            context={"shares": [], "organization": OrganizationFactory(), "has_account": True},
        )
    # Which language each row is written in: the portal's name that prefixes its subject.
    rows = {tuple(row.to): row.subject.split("]")[0] for row in OutboundEmail.objects.all()}
    assert rows == {
        (reader.email,): "[Portal de licenciamento",
        tuple(sorted([other.email, stranger])): "[Licensing Portal",
    }


def test_a_language_given_by_the_caller_is_kept_for_everyone() -> None:
    reader = _user("pt-br")
    queue_email(
        template="license_shared",
        to=[reader.email],
        context={"shares": [], "organization": OrganizationFactory(), "has_account": True},
        language="en",
    )
    assert OutboundEmail.objects.get().subject.startswith("[Licensing Portal] ")


def test_a_share_reaches_its_recipient_in_their_language(
    django_capture_on_commit_callbacks,
) -> None:  # type: ignore[no-untyped-def]
    admin = MembershipFactory(role="admin")
    recipient = _user("pt-br")
    license = LicenseFactory(owner=admin.organization)
    with translation.override("en"), django_capture_on_commit_callbacks(execute=True):
        license_share(licenses=[license], email=recipient.email, access="read", actor=admin.user)
    (email,) = mail.outbox
    assert email.subject.startswith("[Portal de licenciamento] ")
    assert "(Somente leitura)" in email.body


def test_a_revocation_reads_in_each_sides_language(django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    delegation = DelegationFactory()
    customer_admin = MembershipFactory(
        organization=delegation.customer, role="admin", user=_user("en")
    )
    partner_admin = MembershipFactory(
        organization=delegation.partner, role="admin", user=_user("pt-br")
    )
    with translation.override("en"), django_capture_on_commit_callbacks(execute=True):
        delegation_revoke(delegation=delegation, actor=customer_admin.user)
    subjects = {tuple(email.to): email.subject for email in mail.outbox}
    assert subjects == {
        (customer_admin.user.email,): "[Licensing Portal] A partner delegation was revoked",
        (
            partner_admin.user.email,
        ): "[Portal de licenciamento] Uma delegação a parceiro foi revogada",
    }
    partner_body = next(e.body for e in mail.outbox if e.to == [partner_admin.user.email])
    assert "/partners/customers/" in partner_body  # still the partner's own body


def test_a_maintenance_reminder_reads_in_its_contacts_language(
    django_capture_on_commit_callbacks,
) -> None:  # type: ignore[no-untyped-def]
    today = timezone.localdate()
    reader, stranger = _user("pt-br"), "nobody@customer.example"
    for email in (reader.email, stranger):
        owner = OrganizationFactory()
        LicenseFactory(
            owner=owner,
            registration=SupportRegistrationFactory(organization=owner, technical_email=email),
            maintenance_end=today + timedelta(days=7),
        )
    with django_capture_on_commit_callbacks(execute=True):  # a scheduled job: no request
        assert maintenance_reminders_send(today=today) == 2
    subjects = {email.to[0]: email.subject for email in mail.outbox}
    assert subjects[reader.email].startswith("[Portal de licenciamento] A manutenção")
    assert subjects[stranger] == "[Licensing Portal] Maintenance ends soon for 1 license"


def test_an_upgrade_notice_reads_in_its_readers_language(
    django_capture_on_commit_callbacks,
) -> None:  # type: ignore[no-untyped-def]
    old, new = catalog()
    portuguese, english = OrganizationFactory(), OrganizationFactory()
    reader = _user("pt-br")
    pt_license = licensed(
        portuguese,
        old,
        registration=SupportRegistrationFactory(
            organization=portuguese, technical_email=reader.email
        ),
    )
    licensed(english, old)
    notifications_create(version=new, today=timezone.localdate())
    with django_capture_on_commit_callbacks(execute=True):
        assert upgrade_notices_send(version=new) == 2
    by_reader = {email.to[0]: email for email in mail.outbox}
    notice = by_reader.pop(reader.email)
    assert f"{old.product.name} {new.version} foi lançado." in notice.body
    assert f"quantidade 10, licença {pt_license.key}" in notice.body
    (other,) = by_reader.values()
    assert f"{old.product.name} {new.version} has been released." in other.body
