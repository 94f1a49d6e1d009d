"""Enterprise Flexible: contracts that commit a customer to quantities, drawn down as it deploys.

A contract's deployment period is split into contract years (12 months from its start, the last
one cut at the period's end); each year is reported (deployment report) and reconciled (true-up).
The grey year follows the deployment period: maintenance continues, drawdowns stop.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_countries.fields import CountryField

from licensing.models import License, Product, ProductVersion, add_months
from portal.models import Organization
from portal.policy import EF_CONFIGURATION_USER, EF_CONTRACT_USER, EF_SUPER_USER

# A report is due this many days after its contract year ends; after that it is overdue.
REPORT_DUE_DAYS = 30


# ISO 4217's active currency codes: what a line's unit value can be priced in. Not its fund
# codes, precious metals, bond units, special drawing rights or test codes (nobody pays in them).
_ISO_4217 = """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP
    BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP
    GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR
    KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK
    MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR
    SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS
    UAH UGX USD UYU UZS VED VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG
"""
CURRENCIES = frozenset(_ISO_4217.split())


def currency_problem(code: str) -> str | None:
    """Why `code` (in any case) cannot be a line's currency, or None."""
    if code.strip().upper() in CURRENCIES:
        return None
    return _(
        "“%(code)s” is not an ISO 4217 currency code: enter three letters such as USD, EUR or BRL."
    ) % {"code": code.strip()[:10]}


def validate_currency(value: str) -> None:
    problem = currency_problem(value)
    if problem:
        raise ValidationError(problem, code="currency")


def generate_contract_number() -> str:
    # Read over the phone and typed into support tickets: short, digits only after the prefix.
    # Unguessability is not needed (access is by contract user, never by number).
    return f"EF-{secrets.randbelow(90_000_000) + 10_000_000}"


@dataclass(frozen=True)
class ContractYear:
    """One contract year: 1-based number and its first and last day (inclusive)."""

    number: int
    start: date
    end: date

    @property
    def report_due(self) -> date:
        return self.end + timedelta(days=REPORT_DUE_DAYS)


class EFContract(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        SUSPENDED = "suspended", _("Suspended")
        TERMINATED = "terminated", _("Terminated")

    class Phase(models.TextChoices):
        UPCOMING = "upcoming", _("Not started")
        DEPLOYMENT = "deployment", _("Deployment period")
        GREY = "grey", _("Grey year")
        ENDED = "ended", _("Ended")

    number = models.CharField(
        _("contract number"),
        max_length=20,
        unique=True,
        default=generate_contract_number,
        editable=False,
    )
    organization = models.ForeignKey(
        Organization,
        on_delete=models.PROTECT,
        related_name="ef_contracts",
        verbose_name=_("customer organization"),
    )
    period_start = models.DateField(_("deployment period start"))
    period_end = models.DateField(_("deployment period end"))
    grey_year_end = models.DateField(
        _("grey year end"),
        help_text=_(
            "Maintenance of every key drawn down runs to this date; no drawdown is allowed "
            "after the deployment period. Empty: one year after the deployment period."
        ),
    )
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.ACTIVE
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
    )

    class Meta:
        verbose_name = _("Enterprise Flexible contract")
        verbose_name_plural = _("Enterprise Flexible contracts")
        ordering = ["-period_start", "number"]
        constraints = [
            models.CheckConstraint(
                condition=Q(period_end__gte=F("period_start")),
                name="enterprise_flex_efcontract_period_ordered",
                violation_error_message=_(
                    "The deployment period must end on or after the day it starts."
                ),
            ),
            models.CheckConstraint(
                condition=Q(grey_year_end__gt=F("period_end")),
                name="enterprise_flex_efcontract_grey_year_after_period",
                violation_error_message=_("The grey year must end after the deployment period."),
            ),
        ]

    def __str__(self) -> str:
        return self.number

    def years(self) -> list[ContractYear]:
        """The contract years of the deployment period, in order."""
        found: list[ContractYear] = []
        start = self.period_start
        number = 1
        while start <= self.period_end:
            end = min(
                add_months(self.period_start, 12 * number) - timedelta(days=1), self.period_end
            )
            found.append(ContractYear(number=number, start=start, end=end))
            start = end + timedelta(days=1)
            number += 1
        return found

    def year(self, number: int) -> ContractYear | None:
        return next((y for y in self.years() if y.number == number), None)

    def year_of(self, day: date) -> ContractYear | None:
        return next((y for y in self.years() if y.start <= day <= y.end), None)

    def phase(self, *, today: date) -> str:
        if today < self.period_start:
            return self.Phase.UPCOMING
        if today <= self.period_end:
            return self.Phase.DEPLOYMENT
        if today <= self.grey_year_end:
            return self.Phase.GREY
        return self.Phase.ENDED

    def allows_drawdown(self, *, today: date) -> bool:
        return (
            self.status == self.Status.ACTIVE and self.phase(today=today) == self.Phase.DEPLOYMENT
        )


