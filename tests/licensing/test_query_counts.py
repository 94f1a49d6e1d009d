"""Pages issue a bounded number of SQL queries."""

from __future__ import annotations

import pytest
from django.urls import reverse

from licensing.models import License
from tests.licensing.factories import SerialNumberFactory, SupportRegistrationFactory
from tests.licensing.wizard import post_step, walk
from tests.portal.factories import MembershipFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def member(client):  # type: ignore[no-untyped-def]
    membership = MembershipFactory()
    client.force_login(membership.user)
    return membership


def test_dashboard(client, member, django_assert_max_num_queries) -> None:  # type: ignore[no-untyped-def]
    with django_assert_max_num_queries(8):
        assert client.get(reverse("dashboard")).status_code == 200


def test_wizard_steps(client, member, django_assert_max_num_queries) -> None:  # type: ignore[no-untyped-def]
    for _ in range(5):
        SupportRegistrationFactory(organization=member.organization)
    serial = SerialNumberFactory()
    with django_assert_max_num_queries(10):
        client.get(reverse("get-a-key"))
    with django_assert_max_num_queries(16):
        post_step(client, "serial", {"serial": serial.code})


def test_confirm_and_result(client, member, django_assert_max_num_queries) -> None:  # type: ignore[no-untyped-def]
    serial = SerialNumberFactory()
    walk(client, serial.code, confirm=False)
    with django_assert_max_num_queries(40):
        response = post_step(client, "confirm")
    with django_assert_max_num_queries(10):
        assert client.get(response["Location"]).status_code == 200
    license = License.objects.get()
    with django_assert_max_num_queries(8):
        client.get(reverse("license-file", kwargs={"pk": license.pk}))


def test_members_page(client, member, django_assert_max_num_queries) -> None:  # type: ignore[no-untyped-def]
    for _ in range(20):
        MembershipFactory(organization=member.organization, role="member")
    with django_assert_max_num_queries(10):
        assert client.get(reverse("members")).status_code == 200
