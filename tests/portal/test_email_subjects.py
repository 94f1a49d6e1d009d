"""A subject is plain text: names in it are written as entered, not HTML-escaped."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail
from django.utils import translation

from licensing.services import license_email_again
from tests.licensing.factories import LicenseFactory
from tests.portal.factories import MembershipFactory

pytestmark = pytest.mark.django_db


def test_a_product_name_with_an_ampersand_or_quotes_is_not_escaped_in_the_subject(
    django_capture_on_commit_callbacks: Any,
) -> None:
    admin = MembershipFactory()
    license = LicenseFactory(owner=admin.organization)
    product = license.version.product
    product.name = 'R&D "Tools" <Pro>'
    product.save(update_fields=["name"])
    # In English whatever language an earlier test left active in this thread.
    with translation.override("en"), django_capture_on_commit_callbacks(execute=True):
        license_email_again(license=license, actor=admin.user)
    message = mail.outbox[-1]
    assert message.subject == (
        f'[Licensing Portal] Your license key for R&D "Tools" <Pro> {license.version.version}'
    )
    # The HTML body still escapes what it shows.
    assert "R&amp;D &quot;Tools&quot; &lt;Pro&gt;" in message.alternatives[0][0]
