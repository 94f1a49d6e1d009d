from __future__ import annotations

import uuid
from datetime import date

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from licensing.models import (
    MAINTENANCE_MONTHS_VALIDATORS,
    QUANTITY_VALIDATORS,
    License,
    ProductVersion,
    SupportRegistration,
    terms_in_range,
)
from portal.models import Delegation, Organization


class VoucherBatch(models.Model):
    """Vouchers an OEM partner ships with its hardware: same product, version and terms."""

    oem = models.ForeignKey(
        Organization,
        on_delete=models.PROTECT,
        related_name="voucher_batches",
        limit_choices_to={"kind": Organization.Kind.PARTNER},
        verbose_name=_("OEM partner"),
    )
    version = models.ForeignKey(
        ProductVersion,
        on_delete=models.PROTECT,
        related_name="voucher_batches",
        verbose_name=_("product version"),
    )
    label = models.CharField(
        _("label"),
        max_length=200,
        blank=True,
        help_text=_("For your reference, for example the OEM's purchase order number."),
    )
    quantity_per_voucher = models.PositiveIntegerField(
        _("quantity per voucher"), default=1, validators=QUANTITY_VALIDATORS
    )
    maintenance_months = models.PositiveSmallIntegerField(
        _("maintenance months"), default=12, validators=MAINTENANCE_MONTHS_VALIDATORS
    )
    expires_on = models.DateField(
        _("convert before"), null=True, blank=True, help_text=_("Empty: never expires.")
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
        verbose_name=_("created by"),
    )
    voided_at = models.DateTimeField(_("voided at"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("voucher batch")
        verbose_name_plural = _("voucher batches")
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(quantity_per_voucher__gt=0),
                name="vouchers_voucherbatch_quantity_positive",
                violation_error_message=_("A voucher needs a quantity of at least 1."),
            ),
        ]

    def __str__(self) -> str:
        label = f" · {self.label}" if self.label else ""
        return f"#{self.pk} {self.version} × {self.quantity_per_voucher}{label}"

    def is_expired(self, *, today: date) -> bool:
        return self.expires_on is not None and self.expires_on < today

    def terms_in_range(self) -> bool:
        return terms_in_range(
            quantity=self.quantity_per_voucher, maintenance_months=self.maintenance_months
        )


class Voucher(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", pgettext_lazy("voucher status", "Not converted")
        REDEEMED = "redeemed", pgettext_lazy("voucher status", "Converted")
        VOID = "void", pgettext_lazy("voucher status", "Void")

    code = models.CharField(_("voucher code"), max_length=64, unique=True)
    batch = models.ForeignKey(
        VoucherBatch, on_delete=models.PROTECT, related_name="vouchers", verbose_name=_("batch")
    )
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.OPEN
    )
    redeemed_by = models.ForeignKey(
        Organization,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="redeemed_vouchers",
        verbose_name=_("converted by"),
    )
    redeemed_at = models.DateTimeField(_("converted at"), null=True, blank=True)
    license = models.ForeignKey(
        License,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="vouchers",
        verbose_name=_("license"),
    )

    class Meta:
        verbose_name = _("voucher")
        verbose_name_plural = _("vouchers")
        ordering = ["batch", "pk"]
        indexes = [models.Index(fields=["batch", "status"], name="vouchers_voucher_batch_status")]
        constraints = [
            # The claim sets status, owner and license in one UPDATE, so this holds at all times.
            models.CheckConstraint(
                condition=(
                    models.Q(
                        status="redeemed",
                        redeemed_by__isnull=False,
                        redeemed_at__isnull=False,
                        license__isnull=False,
                    )
                    | ~models.Q(status="redeemed")
                ),
                name="vouchers_voucher_redeemed_has_license",
                violation_error_message=_(
                    "A converted voucher needs the organization, the date and the license it was "
                    "converted into."
                ),
            ),
        ]

    def __str__(self) -> str:
        return self.code


