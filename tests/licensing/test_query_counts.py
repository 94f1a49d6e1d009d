"""Pages issue a bounded number of SQL queries."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from licensing.models import License
from licensing.services import serial_redeem
from portal.models import AuditEvent
from tests.licensing.factories import (
    REGISTRATION,
    LicenseFactory,
    ProductVersionFactory,
    SerialNumberFactory,
    SupportRegistrationFactory,
)
from tests.licensing.wizard import instance_token, post_step, walk
from tests.portal.factories import MembershipFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _sessions_in_the_database(settings):  # type: ignore[no-untyped-def]
    # The same counts with or without REDIS_URL: each request reads its session from the
    # database here. With Redis that read is gone (tests/portal/test_sessions.py).
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.db"


@pytest.fixture
def member(client):  # type: ignore[no-untyped-def]
    membership = MembershipFactory()
    client.force_login(membership.user)
    return membership


def test_dashboard(client, member, django_assert_num_queries) -> None:  # type: ignore[no-untyped-def]
    # The session and the user with its memberships (portal.middleware); nothing else.
    with django_assert_num_queries(2):
        assert client.get(reverse("dashboard")).status_code == 200


# Counted inside the test's transaction: each request's atomic blocks add a savepoint pair (the
# session save has one). Per request the portal itself spends three: the session, the user with
# its memberships, the session saved; the rest is the wizard's. The instance token is read
# before each count (post_step would read the session for it).
def test_wizard_steps(client, member, django_assert_num_queries) -> None:  # type: ignore[no-untyped-def]
    for _ in range(5):
        SupportRegistrationFactory(organization=member.organization)
    serial = SerialNumberFactory()
    with CaptureQueriesContext(connection) as whole:
        with django_assert_num_queries(5):
            client.get(reverse("get-a-key"))
        token = instance_token(client)
        # The serial with the failed-attempt budgets' counts (one query), the last registration
        # to prefill the next step.
        with django_assert_num_queries(7):
            post_step(client, "serial", {"serial": serial.code}, token=token)
        # Nothing of the wizard's own: the serial step's check left the serial in the session.
        with django_assert_num_queries(5):
            post_step(client, "registration", REGISTRATION, token=token)
        # The redemption (the serial locked, six writes) in its savepoint pair, and the
        # technical contact (not the member acting) read for the email: member? language?
        with CaptureQueriesContext(connection) as confirm, django_assert_num_queries(15):
            response = post_step(client, "confirm", token=token)
        assert response.status_code == 302
    serial_reads = [q for q in whole if 'FROM "licensing_serialnumber"' in q["sql"]]
    assert len(serial_reads) == 2  # the serial step's check, the locked read of the redemption
    confirm_serial_reads = [q for q in confirm if 'FROM "licensing_serialnumber"' in q["sql"]]
    assert len(confirm_serial_reads) == 1
    # SQLite has no row locks: Django leaves FOR UPDATE out there.
    assert "FOR UPDATE" in confirm_serial_reads[0]["sql"] or connection.vendor == "sqlite"


def test_upgrade_wizard_reads_the_licenses_once_per_step(
    client, member, django_assert_max_num_queries
) -> None:  # type: ignore[no-untyped-def]
    old = LicenseFactory(owner=member.organization)
    serial = SerialNumberFactory(
        kind="upgrade",
        version=ProductVersionFactory(product=old.version.product),
        quantity=old.quantity,
    )
    client.get(reverse("get-a-key"))
    token = instance_token(client)
    with django_assert_max_num_queries(10):
        post_step(client, "serial", {"serial": serial.code}, token=token)
    # The licenses it can upgrade, once; the serial comes from the serial step.
    with django_assert_max_num_queries(6):
        post_step(
            client, "registration", {**REGISTRATION, "target_license": str(old.pk)}, token=token
        )
    # The licenses it can upgrade (the registration step's form, revalidated), then the mint:
    # the serial and the license locked, the old license's custom values and shares copied
    # (one INSERT … SELECT each), the old license marked superseded, and the technical contact
    # read for the email (is it a member, which language).
    with CaptureQueriesContext(connection) as confirm, django_assert_max_num_queries(21):
        response = post_step(client, "confirm", token=token)
    assert response.status_code == 302
    # superseded, issued and redeemed: one INSERT
    audit_inserts = [q for q in confirm if 'INSERT INTO "portal_auditevent"' in q["sql"]]
    assert len(audit_inserts) == 1
    assert set(AuditEvent.objects.values_list("action", flat=True)) >= {
        "license.superseded",
        "license.issued",
        "serial.redeemed",
    }


def test_confirm_and_result(
    client, member, django_assert_max_num_queries, django_assert_num_queries
) -> None:  # type: ignore[no-untyped-def]
    serial = SerialNumberFactory()
    walk(client, serial.code, confirm=False)
    token = instance_token(client)
    # One of them reads the technical contact (not the member acting) for the email.
    with django_assert_max_num_queries(15):
        response = post_step(client, "confirm", token=token)
    # The session, the user with its memberships, the license with what the page shows.
    with django_assert_num_queries(3):
        assert client.get(response["Location"]).status_code == 200
    license = License.objects.get()
    with django_assert_max_num_queries(4):
        client.get(reverse("license-file", kwargs={"pk": license.pk}))


def test_members_page(client, member, django_assert_max_num_queries) -> None:  # type: ignore[no-untyped-def]
    for _ in range(20):
        MembershipFactory(organization=member.organization, role="member")
    with django_assert_max_num_queries(10):
        assert client.get(reverse("members")).status_code == 200


def test_mint_reads_the_serial_once(member, django_assert_num_queries) -> None:  # type: ignore[no-untyped-def]
    serial = SerialNumberFactory()
    # Eight statements (the serial locked, registration, license, the technical contact's
    # account (a member gets the link, everyone their language), outbox row, redemption,
    # serial, the audit events in one INSERT) and the savepoint pair of the test's transaction.
    with CaptureQueriesContext(connection) as captured, django_assert_num_queries(10):
        serial_redeem(
            code=serial.code,
            organization=member.organization,
            registration=REGISTRATION,
            acting_user=member.user,
        )
    serial_reads = [q for q in captured if 'FROM "licensing_serialnumber"' in q["sql"]]
    assert len(serial_reads) == 1
    assert "FOR UPDATE" in serial_reads[0]["sql"] or connection.vendor == "sqlite"
    audit_inserts = [q for q in captured if 'INSERT INTO "portal_auditevent"' in q["sql"]]
    assert len(audit_inserts) == 1
    assert sorted(AuditEvent.objects.values_list("action", flat=True)) == [
        "license.issued",
        "serial.redeemed",
    ]
