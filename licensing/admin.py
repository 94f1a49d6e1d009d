from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_permission_codename
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from import_export import fields, resources
from import_export.admin import ExportMixin
from import_export.widgets import ForeignKeyWidget

from portal.admin import RefusalAsMessageMixin as PortalRefusalAsMessageMixin
from portal.admin import StaffEditAdmin, action_confirmation
from portal.models import Organization, User
from portal.services import audit_record

from .codes import CodeFormatError, canonical_code, canonical_key, is_printed_key
from .models import (
    License,
    Product,
    ProductVersion,
    SerialNumber,
    SerialRedemption,
    SupportRegistration,
)
from .services import (
    MAX_MAINTENANCE_MONTHS,
    MAX_QUANTITY,
    MAX_REASON_LENGTH,
    PRINTED_KEY_CHARACTERS,
    PUBLISHED_VERSION_FIXED,
    REHOST_GRANT_REASON_MISSING,
    VERSION_FIXED,
    LicensingError,
    csv_safe,
    license_rehost_grant,
    licenses_revoke,
    product_staff_change,
    registration_staff_change,
    rehost_grant_refusal,
    serial_add,
    serial_change,
    serials_create,
    serials_exported,
    serials_import,
    serials_import_preview,
    serials_void,
    version_staff_change,
)


class RefusalAsMessageMixin(PortalRefusalAsMessageMixin):
    refusals = (LicensingError,)


class CodeSearchMixin(admin.ModelAdmin):
    """A code typed as the wizards accept it (lower case, without dashes or with other
    separators) finds its row: serial numbers, vouchers."""

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        try:
            code = canonical_code(search_term)
        except CodeFormatError:
            code = ""
        if code and queryset.filter(code=code).exists():
            return queryset.filter(code=code), False
        return super().get_search_results(request, queryset, search_term)


class ProductVersionInline(admin.TabularInline):
    model = ProductVersion
    extra = 0
    show_change_link = True

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # New versions can be added here; an existing one is changed on its own page, where
        # the change is audited and a published version keeps its release date.
        return False


@admin.register(Product)
class ProductAdmin(StaffEditAdmin):
    list_display = ["sku", "name", "family", "node_locked", "license_model"]
    list_filter = ["family", "node_locked", "license_model"]
    search_fields = ["sku", "name", "family"]
    readonly_fields = ["created_at"]
    inlines = [ProductVersionInline]

    created_action = "product.created"

    def staff_change(self, obj: Product, fields: list[str], actor: User) -> None:
        # Node-locking and the rehost limit are rules every license of the product follows.
        product_staff_change(product=obj, fields=fields, actor=actor)

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        super().save_formset(request, form, formset, change)
        # Versions added on the product's page (the inline only adds), audited as on their own.
        for version in formset.new_objects:
            audit_record(
                action="version.created",
                actor=request.user,  # type: ignore[arg-type]
                obj=version,
                details={"name": str(version), "reason": "staff"},
            )


