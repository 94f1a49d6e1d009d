"""Staff run releases in admin: create, upload files, withdraw and restore (through services)."""

from __future__ import annotations

from datetime import date

import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse, reverse_lazy
from django.utils import timezone

from fileconnect.models import Release, ReleaseFile
from fileconnect.services import FileConnectError, release_file_relabel, release_file_withdraw
from portal.models import AuditEvent, User
from tests.fileconnect.factories import add_file, version_of
from tests.licensing.factories import ProductFactory
from tests.portal.factories import UserFactory

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


def test_files_content_is_read_only_and_files_are_never_deleted(admin_client, version) -> None:  # type: ignore[no-untyped-def]
    added = add_file(version, b"abc")
    change = admin_client.get(reverse("admin:fileconnect_releasefile_change", args=[added.pk]))
    assert change.status_code == 200
    # The labels can be corrected (below); what was uploaded, checked and signed cannot.
    for name in ("sha256", "signature", "size", "storage_name", "content_type", "release"):
        assert f'name="{name}"'.encode() not in change.content
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


def test_upload_with_a_name_django_cannot_save_under_is_a_form_error(
    admin_client, version, fileconnect_root
) -> None:  # type: ignore[no-untyped-def]
    # get_valid_filename raised SuspiciousFileOperation: Django's bare 400 page.
    release = Release.objects.create(version=version)
    response = admin_client.post(
        reverse("admin:fileconnect_releasefile_add"),
        {
            "release": release.pk,
            "platform": "Windows x64",
            "upload": SimpleUploadedFile("$$$", b"msi bytes"),
        },
    )
    assert response.status_code == 200
    assert "“$$$” cannot name a download: rename the file with letters, digits" in (
        response.content.decode()
    )
    assert not ReleaseFile.objects.exists()
    assert not any(path.is_file() for path in fileconnect_root.rglob("*"))


# -- one wrong file: withdraw, restore, correct its labels ----------------------------------------


def _staff(*codenames: str) -> User:
    user = UserFactory(is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return User.objects.get(pk=user.pk)  # a fresh instance: no cached permissions


def _file_events(release_file: ReleaseFile) -> list[str]:
    return list(
        AuditEvent.objects.filter(
            object_type="fileconnect.releasefile", object_id=str(release_file.pk)
        )
        .order_by("created_at", "pk")
        .values_list("action", flat=True)
    )


FILES = reverse_lazy("admin:fileconnect_releasefile_changelist")


def test_one_file_is_withdrawn_after_a_confirmation_and_restored(admin_client, version) -> None:  # type: ignore[no-untyped-def]
    good = add_file(version, b"good", name="good.msi")
    wrong = add_file(version, b"wrong", name="wrong.msi")
    selection = {"action": "withdraw_files", "_selected_action": [wrong.pk]}
    confirm = admin_client.post(FILES, selection)
    assert confirm.status_code == 200
    page = confirm.content.decode()
    assert "1 file will no longer be listed or downloadable, for every customer" in page
    assert "wrong.msi" in page and 'name="apply"' in page
    wrong.refresh_from_db()
    assert wrong.withdrawn_at is None  # nothing before the confirmation
    admin_client.post(FILES, {**selection, "apply": "1"})
    wrong.refresh_from_db()
    good.refresh_from_db()
    assert wrong.withdrawn_at is not None
    assert good.withdrawn_at is None and not good.release.is_withdrawn  # its release stays
    listed = admin_client.get(FILES, {"withdrawn_at__isempty": "0"}).content.decode()
    assert "wrong.msi" in listed and "good.msi" not in listed
    admin_client.post(FILES, {"action": "restore_files", "_selected_action": [wrong.pk]})
    wrong.refresh_from_db()
    assert wrong.withdrawn_at is None
    assert _file_events(wrong) == [
        "release.file_added",
        "release.file_withdrawn",
        "release.file_restored",
    ]
    assert _file_events(good) == ["release.file_added"]


def test_withdrawing_a_withdrawn_file_again_changes_nothing(admin_client, version) -> None:  # type: ignore[no-untyped-def]
    wrong = add_file(version, b"wrong", name="wrong.msi")
    selection = {"action": "withdraw_files", "_selected_action": [wrong.pk], "apply": "1"}
    admin_client.post(FILES, selection)
    wrong.refresh_from_db()
    withdrawn_at = wrong.withdrawn_at
    again = admin_client.post(FILES, selection, follow=True)
    assert "0 files changed." in again.content.decode()
    with pytest.raises(FileConnectError, match="already withdrawn"):
        release_file_withdraw(release_file=wrong, actor=None)
    wrong.refresh_from_db()
    assert wrong.withdrawn_at == withdrawn_at
    assert _file_events(wrong) == ["release.file_added", "release.file_withdrawn"]


def test_file_labels_are_corrected_and_audited_not_its_content(admin_client, version) -> None:  # type: ignore[no-untyped-def]
    added = add_file(version, b"abc", name="sep-15.0-win-x46.zp", platform="Windwos")
    before = ReleaseFile.objects.values("sha256", "signature", "size", "storage_name").get()
    url = reverse("admin:fileconnect_releasefile_change", args=[added.pk])
    response = admin_client.post(
        url,
        {
            "display_name": "sep-15.0-win-x64.zip",
            "platform": "  Windows   x64 ",
            "language": "pt-BR",
            "sha256": "0" * 64,  # not a field of the form: ignored
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    added.refresh_from_db()
    assert (added.display_name, added.platform, added.language) == (
        "sep-15.0-win-x64.zip",
        "Windows x64",
        "pt-BR",
    )
    assert added.content_type == "application/zip"  # follows the corrected extension
    assert ReleaseFile.objects.values("sha256", "signature", "size", "storage_name").get() == before
    event = AuditEvent.objects.get(action="release.file_changed")
    assert event.object_id == str(added.pk)
    assert event.actor == response.wsgi_request.user
    assert event.details["changes"] == {
        "display_name": ["sep-15.0-win-x46.zp", "sep-15.0-win-x64.zip"],
        "platform": ["Windwos", "Windows x64"],
        "language": ["", "pt-BR"],
    }


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"display_name": "$$$", "platform": "Linux"},
            "“$$$” cannot name a download: rename the file",
        ),
        ({"display_name": "..", "platform": "Linux"}, "“..” cannot name a download"),
        ({"display_name": "a.zip", "platform": "   "}, "This field is required."),
    ],
)
def test_labels_a_file_cannot_be_listed_under_are_form_errors(
    admin_client, version, data, message
) -> None:  # type: ignore[no-untyped-def]
    added = add_file(version, b"abc", name="a.zip", platform="Windows")
    url = reverse("admin:fileconnect_releasefile_change", args=[added.pk])
    response = admin_client.post(url, {"language": "", **data})
    assert response.status_code == 200
    assert message in response.content.decode()
    added.refresh_from_db()
    assert (added.display_name, added.platform) == ("a.zip", "Windows")
    assert not AuditEvent.objects.filter(action="release.file_changed").exists()


