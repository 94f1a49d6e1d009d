"""My licenses' page cache (licensing/listcache.py, issue 13): a stored page is the page the
list would render, and any committed change to what it shows is on the next request, whoever
wrote it. Transactional tests: the cache knows a change when it commits."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from datetime import date, timedelta

import pytest
from django.db import connection, connections, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone, translation

from licensing import listcache
from licensing.models import (
    CustomField,
    CustomFieldValue,
    License,
    LicenseShare,
    ListVersion,
    Product,
    ProductVersion,
    SerialNumber,
    SupportRegistration,
)
from portal.http import ORGANIZATION_FIELD
from portal.models import Membership, Organization
from tests.conftest import postgres_only
from tests.licensing.factories import (
    LicenseFactory,
    ProductVersionFactory,
    SerialNumberFactory,
    SupportRegistrationFactory,
)
from tests.portal.factories import DelegationFactory, MembershipFactory

pytestmark = [pytest.mark.django_db(transaction=True), postgres_only()]

TOKEN = re.compile(r'name="csrfmiddlewaretoken" value="[^"]+"')


@pytest.fixture
def listed(client: Client):  # type: ignore[no-untyped-def]
    admin = MembershipFactory()
    client.force_login(admin.user)
    org = admin.organization
    registration = SupportRegistrationFactory(organization=org, company="Acme Support Desk")
    field = CustomField.objects.create(organization=org, name="PO")
    licenses = [
        LicenseFactory(owner=org, registration=registration, host_id=f"host-{i}") for i in range(3)
    ]
    CustomFieldValue.objects.create(license=licenses[0], field=field, value="PO-0")
    return admin, licenses


def page(client: Client, params: dict[str, str] | None = None) -> str:
    response = client.get(reverse("license-list"), params or {})
    assert response.status_code == 200
    html = response.content.decode()
    assert listcache.START not in html and listcache.CSRF_PLACEHOLDER not in html
    return html


@pytest.fixture
def stored(monkeypatch) -> list[str]:  # type: ignore[no-untyped-def]
    """The keys pages are stored under, as the list stores them."""
    keys: list[str] = []
    store = listcache.store

    def recording(key, response):  # type: ignore[no-untyped-def]
        keys.append(key)
        store(key, response)

    monkeypatch.setattr(listcache, "store", recording)
    return keys


def test_a_stored_page_is_the_page_rendered(client, listed, django_assert_max_num_queries) -> None:  # type: ignore[no-untyped-def]
    for params in ({}, {"q": "host-1"}, {"sort": "-quantity", "include": "all"}):
        first = page(client, params)
        with django_assert_max_num_queries(4):  # session, user and memberships, the state
            again = page(client, params)
        assert TOKEN.sub("", again) == TOKEN.sub("", first)
        listcache.forget()  # as another process finds it: in the shared cache
        with django_assert_max_num_queries(4):
            shared = page(client, params)
        assert TOKEN.sub("", shared) == TOKEN.sub("", first)
        # Each response has a token of its own, not the stored page's.
        assert TOKEN.search(again) and TOKEN.search(again).group() != TOKEN.search(first).group()


def test_a_stored_pages_form_posts(listed) -> None:  # type: ignore[no-untyped-def]
    admin, licenses = listed
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin.user)
    page(client)
    html = page(client)  # from the cache
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
    organization = re.search(rf'name="{ORGANIZATION_FIELD}" value="(\d+)"', html).group(1)
    response = client.post(
        reverse("license-share"),
        {
            "csrfmiddlewaretoken": token,
            ORGANIZATION_FIELD: organization,
            "licenses": [str(licenses[0].pk)],
            "email": "colleague@example.com",
            "access": "read",
        },
    )
    assert response.status_code == 302
    assert LicenseShare.objects.filter(license=licenses[0], email="colleague@example.com").exists()


def _rename_product(licenses: list[License]) -> str:
    Product.objects.filter(pk=licenses[0].version.product_id).update(name="Renamed Shield")
    return "Renamed Shield"


def _rename_version(licenses: list[License]) -> str:
    ProductVersion.objects.filter(pk=licenses[0].version_id).update(version="99.7")
    return "99.7"


def _rename_organization(licenses: list[License]) -> str:
    Organization.objects.filter(pk=licenses[0].owner_id).update(name="Renamed Owner Ltda")
    return "Renamed Owner Ltda"


def _quantity_by_update(licenses: list[License]) -> str:
    License.objects.filter(pk=licenses[1].pk).update(quantity=4321)
    return "4321"


def _quantity_by_save(licenses: list[License]) -> str:
    license = License.objects.get(pk=licenses[2].pk)
    license.quantity = 8765
    license.save()
    return "8765"


def _quantity_in_sql(licenses: list[License]) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE licensing_license SET quantity = 5432 WHERE id = %s", [licenses[0].pk]
        )
    return "5432"


def _new_license(licenses: list[License]) -> str:
    LicenseFactory(owner=licenses[0].owner, host_id="host-brand-new")
    return "host-brand-new"


def _custom_field(licenses: list[License]) -> str:
    CustomField.objects.create(organization=licenses[0].owner, name="Cost centre")
    return "Cost centre"


def _custom_value(licenses: list[License]) -> str:
    CustomFieldValue.objects.filter(license=licenses[0]).update(value="PO-changed")
    return "PO-changed"


def _revoked(licenses: list[License]) -> str:
    License.objects.filter(pk=licenses[1].pk).update(status=License.Status.REVOKED)
    return "host-1"  # listed among the revoked


WRITES: list[tuple[dict[str, str], Callable[[list[License]], str]]] = [
    ({}, _rename_product),
    ({}, _rename_version),
    ({"include": "all"}, _rename_organization),
    ({}, _quantity_by_update),
    ({"sort": "quantity"}, _quantity_by_save),
    ({}, _quantity_in_sql),
    ({}, _new_license),
    ({}, _custom_field),
    ({}, _custom_value),
    ({"status": License.Status.REVOKED, "include": "all"}, _revoked),
]


@pytest.mark.parametrize(("params", "write"), WRITES, ids=[w.__name__[1:] for _, w in WRITES])
def test_a_committed_change_is_on_the_next_page(client, listed, params, write) -> None:  # type: ignore[no-untyped-def]
    _admin, licenses = listed
    page(client, params)
    before = page(client, params)  # stored
    shown = write(licenses)
    assert shown not in before
    assert shown in page(client, params)


def test_search_sees_changes_in_registrations_and_serials(client, listed) -> None:  # type: ignore[no-untyped-def]
    _admin, licenses = listed
    search = {"q": "Helpdesk Nova"}
    page(client, search)
    assert "host-0" not in page(client, search)
    SupportRegistration.objects.filter(pk=licenses[0].registration_id).update(
        company="Helpdesk Nova"
    )
    assert "host-0" in page(client, search)
    serial = SerialNumberFactory(version=licenses[1].version)
    by_serial = {"q": serial.code[-11:]}  # a whole code is taken for a key: its tail
    assert "host-1" not in page(client, by_serial)
    assert "host-1" not in page(client, by_serial)
    SerialNumber.objects.filter(pk=serial.pk).update(license=licenses[1])
    assert "host-1" in page(client, by_serial)


def test_a_change_between_the_key_and_the_rows_is_not_hidden(client, listed, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A change committed after the key is read and before the rows are: the page stored under
    the earlier key shows it, and the next request has a new key."""
    _admin, licenses = listed
    key_for = listcache.key_for
    keys = []

    def key_then_a_change(request):  # type: ignore[no-untyped-def]
        key = key_for(request)
        if not keys:
            License.objects.filter(pk=licenses[0].pk).update(quantity=777)
        keys.append(key)
        return key

    monkeypatch.setattr(listcache, "key_for", key_then_a_change)
    assert "777" in page(client)
    assert "777" in page(client)
    assert keys[0] != keys[1]