class VoucherConversion(models.Model):
    """One confirmed submission of the Voucher center: its plan, progress and outcome.

    The result page, the progress page and the Celery task all read this row, so a conversion
    survives reloads, double submits and a worker restart (it resumes where it stopped).
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting")
        RUNNING = "running", _("Converting")
        DONE = "done", _("Done")
        FAILED = "failed", _("Stopped")

    # Chosen by the wizard before the conversion exists: submitting the same confirmation twice
    # finds this row instead of creating a second one.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(
        Organization,
        on_delete=models.PROTECT,
        related_name="voucher_conversions",
        verbose_name=_("organization"),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.PENDING
    )
    combine = models.BooleanField(_("combine vouchers of the same product"), default=True)
    language = models.CharField(_("language"), max_length=16, blank=True)
    codes = models.JSONField(_("codes as submitted"), default=list)
    registration_data = models.JSONField(default=dict)
    registration = models.ForeignKey(
        SupportRegistration,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("support registration"),
    )
    # The channel partner's delegation it was confirmed under: a conversion finished by a Celery
    # worker records the partner and marks its licenses as obtained on the customer's behalf,
    # as one converted within the request does.
    delegation = models.ForeignKey(
        Delegation,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("partner delegation"),
    )
    # [[voucher id, ...], ...]: one list per license to issue, fixed when the conversion starts.
    plan = models.JSONField(default=list, blank=True)
    next_group = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(_("codes"), default=0)
    processed = models.PositiveIntegerField(_("codes processed"), default=0)
    converted = models.PositiveIntegerField(_("vouchers converted"), default=0)
    # {"refused": [{code, reason, params}]}: decided when the conversion is planned, rarely
    # added to after. The licenses it issued are VoucherConversionLicense rows: appended to a
    # JSON list, they made every chunk rewrite (and the result page decode) all before it.
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        verbose_name = _("voucher conversion")
        verbose_name_plural = _("voucher conversions")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "updated_at"], name="vouchers_conversion_status")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(processed__lte=models.F("total")),
                name="vouchers_voucherconversion_processed_within_total",
                violation_error_message=_(
                    "A conversion cannot have processed more codes than it holds."
                ),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.organization} · {self.total} codes · {self.status}"

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED)

    @property
    def percent(self) -> int:
        if not self.total:
            return 100 if self.is_finished else 0
        return min(100, self.processed * 100 // self.total)

    @property
    def refused(self) -> list[dict]:
        return list((self.result or {}).get("refused", []))

    @property
    def stopped(self) -> dict:
        """Why a stopped conversion stopped, when it was not an error: {"reason", "by"}."""
        return dict((self.result or {}).get("stopped") or {})


class VoucherConversionLicense(models.Model):
    """One license a conversion issued, at its place in the order it issued them.

    Written in the transaction of the chunk that issued the license, so the result page, the
    email and the zip read a resumed conversion's licenses in one piece. The vouchers a license
    consumed are the vouchers pointing at it (Voucher.license).
    """

    conversion = models.ForeignKey(
        VoucherConversion,
        on_delete=models.CASCADE,
        related_name="issued",
        db_index=False,  # the (conversion, position) constraint's index serves it
        verbose_name=_("voucher conversion"),
    )
    position = models.PositiveIntegerField(_("position"))
    license = models.ForeignKey(
        License,
        on_delete=models.PROTECT,
        related_name="voucher_conversion_entries",
        db_index=False,  # the unique constraint's index serves it
        verbose_name=_("license"),
    )

    class Meta:
        verbose_name = _("license of a voucher conversion")
        verbose_name_plural = _("licenses of voucher conversions")
        ordering = ["conversion", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["conversion", "position"],
                name="vouchers_voucherconversionlicense_position_unique",
            ),
            # A license comes from one conversion, once: a chunk done twice fails here.
            models.UniqueConstraint(
                fields=["license"], name="vouchers_voucherconversionlicense_license_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.conversion_id} #{self.position}"