class EFLine(models.Model):
    """A product version the contract commits the customer to, and how much is drawn down."""

    contract = models.ForeignKey(EFContract, on_delete=models.CASCADE, related_name="lines")
    version = models.ForeignKey(
        ProductVersion,
        on_delete=models.PROTECT,
        related_name="ef_lines",
        verbose_name=_("product version"),
    )
    committed_quantity = models.PositiveIntegerField(_("committed quantity"))
    # Kept equal to the sum of the line's drawdowns by drawdown_create, under the line's lock.
    drawn_quantity = models.PositiveIntegerField(_("drawn down"), default=0, editable=False)
    unit_value = models.DecimalField(_("unit value"), max_digits=12, decimal_places=2, default=0)
    currency = models.CharField(
        _("currency"),
        max_length=3,
        default="USD",
        validators=[validate_currency],
        help_text=_("ISO 4217 code, for example USD, EUR or BRL."),
    )
    overage_allowed = models.BooleanField(
        _("overage allowed"),
        default=False,
        help_text=_("Drawdowns beyond the commitment are allowed and recorded as overage."),
    )

    class Meta:
        verbose_name = _("contract line")
        verbose_name_plural = _("contract lines")
        ordering = ["contract", "version__product__name", "version__version"]
        constraints = [
            models.UniqueConstraint(
                fields=["contract", "version"], name="enterprise_flex_efline_one_per_version"
            ),
            models.CheckConstraint(
                condition=Q(committed_quantity__gt=0),
                name="enterprise_flex_efline_committed_positive",
                violation_error_message=_("Enter a committed quantity of at least 1."),
            ),
            models.CheckConstraint(
                condition=Q(unit_value__gte=0),
                name="enterprise_flex_efline_value_not_negative",
                violation_error_message=_("The unit value cannot be negative."),
            ),
            # The database itself refuses a line drawn down beyond its commitment when it does
            # not allow overage, whatever the code above it does (the race test proves both).
            models.CheckConstraint(
                condition=Q(overage_allowed=True) | Q(drawn_quantity__lte=F("committed_quantity")),
                name="enterprise_flex_efline_within_commitment",
                violation_error_message=_(
                    "Without overage allowed, a line cannot have more drawn down than its "
                    "commitment."
                ),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.contract.number}: {self.version}"

    @property
    def product(self) -> Product:
        return self.version.product

    @property
    def remaining_quantity(self) -> int:
        return max(0, self.committed_quantity - self.drawn_quantity)

    @property
    def overage_quantity(self) -> int:
        return max(0, self.drawn_quantity - self.committed_quantity)


class EFSite(models.Model):
    """A named place the customer deploys to; its contact receives the keys drawn down for it."""

    MAIN_SITE_NAME = "Main site"

    contract = models.ForeignKey(EFContract, on_delete=models.CASCADE, related_name="sites")
    name = models.CharField(_("name"), max_length=120)
    address = models.TextField(_("address"), blank=True)
    country = CountryField(_("country"), blank=True)
    # Free text typed before countries were codes, which no country matched (portal.countries):
    # kept for staff to read and fix, never dropped.
    country_legacy = models.CharField(
        _("country as typed before"), max_length=100, blank=True, editable=False
    )
    contact_name = models.CharField(_("contact name"), max_length=200, blank=True)
    contact_email = models.EmailField(_("contact email"), blank=True)
    contact_phone = models.CharField(_("contact phone"), max_length=40, blank=True)
    active = models.BooleanField(
        _("active"), default=True, help_text=_("Inactive sites receive no new drawdowns.")
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("deployment site")
        verbose_name_plural = _("deployment sites")
        ordering = ["contract", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["contract", "name"], name="enterprise_flex_efsite_unique_name"
            )
        ]

    def __str__(self) -> str:
        return self.name


class EFContractUser(models.Model):
    class Level(models.TextChoices):
        CONTRACT = EF_CONTRACT_USER, _("Contract user")
        CONFIGURATION = EF_CONFIGURATION_USER, _("Configuration user")
        SUPER = EF_SUPER_USER, _("Super user")

    contract = models.ForeignKey(EFContract, on_delete=models.CASCADE, related_name="users")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="ef_contract_users"
    )
    level = models.CharField(_("level"), max_length=16, choices=Level.choices)
    created_at = models.DateTimeField(_("added at"), default=timezone.now, editable=False)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
    )

    class Meta:
        verbose_name = _("contract user")
        verbose_name_plural = _("contract users")
        ordering = ["contract", "user__email"]
        constraints = [
            models.UniqueConstraint(
                fields=["contract", "user"], name="enterprise_flex_efcontractuser_one_per_user"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.contract} ({self.level})"


def generate_invitation_token() -> str:
    return secrets.token_urlsafe(32)


INVITATION_LIFETIME = timedelta(days=14)


class EFInvitation(models.Model):
    """A super user's invitation for an email address to join a contract at a level."""

    contract = models.ForeignKey(EFContract, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField(_("email address"))
    level = models.CharField(_("level"), max_length=16, choices=EFContractUser.Level.choices)
    token = models.CharField(max_length=64, unique=True, default=generate_invitation_token)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    accepted_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("contract invitation")
        verbose_name_plural = _("contract invitations")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["contract", "email"],
                condition=Q(accepted_at__isnull=True, revoked_at__isnull=True),
                name="enterprise_flex_efinvitation_one_open_per_email",
            )
        ]

    def __str__(self) -> str:
        return f"{self.email} → {self.contract}"

    @property
    def expires_at(self) -> datetime:
        """When the link stops working: a re-sent invitation keeps its first date (its email
        says this date, not a lifetime counted from the re-send)."""
        return self.created_at + INVITATION_LIFETIME

    def is_open(self, *, now: datetime) -> bool:
        return self.accepted_at is None and self.revoked_at is None and now < self.expires_at