def test_other_organizations_changes_keep_the_page(client, listed) -> None:  # type: ignore[no-untyped-def]
    page(client)
    LicenseFactory(quantity=31337)  # another organization's, of a product added to the catalog
    with CaptureQueriesContext(connection) as queries:
        page(client)
    assert len(queries) <= 4  # from the cache


def test_one_transaction_counts_once(listed) -> None:  # type: ignore[no-untyped-def]
    admin, licenses = listed
    counted = ListVersion.objects.get(organization_id=admin.organization_id)
    with transaction.atomic():
        for license in licenses:
            License.objects.filter(pk=license.pk).update(quantity=license.quantity + 1)
    after = ListVersion.objects.get(organization_id=admin.organization_id)
    assert after.version == counted.version + 1
    assert after.xact != counted.xact
    with transaction.atomic():
        License.objects.filter(pk=licenses[0].pk).update(quantity=1)
        transaction.set_rollback(True)
    assert ListVersion.objects.get(organization_id=admin.organization_id).xact == after.xact
    # A savepoint rolled back takes its organization out of the count, not the others.
    other = LicenseFactory()
    others = ListVersion.objects.get(organization_id=other.owner_id).xact
    with transaction.atomic():
        License.objects.filter(pk=licenses[0].pk).update(quantity=2)
        with transaction.atomic():
            License.objects.filter(pk=other.pk).update(quantity=2)
            transaction.set_rollback(True)
    assert ListVersion.objects.get(organization_id=other.owner_id).xact == others
    assert ListVersion.objects.get(organization_id=admin.organization_id).xact != after.xact


