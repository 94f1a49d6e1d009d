from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from licensing.admin import ProductVersionAdmin as CatalogVersionAdmin
from licensing.models import ProductVersion

from .models import UpgradeLine, UpgradeNotice, UpgradeNotification, UpgradeRedemption
from .selectors import publication_preview
from .services import notification_staff_change, version_publish

# The catalog's version admin gains the publish action here, so that licensing never imports
# the apps built on it.
admin.site.unregister(ProductVersion)


@admin.register(ProductVersion)
class ProductVersionAdmin(CatalogVersionAdmin):
    list_display = [*CatalogVersionAdmin.list_display, "published_at"]
    list_filter = [*CatalogVersionAdmin.list_filter, ("published_at", admin.EmptyFieldListFilter)]
    actions = [*CatalogVersionAdmin.actions, "publish_and_notify"]
    readonly_fields = ["published_at"]

    @admin.action(description=_("Publish and notify"), permissions=["change"])
    def publish_and_notify(
        self, request: HttpRequest, queryset: QuerySet[ProductVersion]
    ) -> HttpResponse | None:
        versions = list(queryset.select_related("product"))
        if "apply" not in request.POST:
            # Emails go out to customers: say to how many before anything is published.
            previews = [publication_preview(version=version) for version in versions]
            to_publish = [p for p in previews if not p.already_published]
            return render(
                request,
                "admin/upgrades/publish_confirmation.html",
                {
                    **self.admin_site.each_context(request),
                    "title": _("Publish and notify"),
                    "previews": previews,
                    "organizations": sum(p.organizations for p in to_publish),
                    "licenses": sum(p.licenses for p in to_publish),
                    "publishable": len(to_publish),
                    "queryset": queryset,
                    "opts": self.model._meta,
                },
            )
        published = skipped = 0
        for version in versions:
            if version_publish(version=version, actor=request.user):  # type: ignore[arg-type]
                published += 1
            else:
                skipped += 1
        if published:
            self.message_user(
                request,
                ngettext(
                    "%(count)d version published: its upgrade notifications and notices are being "
                    "created in the background.",
                    "%(count)d versions published: their upgrade notifications and notices are "
                    "being created in the background.",
                    published,
                )
                % {"count": published},
            )
        if skipped:
            self.message_user(
                request,
                ngettext(
                    "%(count)d version was already published; nothing was done for it.",
                    "%(count)d versions were already published; nothing was done for them.",
                    skipped,
                )
                % {"count": skipped},
                messages.WARNING,
            )
        return None


class UpgradeLineInline(admin.TabularInline):
    model = UpgradeLine
    extra = 0
    raw_id_fields = ["source_license"]
    readonly_fields = ["source_license", "eligible_quantity", "remaining_quantity"]
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(UpgradeNotification)
class UpgradeNotificationAdmin(admin.ModelAdmin):
    list_display = ["code", "organization", "target_version", "created_at", "expires_on"]
    list_filter = ["target_version__product", "target_version"]
    search_fields = ["code", "organization__name", "organization__account_number"]
    list_select_related = ["organization", "target_version__product"]
    readonly_fields = ["code", "organization", "target_version", "created_at"]
    inlines = [UpgradeLineInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def save_model(
        self, request: HttpRequest, obj: UpgradeNotification, form: Any, change: bool
    ) -> None:
        notification_staff_change(
            notification=obj,
            fields=form.changed_data,
            actor=request.user,  # type: ignore[arg-type]
        )

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # A customer holds this ID and may be mid-upgrade with it; its lines count what was
        # spent (check_invariants). It expires instead.
        return False


@admin.register(UpgradeRedemption)
class UpgradeRedemptionAdmin(admin.ModelAdmin):
    list_display = ["created_at", "line", "quantity", "license", "user"]
    search_fields = ["line__notification__code", "license__key", "user__email"]
    list_select_related = ["line__notification", "license", "user"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # what an upgrade line spent: the invariants count it


@admin.register(UpgradeNotice)
class UpgradeNoticeAdmin(admin.ModelAdmin):
    """The record that a notice went to this address (upgrade_notices_send): staff read it.
    Edited, it would falsify who was notified."""

    list_display = ["notification", "email", "queued_at"]
    search_fields = ["notification__code", "email"]
    list_select_related = ["notification"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # deleting a notice would email the technical contact again