def test_view_only_staff_can_neither_withdraw_restore_nor_relabel_a_file(client, version) -> None:  # type: ignore[no-untyped-def]
    live = add_file(version, b"live", name="live.msi")
    gone = add_file(version, b"gone", name="gone.msi")
    ReleaseFile.objects.filter(pk=gone.pk).update(withdrawn_at=timezone.now())
    events = AuditEvent.objects.count()
    client.force_login(_staff("view_releasefile", "view_release"))
    offered = client.get(FILES).context["action_form"]
    assert offered is None or not {"withdraw_files", "restore_files"} & {
        name for name, _label in offered.fields["action"].choices
    }
    for action, release_file in (("withdraw_files", live), ("restore_files", gone)):
        client.post(FILES, {"action": action, "_selected_action": [release_file.pk], "apply": "1"})
    change = reverse("admin:fileconnect_releasefile_change", args=[live.pk])
    assert b'name="platform"' not in client.get(change).content
    client.post(change, {"display_name": "x.msi", "platform": "Linux", "language": ""})
    live.refresh_from_db()
    gone.refresh_from_db()
    assert live.withdrawn_at is None and gone.withdrawn_at is not None
    assert (live.display_name, live.platform) == ("live.msi", "Windows x64")
    assert AuditEvent.objects.count() == events


def test_staff_who_may_change_files_are_offered_withdraw_and_restore(client, version) -> None:  # type: ignore[no-untyped-def]
    add_file(version, b"live")
    client.force_login(_staff("view_releasefile", "change_releasefile"))
    form = client.get(FILES).context["action_form"]
    assert {"withdraw_files", "restore_files"} <= {
        name for name, _label in form.fields["action"].choices
    }


def test_a_file_cannot_be_relabelled_to_its_siblings_name_or_a_path(version) -> None:  # type: ignore[no-untyped-def]
    # Two files of one release were offered under one name, and "../evil.zip" was saved as
    # "evil.zip" without a word.
    first = add_file(version, b"one", name="setup-mac.zip")
    second = add_file(version, b"two", name="setup-win.zip")
    assert first.release_id == second.release_id
    labels = {"platform": second.platform, "language": second.language, "actor": None}
    with pytest.raises(FileConnectError, match=r"already named setup-mac\.zip"):
        release_file_relabel(release_file=second, display_name="setup-mac.zip", **labels)
    with pytest.raises(FileConnectError, match="cannot contain"):
        release_file_relabel(release_file=second, display_name="../evil.zip", **labels)
    second.refresh_from_db()
    assert second.display_name == "setup-win.zip"
    # Once the namesake is withdrawn, its name may be reused.
    release_file_withdraw(release_file=first, actor=None)
    release_file_relabel(release_file=second, display_name="setup-mac.zip", **labels)
    second.refresh_from_db()
    assert second.display_name == "setup-mac.zip"
