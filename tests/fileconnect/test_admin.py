"""Staff run releases in admin: create, upload files, withdraw and restore (through services)."""

from __future__ import annotations

from datetime import date

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from fileconnect.models import Release, ReleaseFile
from portal.models import AuditEvent
from tests.fileconnect.factories import add_file, version_of
from tests.licensing.factories import ProductFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def version():  # type: ignore[no-untyped-def]
    return version_of(ProductFactory(sku="ADM"), "2.0", date(2025, 5, 1))


def test_release_created_in_admin_is_audited(admin_client, version) -> None:  # type: ignore[no-untyped-def]
    response = admin_client.post(
        reverse("admin:fileconnect_release_add"),
        {
            "version": version.pk,
            "released_on": "2025-05-02",
            "notes": "First",
            "files-TOTAL_FORMS": "0",
            "files-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    release = Release.objects.get()
    assert (release.released_on, release.notes) == (date(2025, 5, 2), "First")
    assert AuditEvent.objects.filter(action="release.created", object_id=str(release.pk)).exists()


def test_upload_streams_into_storage_with_checksum(admin_client, version, fileconnect_root) -> None:  # type: ignore[no-untyped-def]
    release = Release.objects.create(version=version)
    form = admin_client.get(reverse("admin:fileconnect_releasefile_add"))
    assert form.status_code == 200 and b"Add a release file" in form.content
    response = admin_client.post(
        reverse("admin:fileconnect_releasefile_add"),
        {
            "release": release.pk,
            "platform": "Windows x64",
            "language": "",
            "upload": SimpleUploadedFile("adm-2.0.msi", b"msi bytes"),
        },
    )
    added = ReleaseFile.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:fileconnect_releasefile_change", args=[added.pk])
    assert (fileconnect_root / added.storage_name).read_bytes() == b"msi bytes"
    assert added.release == release and added.display_name == "adm-2.0.msi"
    page = admin_client.get(response["Location"]).content.decode()
    assert added.sha256 in page and added.signature in page


def test_upload_form_errors_change_nothing(admin_client, version) -> None:  # type: ignore[no-untyped-def]
    response = admin_client.post(reverse("admin:fileconnect_releasefile_add"), {"platform": "x"})
    assert response.status_code == 200
    assert not ReleaseFile.objects.exists()


def test_upload_with_a_file_name_too_long_is_a_form_error(
    admin_client, version, fileconnect_root
) -> None:  # type: ignore[no-untyped-def]
    # The name went to a varchar(200): a DataError (500) on PostgreSQL, after the upload.
    release = Release.objects.create(version=version)
    response = admin_client.post(
        reverse("admin:fileconnect_releasefile_add"),
        {
            "release": release.pk,
            "platform": "Windows x64",
            "upload": SimpleUploadedFile("a" * 197 + ".msi", b"msi bytes"),
        },
    )
    assert response.status_code == 200
    assert "The file name has 201 characters: rename the file to at most 200." in (
        response.content.decode()
    )
    assert not ReleaseFile.objects.exists()
    assert not any(path.is_file() for path in fileconnect_root.rglob("*"))


def test_withdraw_and_restore_actions(admin_client, version) -> None:  # type: ignore[no-untyped-def]
    added = add_file(version, b"abc")
    release = added.release
    changelist = reverse("admin:fileconnect_release_changelist")
    admin_client.post(changelist, {"action": "withdraw_releases", "_selected_action": [release.pk]})
    release.refresh_from_db()
    assert release.is_withdrawn
    assert ReleaseFile.objects.filter(pk=added.pk).exists()  # kept for audit
    admin_client.post(changelist, {"action": "restore_releases", "_selected_action": [release.pk]})
    release.refresh_from_db()
    assert not release.is_withdrawn
    assert list(
        AuditEvent.objects.filter(object_type="fileconnect.release", object_id=str(release.pk))
        .order_by("created_at")
        .values_list("action", flat=True)
    ) == ["release.created", "release.withdrawn", "release.restored"]


def test_files_are_read_only_and_never_deleted(admin_client, version) -> None:  # type: ignore[no-untyped-def]
    added = add_file(version, b"abc")
    change = admin_client.get(reverse("admin:fileconnect_releasefile_change", args=[added.pk]))
    assert change.status_code == 200 and b'name="platform"' not in change.content
    delete = admin_client.get(reverse("admin:fileconnect_releasefile_delete", args=[added.pk]))
    assert delete.status_code == 403
    release_delete = reverse("admin:fileconnect_release_delete", args=[added.release_id])
    assert admin_client.get(release_delete).status_code == 403
    assert admin_client.get(reverse("admin:fileconnect_release_changelist")).status_code == 200
    assert admin_client.get(reverse("admin:fileconnect_releasefile_changelist")).status_code == 200


def test_a_release_with_files_keeps_its_product_version(admin_client, version) -> None:  # type: ignore[no-untyped-def]
    # Moving it would hand its files to another product's licensees and rewrite what every
    # logged download says was downloaded; the version is read-only once files are added.
    release_file = add_file(version)
    release = release_file.release
    other = version_of(ProductFactory(sku="OTH"), "9.0", date(2025, 5, 1))
    url = reverse("admin:fileconnect_release_change", args=[release.pk])
    assert 'name="version"' not in admin_client.get(url).content.decode()
    admin_client.post(
        url,
        {
            "version": other.pk,
            "released_on": "2025-05-03",
            "notes": "Moved",
            "files-TOTAL_FORMS": "1",
            "files-INITIAL_FORMS": "1",
            "files-0-id": release_file.pk,
            "files-0-release": release.pk,
        },
    )
    release.refresh_from_db()
    assert release.version == version
    assert release.notes == "Moved"  # the rest of the release can still be edited
    # Without files, a release made for the wrong version can still be corrected.
    empty = Release.objects.create(version=version, released_on=date(2025, 5, 1))
    url = reverse("admin:fileconnect_release_change", args=[empty.pk])
    assert 'name="version"' in admin_client.get(url).content.decode()
