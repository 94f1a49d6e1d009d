from __future__ import annotations

import secrets
import uuid
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_countries.fields import CountryField

from portal.models import Organization

from .codes import generate_code


class Product(models.Model):
    class LicenseModel(models.TextChoices):
        PERPETUAL = "perpetual", _("Perpetual")
        SUBSCRIPTION = "subscription", _("Subscription")

    sku = models.CharField(_("SKU"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=200)
    family = models.CharField(_("product family"), max_length=100, blank=True)
    node_locked = models.BooleanField(
        _("node-locked"), default=False, help_text=_("Licenses are bound to one host ID.")
    )
    license_model = models.CharField(
        _("license model"),
        max_length=16,
        choices=LicenseModel.choices,
        default=LicenseModel.PERPETUAL,
    )
    rehost_limit = models.PositiveSmallIntegerField(
        _("rehosts per 12 months"),
        default=3,
        help_text=_("How many times a node-locked license may move to a new host in 12 months."),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("product")
        verbose_name_plural = _("products")
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.sku})"


class ProductVersion(models.Model):
    product = models.ForeignKey(
        Product, on_delete=models.PROTECT, related_name="versions", verbose_name=_("product")
    )
    version = models.CharField(_("version"), max_length=40)
    released_on = models.DateField(_("released on"), default=date.today)
    published_at = models.DateTimeField(
        _("published at"),
        null=True,
        blank=True,
        editable=False,
        help_text=_(
            "When staff published it: licensed customers with current maintenance "
            "were notified of the upgrade."
        ),
    )

    class Meta:
        verbose_name = _("product version")
        verbose_name_plural = _("product versions")
        ordering = ["product__name", "-released_on"]
        constraints = [
            models.UniqueConstraint(
                fields=["product", "version"], name="licensing_productversion_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.product.name} {self.version}"


# What one serial (or voucher) may carry, however it is made: generated, imported, typed in
# admin. Beyond them a license's maintenance end would not fit in a date.
MAX_QUANTITY = 1_000_000
MAX_MAINTENANCE_MONTHS = 120
QUANTITY_VALIDATORS = [MinValueValidator(1), MaxValueValidator(MAX_QUANTITY)]
MAINTENANCE_MONTHS_VALIDATORS = [MaxValueValidator(MAX_MAINTENANCE_MONTHS)]


def terms_in_range(*, quantity: int, maintenance_months: int) -> bool:
    """Whether a serial's or voucher batch's terms are within the limits above (rows stored
    before the limits were enforced everywhere may not be)."""
    return 1 <= quantity <= MAX_QUANTITY and 0 <= maintenance_months <= MAX_MAINTENANCE_MONTHS


def add_months(start: date, months: int) -> date:
    """The same day `months` later, clamped to the month's last day (Jan 31 + 1 → Feb 28).

    OverflowError past the last date a `date` holds (9999-12-31), as `date + timedelta` raises.
    """
    month_index = start.month - 1 + months
    year, month = start.year + month_index // 12, month_index % 12 + 1
    if not date.min.year <= year <= date.max.year:
        raise OverflowError("date value out of range")
    for day in (start.day, 30, 29, 28):
        try:
            return start.replace(year=year, month=month, day=day)
        except ValueError:
            continue
    raise AssertionError("unreachable")


class SerialNumber(models.Model):
    class Kind(models.TextChoices):
        NEW = "new", _("New purchase")
        UPGRADE = "upgrade", _("Upgrade")
        RENEWAL = "renewal", _("Maintenance renewal")

    class Status(models.TextChoices):
        OPEN = "open", _("Not redeemed")
        REDEEMED = "redeemed", _("Redeemed")
        VOID = "void", _("Void")

    code = models.CharField(_("serial number"), max_length=64, unique=True, default=generate_code)
    version = models.ForeignKey(
        ProductVersion,
        on_delete=models.PROTECT,
        related_name="serials",
        verbose_name=_("product version"),
    )
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices, default=Kind.NEW)
    quantity = models.PositiveIntegerField(_("quantity"), default=1, validators=QUANTITY_VALIDATORS)
    maintenance_months = models.PositiveSmallIntegerField(
        _("maintenance months"), default=12, validators=MAINTENANCE_MONTHS_VALIDATORS
    )
    expires_on = models.DateField(
        _("redeem before"), null=True, blank=True, help_text=_("Empty: never expires.")
    )
    printed_key = models.CharField(
        _("printed license key"),
        max_length=64,
        blank=True,
        help_text=_("The key printed on the certificate, if any: redeeming returns this key."),
    )
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default="open")
    redeemed_by = models.ForeignKey(
        Organization,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="redeemed_serials",
        verbose_name=_("redeemed by"),
    )
    redeemed_at = models.DateTimeField(_("redeemed at"), null=True, blank=True)
    license = models.ForeignKey(
        "License",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="serials",
        verbose_name=_("license"),
        help_text=_("The license this serial created or renewed."),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("serial number")
        verbose_name_plural = _("serial numbers")
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(quantity__gt=0),
                name="licensing_serialnumber_quantity_positive",
                violation_error_message=_("A serial number needs a quantity of at least 1."),
            ),
            models.CheckConstraint(
                condition=(
                    models.Q(status="redeemed", redeemed_by__isnull=False, license__isnull=False)
                    | ~models.Q(status="redeemed")
                ),
                name="licensing_serialnumber_redeemed_has_owner",
                violation_error_message=_(
                    "A redeemed serial number needs the organization and the license it was "
                    "redeemed for."
                ),
            ),
        ]

    def __str__(self) -> str:
        return self.code

    @property
    def product(self) -> Product:
        return self.version.product

    def is_expired(self, *, today: date) -> bool:
        return self.expires_on is not None and self.expires_on < today

    def terms_in_range(self) -> bool:
        return terms_in_range(quantity=self.quantity, maintenance_months=self.maintenance_months)