@pytest.fixture
def keys(monkeypatch) -> list[str | None]:  # type: ignore[no-untyped-def]
    """The keys the list's requests are given, in order."""
    recorded: list[str | None] = []
    key_for = listcache.key_for

    def recording(request):  # type: ignore[no-untyped-def]
        recorded.append(key_for(request))
        return recorded[-1]

    monkeypatch.setattr(listcache, "key_for", recording)
    return recorded


def test_the_key_follows_the_person_and_the_day(client, listed, keys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    admin, _licenses = listed
    member = MembershipFactory(organization=admin.organization, role=Membership.Role.MEMBER)
    page(client)
    page(client, {"page": "1"})
    with translation.override("pt-br"):
        client.get(reverse("license-list"), HTTP_ACCEPT_LANGUAGE="pt-br")
    other = Client()
    other.force_login(member.user)
    page(other)  # another person, another role
    tomorrow = date.today() + timedelta(days=1)
    monkeypatch.setattr(listcache.timezone, "localdate", lambda: tomorrow)
    page(client)
    assert None not in keys
    assert len(set(keys)) == len(keys), keys


def test_partners_and_share_recipients_are_not_served_from_the_cache(
    client, listed, stored
) -> None:  # type: ignore[no-untyped-def]
    admin, _licenses = listed
    theirs = LicenseFactory(host_id="host-shared-in")
    LicenseShare.objects.create(license=theirs, email=admin.user.email, user=admin.user)
    page(client)
    assert "host-shared-in" in page(client)
    assert stored == []

    delegation = DelegationFactory(customer=admin.organization)
    partner_user = MembershipFactory(organization=delegation.partner)
    partner = Client()
    partner.force_login(partner_user.user)
    assert partner.post(reverse("partner-act", args=[delegation.pk])).status_code == 302
    page(partner)
    page(partner)
    assert stored == []


def test_off_when_set_to_zero(client, listed, settings, stored) -> None:  # type: ignore[no-untyped-def]
    settings.LICENSE_LIST_CACHE_SECONDS = 0
    page(client)
    with CaptureQueriesContext(connection) as queries:
        page(client)
    assert len(queries) > 4
    assert stored == []


# What a member's list reads on every request, outside the stored content: the session, the
# person and their memberships, the state the key is made of. Everything else it reads must be
# counted by the triggers.
READ_EACH_TIME = {"django_session", "portal_user", "portal_membership", "licensing_listversion"}


def test_every_table_the_list_reads_is_counted(client, listed, settings) -> None:  # type: ignore[no-untyped-def]
    settings.LICENSE_LIST_CACHE_SECONDS = 0  # every request renders
    admin, _licenses = listed
    field = CustomField.objects.get(organization=admin.organization)
    version = ProductVersionFactory()
    read: set[str] = set()
    for params in (
        {},
        {"q": "PO-0", "include": "all", "sort": "product"},
        {"q": "ZZZZ-ZZZZ-ZZZZ"},
        {"page": "2", f"cf_{field.pk}": "PO", "maintenance": "expired"},
        {"sort": field.sort_column, "product": str(version.product_id), "version": str(version.pk)},
        {"status": "revoked"},
    ):
        with CaptureQueriesContext(connection) as queries:
            page(client, params)
        for query in queries:
            read |= set(re.findall(r'(?:FROM|JOIN) "(\w+)"', query["sql"]))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT tgrelid::regclass::text FROM pg_trigger "
            "WHERE tgname LIKE '%%_list_changed'"
        )
        counted = {table for (table,) in cursor.fetchall()}
    assert "licensing_license" in read and "licensing_serialnumber" in read
    assert read - READ_EACH_TIME <= counted, read - READ_EACH_TIME - counted


