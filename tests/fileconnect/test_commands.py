"""`releases add-file|list|withdraw|restore|seed-demo` and `verify_download`, and the commands
the Verify panel tells customers to run."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tracemalloc
from datetime import date
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from fileconnect.integrity import CHUNK_SIZE, signature_valid
from fileconnect.models import Release, ReleaseFile
from fileconnect.services import release_file_withdraw
from licensing.signing import create_signing_key, get_public_key, public_key_pem
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
    call_command(*args, stdout=out)
    return out.getvalue()


def test_add_file_streams_checksums_and_signs(version, tmp_path, fileconnect_root) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "setup-14.3.exe"
    with path.open("wb") as handle:
        for _ in range(24):
            handle.write(os.urandom(CHUNK_SIZE))
    expected = hashlib.sha256(path.read_bytes()).hexdigest()
    tracemalloc.start()
    try:
        out = run(
            "releases",
            "add-file",
            "--product",
            "SEP-ENT",
            "--version",
            "14.3",
            "--platform",
            "Windows x64",
            "--language",
            "pt-BR",
            "--notes",
            "General availability",
            str(path),
        )
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Never the whole 24 MiB file in memory: a few chunks at most.
    assert peak < 4 * CHUNK_SIZE, peak
    added = ReleaseFile.objects.get()
    assert f"id: {added.pk}\n" in out and f"sha256: {expected}\n" in out
    assert (added.size, added.sha256, added.platform, added.language) == (
        24 * CHUNK_SIZE,
        expected,
        "Windows x64",
        "pt-BR",
    )
    assert added.display_name == "setup-14.3.exe"
    assert (fileconnect_root / added.storage_name).read_bytes() == path.read_bytes()
    assert signature_valid(
        sha256_hex=expected, signature_b64=added.signature, public_key=get_public_key()
    )
    release = added.release
    assert (release.version, release.released_on, release.notes) == (
        version,
        date(2025, 3, 1),
        "General availability",
    )
    assert AuditEvent.objects.filter(action="release.file_added", object_id=str(added.pk)).exists()
    # A second file joins the same release.
    second = tmp_path / "setup.tar.gz"
    second.write_bytes(b"linux")
    run("releases", "add-file", "--product", "SEP-ENT", "--version", "14.3", "--platform", "Linux",
        "--name", "sep-14.3.tar.gz", str(second))  # fmt: skip
    assert Release.objects.count() == 1
    assert ReleaseFile.objects.get(platform="Linux").display_name == "sep-14.3.tar.gz"


def test_add_file_bad_input(version, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "x.bin"
    path.write_bytes(b"x")
    base = ["releases", "add-file", "--version", "14.3", "--platform", "Linux"]
    with pytest.raises(CommandError, match=r"No version 14\.3 of product NOPE"):
        run(*base, "--product", "NOPE", str(path))
    with pytest.raises(CommandError, match="No file at"):
        run(*base, "--product", "SEP-ENT", str(tmp_path / "missing.bin"))
    with pytest.raises(CommandError, match="Name the platform"):
        run("releases", "add-file", "--product", "SEP-ENT", "--version", "14.3", "--platform",
            "  ", str(path))  # fmt: skip
    # Longer than their columns: a DataError (500) on PostgreSQL, now the limit in words.
    with pytest.raises(CommandError, match="The file name has 201 characters: rename the file"):
        run(*base, "--product", "SEP-ENT", "--name", "n" * 201, str(path))
    with pytest.raises(
        CommandError, match="The platform has 61 characters: shorten it to at most 60"
    ):
        run("releases", "add-file", "--product", "SEP-ENT", "--version", "14.3", "--platform",
            "P" * 61, str(path))  # fmt: skip
    with pytest.raises(CommandError, match="The language has 41 characters"):
        run(*base, "--product", "SEP-ENT", "--language", "L" * 41, str(path))
    assert not ReleaseFile.objects.exists()


def test_failed_record_removes_the_stored_copy(version, tmp_path, fileconnect_root) -> None:  # type: ignore[no-untyped-def]
    release = Release.objects.create(version=version, withdrawn_at="2026-01-01T00:00Z")
    from fileconnect.services import FileConnectError

    with pytest.raises(FileConnectError, match="withdrawn"):
        add_file(version, b"abc", release=release)
    assert not [p for p in fileconnect_root.rglob("*") if p.is_file()]


def test_list_withdraw_restore(version) -> None:  # type: ignore[no-untyped-def]
    added = add_file(version, b"abc", name="a.exe")
    listing = run("releases", "list", "--product", "SEP-ENT")
    assert f"Release {added.release_id}: Endpoint Protection 14.3" in listing
    assert "a.exe" in listing and added.sha256 in listing
    assert "withdrawn" in run("releases", "withdraw", str(added.release_id))
    assert "(withdrawn)" in run("releases", "list")
    with pytest.raises(CommandError, match="already withdrawn"):
        run("releases", "withdraw", str(added.release_id))
    assert "restored" in run("releases", "restore", str(added.release_id))
    with pytest.raises(CommandError, match="No release with id 999"):
        run("releases", "withdraw", "999")
    assert AuditEvent.objects.filter(action="release.withdrawn").count() == 1
    assert AuditEvent.objects.filter(action="release.restored").count() == 1


def test_seed_demo_is_idempotent(django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    run("seed_demo")
    first = run("releases", "seed-demo")
    count = ReleaseFile.objects.count()
    assert count == 7 and "7 demo file(s) added" in first
    assert "0 demo file(s) added" in run("releases", "seed-demo")
    assert ReleaseFile.objects.count() == count
    sha = {f.display_name: f.sha256 for f in ReleaseFile.objects.all()}
    assert len(set(sha.values())) == 7  # each demo file differs


def test_seed_demo_needs_the_catalog() -> None:
    with pytest.raises(CommandError, match="seed_demo"):
        run("releases", "seed-demo")


# -- verify_download ---------------------------------------------------------------------------


def test_verify_download_ok_by_checksum_and_by_id(version, tmp_path) -> None:  # type: ignore[no-untyped-def]
    added = add_file(version, b"payload" * 1000, name="p.bin")
    path = tmp_path / "p.bin"
    path.write_bytes(b"payload" * 1000)
    out = run("verify_download", str(path))
    assert out.startswith(f"OK: {path} is release file {added.pk} (p.bin")
    assert "signature valid" in out
    assert f"release file {added.pk}" in run(
        "verify_download", str(path), "--file-id", str(added.pk)
    )


def test_verify_download_mismatches_exit_non_zero(version, tmp_path, settings) -> None:  # type: ignore[no-untyped-def]
    added = add_file(version, b"payload" * 1000, name="p.bin")
    altered = tmp_path / "p.bin"
    altered.write_bytes(b"payload" * 999 + b"PAYLOAD")
    with pytest.raises(CommandError, match="no release file has the SHA-256"):
        run("verify_download", str(altered))
    with pytest.raises(CommandError) as mismatch:
        run("verify_download", str(altered), "--file-id", str(added.pk))
    message = str(mismatch.value)
    assert message.startswith("MISMATCH") and "SHA-256 is" in message
    assert "signature does not verify" in message
    truncated = tmp_path / "short.bin"
    truncated.write_bytes(b"payload" * 10)
    with pytest.raises(CommandError, match=f"size is 70 bytes, expected {added.size}"):
        run("verify_download", str(truncated), "--file-id", str(added.pk))
    with pytest.raises(CommandError, match="No release file with id 999999"):
        run("verify_download", str(altered), "--file-id", "999999")
    with pytest.raises(CommandError, match="No file at"):
        run("verify_download", str(tmp_path / "none"))
    # A signature made with another key (the record was forged, or the key rotated).
    good = tmp_path / "good.bin"
    good.write_bytes(b"payload" * 1000)
    other_key = tmp_path / "other.pem"
    create_signing_key(other_key)
    pem = tmp_path / "other-public.pem"
    from licensing.signing import load_signing_key

    pem.write_text(public_key_pem(load_signing_key(other_key).public_key()))
    with pytest.raises(CommandError, match="signature was made with key"):
        run("verify_download", str(good), "--public-key", str(pem))


def test_verify_download_exit_status_from_the_shell(version, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`manage.py verify_download` run as a program: status 1 and one clear line on stderr."""
    with pytest.raises(SystemExit) as exit_info:
        from django.core.management import ManagementUtility

        ManagementUtility(["manage.py", "verify_download", str(tmp_path / "nothing")]).execute()
    assert exit_info.value.code == 1


