"""After the signing key is rotated, files signed before still verify with what the downloads
page gives (the retired key they name), and `releases resign` signs them with the new key."""

from __future__ import annotations

import shutil
from datetime import date
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from fileconnect.integrity import signature_valid
from fileconnect.models import ReleaseFile
from licensing.signing import get_public_key, key_id, published_key
from portal.models import AuditEvent
from tests.fileconnect.factories import add_file, license_of, member, version_of
from tests.fileconnect.pages import body, license_page, link_for, panel_commands, run_pasted
from tests.licensing.factories import ProductFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def version():  # type: ignore[no-untyped-def]
    return version_of(
        ProductFactory(sku="SEP-ENT", name="Endpoint Protection"), "14.3", date(2025, 3, 1)
    )


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_a_file_signed_before_a_rotation_verifies_with_the_panels_commands(
    client, version, own_signing_key, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    customer = member()
    license = license_of(customer, version, start=date(2025, 1, 1), end=date(2026, 1, 1))
    before = add_file(version, b"old installer\n" * 100, name="before.exe")
    old_key_id = key_id()
    run("signing_key", "rotate")
    after = add_file(version, b"new installer\n" * 100, name="after.exe")
    assert before.key_id == old_key_id
    assert after.key_id == key_id() != old_key_id
    client.force_login(customer.user)
    page = license_page(client, license).content.decode()
    for release_file in (before, after):
        workdir = tmp_path / release_file.display_name
        workdir.mkdir()
        downloaded = body(client.get(link_for(client, license, release_file)))
        (workdir / release_file.display_name).write_bytes(downloaded)
        checksum, save_key, openssl, python = panel_commands(page, release_file.pk)
        assert run_pasted(checksum, workdir).returncode == 0
        assert run_pasted(save_key, workdir).returncode == 0
        # Step 2 saves the key the file names, not merely the current one.
        published = published_key(release_file.key_id)
        assert published is not None
        assert (workdir / "portal-signing-key.pem").read_text().strip() == published.pem.strip()
        checked = run_pasted(python, workdir)
        assert checked.returncode == 0, checked.stderr
        assert checked.stdout.strip() == "Signature OK"
        if shutil.which("openssl"):
            verified = run_pasted(openssl, workdir)
            assert verified.returncode == 0, verified.stderr
            assert "Signature Verified Successfully" in verified.stdout


def test_the_panel_says_so_when_the_files_key_is_not_published(client, version) -> None:  # type: ignore[no-untyped-def]
    customer = member()
    license = license_of(customer, version, start=date(2025, 1, 1), end=date(2026, 1, 1))
    orphan = add_file(version, name="orphan.exe")
    ReleaseFile.objects.filter(pk=orphan.pk).update(key_id="00000000000000ff")
    client.force_login(customer.user)
    page = license_page(client, license).content.decode()
    item = page[page.index(f'data-file-id="{orphan.pk}"') :]
    item = item[: item.index("</li>")]
    assert 'data-testid="key-unknown"' in item
    assert "00000000000000ff" in item and "cannot be checked here" in item
    # The checksum still checks; no command that could only print a verification failure.
    commands = panel_commands(page, orphan.pk)
    assert len(commands) == 1 and "sha256sum --check" in commands[0]


def test_verify_download_uses_the_key_that_signed_the_file(
    version, own_signing_key, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    content = b"installer\n" * 50
    added = add_file(version, content)
    run("signing_key", "rotate")
    local = tmp_path / "setup.exe"
    local.write_bytes(content)
    out = run("verify_download", str(local))
    assert out.startswith("OK:") and f"signature valid for key {added.key_id}" in out


def test_resign_signs_files_of_the_retired_key_with_the_current_one(
    version, own_signing_key
) -> None:  # type: ignore[no-untyped-def]
    signed_before = add_file(version, name="a.exe")
    tampered = add_file(version, b"other bytes\n", name="b.exe")
    # A stored digest that the signature does not cover must not get a fresh signature.
    ReleaseFile.objects.filter(pk=tampered.pk).update(sha256="0" * 64)
    old_key_id = signed_before.key_id
    run("signing_key", "rotate")
    out = StringIO()
    with pytest.raises(CommandError, match="not signed again"):
        call_command("releases", "resign", stdout=out, stderr=StringIO())
    assert "1 file(s) signed again, 1 refused." in out.getvalue()
    signed_before.refresh_from_db()
    tampered.refresh_from_db()
    assert signed_before.key_id == key_id() != old_key_id
    assert signature_valid(
        sha256_hex=signed_before.sha256,
        signature_b64=signed_before.signature,
        public_key=get_public_key(),
    )
    assert tampered.key_id == old_key_id
    event = AuditEvent.objects.get(action="release.file_resigned")
    assert event.object_id == str(signed_before.pk)
    assert event.details["retired_key_id"] == old_key_id
    assert event.details["key_id"] == key_id()
    # Nothing left to do: a second run changes nothing and succeeds.
    ReleaseFile.objects.filter(pk=tampered.pk).delete()
    assert "0 file(s) signed again, 0 refused." in run("releases", "resign")


def test_resign_refuses_a_file_whose_key_is_not_published(version, own_signing_key: Path) -> None:  # type: ignore[no-untyped-def]
    orphan = add_file(version)
    ReleaseFile.objects.filter(pk=orphan.pk).update(key_id="00000000000000ff")
    with pytest.raises(CommandError, match="not signed again"):
        run("releases", "resign")
    orphan.refresh_from_db()
    assert orphan.key_id == "00000000000000ff"
    assert not AuditEvent.objects.filter(action="release.file_resigned").exists()
