"""One name per live file of a release, whichever way a file gets it: the upload page, `manage.py
releases add-file`, a relabel or a restore. Only relabelling refused a sibling's name: two files
added under one name were offered side by side, and the Verify panel's commands (./NAME)
checked the wrong one."""

from __future__ import annotations

import importlib
from datetime import date
from io import StringIO
from pathlib import Path

import pytest
from django.apps import apps as django_apps
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, connection, transaction
from django.urls import reverse

from fileconnect.models import Release, ReleaseFile
from fileconnect.services import (
    FileConnectError,
    release_file_restore,
    release_file_withdraw,
)
from tests.conftest import postgres_only
from tests.fileconnect.factories import add_file, version_of
from tests.licensing.factories import ProductFactory

pytestmark = pytest.mark.django_db

TAKEN = "Another file of this release is already named setup.exe"


@pytest.fixture
def version():  # type: ignore[no-untyped-def]
    return version_of(ProductFactory(sku="NAM"), "3.0", date(2025, 6, 1))


def _stored(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()]


def test_adding_a_live_siblings_name_is_refused_and_nothing_is_kept(
    version, fileconnect_root
) -> None:  # type: ignore[no-untyped-def]
    first = add_file(version, b"one", name="setup.exe")
    with pytest.raises(FileConnectError, match=TAKEN):
        add_file(version, b"two", name="setup.exe", platform="Linux")  # the newest live release
    with pytest.raises(FileConnectError, match=TAKEN):
        add_file(version, b"two", name="setup.exe", release=first.release)
    assert list(ReleaseFile.objects.values_list("pk", flat=True)) == [first.pk]
    assert _stored(fileconnect_root) == [fileconnect_root / first.storage_name]


def test_a_withdrawn_files_name_or_another_releases_may_be_used(version) -> None:  # type: ignore[no-untyped-def]
    first = add_file(version, b"one", name="setup.exe")
    release_file_withdraw(release_file=first, actor=None)
    again = add_file(version, b"two", name="setup.exe")
    assert again.release_id == first.release_id
    other = Release.objects.create(version=version, released_on=date(2025, 7, 1))
    assert add_file(version, b"three", name="setup.exe", release=other).release == other


def test_upload_page_says_the_name_is_taken(admin_client, version, fileconnect_root) -> None:  # type: ignore[no-untyped-def]
    first = add_file(version, b"one", name="setup.exe")
    response = admin_client.post(
        reverse("admin:fileconnect_releasefile_add"),
        {
            "release": first.release_id,
            "platform": "Linux",
            "language": "",
            "upload": SimpleUploadedFile("setup.exe", b"two"),
        },
    )
    assert response.status_code == 200
    assert TAKEN in response.content.decode()
    assert ReleaseFile.objects.count() == 1
    assert len(_stored(fileconnect_root)) == 1


def test_add_file_command_says_the_name_is_taken(version, tmp_path) -> None:  # type: ignore[no-untyped-def]
    add_file(version, b"one", name="setup.exe")
    path = tmp_path / "setup.exe"
    path.write_bytes(b"two")
    with pytest.raises(CommandError, match=TAKEN):
        call_command(
            "releases",
            "add-file",
            "--product",
            "NAM",
            "--version",
            "3.0",
            "--platform",
            "Linux",
            str(path),
            stdout=StringIO(),
        )
    assert ReleaseFile.objects.count() == 1


def test_relabel_page_says_the_name_is_taken(admin_client, version) -> None:  # type: ignore[no-untyped-def]
    # The service refused it, but on the admin page that was a 500.
    add_file(version, b"one", name="setup.exe")
    second = add_file(version, b"two", name="setup-linux.tar.gz", platform="Linux")
    url = reverse("admin:fileconnect_releasefile_change", args=[second.pk])
    response = admin_client.post(
        url, {"display_name": "setup.exe", "platform": "Linux", "language": ""}
    )
    assert response.status_code == 200
    assert TAKEN in response.content.decode()
    second.refresh_from_db()
    assert second.display_name == "setup-linux.tar.gz"


def test_restoring_a_file_whose_name_was_reused_is_refused(admin_client, version) -> None:  # type: ignore[no-untyped-def]
    old = add_file(version, b"old", name="setup.exe")
    release_file_withdraw(release_file=old, actor=None)
    add_file(version, b"new", name="setup.exe")
    with pytest.raises(FileConnectError, match=TAKEN):
        release_file_restore(release_file=old, actor=None)
    response = admin_client.post(
        reverse("admin:fileconnect_releasefile_changelist"),
        {"action": "restore_files", "_selected_action": [old.pk]},
        follow=True,
    )
    assert TAKEN in response.content.decode()
    old.refresh_from_db()
    assert old.withdrawn_at is not None


def test_the_database_holds_the_rule(version) -> None:  # type: ignore[no-untyped-def]
    first = add_file(version, b"one", name="setup.exe")
    fields = {
        name: getattr(first, name)
        for name in ("release_id", "platform", "size", "sha256", "signature", "key_id")
    }
    with pytest.raises(IntegrityError), transaction.atomic():
        ReleaseFile.objects.create(**fields, display_name="setup.exe", storage_name="x/1")
    ReleaseFile.objects.create(
        **fields, display_name="setup.exe", storage_name="x/2", withdrawn_at=first.created_at
    )


@postgres_only()
def test_the_migration_stops_at_files_sharing_a_name(version) -> None:  # type: ignore[no-untyped-def]
    """Files added under one name before the rule: the migration names them instead of picking
    the one to keep. (The constraint is dropped inside the test's transaction: PostgreSQL only.)"""
    first = add_file(version, b"one", name="setup.exe")
    constraint = next(
        c
        for c in ReleaseFile._meta.constraints
        if c.name == "fileconnect_releasefile_one_live_name"
    )
    with connection.schema_editor() as editor:
        editor.remove_constraint(ReleaseFile, constraint)
    second = add_file(version, b"two", name="setup-2.exe")
    ReleaseFile.objects.filter(pk=second.pk).update(display_name="setup.exe")
    migration = importlib.import_module("fileconnect.migrations.0004_releasefile_one_live_name")
    expected = rf"release {first.release_id}: setup\.exe \(files {first.pk}, {second.pk}\)"
    with pytest.raises(RuntimeError, match=expected):
        migration.refuse_shared_names(django_apps, None)
    release_file_withdraw(release_file=second, actor=None)
    migration.refuse_shared_names(django_apps, None)
