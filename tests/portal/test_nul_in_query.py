"""A NUL in a query string is dropped before any view reads it.

PostgreSQL's text refuses NUL, and psycopg raises DataError before the query is sent: every
admin list filter (?status__exact=%00, 23 of them) was a 500 for the staff who opened an edited
link. The customer pages had the same exposure wherever a parameter reaches a query.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib import admin
from django.contrib.admin.filters import FieldListFilter, ListFilter
from django.contrib.admin.utils import get_fields_from_path
from django.http import HttpResponse
from django.test import RequestFactory
from django.urls import reverse

from tests.conftest import postgres_only
from tests.licensing.factories import LicenseFactory
from tests.portal.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

MODEL_ADMINS = sorted(
    (f"{model._meta.app_label}.{model._meta.model_name}", model_admin)
    for model, model_admin in admin.site._registry.items()
)


def _filter_parameters(model_admin: admin.ModelAdmin, request: Any) -> list[str]:
    """The query parameters each of the changelist's filters reads, as ChangeList builds them,
    whether or not the filter shows (a related filter with one choice is hidden, not inert)."""
    model = model_admin.model
    names: list[str] = []
    for item in model_admin.get_list_filter(request):
        spec: ListFilter
        if isinstance(item, type) and issubclass(item, ListFilter):
            spec = item(request, {}, model, model_admin)  # type: ignore[call-arg]
        else:
            field_path, filter_class = item if isinstance(item, tuple) else (item, None)
            field = get_fields_from_path(model, field_path)[-1]
            create = filter_class or FieldListFilter.create
            spec = create(field, request, {}, model, model_admin, field_path=field_path)
        names += spec.expected_parameters()  # type: ignore[attr-defined]
    return names


@postgres_only()
@pytest.mark.parametrize(("label", "model_admin"), MODEL_ADMINS, ids=[m[0] for m in MODEL_ADMINS])
def test_a_nul_in_any_admin_list_filter_is_not_a_server_error(client, label, model_admin) -> None:  # type: ignore[no-untyped-def]
    superuser = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(superuser)
    client.raise_request_exception = False  # a 500 is counted, not raised
    request = RequestFactory().get("/")
    request.user = superuser
    url = reverse(
        f"admin:{model_admin.model._meta.app_label}_{model_admin.model._meta.model_name}_changelist"
    )
    failed = []
    for name in _filter_parameters(model_admin, request):
        response = client.get(url, {name: "\x00"})
        if response.status_code >= 500:
            failed.append(name)
    assert failed == [], f"{label}: {failed}"


def test_the_names_and_values_of_the_query_lose_their_nuls() -> None:
    seen: dict[str, Any] = {}

    def view(request: Any) -> HttpResponse:
        seen["GET"] = request.GET
        return HttpResponse()

    from portal.middleware import NulQueryMiddleware

    request = RequestFactory().get("/licenses/?q=ab%00c&st%00atus=a&status=b%00&sort=name")
    NulQueryMiddleware(view)(request)

    query = seen["GET"]
    assert query.getlist("q") == ["abc"]
    assert query.getlist("status") == ["a", "b"]  # the two names merge, in their order
    assert query.getlist("sort") == ["name"]
    assert not query._mutable


def test_a_query_without_nul_is_the_request_s_own() -> None:
    seen: dict[str, Any] = {}

    def view(request: Any) -> HttpResponse:
        seen["GET"] = request.GET
        return HttpResponse()

    from portal.middleware import NulQueryMiddleware

    request = RequestFactory().get("/licenses/?q=abc")
    original = request.GET
    NulQueryMiddleware(view)(request)
    assert seen["GET"] is original


def test_a_customer_list_searches_the_text_around_a_nul(client) -> None:  # type: ignore[no-untyped-def]
    member = MembershipFactory()
    acme = LicenseFactory(owner=member.organization, registration__company="Acme Corp")
    other = LicenseFactory(owner=member.organization, registration__company="Globex")
    client.force_login(member.user)

    response = client.get(reverse("license-list"), {"q": "Ac\x00me"})

    page = response.content.decode()
    assert response.status_code == 200
    assert acme.key in page and other.key not in page