def test_the_counted_tables_are_the_triggers_tables() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT tgrelid::regclass::text FROM pg_trigger "
            "WHERE tgname LIKE '%%_list_changed'"
        )
        assert {table for (table,) in cursor.fetchall()} == listcache.COUNTED_TABLES
    assert listcache.counting()


def test_off_while_a_trigger_is_disabled(client, listed, stored, caplog) -> None:  # type: ignore[no-untyped-def]
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE licensing_customfieldvalue DISABLE TRIGGER USER")
    try:
        listcache.forget()
        page(client)
        page(client)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE licensing_customfieldvalue ENABLE TRIGGER USER")
        listcache.forget()
    assert stored == []
    assert "licensing_customfieldvalue" in caplog.text


def test_writers_of_several_organizations_at_once_never_deadlock_on_the_counts() -> None:
    """Transactions that change the lists of the same organizations in opposite orders commit
    together: the counts are taken in one statement, in the organizations' order, so none waits
    for another in a cycle (PostgreSQL would abort one: an error page for a staff action)."""
    organizations = [LicenseFactory().owner for _ in range(4)]
    writers = 6
    # A license per writer and organization: the writers share no license row, only the counts.
    mine = [[LicenseFactory(owner=org).pk for org in organizations] for _ in range(writers)]
    failures: list[BaseException] = []

    def write(index: int, barrier: threading.Barrier) -> None:
        ids = mine[index] if index % 2 else mine[index][::-1]
        try:
            with transaction.atomic():
                for quantity, pk in enumerate(ids, start=2):
                    License.objects.filter(pk=pk).update(quantity=quantity)
                barrier.wait(timeout=30)  # every writer commits at once
        except BaseException as exc:
            failures.append(exc)
        finally:
            connections.close_all()

    for _round in range(3):
        barrier = threading.Barrier(writers)
        threads = [threading.Thread(target=write, args=(i, barrier)) for i in range(writers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert failures == []
    for org in organizations:
        assert ListVersion.objects.get(organization_id=org.pk).version >= 1 + 3 * writers


def test_a_revoked_share_does_not_keep_the_list_from_the_cache(client, listed, stored) -> None:  # type: ignore[no-untyped-def]
    """Whether someone has licenses shared with them is asked as the selectors ask it
    (active_shares, compiled into the key's query): a revoked share is none."""
    admin, _licenses = listed
    LicenseShare.objects.create(
        license=LicenseFactory(), email=admin.user.email, user=admin.user, revoked_at=timezone.now()
    )
    page(client)
    assert len(stored) == 1