class EFDrawdown(models.Model):
    """Keys drawn down from one line for one site: the license it minted and who asked."""

    # Denormalised from the line: the contract's lists and reports filter on it directly.
    contract = models.ForeignKey(EFContract, on_delete=models.PROTECT, related_name="drawdowns")
    line = models.ForeignKey(EFLine, on_delete=models.PROTECT, related_name="drawdowns")
    site = models.ForeignKey(EFSite, on_delete=models.PROTECT, related_name="drawdowns")
    quantity = models.PositiveIntegerField(_("quantity"))
    overage_quantity = models.PositiveIntegerField(
        _("overage"), default=0, help_text=_("The part of this drawdown beyond the commitment.")
    )
    license = models.OneToOneField(
        License, on_delete=models.PROTECT, related_name="ef_drawdown", verbose_name=_("license")
    )
    drawn_on = models.DateField(_("drawn down on"))
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("drawn down by"),
    )
    # The channel partner that drew down on the customer's behalf, if one did.
    partner = models.ForeignKey(
        Organization,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("partner"),
    )
    # The wizard's submission token: a confirmation submitted twice finds the first drawdown.
    token = models.CharField(max_length=64, unique=True)

    class Meta:
        verbose_name = _("drawdown")
        verbose_name_plural = _("drawdowns")
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(quantity__gt=0),
                name="enterprise_flex_efdrawdown_quantity_positive",
                violation_error_message=_("Enter a quantity of at least 1."),
            ),
            models.CheckConstraint(
                condition=Q(overage_quantity__lte=F("quantity")),
                name="enterprise_flex_efdrawdown_overage_within_quantity",
                violation_error_message=_("A drawdown's overage cannot be more than its quantity."),
            ),
        ]
        indexes = [
            models.Index(fields=["contract", "-created_at"]),
            models.Index(fields=["contract", "created_by", "-created_at"]),
            # The true-up's and the report's sums can be read from the index alone.
            models.Index(
                fields=["contract", "drawn_on", "line", "site", "quantity"],
                name="ef_drawdown_year_sums",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.contract.number}: {self.quantity} × {self.line.version}"


class EFDeploymentReport(models.Model):
    """What the customer declares deployed at the end of one contract year, per line and site."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        SUBMITTED = "submitted", _("Submitted")

    contract = models.ForeignKey(
        EFContract, on_delete=models.CASCADE, related_name="deployment_reports"
    )
    year = models.PositiveSmallIntegerField(_("contract year"))
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.DRAFT
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("updated at"), default=timezone.now)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    submitted_at = models.DateTimeField(_("submitted at"), null=True, blank=True)
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("submitted by"),
    )

    class Meta:
        verbose_name = _("deployment report")
        verbose_name_plural = _("deployment reports")
        ordering = ["contract", "year"]
        constraints = [
            models.UniqueConstraint(
                fields=["contract", "year"], name="enterprise_flex_efdeploymentreport_one_per_year"
            ),
            models.CheckConstraint(
                condition=Q(year__gte=1),
                name="enterprise_flex_efdeploymentreport_year_positive",
                violation_error_message=_("Contract years are numbered from 1."),
            ),
            models.CheckConstraint(
                condition=~Q(status="submitted") | Q(submitted_at__isnull=False),
                name="enterprise_flex_efdeploymentreport_submitted_has_date",
                violation_error_message=_("A submitted report needs the date it was submitted."),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.contract.number} year {self.year} ({self.status})"

    @property
    def is_submitted(self) -> bool:
        return self.status == self.Status.SUBMITTED


class EFDeploymentEntry(models.Model):
    report = models.ForeignKey(EFDeploymentReport, on_delete=models.CASCADE, related_name="entries")
    line = models.ForeignKey(EFLine, on_delete=models.PROTECT, related_name="+")
    site = models.ForeignKey(EFSite, on_delete=models.PROTECT, related_name="+")
    quantity = models.PositiveIntegerField(_("deployed quantity"))

    class Meta:
        verbose_name = _("deployment entry")
        verbose_name_plural = _("deployment entries")
        constraints = [
            models.UniqueConstraint(
                fields=["report", "line", "site"], name="enterprise_flex_efdeploymententry_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.line_id}/{self.site_id}: {self.quantity}"


class EFReminder(models.Model):
    """One reminder emailed to a contract's super users: never twice for a year and reason."""

    class Reason(models.TextChoices):
        YEAR_END_60 = "year_end_60", _("60 days before the contract year ends")
        YEAR_END_30 = "year_end_30", _("30 days before the contract year ends")
        REPORT_OVERDUE = "report_overdue", _("Deployment report overdue")

    contract = models.ForeignKey(EFContract, on_delete=models.CASCADE, related_name="reminders")
    year = models.PositiveSmallIntegerField(_("contract year"))
    reason = models.CharField(_("reason"), max_length=20, choices=Reason.choices)
    recipients = models.JSONField(default=list)
    sent_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("contract reminder")
        verbose_name_plural = _("contract reminders")
        ordering = ["-sent_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["contract", "year", "reason"], name="enterprise_flex_efreminder_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.contract_id} year {self.year}: {self.reason}"
