"""Version upgrades: publishing a version, notifications, notices and upgrading a license."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from html import escape

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from licensing.codes import generate_short_code
from licensing.models import License, ProductVersion
from licensing.services import (
    IssueSource,
    LicensingError,
    license_issue,
    license_seats_upgraded,
    registration_update,
)
from portal.broker import enqueue
from portal.emails import EmailToQueue, queue_emails, recipient_languages, sender_language
from portal.models import Organization, User
from portal.services import audit_record, staff_edit_save

from .models import UpgradeLine, UpgradeNotice, UpgradeNotification, UpgradeRedemption

NOTIFICATION_LIFETIME = timedelta(days=365)


class UpgradeError(LicensingError):
    """An upgrade that cannot happen; the message tells the user what to do."""


# ---------------------------------------------------------------------------------------------
# Publishing


@transaction.atomic
def version_publish(*, version: ProductVersion, actor: User | None) -> bool:
    """Marks a version published and queues its notifications; False if it already was."""
    updated = ProductVersion.objects.filter(pk=version.pk, published_at__isnull=True).update(
        published_at=timezone.now()
    )
    if not updated:
        return False
    audit_record(
        action="version.published",
        actor=actor,
        obj=version,
        details={"product": version.product.sku, "version": version.version},
    )
    from .tasks import publish_version

    # robust: a broker that is down must not turn the committed publication into an error
    # page; the daily eligibility job (upgrades.tasks.refresh_upgrade_eligibility) creates the
    # notifications the lost task would have.
    transaction.on_commit(lambda: enqueue(publish_version, version.pk), robust=True)
    return True


# Lines already there are skipped by the unique constraint (ON CONFLICT), not by a NOT EXISTS
# on the table being filled, which the planner can turn quadratic when its statistics say the
# table is empty.
# The eligibility rule: an active license of an earlier version of the same product whose
# maintenance is current on the release date (begun by then, and ending that very day counts),
# and not drawn down from an Enterprise Flexible contract (those follow the contract's lines).
# Both statements below spell it out the same way; tests/upgrades/test_publishing.py pins it.
# "Current on the release date" is License.covers: the current period or the earlier one a
# renewal after a lapse kept (a version released during the lapse is in neither).
# A license whose maintenance began after the release (bought since) has the version it
# bought: FileConnect does not offer it the newer files either (version_entitlement).
_COVERS_SQL = """(
        (l.maintenance_start <= %(released_on)s AND l.maintenance_end >= %(released_on)s)
        OR (l.earlier_maintenance_start <= %(released_on)s
            AND l.earlier_maintenance_end >= %(released_on)s)
      )"""
_OWNERS_WITHOUT_NOTIFICATION_SQL = f"""
    SELECT DISTINCT l.owner_id
    FROM licensing_license l
    JOIN licensing_productversion v ON v.id = l.version_id
    WHERE v.product_id = %(product)s
      AND v.released_on < %(released_on)s
      AND l.status = 'active'
      AND l.quantity > 0
      AND {_COVERS_SQL}
      AND l.source <> 'ef_drawdown'
      AND NOT EXISTS (SELECT 1 FROM upgrades_upgradenotification n
                      WHERE n.organization_id = l.owner_id
                        AND n.target_version_id = %(version)s)
"""  # noqa: S608 - constants only; the values are parameters
_INSERT_LINES_SQL = f"""
    INSERT INTO upgrades_upgradeline
        (notification_id, source_license_id, eligible_quantity, remaining_quantity)
    SELECT n.id, l.id, l.quantity, l.quantity
    FROM licensing_license l
    JOIN licensing_productversion v ON v.id = l.version_id
    JOIN upgrades_upgradenotification n
      ON n.organization_id = l.owner_id AND n.target_version_id = %(version)s
    WHERE v.product_id = %(product)s
      AND v.released_on < %(released_on)s
      AND l.status = 'active'
      AND l.quantity > 0
      AND {_COVERS_SQL}
      AND l.source <> 'ef_drawdown'
    ON CONFLICT (notification_id, source_license_id) DO NOTHING
