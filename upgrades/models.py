from __future__ import annotations

from datetime import date

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from licensing.codes import generate_short_code
from licensing.models import License, ProductVersion
from portal.models import Organization


class UpgradeNotification(models.Model):
    """An organization's entitlement to upgrade licenses to a newly published version."""

    code = models.CharField(
        _("notification ID"), max_length=24, unique=True, default=generate_short_code
    )
    organization = models.ForeignKey(
        Organization,
        on_delete=models.CASCADE,
        related_name="upgrade_notifications",
        verbose_name=_("organization"),
    )
    target_version = models.ForeignKey(
        ProductVersion,
        on_delete=models.PROTECT,
        related_name="upgrade_notifications",
        verbose_name=_("new version"),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    expires_on = models.DateField(_("expires on"))

    class Meta:
        verbose_name = _("upgrade notification")
        verbose_name_plural = _("upgrade notifications")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "target_version"],
                name="upgrades_upgradenotification_one_per_org_version",
            )
        ]

    def __str__(self) -> str:
        return f"{self.code} ({self.target_version})"

    def is_expired(self, *, today: date) -> bool:
        return self.expires_on < today


class UpgradeLine(models.Model):
    """One license the notification covers, and how much of it is still to be upgraded."""

    notification = models.ForeignKey(
        UpgradeNotification,
        on_delete=models.CASCADE,
        related_name="lines",
        verbose_name=_("upgrade notification"),
    )
    source_license = models.ForeignKey(
        License,
        on_delete=models.CASCADE,
        related_name="upgrade_lines",
        verbose_name=_("license"),
    )
    eligible_quantity = models.PositiveIntegerField(_("eligible quantity"))
    remaining_quantity = models.PositiveIntegerField(_("remaining quantity"))

    class Meta:
        verbose_name = _("upgrade line")
        verbose_name_plural = _("upgrade lines")
        constraints = [
            models.UniqueConstraint(
                fields=["notification", "source_license"], name="upgrades_upgradeline_unique"
            ),
            # The database itself refuses an over-spent line, whatever the code above does.
            models.CheckConstraint(
                condition=Q(remaining_quantity__gte=0)
                & Q(remaining_quantity__lte=F("eligible_quantity")),
                name="upgrades_upgradeline_remaining_in_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.notification.code}: {self.remaining_quantity}/{self.eligible_quantity}"

    @property
    def upgradable_quantity(self) -> int:
        """What can be upgraded with this line now: its remaining quantity, but no more than
        its license still holds (an upgrade with another notification, to another version,
        takes seats from the same license), and nothing once the license is not active or for
        an Enterprise Flexible key (upgraded through its contract)."""
        source = self.source_license
        if source.status != License.Status.ACTIVE or source.follows_contract:
            return 0
        return max(0, min(self.remaining_quantity, source.quantity))


class UpgradeRedemption(models.Model):
    """One completed upgrade: which line, the new license, who and when."""

    line = models.ForeignKey(
        UpgradeLine,
        on_delete=models.PROTECT,
        related_name="redemptions",
        verbose_name=_("upgrade line"),
    )
    license = models.OneToOneField(
        License,
        on_delete=models.PROTECT,
        related_name="upgrade_redemption",
        verbose_name=_("license"),
    )
    quantity = models.PositiveIntegerField(_("quantity"))
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
        verbose_name=_("user"),
    )
    created_at = models.DateTimeField(_("upgraded at"), default=timezone.now)
    # The wizard's submission token: a confirmation submitted twice finds the first result.
    token = models.CharField(max_length=64, unique=True)

    class Meta:
        verbose_name = _("upgrade")
        verbose_name_plural = _("upgrades")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.line} → {self.license_id}"


class UpgradeNotice(models.Model):
    """The notice email for one notification and technical contact: sent once, ever."""

    notification = models.ForeignKey(
        UpgradeNotification,
        on_delete=models.CASCADE,
        related_name="notices",
        verbose_name=_("upgrade notification"),
    )
    email = models.EmailField(_("email address"))
    queued_at = models.DateTimeField(_("queued at"), default=timezone.now)

    class Meta:
        verbose_name = _("upgrade notice")
        verbose_name_plural = _("upgrade notices")
        constraints = [
            models.UniqueConstraint(
                fields=["notification", "email"], name="upgrades_upgradenotice_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.notification.code} → {self.email}"
