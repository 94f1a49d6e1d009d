"""Defence in depth: Content-Security-Policy and Permissions-Policy on every response, no cache
keeps a page with a key, request IDs in logs and on the error page, keys masked in logs, no
whole key in a URL the portal makes, and an append-only audit table on PostgreSQL."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest
from django.db import DatabaseError, connection, transaction
from django.test import Client
from django.urls import reverse

from licensing.models import License
from portal.logs import MaskSecretsFilter, mask_secrets
from portal.models import AuditEvent, User
from portal.services import audit_record
from tests.conftest import postgres_only
from tests.licensing.factories import LicenseFactory, SerialNumberFactory
from tests.licensing.wizard import walk
from tests.portal.factories import MembershipFactory, UserFactory
from tests.processes import ROOT
from tests.vouchers.factories import vouchers
from tests.vouchers.wizard import walk as voucher_walk
from vouchers.models import VoucherConversion

pytestmark = pytest.mark.django_db


@pytest.fixture
def member(client: Client) -> Any:
    membership = MembershipFactory()
    client.force_login(membership.user)
    return membership


# ---------------------------------------------------------------------------------------------
# Headers


@pytest.mark.parametrize(
    "url", ["/", "/accounts/login/", "/admin/login/", "/no-such-page/", "/signing-key/"]
)
def test_every_response_carries_csp_and_permissions_policy(url: str) -> None:
    response = Client().get(url)
    csp = response["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    assert "style-src 'self'" in csp and "'unsafe-inline'" not in csp
    assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
    assert "camera=()" in response["Permissions-Policy"]
    assert "geolocation=()" in response["Permissions-Policy"]


def test_logged_in_pages_carry_them_too(client: Client, member: Any) -> None:
    response = client.get(reverse("dashboard"))
    assert "Content-Security-Policy" in response and "Permissions-Policy" in response


INLINE = re.compile(
    r"<script(?![^>]*\bsrc=)[^>]*>"  # a script without src
    r"|<style\b"  # a style element
    r"|\sstyle=\""  # a style attribute
    r"|\son[a-z]+=\""  # an event handler attribute
    r"|javascript:",
    re.IGNORECASE,
)


def test_no_template_has_inline_script_style_or_handler() -> None:
    """The policy allows no inline code: every page's template must do without (emails are
    read in mail programs, not under the policy)."""
    offenders = [
        f"{path.relative_to(ROOT)}: {match.group(0)}"
        for path in (ROOT / "templates").rglob("*.html")
        if "emails" not in path.parts
        for match in INLINE.finditer(path.read_text())
    ]
    assert offenders == []


def _no_store(response: Any) -> bool:
    return "no-store" in response.get("Cache-Control", "")


def test_pages_and_files_with_a_full_key_are_never_stored(
    client: Client, member: Any, django_capture_on_commit_callbacks
) -> None:
    serial = SerialNumberFactory()
    result = walk(client, serial.code)
    license = License.objects.get()
    urls = [
        result["Location"],  # Get a key's result, also the version upgrade's result
        reverse("license-detail", kwargs={"pk": license.pk}),
        reverse("license-certificate", kwargs={"pk": license.pk}),
        reverse("license-certificate-pdf", kwargs={"pk": license.pk}),
        reverse("license-file", kwargs={"pk": license.pk}),
        reverse("license-list"),
        reverse("license-export", kwargs={"fmt": "csv"}),
    ]
    codes = [v.code for v in vouchers(2, quantity_per_voucher=1)]
    voucher_result = voucher_walk(client, "\n".join(codes))
    conversion = VoucherConversion.objects.get()
    urls += [
        voucher_result["Location"],
        reverse("voucher-conversion-zip", kwargs={"pk": conversion.pk}),
    ]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        assert _no_store(response), url


def test_the_public_signing_key_may_be_cached() -> None:
    response = Client().get(reverse("signing-key-well-known"))
    assert "public" in response["Cache-Control"] and not _no_store(response)


# ---------------------------------------------------------------------------------------------
# Request IDs and logs


def test_each_response_has_its_own_request_id(client: Client) -> None:
    first, second = client.get("/"), client.get("/")
    assert re.fullmatch(r"[0-9a-f]{32}", first["X-Request-ID"])
    assert first["X-Request-ID"] != second["X-Request-ID"]


def _console_handler() -> logging.Handler:
    (handler,) = [
        h
        for h in logging.getLogger().handlers
        if any(isinstance(f, MaskSecretsFilter) for f in h.filters)
    ]
    return handler


def _written(record: logging.LogRecord) -> str:
    """The line the configured console handler writes for a record (filters, then format)."""
    handler = _console_handler()
    copy = logging.makeLogRecord(record.__dict__)
    assert handler.filter(copy)
    return handler.format(copy)


def test_the_500_page_and_every_log_line_carry_the_request_id(member: Any, caplog) -> None:  # type: ignore[no-untyped-def]
    client = Client(raise_request_exception=False)
    client.force_login(member.user)
    from portal import views

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    original = views.render
    views.render = broken
    try:
        with caplog.at_level(logging.INFO):
            response = client.get(reverse("dashboard"))
    finally:
        views.render = original
    request_id = response["X-Request-ID"]
    assert response.status_code == 500
    assert request_id in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    (error,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert f"[{request_id}]" in _written(error)


def test_keys_and_codes_are_masked_in_what_get_a_key_logs(
    client: Client, member: Any, caplog
) -> None:  # type: ignore[no-untyped-def]
    serial = SerialNumberFactory()
    with caplog.at_level(logging.INFO):
        walk(client, serial.code)
    key = License.objects.get().key
    redeemed = [r for r in caplog.records if r.name == "licensing.services.issue"]
    assert redeemed, "the wizard logs the serial redeemed and the key it gave"
    written = "\n".join(_written(record) for record in caplog.records)
    for text in (caplog.text, written):
        assert key not in text and serial.code not in text
        assert key.replace("-", "") not in text
    assert "…" + key[-4:] in written and "…" + serial.code[-4:] in written
    # Each line carries the ID of the request that wrote it.
    assert re.search(r"\[[0-9a-f]{32}\] licensing\.services\.issue Serial …", written)


@pytest.mark.parametrize(
    ("text", "hidden"),
    [
        ("key ABCDE-FGHJK-MNPQR-STVWX-YZ012 issued", "ABCDE-FGHJK-MNPQR-STVWX-YZ012"),
        ("typed abcdefghjkmnpqrstvwxyz012 again", "abcdefghjkmnpqrstvwxyz012"),
        ("notification 7K3Q-D2XJ-9MNP-4T8R", "7K3Q-D2XJ-9MNP-4T8R"),
        ("GET /invitations/Qx_3v9-longtoken123/ 200", "Qx_3v9-longtoken123"),
        ("GET /licenses/shared/Zt7-abcdefghijk/ 404", "Zt7-abcdefghijk"),
    ],
)
def test_what_the_filter_masks(text: str, hidden: str) -> None:
    masked = mask_secrets(text)
    assert hidden not in masked and hidden[-4:] in masked


def test_ordinary_log_text_is_left_alone() -> None:
    text = "GET /licenses/6f1f0a39-5d8e-4d0e-9a57-0e8e8f0c1a2b/ 200 in 12 ms"
    assert mask_secrets(text) == text


# ---------------------------------------------------------------------------------------------
# URLs


def test_a_whole_key_typed_into_the_search_leaves_the_url(client: Client, member: Any) -> None:
    license = LicenseFactory(owner=member.organization)
    response = client.get(reverse("license-list"), {"q": license.key.lower(), "status": "active"})
    assert response.status_code == 302
    assert license.key.lower() not in response["Location"].lower()
    assert license.key.replace("-", "").lower() not in response["Location"].lower()
    page = client.get(response["Location"])
    assert [row["license"] for row in page.context["rows"]] == [license]
    links = re.findall(r'href="([^"]+)"', page.content.decode())
    assert not any(license.key in link or license.key.lower() in link for link in links)


# ---------------------------------------------------------------------------------------------
# The audit trail


@pytest.mark.postgres
@postgres_only()
def test_the_database_refuses_to_change_or_delete_audit_events() -> None:
    event = audit_record(action="test.recorded", details={"n": 1})
    for change in (
        lambda: AuditEvent.objects.filter(pk=event.pk).update(action="test.forged"),
        lambda: AuditEvent.objects.filter(pk=event.pk).delete(),
        lambda: connection.cursor().execute("UPDATE portal_auditevent SET details = '{}'"),
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            change()
    assert AuditEvent.objects.get(pk=event.pk).action == "test.recorded"


@pytest.mark.postgres
@postgres_only()
def test_deleting_a_user_keeps_their_audit_events() -> None:
    user = UserFactory()
    event = audit_record(action="test.recorded", actor=user)
    user.delete()
    event.refresh_from_db()
    assert event.actor is None and event.actor_email == user.email
    assert not User.objects.filter(pk=user.pk).exists()
