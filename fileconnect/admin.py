from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from portal.admin import action_confirmation

from .models import DownloadEvent, Release, ReleaseFile
from .services import (
    FileConnectError,
    release_file_add,
    release_file_labels,
    release_file_name_check,
    release_file_relabel,
    release_file_restore,
    release_file_withdraw,
    release_restore,
    release_save,
)
from .services import release_withdraw as withdraw


def _run_each(
    model_admin: admin.ModelAdmin,
    request: HttpRequest,
    objects: Iterable[Any],
    change: Callable[[Any], object],
) -> int:
    """Runs an action's service on each object, a warning for each one it refuses; how many
    changed."""
    count = 0
    for obj in objects:
        try:
            change(obj)
        except FileConnectError as exc:
            model_admin.message_user(request, f"{obj}: {exc}", messages.WARNING)
        else:
            count += 1
    return count


class ReleaseFileInline(admin.TabularInline):
    model = ReleaseFile
    extra = 0
    # Every column is read-only here: a file's labels are corrected on its own page (audited).
    readonly_fields = [
        "display_name",
        "platform",
        "language",
        "size",
        "sha256",
        "created_at",
        "withdrawn_at",
    ]
    fields = tuple(readonly_fields)
    show_change_link = True

    # Files are added with the upload page or `manage.py releases add-file`, which compute the
    # checksum and signature; they are never deleted (the download log points at them): a wrong
    # one is withdrawn from the release files' list, its labels corrected on its own page.
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Release)
class ReleaseAdmin(admin.ModelAdmin):
    list_display = ["version", "released_on", "file_count", "withdrawn_at"]
    list_filter = ["version__product", ("withdrawn_at", admin.EmptyFieldListFilter)]
    search_fields = ["version__product__sku", "version__product__name", "version__version"]
    list_select_related = ["version__product"]
    raw_id_fields = ["version"]
    readonly_fields = ["withdrawn_at", "created_at"]
    inlines = [ReleaseFileInline]
    actions = ["withdraw_releases", "restore_releases"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Release]:
        return super().get_queryset(request).annotate(file_total=Count("files"))

    @admin.display(description=_("files"), ordering="file_total")
    def file_count(self, obj: Release) -> int:
        return getattr(obj, "file_total", 0)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # A release with files keeps its version: another would hand the files to another
        # product's licensees and rewrite what every logged download says was downloaded.
        if obj is not None and obj.files.exists():
            return [*self.readonly_fields, "version"]
        return self.readonly_fields

    def save_model(self, request: HttpRequest, obj: Release, form: Any, change: bool) -> None:
        release_save(release=obj, actor=request.user)  # type: ignore[arg-type]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # withdraw instead: the files and their download log stay for audit

    @admin.action(
        description=_("Withdraw: stop offering and serving the files"), permissions=["change"]
    )
    def withdraw_releases(self, request: HttpRequest, queryset: QuerySet[Release]) -> None:
        self._apply(request, queryset.filter(withdrawn_at__isnull=True), withdraw)

    @admin.action(description=_("Restore: offer the files again"), permissions=["change"])
    def restore_releases(self, request: HttpRequest, queryset: QuerySet[Release]) -> None:
        self._apply(request, queryset.filter(withdrawn_at__isnull=False), release_restore)

    def _apply(self, request: HttpRequest, queryset: QuerySet[Release], service: Any) -> None:
        count = _run_each(
            self, request, queryset, lambda release: service(release=release, actor=request.user)
        )
        self.message_user(
            request,
            ngettext("%(count)d release changed.", "%(count)d releases changed.", count)
            % {"count": count},
        )


class ReleaseFileUploadForm(forms.Form):
    release = forms.ModelChoiceField(
        label=_("Release"),
        queryset=Release.objects.filter(withdrawn_at__isnull=True).select_related(
            "version__product"
        ),
    )
    platform = forms.CharField(label=_("Platform"), max_length=60, help_text=_("e.g. Windows x64"))
    language = forms.CharField(
        label=_("Language"), max_length=40, required=False, help_text=_("Empty: every language.")
    )
    upload = forms.FileField(
        label=_("File"),
        help_text=_(
            "For installers of more than a few hundred MB use `manage.py releases add-file`."
        ),
    )