# -- the Verify panel's commands, run for real --------------------------------------------------


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_verify_panel_commands_work_with_sha256sum_openssl_and_python(
    client, version, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    customer = member()
    license = license_of(customer, version, start=date(2025, 1, 1), end=date(2026, 1, 1))
    content = os.urandom(300_000)
    added = add_file(version, content, name="sep 14.3 (x64).exe")
    client.force_login(customer.user)
    downloaded = body(client.get(link_for(client, license, added)))
    assert downloaded == content
    workdir = tmp_path / "customer"
    workdir.mkdir()
    (workdir / added.display_name).write_bytes(downloaded)
    checksum, save_key, openssl, python = panel_commands(
        license_page(client, license).content.decode(), added.pk
    )

    def sh(script: str) -> subprocess.CompletedProcess[str]:
        return run_pasted(script, workdir)

    assert sh(checksum).stdout.strip() == f"{added.display_name}: OK"
    assert sh(save_key).returncode == 0
    assert (workdir / "portal-signing-key.pem").read_text().strip() == public_key_pem().strip()
    verified = sh(openssl)
    assert verified.returncode == 0, verified.stderr
    assert "Signature Verified Successfully" in verified.stdout
    python_check = sh(python)
    assert python_check.returncode == 0, python_check.stderr
    assert python_check.stdout.strip() == "Signature OK"
    # The same commands catch an altered file.
    (workdir / added.display_name).write_bytes(content[:-1] + b"\x00")
    assert sh(checksum).returncode != 0
    assert sh(openssl).returncode != 0
    assert sh(python).returncode != 0


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
@pytest.mark.parametrize("stored_name", ["-rf.zip", "instalador versão ç.zip", "a'b $(x).zip"])
def test_verify_panel_commands_work_for_any_stored_name(
    client, version, tmp_path, stored_name
) -> None:  # type: ignore[no-untyped-def]
    # `openssl dgst -sha256 -binary -rf.zip` read the name as an option. Names with spaces or
    # quotes are stored by earlier uploads and by nothing today (uploads are made safe), but the
    # commands must work for whatever is stored.
    customer = member()
    license = license_of(customer, version, start=date(2025, 1, 1), end=date(2026, 1, 1))
    content = os.urandom(5_000)
    added = add_file(version, content, name="x.zip")
    ReleaseFile.objects.filter(pk=added.pk).update(display_name=stored_name)
    client.force_login(customer.user)
    workdir = tmp_path / "customer"
    workdir.mkdir()
    (workdir / stored_name).write_bytes(body(client.get(link_for(client, license, added))))
    checksum, save_key, openssl, python = panel_commands(
        license_page(client, license).content.decode(), added.pk
    )
    assert run_pasted(checksum, workdir).stdout.strip() == f"{stored_name}: OK"
    assert run_pasted(save_key, workdir).returncode == 0
    verified = run_pasted(openssl, workdir)
    assert verified.returncode == 0, verified.stderr
    assert "Signature Verified Successfully" in verified.stdout
    checked = run_pasted(python, workdir)
    assert checked.stdout.strip() == "Signature OK", checked.stderr
    # They check that very file: altered, each command fails.
    (workdir / stored_name).write_bytes(content[:-1] + b"\x00")
    for command in (checksum, openssl, python):
        assert run_pasted(command, workdir).returncode != 0


def test_add_file_refuses_a_name_django_cannot_save_under(version, tmp_path) -> None:  # type: ignore[no-untyped-def]
    # A SuspiciousFileOperation traceback before; now the reason and what to do.
    path = tmp_path / "installer.exe"
    path.write_bytes(b"x")
    args = ["--product", "SEP-ENT", "--version", "14.3", "--platform", "Linux", str(path)]
    with pytest.raises(CommandError, match="“\\$\\$\\$” cannot name a download: rename"):
        run("releases", "add-file", "--name", "$$$", *args)
    assert not ReleaseFile.objects.exists()


def test_a_withdrawn_file_is_listed_as_withdrawn(version) -> None:  # type: ignore[no-untyped-def]
    wrong = add_file(version, b"wrong", name="wrong.msi")
    add_file(version, b"good", name="good.msi")
    release_file_withdraw(release_file=wrong, actor=None)
    lines = run("releases", "list").splitlines()
    assert [line.endswith("(withdrawn)") for line in lines if ".msi" in line] == [False, True]


def test_verify_panel_names_the_public_key_page(client, version) -> None:  # type: ignore[no-untyped-def]
    customer = member()
    license = license_of(customer, version, start=date(2025, 1, 1), end=date(2026, 1, 1))
    add_file(version, b"x")
    client.force_login(customer.user)
    page = license_page(client, license).content.decode()
    assert "Verify your download" in page and f'href="{reverse("signing-key")}"' in page