class SupportRegistration(models.Model):
    """Who the vendor supports for a license: the company and its two contacts."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="registrations"
    )
    company = models.CharField(_("company"), max_length=200)
    # Capped: it is copied into emails and license pages; 500 characters hold any address.
    address = models.TextField(_("address"), max_length=500)
    country = CountryField(_("country"))
    # Free text typed before countries were codes, which no country matched (portal.countries):
    # kept for staff to read and fix, never dropped.
    country_legacy = models.CharField(
        _("country as typed before"), max_length=100, blank=True, editable=False
    )
    primary_name = models.CharField(_("primary contact name"), max_length=200)
    primary_email = models.EmailField(_("primary contact email"))
    primary_phone = models.CharField(_("primary contact phone"), max_length=40)
    technical_name = models.CharField(_("technical contact name"), max_length=200)
    technical_email = models.EmailField(_("technical contact email"))
    technical_phone = models.CharField(_("technical contact phone"), max_length=40)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    # What the customer enters, in the form's order.
    FIELDS = (
        "company",
        "address",
        "country",
        "primary_name",
        "primary_email",
        "primary_phone",
        "technical_name",
        "technical_email",
        "technical_phone",
    )

    class Meta:
        verbose_name = _("support registration")
        verbose_name_plural = _("support registrations")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.company} ({self.technical_email})"

    def changes(self, data: Mapping[str, Any]) -> dict[str, dict[str, str]]:
        """The fields `data` would change, as audit events keep them: {name: {from, to}}."""
        # str(): a country is a Country object on the model and a code in a form's data.
        # text_lines(): a browser posts a textarea's line breaks as CRLF, what was stored by an
        # import or a script has LF: the same address either way, not a change.
        return {
            name: {"from": str(getattr(self, name)), "to": text_lines(str(data[name]))}
            for name in self.FIELDS
            if name in data and text_lines(str(getattr(self, name))) != text_lines(str(data[name]))
        }


def text_lines(value: str) -> str:
    """`value` with its line breaks as LF, however they were typed or posted (CRLF, CR)."""
    return value.replace("\r\n", "\n").replace("\r", "\n")


class License(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        SUPERSEDED = "superseded", _("Superseded")
        REVOKED = "revoked", _("Revoked")

    class Source(models.TextChoices):
        SERIAL = "serial", _("Serial number")
        UPGRADE = "upgrade", _("Version upgrade")
        VOUCHER = "voucher", _("Voucher")
        EF_DRAWDOWN = "ef_drawdown", _("Enterprise Flexible drawdown")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Unique by a constraint (Meta), not unique=True: that would add a second, pattern-ops index
    # on PostgreSQL for prefix LIKE, which nothing runs (the search's substring match uses the
    # trigram index), and which every license INSERT paid for.
    key = models.CharField(_("license key"), max_length=64)
    owner = models.ForeignKey(
        Organization,
        on_delete=models.PROTECT,
        related_name="licenses",
        verbose_name=_("owner"),
        # Every index below starts with the owner: a fifth one on the owner alone was redundant.
        db_index=False,
    )
    version = models.ForeignKey(
        ProductVersion,
        on_delete=models.PROTECT,
        related_name="licenses",
        verbose_name=_("product version"),
    )
    quantity = models.PositiveIntegerField(_("quantity"))
    maintenance_start = models.DateField(_("maintenance start"))
    maintenance_end = models.DateField(_("maintenance end"))
    # The period covered before maintenance lapsed, kept when a renewal after the lapse starts a
    # new one (license_renew): the versions released during it stay included (covers), those
    # released during the lapse do not. One period: the paid one before the latest lapse. After
    # a second lapse the one before the first is dropped, not joined to it: a single range from
    # the first start would also cover the first lapse, and two columns hold one range.
    earlier_maintenance_start = models.DateField(
        _("earlier maintenance start"), null=True, blank=True
    )
    earlier_maintenance_end = models.DateField(_("earlier maintenance end"), null=True, blank=True)
    host_id = models.CharField(_("host ID"), max_length=200, blank=True)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.ACTIVE
    )
    source = models.CharField(_("source"), max_length=16, choices=Source.choices)
    # What the source was (a serial code, an upgrade line, a voucher code…), as text so that this
    # app never imports the apps built on top of it.
    source_ref = models.CharField(_("source reference"), max_length=100, blank=True)
    supersedes = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="superseded_by",
        verbose_name=_("supersedes"),
    )
    registration = models.ForeignKey(
        SupportRegistration,
        on_delete=models.PROTECT,
        related_name="licenses",
        verbose_name=_("support registration"),
    )
    issued_at = models.DateTimeField(_("issued at"), default=timezone.now)
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("issued by"),
    )
    # The channel partner whose user obtained the license on the owner's behalf: the owner's
    # administrators get the license email too, and the license page says who obtained it.
    partner = models.ForeignKey(
        Organization,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("obtained by partner"),
    )
    # A reissued file (renewal, rehost) replaces the previous one: files carry this timestamp,
    # and only the file with the latest one is current.
    file_issued_at = models.DateTimeField(_("license file issued at"), default=timezone.now)
    # Moves customer care allowed beyond the product's rehost limit, one at a time: each is
    # spent by the next rehost the limit would refuse (licensing.services.license_rehost), so a
    # grant helps this license once instead of raising the limit for every customer.
    rehosts_granted = models.PositiveSmallIntegerField(
        _("extra rehosts allowed"),
        default=0,
        help_text=_("Moves allowed beyond the product's limit, granted by customer care."),
    )

    class Meta:
        verbose_name = _("license")
        verbose_name_plural = _("licenses")
        ordering = ["-issued_at"]
        # The list's usual orders (newest first, by maintenance end) with the id tie-break and
        # the status it filters on: a page's ids, however deep, come from the index alone.
        # Trigram indexes for the search are PostgreSQL's and live in migration 0011.
        indexes = [
            models.Index(fields=["owner", "status", "maintenance_end"]),
            models.Index(
                fields=["owner", "-issued_at", "-id", "status"], name="licensing_license_newest"
            ),
            models.Index(
                fields=["owner", "maintenance_end", "id", "status"],
                name="licensing_license_maint_end",
            ),
            models.Index(fields=["owner", "version"]),
        ]
        constraints = [
            models.UniqueConstraint(fields=["key"], name="licensing_license_key_unique"),
            models.CheckConstraint(
                condition=models.Q(maintenance_end__gte=models.F("maintenance_start")),
                name="licensing_license_maintenance_ordered",
                violation_error_message=_("Maintenance must end on or after the day it starts."),
            ),
            models.CheckConstraint(
                condition=models.Q(
                    earlier_maintenance_start__isnull=True, earlier_maintenance_end__isnull=True
                )
                | models.Q(
                    earlier_maintenance_end__gte=models.F("earlier_maintenance_start"),
                    earlier_maintenance_end__lt=models.F("maintenance_start"),
                ),
                name="licensing_license_earlier_maintenance_ordered",
                violation_error_message=_(
                    "Earlier maintenance must have both dates, end on or after the day it "
                    "starts, and end before maintenance starts."
                ),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.version} × {self.quantity} ({self.key})"

    @property
    def product(self) -> Product:
        return self.version.product

    def maintenance_state(self, *, today: date) -> str:
        # A superseded or revoked license's maintenance covers nothing any more (a whole
        # upgrade moved it to the new license): not "current", whatever its dates say.
        if self.status != self.Status.ACTIVE:
            return "inactive"
        if self.maintenance_end < today:
            return "expired"
        if self.maintenance_end <= today + timedelta(days=90):
            return "expiring"
        return "active"

    def covers(self, released_on: date) -> bool:
        """Whether a version released on `released_on` falls in this license's maintenance: its
        current period or the earlier one the renewal after the latest lapse kept (covering()
        for queries, upgrades.services._COVERS_SQL in SQL)."""
        if self.maintenance_start <= released_on <= self.maintenance_end:
            return True
        return (
            self.earlier_maintenance_start is not None
            and self.earlier_maintenance_end is not None
            and self.earlier_maintenance_start <= released_on <= self.earlier_maintenance_end
        )

    @staticmethod
    def covering(released_on: date, prefix: str = "") -> models.Q:
        """covers() as a filter on licenses (`prefix` reaches them from another model, e.g.
        "license__"); upgrades.services spells the same in its SQL."""
        return models.Q(
            **{
                f"{prefix}maintenance_start__lte": released_on,
                f"{prefix}maintenance_end__gte": released_on,
            }
        ) | models.Q(
            **{
                f"{prefix}earlier_maintenance_start__lte": released_on,
                f"{prefix}earlier_maintenance_end__gte": released_on,
            }
        )

    def earlier_period_for(self, start: date) -> tuple[date | None, date | None]:
        """The earlier period a license replacing this one and starting on `start` carries:
        this one's when it keeps this one's start (it continues the same coverage), else none
        (a period started afresh entitles from its start, as this one's own dates do not carry)."""
        if start != self.maintenance_start:
            return None, None
        return self.earlier_maintenance_start, self.earlier_maintenance_end

    def renewal_period(self, *, months: int, today: date) -> tuple[date, date]:
        """The maintenance start and end a renewal of `months` on `today` gives.

        Renewed before it ends, maintenance is extended from its end and keeps its start.
        Renewed after it lapsed, a new period starts on the renewal day: a start kept from
        before the lapse would cover the versions released during it, which the license was
        not entitled to (upgrade notifications and FileConnect read covers()). The period before
        the lapse is kept as the earlier one (license_renew), in place of one kept at an earlier
        lapse: what it covered stays included, and no lapse is covered.
        """
        if self.maintenance_end >= today:
            return self.maintenance_start, add_months(self.maintenance_end, months)
        return today, add_months(today, months)

    def replaces_whole(self, predecessor: License) -> bool:
        """Whether this license replaced `predecessor`, the license it supersedes, as a whole
        (its pages say "Supersedes" it) rather than took seats of it ("Upgraded from").

        Only an upgrade serial for all of a license's seats retires it whole (license_issue).
        A version upgrade and an upgrade serial for part of it move seats
        (license_seats_upgraded): the older license stays active with the rest under its key,
        or is superseded by the last move with none left, or is revoked later on.
        """
        return self.source != self.Source.UPGRADE and predecessor.status == self.Status.SUPERSEDED

    @property
    def follows_contract(self) -> bool:
        """A key drawn down from an Enterprise Flexible contract: its maintenance and versions
        come through the contract, never through a renewal serial, an upgrade notification or
        a maintenance reminder. Queries say the same with `source=Source.EF_DRAWDOWN`."""
        return self.source == self.Source.EF_DRAWDOWN

    @property
    def file_name(self) -> str:
        return f"{self.version.product.sku}-{self.key[-5:]}.lic".lower()


class SerialRedemption(models.Model):
    """The one redemption of a serial number: written by serial_redeem for every kind.

    The database, not Python, guarantees "once": `serial` and `code` are unique, so a second
    redemption of one serial fails on insert whatever path reopened it (an import, a hand edit of
    its status). `code` is unique as well as `serial` so that deleting a redeemed serial and
    creating one with the same code cannot make it redeemable again; PROTECT keeps the serial.
    """

    serial = models.OneToOneField(
        SerialNumber,
        on_delete=models.PROTECT,
        related_name="redemption",
        verbose_name=_("serial number"),
    )
    code = models.CharField(_("serial number"), max_length=64, unique=True)
    kind = models.CharField(_("kind"), max_length=16, choices=SerialNumber.Kind.choices)
    license = models.ForeignKey(
        License,
        on_delete=models.PROTECT,
        related_name="serial_redemptions",
        verbose_name=_("license"),
        help_text=_("The license this serial created or renewed."),
    )
    organization = models.ForeignKey(
        Organization,
        on_delete=models.PROTECT,
        related_name="serial_redemptions",
        verbose_name=_("redeemed by"),
    )
    redeemed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("redeemed by user"),
    )
    redeemed_at = models.DateTimeField(_("redeemed at"), default=timezone.now)

    class Meta:
        verbose_name = _("serial redemption")
        verbose_name_plural = _("serial redemptions")
        ordering = ["-redeemed_at"]

    def __str__(self) -> str:
        return f"{self.code} → {self.license_id}"