class ReleaseFileLabelsForm(forms.ModelForm):
    """A file's labels, the only thing of it staff edit: its content, checksum and signature
    stay (a new content is a new file)."""

    class Meta:
        model = ReleaseFile
        fields = ["display_name", "platform", "language"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.errors:
            return cleaned
        try:
            labels = release_file_labels(
                filename=cleaned["display_name"],
                platform=cleaned["platform"],
                language=cleaned["language"],
            )
            release_file_name_check(
                release=self.instance.release, display_name=labels[0], excluding=self.instance
            )
        except FileConnectError as exc:
            raise forms.ValidationError(str(exc)) from None
        cleaned["display_name"], cleaned["platform"], cleaned["language"] = labels
        return cleaned


@admin.register(ReleaseFile)
class ReleaseFileAdmin(admin.ModelAdmin):
    list_display = [
        "display_name",
        "release",
        "platform",
        "language",
        "size_display",
        "created_at",
        "withdrawn_at",
    ]
    list_filter = [
        ("withdrawn_at", admin.EmptyFieldListFilter),
        "platform",
        "release__version__product",
    ]
    search_fields = ["display_name", "sha256", "release__version__product__sku"]
    list_select_related = ["release__version__product"]
    form = ReleaseFileLabelsForm
    readonly_fields = [
        "release",
        "storage_name",
        "size",
        "sha256",
        "signature",
        "key_id",
        "content_type",
        "created_at",
        "created_by",
        "withdrawn_at",
    ]
    # What staff may correct (ReleaseFileLabelsForm) after the release, before the rest.
    fields = ["release", "display_name", "platform", "language", *readonly_fields[1:]]
    actions = ["withdraw_files", "restore_files"]

    @admin.display(description=_("size"), ordering="size")
    def size_display(self, obj: ReleaseFile) -> str:
        return filesizeformat(obj.size)

    def save_model(self, request: HttpRequest, obj: ReleaseFile, form: Any, change: bool) -> None:
        release_file_relabel(
            release_file=obj,
            display_name=form.cleaned_data["display_name"],
            platform=form.cleaned_data["platform"],
            language=form.cleaned_data["language"],
            actor=request.user,  # type: ignore[arg-type]
        )

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # withdraw instead: the file and its download log stay for audit

    @admin.action(
        description=_("Withdraw: stop offering and serving the files"), permissions=["change"]
    )
    def withdraw_files(self, request: HttpRequest, queryset: QuerySet[ReleaseFile]) -> Any:
        live = queryset.filter(withdrawn_at__isnull=True)
        if "apply" not in request.POST:
            # Say what will happen first: these files go offline for every customer.
            return action_confirmation(
                self,
                request,
                template="admin/fileconnect/withdraw_files_confirmation.html",
                title=_("Withdraw release files"),
                queryset=queryset,
                applicable=live,
                count_name="live_count",
                related=("release__version__product",),
            )
        self._apply(request, live, release_file_withdraw)
        return None

    @admin.action(description=_("Restore: offer the files again"), permissions=["change"])
    def restore_files(self, request: HttpRequest, queryset: QuerySet[ReleaseFile]) -> None:
        self._apply(request, queryset.filter(withdrawn_at__isnull=False), release_file_restore)

    def _apply(self, request: HttpRequest, queryset: QuerySet[ReleaseFile], service: Any) -> None:
        count = _run_each(
            self,
            request,
            queryset,
            lambda release_file: service(release_file=release_file, actor=request.user),
        )
        self.message_user(
            request,
            ngettext("%(count)d file changed.", "%(count)d files changed.", count)
            % {"count": count},
        )

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        """Upload a file: it is streamed into storage and its checksum and signature computed."""
        if not self.has_add_permission(request):
            return redirect("admin:fileconnect_releasefile_changelist")
        form = ReleaseFileUploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            release: Release = form.cleaned_data["release"]
            upload = form.cleaned_data["upload"]
            try:
                added = release_file_add(
                    version=release.version,
                    release=release,
                    platform=form.cleaned_data["platform"],
                    language=form.cleaned_data["language"],
                    source=upload,
                    filename=upload.name,
                    actor=request.user,  # type: ignore[arg-type]
                )
            except FileConnectError as exc:
                form.add_error(None, str(exc))
            else:
                self.message_user(
                    request,
                    _("%(name)s added, SHA-256 %(sha)s.") % {"name": added, "sha": added.sha256},
                )
                return redirect(reverse("admin:fileconnect_releasefile_change", args=[added.pk]))
        return render(
            request,
            "admin/fileconnect/releasefile_upload.html",
            {
                **self.admin_site.each_context(request),
                "form": form,
                "opts": self.model._meta,
                "title": _("Add a release file"),
            },
        )


@admin.register(DownloadEvent)
class DownloadEventAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "user",
        "organization",
        "file",
        "license",
        "serial",
        "bytes_requested",
        "bytes_sent",
        "delivery",
        "status",
    ]
    list_filter = ["status", "delivery", "file__release__version__product"]
    search_fields = [
        "user__email",
        "organization__name",
        "organization__account_number",
        "file__display_name",
    ]
    list_select_related = ["user", "organization", "file", "license__version__product", "serial"]
    date_hierarchy = "created_at"

    # The download log is append-only: staff read it.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
