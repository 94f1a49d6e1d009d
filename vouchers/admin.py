from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import date
from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from licensing.admin import CodeSearchMixin
from licensing.views.licenses import csv_safe
from portal.admin import RefusalAsMessageMixin as PortalRefusalAsMessageMixin
from portal.models import Organization, User

from .models import Voucher, VoucherBatch, VoucherConversion
from .services import (
    MAX_BATCH_SIZE,
    VoucherError,
    voucher_batch_create,
    voucher_batch_expiry_refusal,
    voucher_batch_staff_change,
    voucher_batch_void,
    voucher_codes_exported,
    vouchers_void,
)

CSV_COLUMNS = [
    "code",
    "batch",
    "oem_account",
    "oem",
    "product",
    "version",
    "quantity",
    "maintenance_months",
    "expires_on",
    "status",
]


def codes_csv_response(
    vouchers: Iterable[Voucher], filename: str, *, actor: User | None
) -> HttpResponse:
    """The codes as a CSV download, audited (vouchers.exported): each open code converts into
    a license for whoever holds the file."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    batch_ids: set[int] = set()
    count = 0
    for voucher in vouchers:
        batch = voucher.batch
        batch_ids.add(batch.pk)
        count += 1
        writer.writerow(
            [
                voucher.code,
                batch.pk,
                csv_safe(batch.oem.account_number),
                # Typed by the OEM itself: a spreadsheet must not run it.
                csv_safe(batch.oem.name),
                csv_safe(batch.version.product.sku),
                csv_safe(batch.version.version),
                batch.quantity_per_voucher,
                batch.maintenance_months,
                batch.expires_on or "",
                voucher.status,
            ]
        )
    voucher_codes_exported(batch_ids=list(batch_ids), count=count, actor=actor)
    response = HttpResponse(buffer.getvalue(), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


class VoucherBatchAddForm(forms.ModelForm):
    count = forms.IntegerField(
        label=_("How many vouchers"),
        min_value=1,
        max_value=MAX_BATCH_SIZE,
        help_text=_("The codes are generated when you save; export them with the CSV action."),
    )

    class Meta:
        model = VoucherBatch
        fields = [
            "oem",
            "version",
            "label",
            "quantity_per_voucher",
            "maintenance_months",
            "expires_on",
        ]

    def clean_oem(self) -> Organization:
        oem = self.cleaned_data["oem"]
        if oem.kind != Organization.Kind.PARTNER:
            raise forms.ValidationError(_("Choose a partner organization (an OEM)."))
        return oem

    def clean_version(self) -> Any:
        version = self.cleaned_data["version"]
        if version.product.node_locked:
            raise forms.ValidationError(
                _("Node-locked products need a host ID per license: sell them with serials.")
            )
        return version

    def clean_expires_on(self) -> date | None:
        expires_on = self.cleaned_data["expires_on"]
        refusal = voucher_batch_expiry_refusal(expires_on, today=timezone.localdate())
        if refusal:
            raise forms.ValidationError(refusal)
        return expires_on


class RefusalAsMessageMixin(PortalRefusalAsMessageMixin):
    refusals = (VoucherError,)


@admin.register(VoucherBatch)
class VoucherBatchAdmin(RefusalAsMessageMixin, admin.ModelAdmin):
    list_display = [
        "__str__",
        "oem",
        "version",
        "quantity_per_voucher",
        "maintenance_months",
        "expires_on",
        "open_count",
        "redeemed_count",
        "void_count",
        "created_at",
        "voided_at",
    ]
    list_filter = ["version__product", "expires_on", ("voided_at", admin.EmptyFieldListFilter)]
    search_fields = ["label", "oem__name", "oem__account_number", "version__product__sku"]
    list_select_related = ["oem", "version__product"]
    raw_id_fields = ["version"]
    readonly_fields = ["created_at", "created_by", "voided_at", "vouchers_link"]
    actions = ["export_codes", "void_batches"]
    date_hierarchy = "created_at"

    def get_queryset(self, request: HttpRequest) -> QuerySet[VoucherBatch]:
        return (
            super()
            .get_queryset(request)
            .annotate(
                open_count=Count("vouchers", filter=Q(vouchers__status=Voucher.Status.OPEN)),
                redeemed_count=Count(
                    "vouchers", filter=Q(vouchers__status=Voucher.Status.REDEEMED)
                ),
                void_count=Count("vouchers", filter=Q(vouchers__status=Voucher.Status.VOID)),
            )
        )

    @admin.display(description=_("open"), ordering="open_count")
    def open_count(self, obj: Any) -> int:
        return int(obj.open_count)

    @admin.display(description=_("converted"), ordering="redeemed_count")
    def redeemed_count(self, obj: Any) -> int:
        return int(obj.redeemed_count)

    @admin.display(description=_("void"), ordering="void_count")
    def void_count(self, obj: Any) -> int:
        return int(obj.void_count)

    @admin.display(description=_("vouchers"))
    def vouchers_link(self, obj: VoucherBatch) -> str:
        if obj.pk is None:
            return "-"
        url = reverse("admin:vouchers_voucher_changelist") + f"?batch__id__exact={obj.pk}"
        return format_html('<a href="{}">{}</a>', url, _("See the vouchers of this batch"))

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        if obj is None:
            kwargs["form"] = VoucherBatchAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return [*VoucherBatchAddForm.Meta.fields, "count"]
        return [
            "oem",
            "version",
            "label",
            "quantity_per_voucher",
            "maintenance_months",
            "expires_on",
            "created_at",
            "created_by",
            "voided_at",
            "vouchers_link",
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is not None:
            # What a voucher is worth is fixed once its codes exist; the label and the
            # deadline can still change.
            return [
                *self.readonly_fields,
                "oem",
                "version",
                "quantity_per_voucher",
                "maintenance_months",
            ]
        return self.readonly_fields

    def save_model(self, request: HttpRequest, obj: VoucherBatch, form: Any, change: bool) -> None:
        if change:
            voucher_batch_staff_change(batch=obj, fields=form.changed_data, actor=_user(request))
            return
        data = form.cleaned_data
        batch = voucher_batch_create(
            oem=data["oem"],
            version=data["version"],
            count=data["count"],
            quantity_per_voucher=data["quantity_per_voucher"],
            maintenance_months=data["maintenance_months"],
            expires_on=data["expires_on"],
            label=data["label"],
            created_by=request.user,  # type: ignore[arg-type]
        )
        # Admin goes on with `obj` (log entry, redirect): make it the batch just created.
        obj.pk = batch.pk
        obj.created_at = batch.created_at
        obj.created_by = batch.created_by
        obj._state.adding = False
        obj._state.db = batch._state.db
        self.message_user(
            request,
            ngettext(
                "%(count)d voucher code generated. Download it with the action “Export codes "
                "as CSV”.",
                "%(count)d voucher codes generated. Download them with the action “Export "
                "codes as CSV”.",
                data["count"],
            )
            % {"count": data["count"]},
        )

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # void instead: the codes are out in the world

    # The codes are bearer credentials: staff who may only look at batches do not take them.
    @admin.action(description=_("Export codes as CSV"), permissions=["change"])
    def export_codes(self, request: HttpRequest, queryset: QuerySet[VoucherBatch]) -> HttpResponse:
        vouchers = (
            Voucher.objects.filter(batch__in=queryset)
            .select_related("batch__oem", "batch__version__product")
            .order_by("batch_id", "pk")
        )
        stamp = timezone.localdate().isoformat()
        ids = sorted(queryset.values_list("pk", flat=True))
        name = f"vouchers-batch-{ids[0]}-{stamp}.csv" if len(ids) == 1 else f"vouchers-{stamp}.csv"
        return codes_csv_response(vouchers.iterator(chunk_size=2000), name, actor=_user(request))

    @admin.action(description=_("Void batch"), permissions=["change"])
    def void_batches(self, request: HttpRequest, queryset: QuerySet[VoucherBatch]) -> Any:
        batches = list(queryset.select_related("oem", "version__product"))
        if "apply" not in request.POST:
            return render(
                request,
                "admin/vouchers/void_confirmation.html",
                {
                    **self.admin_site.each_context(request),
                    "title": _("Void voucher batches"),
                    "objects": batches,
                    "open_count": Voucher.objects.filter(
                        batch__in=batches, status=Voucher.Status.OPEN
                    ).count(),
                    "action": "void_batches",
                    "queryset": queryset,
                    "opts": self.model._meta,
                },
            )
        total = 0
        for batch in batches:
            total += voucher_batch_void(batch=batch, acting_user=_user(request))
        self.message_user(
            request,
            ngettext("%(count)d open voucher voided.", "%(count)d open vouchers voided.", total)
            % {"count": total},
        )
        return None


def _user(request: HttpRequest) -> User | None:
    user = request.user
    return user if isinstance(user, User) else None


@admin.register(Voucher)
class VoucherAdmin(CodeSearchMixin, admin.ModelAdmin):
    list_display = ["code", "batch", "status", "redeemed_by", "redeemed_at", "license"]
    list_filter = ["status", "batch__oem", "batch__version__product"]
    search_fields = ["code", "redeemed_by__name", "redeemed_by__account_number", "license__key"]
    list_select_related = ["batch__version__product", "redeemed_by", "license"]
    readonly_fields = ["code", "batch", "status", "redeemed_by", "redeemed_at", "license"]
    actions = ["void_vouchers", "export_codes"]
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # vouchers are generated with their batch

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description=_("Void selected vouchers"), permissions=["change"])
    def void_vouchers(self, request: HttpRequest, queryset: QuerySet[Voucher]) -> Any:
        if "apply" not in request.POST:
            return render(
                request,
                "admin/vouchers/void_confirmation.html",
                {
                    **self.admin_site.each_context(request),
                    "title": _("Void vouchers"),
                    "objects": list(queryset.filter(status=Voucher.Status.OPEN)[:50]),
                    "open_count": queryset.filter(status=Voucher.Status.OPEN).count(),
                    "action": "void_vouchers",
                    "queryset": queryset,
                    "opts": self.model._meta,
                },
            )
        count = vouchers_void(
            voucher_ids=list(queryset.values_list("pk", flat=True)), acting_user=_user(request)
        )
        self.message_user(
            request,
            ngettext("%(count)d voucher voided.", "%(count)d vouchers voided.", count)
            % {"count": count},
        )
        return None

    @admin.action(description=_("Export codes as CSV"), permissions=["change"])
    def export_codes(self, request: HttpRequest, queryset: QuerySet[Voucher]) -> HttpResponse:
        vouchers = queryset.select_related("batch__oem", "batch__version__product").order_by(
            "batch_id", "pk"
        )
        return codes_csv_response(
            vouchers.iterator(chunk_size=2000),
            f"vouchers-{timezone.localdate().isoformat()}.csv",
            actor=_user(request),
        )


@admin.register(VoucherConversion)
class VoucherConversionAdmin(admin.ModelAdmin):
    list_display = ["created_at", "organization", "created_by", "status", "total", "converted"]
    list_filter = ["status"]
    search_fields = ["organization__name", "organization__account_number", "created_by__email"]
    list_select_related = ["organization", "created_by"]
    exclude = ["plan", "codes"]
    date_hierarchy = "created_at"

    # Conversions are written by the Voucher center only; admin reads them.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
