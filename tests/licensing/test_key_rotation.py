"""`manage.py signing_key rotate`: a new key signs, the retired one stays published by key ID,
and license files signed before keep verifying."""

from __future__ import annotations

import contextlib
import logging
import stat
import subprocess
import sys
import threading
from io import StringIO
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse

from licensing import signing
from licensing.licensefile import LicenseSignatureError, verify_license_file
from licensing.services import license_file_text, signing_key_rotate
from portal.models import AuditEvent
from tests.concurrency import run_concurrently
from tests.conftest import postgres_only
from tests.licensing.factories import LicenseFactory

if TYPE_CHECKING:
    from pytest_django.fixtures import Settings

pytestmark = pytest.mark.django_db


def _rotate(*args: str) -> str:
    out = StringIO()
    call_command("signing_key", "rotate", *args, stdout=out)
    return out.getvalue()


def test_rotate_retires_the_public_key_and_signs_with_a_new_one(own_signing_key: Path) -> None:
    old_key_id = signing.key_id()
    out = _rotate()
    new_key_id = signing.key_id()
    assert new_key_id != old_key_id
    retired = own_signing_key.parent / "retired-signing-keys" / f"{old_key_id}.pem"
    assert retired.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    assert stat.S_IMODE(own_signing_key.stat().st_mode) == 0o600
    assert new_key_id in out and old_key_id in out and str(retired) in out
    assert "without a restart" in out and "releases resign" in out
    assert [(key.key_id, key.current) for key in signing.published_keys()] == [
        (new_key_id, True),
        (old_key_id, False),
    ]
    event = AuditEvent.objects.get(action="signing_key.rotated")
    assert event.details["retired_key_id"] == old_key_id
    assert event.details["key_id"] == new_key_id
    # The private key is gone: only its public half was kept.
    assert "PRIVATE" not in "".join(p.read_text() for p in retired.parent.iterdir())


def test_license_files_signed_before_verify_with_the_retired_key_they_name(
    own_signing_key: Path, tmp_path: Path
) -> None:
    license = LicenseFactory()
    emailed = license_file_text(license)
    signed_by = signing.key_id()
    _rotate()
    # The key the file names (meta.keyId) is published, retired, and verifies it.
    retired = signing.published_key(signed_by)
    assert retired is not None and not retired.current
    payload = verify_license_file(emailed, license_key=license.key, public_key=retired.public_key)
    assert payload["meta"]["keyId"] == signed_by
    assert payload["data"]["attributes"]["key"] == license.key
    with pytest.raises(LicenseSignatureError):
        verify_license_file(emailed, license_key=license.key, public_key=signing.get_public_key())
    # New files are signed with the current key and name it.
    fresh = license_file_text(license)
    payload = verify_license_file(
        fresh, license_key=license.key, public_key=signing.get_public_key()
    )
    assert payload["meta"]["keyId"] == signing.key_id() != signed_by
    # `verify_license` finds the key that signed each file without being given one.
    for text, kid in ((emailed, signed_by), (fresh, signing.key_id())):
        path = tmp_path / f"{kid}.lic"
        path.write_text(text)
        out = StringIO()
        call_command("verify_license", str(path), "--key", license.key, stdout=out)
        assert f"Signed by key {kid}." in out.getvalue()


def test_the_published_keys_list_both_key_ids(own_signing_key: Path) -> None:
    old_key_id = signing.key_id()
    _rotate()
    new_key_id = signing.key_id()
    client = Client()
    keys = client.get(reverse("signing-key-well-known")).json()["keys"]
    # The current key stays first, as it was when it was the only one.
    assert [(key["kid"], key["status"]) for key in keys] == [
        (new_key_id, "current"),
        (old_key_id, "retired"),
    ]
    assert keys[1]["hex"] == signing.published_key(old_key_id).hex  # type: ignore[union-attr]
    chosen = client.get(reverse("signing-key-well-known"), {"kid": old_key_id}).json()["keys"]
    assert [key["kid"] for key in chosen] == [old_key_id]
    unknown = client.get(reverse("signing-key-well-known"), {"kid": "nope"})
    assert unknown.status_code == 404
    assert unknown.json()["keys"] == [] and "No signing key with ID nope" in unknown.json()["error"]
    page = client.get(reverse("signing-key")).content.decode()
    assert f'data-key-id="{new_key_id}"' in page and f'data-key-id="{old_key_id}"' in page
    assert "Retired key" in page
    one = client.get(reverse("signing-key"), {"kid": old_key_id.upper()}).content.decode()
    assert f'data-key-id="{old_key_id}"' in one and f'data-key-id="{new_key_id}"' not in one
    missing = client.get(reverse("signing-key"), {"kid": "<b>x</b>"})
    assert missing.status_code == 404
    assert "No signing key with ID &lt;b&gt;x&lt;/b&gt;" in missing.content.decode()