class RetiredKey(models.Model):
    """A key a license no longer answers to (rehosted): kept so the old key reads as revoked."""

    key = models.CharField(_("license key"), max_length=64, unique=True)
    license = models.ForeignKey(License, on_delete=models.CASCADE, related_name="retired_keys")
    host_id = models.CharField(_("host ID"), max_length=200, blank=True)
    retired_at = models.DateTimeField(_("retired at"), default=timezone.now)
    reason = models.CharField(_("reason"), max_length=32, default="rehost")

    class Meta:
        verbose_name = _("retired license key")
        verbose_name_plural = _("retired license keys")
        ordering = ["-retired_at"]

    def __str__(self) -> str:
        return self.key


def generate_share_token() -> str:
    return secrets.token_urlsafe(32)


class LicenseShare(models.Model):
    """A license shared by its owner organization with one person, by email address."""

    class Access(models.TextChoices):
        READ = "read", _("Read-only")
        MANAGE = "manage", _("Manage")

    license = models.ForeignKey(License, on_delete=models.CASCADE, related_name="shares")
    email = models.EmailField(_("email address"))
    # Set when the address belongs to an account: at once for existing users, or when the
    # recipient follows the emailed link after signing up with that address.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="license_shares",
    )
    access = models.CharField(_("access"), max_length=8, choices=Access.choices, default="read")
    token = models.CharField(max_length=64, unique=True, default=generate_share_token)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(_("shared at"), default=timezone.now)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)

    class Meta:
        verbose_name = _("license share")
        verbose_name_plural = _("license shares")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["license", "email"],
                condition=models.Q(revoked_at__isnull=True),
                name="licensing_licenseshare_one_active_per_email",
            )
        ]
        indexes = [models.Index(fields=["user", "revoked_at"])]

    def __str__(self) -> str:
        return f"{self.license.key} → {self.email} ({self.access})"


