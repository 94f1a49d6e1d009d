"""Query bounds of My licenses (issue 13): page 1, a deep page, a search, with licenses shared
with the user, and the export. They do not grow with the number of licenses."""

from __future__ import annotations

import pytest
from django.urls import reverse

from licensing.models import CustomField, CustomFieldValue, LicenseShare
from licensing.views import licenses as list_views
from tests.conftest import postgres_only
from tests.licensing.factories import (
    LicenseFactory,
    ProductVersionFactory,
    SupportRegistrationFactory,
)
from tests.portal.factories import MembershipFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _sessions_in_the_database(settings):  # type: ignore[no-untyped-def]
    # The same bounds with or without REDIS_URL (with it, the session read is gone).
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.db"


@pytest.fixture(params=[12, 60], ids=["few", "more"])
def licensed(request, client, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(list_views, "PAGE_SIZE", 5)
    admin = MembershipFactory()
    client.force_login(admin.user)
    org = admin.organization
    version = ProductVersionFactory()
    registration = SupportRegistrationFactory(organization=org)
    field = CustomField.objects.create(organization=org, name="PO")
    licenses = [
        LicenseFactory(owner=org, version=version, registration=registration)
        for _ in range(request.param)
    ]
    CustomFieldValue.objects.bulk_create(
        [
            CustomFieldValue(license=lic, field=field, value=f"PO-{i}")
            for i, lic in enumerate(licenses)
        ]
    )
    other = MembershipFactory()
    for _ in range(3):
        theirs = LicenseFactory(owner=other.organization, version=version)
        LicenseShare.objects.create(license=theirs, email=admin.user.email, user=admin.user)
    return request.param


# What a page takes today (the session, the user with its memberships, custom fields, shares,
# count, the page's rows, their custom values, and the filter form's versions with their
# products, one query), independent of the number of licenses. A page asked for by its number
# alone reads its ids before its rows: one more.
LIST_BOUND = 8
BY_NUMBER_BOUND = LIST_BOUND + 1
SEARCH_BOUND = LIST_BOUND + 3  # matching registrations, custom values and serials


@pytest.mark.parametrize(
    ("params", "bound"),
    [
        ({}, LIST_BOUND),
        ({"page": "2", "sort": "-maintenance"}, BY_NUMBER_BOUND),
        # Past the end: the empty page's ids, the count, then the last page.
        ({"page": "9999", "sort": "product"}, BY_NUMBER_BOUND + 1),
        ({"q": "PO-1", "include": "all"}, SEARCH_BOUND),
        # No match: no count (the ids tell it), and the empty state's one question.
        ({"q": "zzz-nothing"}, SEARCH_BOUND),
    ],
)
def test_list_pages(client, licensed, django_assert_max_num_queries, params, bound) -> None:  # type: ignore[no-untyped-def]
    with django_assert_max_num_queries(bound):
        response = client.get(reverse("license-list"), params)
    assert response.status_code == 200


def test_export(client, licensed, django_assert_max_num_queries) -> None:  # type: ignore[no-untyped-def]
    with django_assert_max_num_queries(10):
        response = client.get(reverse("license-export", args=["csv"]))
        body = b"".join(response.streaming_content)
    assert body.count(b"\n") == licensed + 3 + 1


def test_next_page_by_cursor(client, licensed, django_assert_max_num_queries) -> None:  # type: ignore[no-untyped-def]
    first = client.get(reverse("license-list"), {"sort": "-maintenance"})
    assert first.context["page"].next_cursor
    params = {"sort": "-maintenance", "page": "2", "after": first.context["page"].next_cursor}
    with django_assert_max_num_queries(LIST_BOUND):
        response = client.get(reverse("license-list"), params)
    assert response.status_code == 200
    assert not {r["license"].pk for r in response.context["rows"]} & {
        r["license"].pk for r in first.context["rows"]
    }


@postgres_only()
@pytest.mark.django_db
def test_trigram_indexes_merge_their_pending_lists_at_one_megabyte() -> None:
    """Migration 0013: a search reads at most 1 MB of pending entries; bulk inserts merge less."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, c.reloptions FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            " WHERE i.indrelid = 'licensing_license'::regclass AND c.relname LIKE %s",
            ["%trgm"],
        )
        options = dict(cursor.fetchall())
    assert set(options) == {
        "licensing_license_key_trgm",
        "licensing_license_source_ref_trgm",
        "licensing_license_host_id_trgm",
    }
    assert all(value == ["gin_pending_list_limit=1024"] for value in options.values())


@postgres_only()
@pytest.mark.django_db
def test_the_append_heavy_tables_carry_no_index_nothing_reads() -> None:
    """Migrations licensing 0014 / portal 0007: no pattern-ops twin of an index (nothing runs a
    prefix LIKE), no index on the owner alone (every license index starts with it)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i"
            " JOIN pg_class c ON c.oid = i.indexrelid"
            " WHERE i.indrelid IN ('licensing_license'::regclass, 'portal_auditevent'::regclass)"
        )
        definitions = dict(cursor.fetchall())
    assert not [name for name, sql in definitions.items() if "pattern_ops" in sql]
    assert not [sql for sql in definitions.values() if sql.endswith("btree (owner_id)")]
    assert "UNIQUE" in definitions["licensing_license_key_unique"]
    assert definitions["portal_auditevent_action"].endswith("btree (action)")


def test_a_license_key_is_still_unique() -> None:
    from django.db import IntegrityError, transaction

    from licensing.models import License
    from tests.licensing.factories import LicenseFactory

    first, second = LicenseFactory(), LicenseFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        License.objects.filter(pk=second.pk).update(key=first.key)