class GenerateSerialsForm(forms.Form):
    count = forms.IntegerField(label=_("How many serial numbers"), min_value=1, max_value=10_000)
    kind = forms.ChoiceField(label=_("Kind"), choices=SerialNumber.Kind.choices)
    quantity = forms.IntegerField(
        label=_("Quantity per serial"), min_value=1, max_value=MAX_QUANTITY, initial=1
    )
    maintenance_months = forms.IntegerField(
        label=_("Maintenance months"), min_value=0, max_value=MAX_MAINTENANCE_MONTHS, initial=12
    )
    expires_on = forms.DateField(
        label=_("Redeem before"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )


@admin.register(ProductVersion)
class ProductVersionAdmin(RefusalAsMessageMixin, StaffEditAdmin):
    list_display = ["product", "version", "released_on"]
    list_filter = ["product"]
    search_fields = ["product__sku", "product__name", "version"]
    list_select_related = ["product"]
    actions = ["generate_serials"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return self.readonly_fields
        if obj.published_at is not None:
            return [*self.readonly_fields, *VERSION_FIXED, *PUBLISHED_VERSION_FIXED]
        return [*self.readonly_fields, *VERSION_FIXED]

    created_action = "version.created"

    def staff_change(self, obj: ProductVersion, fields: list[str], actor: User) -> None:
        version_staff_change(version=obj, fields=fields, actor=actor)

    # The serials are new rows: whoever may add serial numbers may generate them, not whoever
    # may merely look at the catalog.
    @admin.action(description=_("Generate N serial numbers"), permissions=["add_serials"])
    def generate_serials(self, request: HttpRequest, queryset: QuerySet[ProductVersion]) -> Any:
        if queryset.count() != 1:
            self.message_user(request, _("Select exactly one version."), messages.ERROR)
            return None
        version = queryset.get()
        if "apply" in request.POST:
            form = GenerateSerialsForm(request.POST)
            if form.is_valid():
                try:
                    serials = serials_create(
                        version=version,
                        created_by=request.user,  # type: ignore[arg-type]
                        **form.cleaned_data,
                    )
                except LicensingError as exc:
                    self.message_user(request, str(exc), messages.ERROR)
                    return None
                return _serial_codes_response(serials, version)
        else:
            form = GenerateSerialsForm()
        return render(
            request,
            "admin/licensing/generate_serials.html",
            {
                **self.admin_site.each_context(request),
                "form": form,
                "version": version,
                "queryset": queryset,
                # The one heading, and the browser tab's title: the version said in both.
                "title": _("Generate serial numbers for %(version)s") % {"version": version},
            },
        )

    def has_add_serials_permission(self, request: HttpRequest) -> bool:
        opts = SerialNumber._meta
        return request.user.has_perm(f"{opts.app_label}.{get_permission_codename('add', opts)}")


def _serial_codes_response(serials: list[SerialNumber], version: ProductVersion) -> HttpResponse:
    response = HttpResponse(
        "code,product,version,kind,quantity,maintenance_months,expires_on\n"
        + "".join(
            f"{s.code},{version.product.sku},{version.version},{s.kind},{s.quantity},"
            f"{s.maintenance_months},{s.expires_on or ''}\n"
            for s in serials
        ),
        content_type="text/csv",
    )
    response["Content-Disposition"] = (
        f'attachment; filename="serials-{version.product.sku}-{version.version}.csv"'
    )
    return response


class VersionWidget(ForeignKeyWidget):
    """Exports the version number beside the product SKU column."""


class SerialNumberResource(resources.ModelResource):
    """The export of serial numbers. Imports go through serials_import, which only creates."""

    product = fields.Field(attribute="version__product__sku", column_name="product", readonly=True)
    version = fields.Field(
        attribute="version", column_name="version", widget=VersionWidget(ProductVersion, "version")
    )

    class Meta:
        model = SerialNumber
        fields = [
            "code",
            "product",
            "version",
            "kind",
            "quantity",
            "maintenance_months",
            "expires_on",
            "printed_key",
            "status",
        ]

    def export_field(self, field: Any, instance: Any, **kwargs: Any) -> Any:
        # Printed keys came from CSV files and SKUs and versions are typed by staff: a
        # spreadsheet must not run any of them (the voucher and license exports do the same).
        return csv_safe(super().export_field(field, instance, **kwargs))


class SerialImportForm(forms.Form):
    import_file = forms.FileField(
        label=_("CSV file"),
        help_text=_(
            "Columns: code, product, version, kind, quantity, maintenance_months, expires_on, "
            "printed_key. Existing serial numbers are reported and never changed."
        ),
    )


SESSION_SERIAL_IMPORT = "licensing:serial-import"


class SerialNumberForm(forms.ModelForm):
    class Meta:
        model = SerialNumber
        fields = [
            "code",
            "version",
            "kind",
            "quantity",
            "maintenance_months",
            "expires_on",
            "printed_key",
        ]

    def clean_code(self) -> str:
        # Stored as the wizard looks it up (upper case, no separators), as an import stores
        # it: typed as printed ("legacy-4711"), it could otherwise never be redeemed.
        raw = self.cleaned_data["code"]
        try:
            return canonical_code(raw)
        except CodeFormatError as exc:
            raise forms.ValidationError(
                _("“%(code)s” is not a valid serial number (%(reason)s).")
                % {"code": raw.strip()[:64], "reason": exc.reason}
            ) from exc

    def clean_printed_key(self) -> str:
        # Stored as an import stores it, and refused as an import refuses it.
        raw = self.cleaned_data["printed_key"]
        if not raw.strip():
            return ""
        key = canonical_key(raw)
        if not is_printed_key(key):
            raise forms.ValidationError(PRINTED_KEY_CHARACTERS)
        return key


@admin.register(SerialNumber)
class SerialNumberAdmin(RefusalAsMessageMixin, CodeSearchMixin, ExportMixin, admin.ModelAdmin):
    form = SerialNumberForm
    resource_classes = [SerialNumberResource]
    # The export's change list, plus a link to serials_import's page (create-only).
    import_export_change_list_template = "admin/licensing/serialnumber/change_list.html"
    list_display = [
        "code",
        "version",
        "kind",
        "quantity",
        "maintenance_months",
        "status",
        "redeemed_by",
        "redeemed_at",
        "expires_on",
    ]
    list_filter = ["status", "kind", "version__product"]
    search_fields = [
        "code",
        "redeemed_by__name",
        "redeemed_by__account_number",
        "version__product__sku",
    ]
    list_select_related = ["version__product", "redeemed_by"]
    readonly_fields = ["status", "redeemed_by", "redeemed_at", "license", "created_at"]
    raw_id_fields = ["version"]
    actions = ["void_serials"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is not None and obj.status != SerialNumber.Status.OPEN:
            # Redeemed, it is the record of the license it issued; void, it is withdrawn:
            # nothing of it changes (serial_change refuses it too, under its lock).
            return [*self.readonly_fields, *SerialNumberForm.Meta.fields]
        if obj is not None:
            return [*self.readonly_fields, "code", "version", "kind", "quantity"]
        return self.readonly_fields

    def save_model(
        self, request: HttpRequest, obj: SerialNumber, form: forms.ModelForm, change: bool
    ) -> None:
        # Through the services, which audit it as generating and importing serials are.
        actor = request.user  # type: ignore[assignment]
        if change:
            serial_change(serial=obj, fields=form.changed_data, actor=actor)  # type: ignore[arg-type]
        else:
            serial_add(serial=obj, actor=actor)  # type: ignore[arg-type]

    def get_urls(self) -> list[Any]:
        return [
            path(
                "import/",
                self.admin_site.admin_view(self.import_view),
                name="licensing_serialnumber_import",
            ),
            *super().get_urls(),
        ]

    def import_view(self, request: HttpRequest) -> HttpResponse:
        """Upload → preview (new, existing, refused) → confirm; serials_import writes."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        changelist = reverse("admin:licensing_serialnumber_changelist")
        if request.method == "POST" and "confirm" in request.POST:
            stored = request.session.pop(SESSION_SERIAL_IMPORT, None)
            if not stored:
                self.message_user(
                    request, _("The preview expired. Upload the file again."), messages.ERROR
                )
                return redirect(request.path)
            try:
                result = serials_import(
                    rows=stored["rows"],
                    reported_existing=stored["existing"],
                    actor=request.user,  # type: ignore[arg-type]
                )
            except LicensingError as exc:
                self.message_user(request, str(exc), messages.ERROR)
                return redirect(request.path)
            self.message_user(
                request,
                ngettext(
                    "%(count)d serial number created.",
                    "%(count)d serial numbers created.",
                    len(result.created),
                )
                % {"count": len(result.created)},
            )
            if result.existing:
                self.message_user(
                    request,
                    _("Already existed, left unchanged: %(codes)s")
                    % {"codes": ", ".join(result.existing)},
                    messages.WARNING,
                )
            return redirect(changelist)
        form = SerialImportForm(request.POST or None, request.FILES or None)
        preview = None
        if request.method == "POST" and form.is_valid():
            preview = serials_import_preview(upload=form.cleaned_data["import_file"])
            if preview.error:
                form.add_error("import_file", preview.error)
                preview = None
            else:
                request.session[SESSION_SERIAL_IMPORT] = {
                    "rows": preview.creatable_data(),
                    "existing": [row.code for row in preview.existing],
                }
        return render(
            request,
            "admin/licensing/serial_import.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "form": form,
                "preview": preview,
                "title": _("Import serial numbers"),
            },
        )

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # void instead: a serial is printed on a certificate out in the world

    def has_export_permission(self, request: HttpRequest) -> bool:
        # Every open code in the file is a license for whoever types it: staff who may only
        # look at serial numbers do not take them away.
        return self.has_change_permission(request)

    def get_data_for_export(
        self, request: HttpRequest, queryset: QuerySet[Any], **kwargs: Any
    ) -> Any:
        data = super().get_data_for_export(request, queryset, **kwargs)
        serials_exported(
            count=len(data),
            open_count=queryset.filter(status=SerialNumber.Status.OPEN).count(),
            query=request.GET.urlencode(),
            actor=request.user,  # type: ignore[arg-type]
        )
        return data

    @admin.action(description=_("Void the selected open serial numbers"), permissions=["change"])
    def void_serials(self, request: HttpRequest, queryset: QuerySet[SerialNumber]) -> Any:
        open_serials = queryset.filter(status=SerialNumber.Status.OPEN)
        if "apply" not in request.POST:
            # Say what will happen first: how many stop working, which ones are left alone.
            return action_confirmation(
                self,
                request,
                template="admin/licensing/void_serials_confirmation.html",
                title=_("Void serial numbers"),
                queryset=queryset,
                applicable=open_serials,
                count_name="open_count",
                related=("version__product",),
            )
        codes = serials_void(
            serial_ids=list(queryset.values_list("pk", flat=True)),
            actor=request.user,  # type: ignore[arg-type]
        )
        self.message_user(
            request,
            ngettext(
                "%(count)d serial number voided.", "%(count)d serial numbers voided.", len(codes)
            )
            % {"count": len(codes)},
        )
        return None


def _reason_field(*, help_text: Any, required: Any) -> forms.CharField:
    """The audited reason a staff action on licenses asks for (revoke, grant a rehost)."""
    return forms.CharField(
        label=_("Reason"),
        max_length=MAX_REASON_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text=help_text,
        error_messages={"required": required},
    )


class RevokeLicensesForm(forms.Form):
    reason = _reason_field(
        help_text=_(
            "Why the licenses are revoked (a refund, a fraudulent order…). Kept in the audit "
            "trail; the customer's email does not show it."
        ),
        required=_(
            "Say why the licenses are revoked (a refund, a fraudulent order…): it is audited."
        ),
    )


class GrantRehostForm(forms.Form):
    reason = _reason_field(
        help_text=_(
            "Why these licenses may move once more (a failed server, a move to a new data "
            "centre…). Kept in the audit trail and shown in each license's history to its "
            "organization."
        ),
        required=REHOST_GRANT_REASON_MISSING,
    )


@admin.register(License)
class LicenseAdmin(admin.ModelAdmin):
    list_display = [
        "key",
        "owner",
        "version",
        "quantity",
        "maintenance_end",
        "status",
        "source",
        "issued_at",
    ]
    list_filter = ["status", "source", "version__product"]
    search_fields = ["key", "owner__name", "owner__account_number", "source_ref", "host_id"]
    list_select_related = ["owner", "version__product"]
    date_hierarchy = "issued_at"
    actions = ["revoke_licenses", "grant_rehost"]

    # Licenses are minted by licensing.services.license_issue only; admin reads them.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_manage_permission(self, request: HttpRequest) -> bool:
        """The change permission on licenses, for the actions that go through a service: the
        change form stays read-only (has_change_permission), no field is edited by hand."""
        opts = License._meta
        return request.user.has_perm(f"{opts.app_label}.{get_permission_codename('change', opts)}")

    @admin.action(description=_("Revoke licenses"), permissions=["manage"])
    def revoke_licenses(self, request: HttpRequest, queryset: QuerySet[License]) -> Any:
        if not queryset.filter(status=License.Status.ACTIVE).exists():
            # Nothing it could do: no page asking why, as if something would happen.
            self.message_user(
                request,
                _("None of the selected licenses is active: nothing was revoked."),
                messages.WARNING,
            )
            return None
        form = RevokeLicensesForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            result = licenses_revoke(
                license_ids=list(queryset.values_list("pk", flat=True)),
                reason=form.cleaned_data["reason"],
                actor=request.user,  # type: ignore[arg-type]
            )
            count = len(result.revoked)
            self.message_user(
                request,
                ngettext("%(count)d license revoked.", "%(count)d licenses revoked.", count)
                % {"count": count},
                messages.SUCCESS if count else messages.WARNING,
            )
            if result.refused:
                self.message_user(
                    request,
                    _("Already superseded or revoked, left as they were: %(keys)s")
                    % {"keys": ", ".join(license.key for license in result.refused)},
                    messages.WARNING,
                )
            return None
        # Say what will happen first, and ask why: the reason is audited with each license.
        return action_confirmation(
            self,
            request,
            template="admin/licensing/revoke_licenses_confirmation.html",
            title=_("Revoke licenses"),
            queryset=queryset,
            applicable=queryset.filter(status=License.Status.ACTIVE),
            count_name="active_count",
            related=("owner", "version__product"),
            form=form,
        )

    @admin.action(description=_("Allow one more rehost"), permissions=["manage"])
    def grant_rehost(self, request: HttpRequest, queryset: QuerySet[License]) -> Any:
        # rehost_grant_refusal as a filter: the licenses it would find nothing to say about.
        grantable = queryset.filter(
            status=License.Status.ACTIVE, version__product__node_locked=True
        )
        if not grantable.exists():
            # Nothing it could do: no page asking why, but why not for each license.
            for license in queryset.select_related("version__product"):
                self.message_user(request, rehost_grant_refusal(license) or "", messages.ERROR)
            return None
        form = GrantRehostForm(request.POST if "apply" in request.POST else None)
        if not form.is_valid():
            # Say what will happen first, and ask why: the reason is audited with each license
            # and its owner reads it in the license's history.
            return action_confirmation(
                self,
                request,
                template="admin/licensing/grant_rehost_confirmation.html",
                title=_("Allow one more rehost"),
                queryset=queryset,
                applicable=grantable,
                count_name="grantable_count",
                related=("owner", "version__product"),
                form=form,
            )
        granted = 0
        # Those the page said stay as they are are left alone; one that changed since (revoked
        # meanwhile) is refused by the service under its lock, with the reason.
        for license in grantable.order_by("pk"):
            try:
                license_rehost_grant(
                    license=license,
                    reason=form.cleaned_data["reason"],
                    actor=request.user,  # type: ignore[arg-type]
                )
            except LicensingError as exc:
                self.message_user(request, str(exc), messages.ERROR)
                continue
            granted += 1
        if granted:
            self.message_user(
                request,
                ngettext(
                    "%(count)d license may be rehosted once more, beyond its product's limit.",
                    "%(count)d licenses may be rehosted once more, beyond their product's limit.",
                    granted,
                )
                % {"count": granted},
            )
        return None


@admin.register(SerialRedemption)
class SerialRedemptionAdmin(admin.ModelAdmin):
    """The one redemption of each serial, written by serial_redeem; staff read it."""

    list_display = ["code", "kind", "organization", "license", "redeemed_at"]
    search_fields = ["code", "organization__name", "license__key"]
    list_select_related = ["organization", "license"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(SupportRegistration)
class SupportRegistrationAdmin(StaffEditAdmin):
    list_display = [
        "company",
        "organization",
        "technical_email",
        "country",
        "country_legacy",
        "created_at",
    ]
    search_fields = [
        "company",
        "technical_email",
        "primary_email",
        "organization__name",
        "country_legacy",
    ]
    list_select_related = ["organization"]
    # country_legacy: what was typed before countries were codes and matched none.
    readonly_fields = ["country_legacy", "created_at", "updated_at"]

    created_action = "registration.created"

    def staff_change(self, obj: SupportRegistration, fields: list[str], actor: User) -> None:
        # A correction customer care makes is audited like the customer's own edits.
        registration_staff_change(registration=obj, fields=fields, actor=actor)

    def created_organization(self, obj: SupportRegistration) -> Organization | None:
        return obj.organization