class CustomField(models.Model):
    """A field an organization defines to keep its own data on each of its licenses."""

    class Type(models.TextChoices):
        TEXT = "text", _("Text")
        NUMBER = "number", _("Number")
        DATE = "date", _("Date")
        CHOICE = "choice", _("Choice")

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="custom_fields"
    )
    name = models.CharField(_("name"), max_length=60)
    field_type = models.CharField(_("type"), max_length=8, choices=Type.choices, default="text")
    required = models.BooleanField(_("required"), default=False)
    choices = models.TextField(
        _("choices"),
        blank=True,
        max_length=5000,
        help_text=_("For choice fields: one option per line."),
    )
    position = models.PositiveSmallIntegerField(_("position"), default=0)

    class Meta:
        verbose_name = _("custom field")
        verbose_name_plural = _("custom fields")
        ordering = ["position", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "name"], name="licensing_customfield_unique_name"
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def sort_column(self) -> str:
        return f"cf_{self.pk}"

    @property
    def choice_list(self) -> list[str]:
        return [line.strip() for line in self.choices.splitlines() if line.strip()]


class CustomFieldValue(models.Model):
    # Values are stored as text in a canonical form (numbers as decimals, dates as ISO), so one
    # indexed column serves filtering and search whatever the type.
    license = models.ForeignKey(License, on_delete=models.CASCADE, related_name="custom_values")
    field = models.ForeignKey(CustomField, on_delete=models.CASCADE, related_name="values")
    value = models.CharField(_("value"), max_length=500)

    class Meta:
        verbose_name = _("custom field value")
        verbose_name_plural = _("custom field values")
        constraints = [
            models.UniqueConstraint(
                fields=["license", "field"], name="licensing_customfieldvalue_one_per_license"
            )
        ]
        indexes = [models.Index(fields=["field", "value"])]

    def __str__(self) -> str:
        return f"{self.field.name}={self.value}"


