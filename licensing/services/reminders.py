"""Maintenance reminders: one digest per technical contact as maintenance nears its end."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import date, timedelta

from django.db import connection, transaction
from django.utils import timezone

from portal.emails import queue_email, sender_language
from portal.selectors import addressees
from portal.services import audit_record

from ..models import License, MaintenanceReminder

THRESHOLDS = (90, 30, 7)
# Any constant bigint unique among the portal's advisory locks.
REMINDERS_LOCK_ID = 0x4C49435F52454D  # "LIC_REM"

ReminderKey = tuple[uuid.UUID, int, date, str]  # (license_id, days_before, maintenance_end, email)


@dataclass(frozen=True)
class ReminderLine:
    """One license in a digest, as the email templates read it."""

    license: License
    days_left: int
    # The contact is a member of the license's owner: the page's link opens for them. Others
    # read where to find it (as in the license emails) instead of a link to "not found".
    can_open: bool = False


def _runs_serialize() -> None:
    # Two runs at once (a beat hiccup, a manual run) must not both see a reminder as unsent.
    # PostgreSQL: the second run waits here until the first commits, then its reads (READ
    # COMMITTED: a new snapshot per statement) see the first run's reminder rows and it sends
    # nothing new. Whole-run rather than per-license (`skip_locked`) locking, so that overlapping
    # runs cannot split one contact's licenses into two digests. SQLite needs no lock: it lets
    # one transaction write at a time and refuses to commit a write based on a read another
    # writer made stale ("database is locked"), so the second run fails and its task retries.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [REMINDERS_LOCK_ID])


def _threshold(days_left: int) -> int:
    # The smallest threshold crossed: a license first seen 5 days out gets the 7-day reminder
    # only, and a day the scheduler missed is caught up by the next run.
    return min(t for t in THRESHOLDS if days_left <= t)


@transaction.atomic
def maintenance_reminders_send(*, today: date) -> int:
    """Queues one digest per technical contact for licenses that crossed a threshold today."""
    horizon = today + timedelta(days=max(THRESHOLDS))
    # One transaction for the whole run: the reminder rows and the outbox rows commit together,
    # so a reminder is never recorded without its email (or emailed without its record), and if
    # anything fails nothing commits and the retry starts over. The emails leave after commit;
    # the outbox relay resends any whose hand-off to the broker was lost.
    _runs_serialize()
    # The license rows are locked too, so a renewal committing mid-run cannot leave us reminding
    # of a maintenance end that no longer exists: it waits for us, or we wait for it and then
    # see its new end. Only the license rows (`of`): the joined rows are shared by many licenses.
    candidates = list(
        License.objects.select_for_update(of=("self",))
        .select_related("version__product", "owner", "registration")
        .filter(
            status=License.Status.ACTIVE,
            maintenance_end__gte=today,
            maintenance_end__lte=horizon,
        )
        # Keys drawn down from an Enterprise Flexible contract are not renewed with a serial:
        # their maintenance ends with the contract, which its super users are reminded of
        # (enterprise_flex), so "renew it" would send their contacts to a dead end.
        .exclude(source=License.Source.EF_DRAWDOWN)
        .order_by("maintenance_end", "pk")
    )
    window = {"maintenance_end__gte": today, "maintenance_end__lte": horizon}
    existing: set[ReminderKey] = set(
        MaintenanceReminder.objects.filter(**window).values_list(
            "license_id", "days_before", "maintenance_end", "email"
        )
    )

    due: dict[ReminderKey, ReminderLine] = {}
    for license in candidates:
        email = license.registration.technical_email.strip().lower()
        if not email:
            continue
        days_left = (license.maintenance_end - today).days
        threshold = _threshold(days_left)
        key: ReminderKey = (license.pk, threshold, license.maintenance_end, email)
        if key not in existing:
            due[key] = ReminderLine(license=license, days_left=days_left)

    # Insert first, email second, and only what this run inserted: the unique constraint is the
    # final judge. ignore_conflicts does not say which rows went in, so this run's rows are read
    # back by their `sent_at`, a stamp no other run shares. With runs serialized a conflict
    # cannot come from another run; this guards against any writer that does not serialize.
    sent_at = timezone.now()
    MaintenanceReminder.objects.bulk_create(
        [
            MaintenanceReminder(
                license_id=key[0],
                days_before=key[1],
                maintenance_end=key[2],
                email=key[3],
                sent_at=sent_at,
            )
            for key in due
        ],
        ignore_conflicts=True,
    )
    inserted: set[ReminderKey] = (
        set(
            MaintenanceReminder.objects.filter(sent_at=sent_at, **window).values_list(
                "license_id", "days_before", "maintenance_end", "email"
            )
        )
        if due
        else set()
    )

    digests: dict[str, list[ReminderLine]] = defaultdict(list)
    for key, line in due.items():
        if key in inserted:
            digests[key[3]].append(line)
    # Each contact's digest in the language they last chose on the portal, with links to the
    # licenses of the organizations they are members of (one lookup for all).
    people, active = addressees(list(digests)), sender_language()
    for email, due_lines in sorted(digests.items()):
        person = people.get(email.lower())
        lines = sorted(
            (
                replace(line, can_open=person is not None and person.is_member(line.license.owner))
                for line in due_lines
            ),
            key=lambda line: (
                line.license.maintenance_end,
                line.license.version.product.name,
                line.license.key,
            ),
        )
        queue_email(
            template="maintenance_reminder",
            to=[email],
            language=(person.language if person is not None else "") or active,
            context={
                "lines": lines,
                "license_count": len(lines),
                "contact_name": lines[0].license.registration.technical_name,
                "can_open_any": any(line.can_open for line in lines),
                # Where the contact finds the others: the organizations that own them.
                "elsewhere": sorted(
                    {line.license.owner.name for line in lines if not line.can_open}
                ),
            },
        )
    audit_record(
        action="maintenance.reminders_sent",
        details={
            "date": today.isoformat(),
            "digests": len(digests),
            "licenses": sum(len(lines) for lines in digests.values()),
        },
    )
    return len(digests)