"""  # noqa: S608 - as above


@dataclass(frozen=True)
class NotificationsCreated:
    notifications: int
    lines: int


@transaction.atomic
def notifications_create(*, version: ProductVersion, today: date) -> NotificationsCreated:
    """Creates the notifications and lines a published version entitles, set-based.

    A fixed handful of statements whatever the number of licenses: owners without a
    notification get one (ids made here, inserted in bulk), then one INSERT … SELECT adds a
    line per eligible license. Running it again adds only what became eligible since.
    """
    params: dict[str, int | date] = {
        "product": version.product_id,
        "released_on": version.released_on,
        "version": version.pk,
    }
    with connection.cursor() as cursor:
        cursor.execute(
            _OWNERS_WITHOUT_NOTIFICATION_SQL,
            params,
        )
        owners = [row[0] for row in cursor.fetchall()]
    expires_on = today + NOTIFICATION_LIFETIME
    UpgradeNotification.objects.bulk_create(
        [
            UpgradeNotification(
                code=generate_short_code(),
                organization_id=owner,
                target_version=version,
                expires_on=expires_on,
            )
            for owner in owners
        ],
        batch_size=5000,
    )
    with connection.cursor() as cursor:
        cursor.execute(
            _INSERT_LINES_SQL,
            params,
        )
        lines = cursor.rowcount
    if owners or lines:
        audit_record(
            action="upgrade.notifications_created",
            obj=version,
            details={"version": version.version, "notifications": len(owners), "lines": lines},
        )
    return NotificationsCreated(notifications=len(owners), lines=lines)


# Notices are queued this many per transaction: one INSERT for their rows and one per 500 for
# their outbox rows, so publishing to thousands of organizations costs a few statements per
# batch, not a transaction and a dozen statements per organization.
NOTICE_BATCH = 500

_NoticeKey = tuple[int, str]


def upgrade_notices_send(*, version: ProductVersion) -> int:
    """Queues one notice per notification and technical contact not yet noticed."""
    rows = (
        UpgradeLine.objects.filter(notification__target_version=version)
        .values_list(
            "notification_id",
            "source_license__registration__technical_email",
            "source_license__version__version",
            "source_license__key",
            "eligible_quantity",
        )
        .order_by("notification_id", "source_license__version__version")
    )
    by_contact: dict[_NoticeKey, list[dict[str, object]]] = defaultdict(list)
    for notification_id, email, from_version, key, quantity in rows.iterator(chunk_size=5000):
        by_contact[(notification_id, email.strip().lower())].append(
            {"from_version": from_version, "key": key, "quantity": quantity}
        )
    sent = set(
        UpgradeNotice.objects.filter(notification__target_version=version).values_list(
            "notification_id", "email"
        )
    )
    pending = [(key, lines) for key, lines in by_contact.items() if key not in sent]
    notifications = UpgradeNotification.objects.in_bulk(
        {notification_id for (notification_id, _email), _lines in pending}
    )
    queued = 0
    for start in range(0, len(pending), NOTICE_BATCH):
        queued += _notices_queue(
            version=version,
            notifications=notifications,
            batch=pending[start : start + NOTICE_BATCH],
        )
    return queued


@transaction.atomic
def _notices_queue(
    *,
    version: ProductVersion,
    notifications: dict[int, UpgradeNotification],
    batch: list[tuple[_NoticeKey, list[dict[str, object]]]],
) -> int:
    # The notice rows and their outbox rows commit together: never twice, never lost. A notice
    # another run inserted meanwhile conflicts on the unique constraint and is not returned, so
    # it gets no second email.
    created = _notices_insert([key for key, _lines in batch])
    # Each notice in its reader's language (the one they last chose on the portal; the
    # publisher's for addresses without an account), the wording translated once per language.
    languages = recipient_languages([email for (_id, email) in created])
    active = sender_language()
    wordings: dict[str, _NoticeWording] = {}
    emails = []
    for (notification_id, email), lines in batch:
        if (notification_id, email) not in created:
            continue
        language = languages.get(email.lower(), active)
        with translation.override(language):
            if language not in wordings:
                wordings[language] = _NoticeWording(version)
            wording = wordings[language].context(notifications[notification_id], lines)
        emails.append(
            EmailToQueue(
                template="upgrade_notice",
                to=[email],
                context={
                    "notification": notifications[notification_id],
                    "version": version,
                    "product": version.product,
                    **wording,
                },
                language=language,
            )
        )
    queue_emails(emails=emails)
    return len(created)


class _NoticeWording:
    """The sentences of a version's notices, translated once per batch, not once per email.

    Written here, not by translation tags and a loop over the lines in the templates: an
    organization's notice lists every license, and thousands of notices made those tags and
    loops most of a publication's time. The msgids are the ones the templates had.
    """

    def __init__(self, version: ProductVersion) -> None:
        self.product, self.target = version.product.name, version.version
        self.released = _(
            "%(product)s %(version)s has been released. Because maintenance was current on "
            "these licenses, you can upgrade them at no cost:"
        ) % {"product": version.product.name, "version": version.version}
        self.line = _("quantity %(quantity)s, license %(key)s")
        self._deadlines: dict[date, str] = {}

    def deadline(self, expires_on: date) -> str:
        if expires_on not in self._deadlines:
            # The notification is valid on its last day (is_expired: expires_on < today):
            # "before" that day would tell the reader a day too early.
            self._deadlines[expires_on] = _("Upgrade by %(date)s.") % {
                "date": date_format(expires_on, "SHORT_DATE_FORMAT")
            }
        return self._deadlines[expires_on]

    def context(
        self, notification: UpgradeNotification, lines: list[dict[str, object]]
    ) -> dict[str, object]:
        """What emails/upgrade_notice_* show of one notice: its sentences and its lines."""
        texts = [
            f"{self.product} {line['from_version']} → {self.target}, "
            + self.line % {"quantity": line["quantity"], "key": line["key"]}
            for line in lines
        ]
        return {
            "released": self.released,
            "deadline": self.deadline(notification.expires_on),
            "lines_text": "\n".join(f"- {text}" for text in texts),
            # Every line escaped with the stdlib's escape, as Django's filter does, without its
            # wrapping per call.
            "lines_html": mark_safe("".join(f"<li>{escape(text)}</li>" for text in texts)),
        }


def _notices_insert(keys: list[_NoticeKey]) -> set[_NoticeKey]:
    """Inserts the notices not there yet, in one statement; returns those it inserted."""
    if not keys:
        return set()
    table = connection.ops.quote_name(UpgradeNotice._meta.db_table)
    now = timezone.now()
    values = ", ".join(["(%s, %s, %s)"] * len(keys))
    params: list[int | str | datetime] = []
    for notification_id, email in keys:
        params += [notification_id, email, now]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (notification_id, email, queued_at) VALUES {values} "  # noqa: S608
            "ON CONFLICT (notification_id, email) DO NOTHING RETURNING notification_id, email",
            params,
        )
        return {(row[0], row[1]) for row in cursor.fetchall()}


# ---------------------------------------------------------------------------------------------
# Upgrading


def notification_staff_change(
    *, notification: UpgradeNotification, fields: Sequence[str], actor: User | None
) -> UpgradeNotification:
    """Saves the `fields` staff changed on an upgrade notification in admin (its expiry: an
    earlier one ends the customer's right to upgrade with it), audited before and after."""
    return staff_edit_save(
        edited=notification,
        fields=fields,
        actor=actor,
        action="upgrade.notification_changed",
        organization=lambda locked: locked.organization,
        details=lambda locked: {"code": locked.code},
    )


def line_for(*, line_id: int | str, organization: Organization) -> UpgradeLine | None:
    return (
        UpgradeLine.objects.select_related(
            "notification__target_version__product",
            "source_license__version__product",
            "source_license__registration",
        )
        .filter(pk=line_id, notification__organization=organization)
        .first()
    )


@transaction.atomic
def upgrade_redeem(
    *,
    line_id: int | str,
    quantity: int,
    organization: Organization,
    registration: dict[str, str],
    actor: User,
    token: str,
    license_quantity: int | None = None,
) -> License:
    """Upgrades `quantity` of a line's license: a new license for the target version.

    Every part succeeds or none does: the line and the source license are locked, the line's
    remaining quantity is checked by the database too, and a token makes a repeated
    confirmation return the first result. `license_quantity`: the license's quantity when the
    person chose `quantity` (the wizard's quantity step); None when chosen just now.
    """
    previous = UpgradeRedemption.objects.filter(token=token).select_related("license").first()
    if previous is not None:
        return previous.license
    line = (
        UpgradeLine.objects.select_for_update()
        .filter(pk=line_id, notification__organization=organization)
        .first()
    )
    if line is None:
        raise UpgradeError(_("This upgrade is not available to your organization."))
    # Checked again under the line's lock: a concurrent confirmation with the same token
    # waited here for the first one to commit, and now finds its result.
    previous = UpgradeRedemption.objects.filter(token=token).select_related("license").first()
    if previous is not None:
        return previous.license
    notification = UpgradeNotification.objects.select_related("target_version__product").get(
        pk=line.notification_id
    )
    if notification.is_expired(today=timezone.localdate()):
        raise UpgradeError(
            _("This upgrade notification expired on %(date)s.")
            % {"date": date_format(notification.expires_on, "SHORT_DATE_FORMAT")}
        )
    if not line.remaining_quantity:  # used up since the wizard showed it
        raise UpgradeError(
            _(
                "Nothing is left to upgrade on this line any more: it was used while you were "
                "confirming, perhaps by someone else in your organization. Start again to see "
                "what is left."
            )
        )
    source = License.objects.select_for_update().get(pk=line.source_license_id)
    if source.follows_contract:  # a line made before they were excluded
        raise UpgradeError(
            _(
                "This license was drawn down from an Enterprise Flexible contract: new versions "
                "come through the contract. Ask your account manager."
            )
        )
    if source.status != License.Status.ACTIVE:
        raise UpgradeError(_("The license to upgrade is no longer active with that quantity."))
    _seats_changed_refuse(source=source, quantity=quantity, license_quantity=license_quantity)
    # No more than the license still holds: an upgrade with another notification (to another
    # version) may have taken seats from it since this line was made.
    available = min(line.remaining_quantity, source.quantity)
    if quantity < 1 or quantity > available:
        raise UpgradeError(
            _("Choose a quantity from 1 to %(max)d: that is what is left to upgrade.")
            % {"max": available}
        )

    UpgradeLine.objects.filter(pk=line.pk).update(
        remaining_quantity=F("remaining_quantity") - quantity
    )
    registration_update(license=source, actor=actor, data=registration)
    source.refresh_from_db()
    new_license = license_issue(
        source=IssueSource(
            kind=License.Source.UPGRADE,
            ref=notification.code,
            version=notification.target_version,
            quantity=quantity,
            maintenance_start=source.maintenance_start,
            maintenance_end=source.maintenance_end,
            earlier_period=source.earlier_period_for(source.maintenance_start),
            host_id=source.host_id,
            supersedes=source,
            retire_superseded=False,
        ),
        owner=organization,
        registration=source.registration,
        acting_user=actor,
    )
    UpgradeRedemption.objects.create(
        line=line, license=new_license, quantity=quantity, user=actor, token=token
    )
    license_seats_upgraded(
        license=source,
        new_license=new_license,
        quantity=quantity,
        acting_user=actor,
        organization=organization,
        reference={"notification": notification.code},
    )
    return new_license


def _seats_changed_refuse(*, source: License, quantity: int, license_quantity: int | None) -> None:
    """Refuses an upgrade the license's quantity, lowered since `quantity` was chosen, would
    turn into something else.

    Decided from the locked row: a colleague may have upgraded seats of it with another
    notification, or lowered it otherwise, in another session since the wizard read it. More
    than it has now cannot be upgraded; all it has now would replace the license, which only
    an upgrade of the whole license (as it was when chosen) may do. A part still smaller than
    what is left is upgraded as asked.
    """
    if license_quantity is None or source.quantity == license_quantity:
        return
    whole_asked = quantity == license_quantity
    if quantity > source.quantity or (quantity == source.quantity) != whole_asked:
        raise UpgradeError(
            ngettext(
                "The license you chose now has %(count)d seat, not %(before)d: someone may "
                "have upgraded part of it meanwhile. Nothing was changed. Start again to "
                "choose from what it has now.",
                "The license you chose now has %(count)d seats, not %(before)d: someone may "
                "have upgraded part of it meanwhile. Nothing was changed. Start again to "
                "choose from what it has now.",
                source.quantity,
            )
            % {"count": source.quantity, "before": license_quantity}
        )