class MaintenanceReminder(models.Model):
    """One reminder sent: a license, the threshold it crossed and the maintenance end it was for."""

    license = models.ForeignKey(License, on_delete=models.CASCADE, related_name="reminders")
    days_before = models.PositiveSmallIntegerField()
    maintenance_end = models.DateField()
    email = models.EmailField()
    sent_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("maintenance reminder")
        verbose_name_plural = _("maintenance reminders")
        constraints = [
            models.UniqueConstraint(
                fields=["license", "days_before", "maintenance_end", "email"],
                name="licensing_maintenancereminder_once",
            )
        ]

    def __str__(self) -> str:
        return f"{self.license_id} {self.days_before}d → {self.email}"


class ListVersion(models.Model):
    """How many committed transactions have changed what an organization's My licenses shows.

    Written only by PostgreSQL triggers (licensing/listcache.py), read by the list's page cache
    as part of its key. Organization 0 is the catalog, whose names every list shows.
    """

    organization_id = models.BigIntegerField(primary_key=True)
    version = models.BigIntegerField(default=0)
    # The transaction that last counted: a transaction that changes many rows counts once.
    xact = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = _("license list version")
        verbose_name_plural = _("license list versions")
        default_permissions = ()

    def __str__(self) -> str:
        return f"{self.organization_id}: {self.version}"