def test_two_rotations_publish_every_retired_key(own_signing_key: Path) -> None:
    first = signing.key_id()
    _rotate()
    second = signing.key_id()
    _rotate()
    current, *retired = signing.published_keys()
    assert current.key_id == signing.key_id() and current.current
    assert {key.key_id for key in retired} == {first, second}


def test_the_retired_keys_directory_can_be_configured(
    own_signing_key: Path, settings: Settings, tmp_path: Path
) -> None:
    settings.LICENSE_SIGNING_RETIRED_KEYS_DIR = tmp_path / "published"
    old_key_id = signing.key_id()
    _rotate()
    assert (tmp_path / "published" / f"{old_key_id}.pem").is_file()
    assert signing.published_key(old_key_id) is not None


def test_rotate_without_a_key_says_to_create_one(settings: Settings, tmp_path: Path) -> None:
    settings.LICENSE_SIGNING_KEY_FILE = tmp_path / "missing.pem"
    with pytest.raises(CommandError, match="signing_key create"):
        _rotate()
    assert list(tmp_path.iterdir()) == []
    assert not AuditEvent.objects.filter(action="signing_key.rotated").exists()


def test_a_damaged_retired_key_file_hides_no_other_key(
    own_signing_key: Path, caplog: pytest.LogCaptureFixture
) -> None:
    old_key_id = signing.key_id()
    _rotate()
    (own_signing_key.parent / "retired-signing-keys" / "junk.pem").write_text("not a key")
    with caplog.at_level(logging.ERROR, logger="licensing.signing"):
        ids = [key.key_id for key in signing.published_keys()]
    assert ids == [signing.key_id(), old_key_id]
    assert "junk.pem cannot be read" in caplog.text


# Another process holding the rotation's lock: a second `signing_key rotate` (a deploy script
# racing a person), the lock taken as the command takes it, until the test says stop.
HOLD_LOCK = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
sys.stdin.read()
"""


def test_a_rotation_under_way_in_another_process_refuses_a_second_one(
    own_signing_key: Path,
) -> None:
    before = own_signing_key.read_bytes()
    lock = own_signing_key.with_name(own_signing_key.name + ".lock")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(lock)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        with pytest.raises(CommandError, match="Another rotation of the signing key") as refused:
            _rotate()
        assert "Nothing was replaced" in str(refused.value)
        assert own_signing_key.read_bytes() == before
        assert not (own_signing_key.parent / "retired-signing-keys").exists()
        assert not AuditEvent.objects.filter(action="signing_key.rotated").exists()
    finally:
        holder.communicate("", timeout=10)  # closing its stdin ends it, and its lock
    old_key_id = signing.key_id()
    _rotate()  # the lock is free again
    assert signing.key_id() != old_key_id


@postgres_only()
@pytest.mark.django_db(transaction=True)
def test_two_rotations_at_once_leave_every_signing_key_published(
    own_signing_key: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two staff members rotating at once: both read the old key, and the second one's new key
    replaced the first one's unpublished (never retired), though it may have signed meanwhile.
    Both are held inside the rotation for up to 2 s, so without a lock they overlap."""
    inside = threading.Barrier(2)
    retire = signing.retire_public_key

    def retire_together(*args: Any) -> Path:
        with contextlib.suppress(threading.BrokenBarrierError):
            inside.wait(timeout=2)  # alone when the other one was refused
        return retire(*args)

    monkeypatch.setattr(signing, "retire_public_key", retire_together)
    old_key_id = signing.key_id()
    results = run_concurrently(
        [lambda: signing_key_rotate(actor=None, path=own_signing_key) for _ in range(2)]
    )
    rotations = [result for result in results if isinstance(result, signing.KeyRotation)]
    refusals = [result for result in results if isinstance(result, signing.RotationUnderWay)]
    assert (len(rotations), len(refusals)) == (1, 1), results
    assert (rotations[0].retired_key_id, rotations[0].key_id) == (old_key_id, signing.key_id())
    assert [(key.key_id, key.current) for key in signing.published_keys()] == [
        (rotations[0].key_id, True),
        (old_key_id, False),
    ]
    assert AuditEvent.objects.filter(action="signing_key.rotated").count() == 1
