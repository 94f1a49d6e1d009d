from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import QuerySet
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from portal.emails import (
    Attachment,
    email_variant_rows,
    emails_written_by_sender,
    queue_email_later,
    queue_email_rows,
)
from portal.formats import short_date
from portal.models import AuditEvent, Organization, OutboundEmail, User
from portal.policy import Action, OrganizationAccess
from portal.requestcontext import current_delegation
from portal.rows import RowQuery, row_update, rows_insert
from portal.selectors import addressees, membership_in
from portal.services import admin_emails, audit_event_build, audit_record

from ..codes import canonical_code, canonical_key, generate_license_key
from ..licensefile import build_license_file
from ..models import (
    MAX_MAINTENANCE_MONTHS,
    MAX_QUANTITY,
    CustomFieldValue,
    License,
    LicenseShare,
    ProductVersion,
    RetiredKey,
    SerialNumber,
    SerialRedemption,
    SupportRegistration,
    add_months,
)
from ..signing import current_signing_key, key_id
from ..templatetags.licensing_tags import mask_key

# What was redeemed for what, for operations; portal.logs masks keys and codes in every line.
logger = logging.getLogger(__name__)

LICENSE_FILE_MIMETYPE = "application/x-license-file"


class LicensingError(Exception):
    """An illegal licensing state change; the message tells the user what to do."""


class SerialError(LicensingError):
    """A serial number that cannot be redeemed by this organization."""


class SerialTargetError(SerialError):
    """The license chosen for an upgrade or renewal serial cannot take it (any more): the
    person may choose another of the organization's licenses."""


class SerialAlreadyRedeemed(LicensingError):
    """The organization already redeemed this serial: its result is `license`."""

    def __init__(self, license: License) -> None:
        super().__init__(_("Your organization already redeemed this serial number."))
        self.license = license


@dataclass(frozen=True)
class IssueSource:
    """What a new license is for and where it comes from; callers derive it from their source."""

    kind: str  # a License.Source value
    ref: str
    version: ProductVersion
    quantity: int
    maintenance_start: date
    maintenance_end: date
    # The earlier covered period a license it supersedes carries (License.earlier_period_for).
    earlier_period: tuple[date | None, date | None] = (None, None)
    host_id: str = ""
    preset_key: str = ""  # a key printed on the purchase certificate, reused instead of minted
    supersedes: License | None = None
    # An upgrade of the whole license replaces it; one of part of its quantity (a version
    # upgrade, or an upgrade serial for fewer seats) leaves it to its caller, which moves the
    # seats with license_seats_upgraded.
    retire_superseded: bool = True


# ---------------------------------------------------------------------------------------------
# License files and the license email


def license_payload(license: License, *, signing_key_id: str | None = None) -> dict[str, Any]:
    """The plaintext of a license file, in Keygen's JSON:API shape."""
    product = license.version.product
    return {
        "data": {
            "type": "licenses",
            "id": str(license.pk),
            "attributes": {
                "key": license.key,
                "name": f"{product.name} {license.version.version}",
                "status": license.status.upper(),
                "expiry": None,
                "maxMachines": license.quantity,
                "metadata": {
                    "product": product.sku,
                    "productName": product.name,
                    "version": license.version.version,
                    "quantity": license.quantity,
                    "hostId": license.host_id or None,
                    "maintenanceStart": license.maintenance_start.isoformat(),
                    "maintenanceExpiry": license.maintenance_end.isoformat(),
                    "account": license.owner.account_number,
                    "accountName": license.owner.name,
                },
            },
        },
        "meta": {
            "issued": license.file_issued_at.isoformat().replace("+00:00", "Z"),
            "expiry": None,
            "ttl": None,
            # Which published key verifies the file, also after the signing key is rotated.
            "keyId": signing_key_id or key_id(),
        },
    }


def license_file_refusal(license: License) -> str | None:
    """Why no license file is issued for `license` (a sentence), or None for an active one.

    A superseded or revoked license is history, as its page and FileConnect treat it: a file
    freshly signed for it would carry the date of its last valid file (file_issued_at does not
    move when it is superseded or revoked) and read as that file again, and software that
    checks the signature but not the status would take a replaced or withdrawn key as valid.
    """
    if license.status == License.Status.ACTIVE:
        return None
    if license.status == License.Status.REVOKED:
        return _(
            "This license was revoked: its key no longer works, and no license file is issued "
            "for it any more. If you think this is a mistake, contact customer care."
        )
    return _(
        "This license was superseded by an upgrade: it is kept as history, and no license file "
        "is issued for it any more. Download the license file of the license that replaced it."
    )


def license_file_text(license: License) -> str:
    """A freshly signed license file for the license's current state (an active license:
    license_file_refusal says why not for the others)."""
    signing_key, signing_key_id = current_signing_key()
    return build_license_file(
        payload=license_payload(license, signing_key_id=signing_key_id),
        license_key=license.key,
        signing_key=signing_key,
    )


def license_email_recipients(
    license: License, acting_user: User | None, *, partner_acting: bool = False
) -> list[str]:
    """The technical contact and the person acting; for a license a channel partner obtained,
    or one a partner renews, rehosts or emails again now (`partner_acting`), also the owner's
    administrators, so the customer always gets its keys."""
    actor, contact, copied = _license_email_parties(
        license, acting_user, partner_acting=partner_acting
    )
    # The addresses alone (the pages that list them): nobody's membership or language is read.
    admins = [address.lower() for address in admin_emails(license.owner)] if copied else []
    return sorted({actor, contact, *admins} - {""})


def _license_email_parties(
    license: License, acting_user: User | None, *, partner_acting: bool
) -> tuple[str, str, bool]:
    """The acting person's address ("" for none), the technical contact's, and whether the
    owner's administrators are copied: a partner obtained the license or acts on it now."""
    actor = (
        acting_user.email.lower()
        if acting_user is not None and acting_user.is_authenticated
        else ""
    )
    contact = license.registration.technical_email.strip().lower()
    return actor, contact, license.partner_id is not None or partner_acting


def license_email_audience(
    license: License,
    acting_user: User | None,
    *,
    partner_acting: bool,
    renewed: bool = False,
    actor_opens: bool | None = None,
) -> tuple[set[str], set[str], dict[str, str]]:
    """The license email's recipients: those who can open the license's page (the members of
    the owner organization among them, and the acting person who may), and the others (a
    technical contact who is no member, or has no account); and the language each recipient
    with an account reads, except the acting person, who reads the language they act in.

    The technical contact and, when they are copied (a partner obtained the license or acts
    now), the owner's administrators are read in one query; none when the technical contact is
    the person acting and nobody is copied. A recipient who is not a member is told where to
    find the license instead of given a link that may lead to "not found". `actor_opens`:
    whether the acting person can open the license's page, decided by the request that acted
    (an email its sender writes later, outside that request); else decided here, from it.
    """
    actor, contact, copied = _license_email_parties(
        license, acting_user, partner_acting=partner_acting
    )
    asked = {contact} - {actor, ""}
    people = (
        addressees(asked, admins_of=license.owner if copied else None) if asked or copied else {}
    )
    openers = {address for address, person in people.items() if person.is_member(license.owner)}
    others = asked - openers
    if actor:
        assert acting_user is not None
        if actor_opens is None:
            actor_opens = _actor_opens(license, acting_user, renewed=renewed)
        (openers if actor_opens else others).add(actor)
    languages = {address: person.language for address, person in people.items() if address != actor}
    return openers, others - openers, languages


def _actor_opens(license: License, actor: User, *, renewed: bool) -> bool:
    """Whether the person acting on the owner's license can open its page, as licensing's
    selectors decide it (licenses_visible_to), from the delegation the request acts under:
    a partner that may only obtain keys sees those it obtained or renewed."""
    delegation = current_delegation()
    if delegation is None or delegation.customer_id != license.owner_id:
        # Services act for the organization the request acts in, which the view checked: the
        # actor is one of its members, and every member sees its licenses.
        return True
    # The partner is read already (the license records it); the customer is the owner.
    access = OrganizationAccess(
        organization=license.owner, scopes=frozenset(delegation.scopes), partner=delegation.partner
    )
    return access.allows(Action.VIEW_LICENSES) or (
        access.allows(Action.VIEW_OWN_RESULTS) and (renewed or license.issued_by_id == actor.pk)
    )


def partner_acts_for(owner: Organization) -> bool:
    """Whether the current request is a channel partner acting for `owner`."""
    return _partner_for(owner) is not None


# The license email's own composer (portal.emails.composer_register, from licensing's AppConfig).
LICENSE_EMAIL_COMPOSER = "license"


def license_email_queue(
    *,
    license: License,
    acting_user: User | None,
    event: str,
    context: dict[str, Any] | None = None,
) -> None:
    """Queues the license email (key, dates, file attached) for after the commit; `context`
    adds what the event's templates show besides the license.

    A partner changing a license the customer obtained itself (a rehost gives it a new key)
    copies the customer's administrators, as for a key the partner obtained. The link to the
    license's page goes only to recipients who can open it; the others read where to find it
    (a second body of the same email, written in the same INSERT).

    With a Celery worker (the full stack) the worker writes the email when it sends it
    (portal.emails.queue_email_later): the transaction that issues a license writes one small
    row, not the rendered bodies, their recipients' lookup and the signed file. What only this
    request knows goes with it: the language it acts in, who acts, for whom, and whether they
    can open the license. The worker reads the license as this transaction committed it.
    """
    context = context or {}
    acting_partner = _partner_for(license.owner)
    actor = acting_user if acting_user is not None and acting_user.is_authenticated else None
    actor_opens = actor is not None and _actor_opens(license, actor, renewed=event == "renewed")
    # Or someone of another organization the license is shared with: the owner's people read
    # who renewed or moved their license, or had its key sent again ("again").
    acting_outsider = (
        acting_partner is None
        and (event in ("renewed", "rehosted") or bool(context.get("again")))
        and _acts_from_outside(license, acting_user)
    )
    stored = _context_stored(context)
    if stored is not None and emails_written_by_sender():
        queue_email_later(
            template=f"license_{event}",
            spec={
                "composer": LICENSE_EMAIL_COMPOSER,
                "language": translation.get_language() or "",
                "license": str(license.pk),
                "event": event,
                "actor": actor.pk if actor is not None else None,
                "partner": acting_partner.pk if acting_partner is not None else None,
                "actor_opens": actor_opens,
                "acting_outsider": acting_outsider,
                "context": stored,
            },
        )
        return
    queue_email_rows(
        _license_email_rows(
            license=license,
            acting_user=acting_user,
            acting_partner=acting_partner,
            event=event,
            context=context,
            actor_opens=actor_opens,
            acting_outsider=acting_outsider,
        )
    )


def license_email_compose(spec: dict[str, Any]) -> list[OutboundEmail]:
    """The license email's rows from what license_email_queue stored (the composer the worker
    runs, in the language of the request that queued it)."""
    # Not the partner and the person who obtained it (read when the license has a partner):
    # PostgreSQL took 4 ms to plan the seven-table join, five times what the query took.
    license = License.objects.select_related("owner", "version__product", "registration").get(
        pk=spec["license"]
    )
    actor = User.objects.filter(pk=spec["actor"]).first() if spec["actor"] else None
    partner = Organization.objects.filter(pk=spec["partner"]).first() if spec["partner"] else None
    return _license_email_rows(
        license=license,
        acting_user=actor,
        acting_partner=partner,
        event=spec["event"],
        context=_context_loaded(spec["context"]),
        actor_opens=spec["actor_opens"],
        acting_outsider=spec["acting_outsider"],
    )


def _context_stored(context: dict[str, Any]) -> dict[str, Any] | None:
    """An email context as JSON (a license by its id), or None when it holds anything else."""
    stored: dict[str, Any] = {}
    for name, value in context.items():
        if isinstance(value, License):
            stored[name] = {"license": str(value.pk)}
        elif value is None or isinstance(value, bool | int | str):
            stored[name] = value
        else:
            return None
    return stored


def _context_loaded(stored: dict[str, Any]) -> dict[str, Any]:
    """The context _context_stored stored, its licenses read in one query."""
    ids = [value["license"] for value in stored.values() if isinstance(value, dict)]
    licenses = License.objects.select_related("version__product").in_bulk(ids) if ids else {}
    by_id = {str(pk): license for pk, license in licenses.items()}
    return {
        name: by_id.get(value["license"]) if isinstance(value, dict) else value
        for name, value in stored.items()
    }


def _license_email_rows(
    *,
    license: License,
    acting_user: User | None,
    acting_partner: Organization | None,
    event: str,
    context: dict[str, Any],
    actor_opens: bool,
    acting_outsider: bool,
) -> list[OutboundEmail]:
    """The unsaved outbox rows of the license email (license_email_queue), its bodies and
    languages, with the license's file signed now."""
    openers, others, languages = license_email_audience(
        license,
        acting_user,
        partner_acting=acting_partner is not None,
        renewed=event == "renewed",
        actor_opens=actor_opens,
    )
    shown = {
        **context,
        "license": license,
        "product": license.version.product,
        # Who did it, when a partner did it for the customer (a rehost, a renewal).
        "acting_partner": acting_partner,
        "acting_email": acting_user.email if acting_user is not None else "",
        "acting_outsider": acting_outsider,
    }
    # The person who acted for the owner from outside reads its own body (a partner's: "you
    # obtained this for the customer", not "obtained on your behalf by"); no one else's changes.
    from_outside = acting_partner is not None or acting_outsider
    return email_variant_rows(
        template=f"license_{event}",
        variants=license_email_variants(
            openers=openers,
            others=others,
            shown=shown,
            actor_address=acting_user.email.lower() if acting_user is not None else "",
            actor_shown=(
                {"for_partner": acting_partner is not None, "acting_outsider": False}
                if from_outside
                else None
            ),
        ),
        attachments=[
            Attachment(
                license.file_name, license_file_text(license).encode(), LICENSE_FILE_MIMETYPE
            )
        ],
        # Each recipient with an account reads their own language, the person acting the one
        # they act in (license_email_audience leaves them out).
        languages=languages,
    )


def license_email_variants(
    *,
    openers: set[str],
    others: set[str],
    shown: dict[str, Any],
    actor_address: str = "",
    actor_shown: dict[str, Any] | None = None,
) -> list[tuple[list[str], dict[str, Any]]]:
    """The bodies of a license email (queue_email_variants' variants), from its audience
    (license_email_audience): the recipients who can open the license's pages read them with
    `can_open`, the others where to find them instead. With `actor_shown`, the person acting
    reads a body of its own, `shown` updated with it: what it did for whom, not its own name."""
    variants: list[tuple[list[str], dict[str, Any]]] = []
    for recipients, can_open in ((openers, True), (others, False)):
        own = actor_shown is not None and actor_address in recipients
        variants.append(
            (
                sorted(recipients - {actor_address}) if own else sorted(recipients),
                {**shown, "can_open": can_open},
            )
        )
        if own:
            variants.append(
                ([actor_address], {**shown, **(actor_shown or {}), "can_open": can_open})
            )
    return variants


def _acts_from_outside(license: License, acting_user: User | None) -> bool:
    """Whether a person is acting on the owner's license without being one of its members (a
    share recipient); from the memberships the request loaded with the user."""
    return (
        acting_user is not None
        and acting_user.is_authenticated
        and membership_in(acting_user, license.owner) is None
    )


# ---------------------------------------------------------------------------------------------
# The one mint


# No savepoint of its own: callers issue thousands in one transaction (vouchers), and an error
# here rolls back the caller's transaction anyway.
@transaction.atomic(savepoint=False)
def license_issue(
    *,
    source: IssueSource,
    owner: Organization,
    registration: SupportRegistration,
    acting_user: User | None,
    notify: bool = True,
    events: list[AuditEvent] | None = None,
) -> License:
    """Creates a license: key, audit event and email with its signed file, in one transaction.

    Every License row in the system is created here. Callers that issue many licenses at once
    pass notify=False and send one email listing them all. A caller that writes audit events of
    its own in the same transaction passes `events`: the license's are appended to it, unsaved,
    and the caller inserts them all at once (serial_redeem: one INSERT per mint, not two).
    """
    if source.quantity <= 0:
        raise LicensingError(_("A license needs a quantity of at least 1."))
    now = timezone.now()
    if source.preset_key:
        key = canonical_key(source.preset_key)
        if License.objects.filter(key=key).exists() or RetiredKey.objects.filter(key=key).exists():
            raise LicensingError(
                _("The license key printed on this certificate is already registered.")
            )
    else:
        # 125 random bits: the unique constraint is the guard, a retry loop would be dead code.
        key = generate_license_key()
    license = _license_row(
        source,
        key=key,
        owner=owner,
        registration=registration,
        acting_user=acting_user,
        partner=_partner_for(owner),
        now=now,
    )
    rows_insert([license])  # as license.save(force_insert=True), without the ORM's compiler

    issued: list[AuditEvent] = []
    details = _issued_details(license, source)
    if source.supersedes is not None:
        carried = _carry_over(superseded=source.supersedes, license=license)
        if carried:
            details["carried_over"] = carried
    if source.supersedes is not None and source.retire_superseded:
        License.objects.filter(pk=source.supersedes.pk).update(status=License.Status.SUPERSEDED)
        issued.append(
            audit_event_build(
                action="license.superseded",
                actor=acting_user,
                organization=owner,
                obj=source.supersedes,
                details={
                    "by": str(license.pk),
                    "key": source.supersedes.key,
                    "quantity": source.supersedes.quantity,
                    "to_version": source.version.version,
                    **source_reference(source),
                },
            )
        )
    issued.append(
        audit_event_build(
            action="license.issued",
            actor=acting_user,
            organization=owner,
            obj=license,
            details=details,
        )
    )
    _events_write(issued, events)
    if notify:
        license_email_queue(
            license=license,
            acting_user=acting_user,
            event="issued",
            # What this key replaces: a whole license (now superseded) or seats of one.
            context={
                "replaces": source.supersedes,
                "replaces_whole": source.retire_superseded,
            },
        )
    return license


# What names an issue source in audit details (a license's history links or names it).
_REFERENCE_NAMES: dict[str, str] = {
    License.Source.SERIAL: "serial",
    License.Source.UPGRADE: "notification",
    License.Source.VOUCHER: "voucher",
    License.Source.EF_DRAWDOWN: "drawdown",
}


def source_reference(source: IssueSource) -> dict[str, str]:
    """The source of a mint as audit details name it: {"serial": code}, {"notification": id}…"""
    return {_REFERENCE_NAMES.get(source.kind, "reference"): source.ref} if source.ref else {}


def _share_token_sql() -> str:
    # A copied share's link token, made by the database in the INSERT … SELECT: as random as
    # generate_share_token's (PostgreSQL's gen_random_uuid is cryptographically random; the
    # embedded SQLite seeds randomblob from the operating system), 64 characters.
    if connection.vendor == "postgresql":
        return "replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '')"
    return "lower(hex(randomblob(32)))"


def _pk(license: License) -> Any:
    """A license's id as the database stores it, for raw SQL (a uuid, or hex text on SQLite)."""
    return License._meta.pk.get_db_prep_value(license.pk, connection)  # type: ignore[union-attr]


def _carry_over(*, superseded: License, license: License) -> dict[str, Any]:
    """Copies the superseded license's custom values and active shares to the license that
    upgrades it (all of it or part of it: both keep them); returns what it copied, for the
    issued event's details ({} when nothing).

    One INSERT … SELECT per table, whatever the number of rows: the mint is counted in
    statements. The recipients are not emailed again: they were told of the share when it was
    made, an account holder sees the new license at once, and an emailed link not yet
    followed binds every share to that address (share_accept), this one included; an email
    per upgrade would also spend the owner's hourly budget for emails to people.
    """
    quote = connection.ops.quote_name
    values_table = quote(CustomFieldValue._meta.db_table)
    shares_table = quote(LicenseShare._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {values_table} (license_id, field_id, value) "  # noqa: S608
            f"SELECT %s, field_id, value FROM {values_table} WHERE license_id = %s "
            "RETURNING field_id",
            [_pk(license), _pk(superseded)],
        )
        values = len(cursor.fetchall())
        cursor.execute(
            f"INSERT INTO {shares_table} "  # noqa: S608
            "(license_id, email, user_id, access, token, created_by_id, created_at, revoked_at) "
            f"SELECT %s, email, user_id, access, {_share_token_sql()}, created_by_id, "
            f"created_at, NULL FROM {shares_table} "
            "WHERE license_id = %s AND revoked_at IS NULL ORDER BY created_at, id "
            "RETURNING email, access",
            [_pk(license), _pk(superseded)],
        )
        shares = [{"email": email, "access": access} for email, access in cursor.fetchall()]
    carried: dict[str, Any] = {}
    if values:
        carried["custom_values"] = values
    if shares:
        carried["shares"] = shares
    return carried


def _events_write(written: list[AuditEvent], events: list[AuditEvent] | None) -> None:
    """Audit events into the caller's `events` (it inserts them all at once), or written now."""
    if events is not None:
        events.extend(written)
    else:
        AuditEvent.objects.bulk_create(written)


def license_seats_upgraded(
    *,
    license: License,
    new_license: License,
    quantity: int,
    acting_user: User | None,
    organization: Organization,
    reference: dict[str, str],
    events: list[AuditEvent] | None = None,
) -> int:
    """Moves `quantity` seats of `license` to `new_license`, issued for a newer version with
    license_issue(retire_superseded=False); returns the seats it keeps.

    The one rule of an upgrade of part of a license, by a version upgrade or an upgrade serial
    for fewer seats: the rest stay on the license under its key, its file is reissued with the
    lower quantity and emailed, and its history says so; when nothing is left it is
    superseded. The caller holds the license's row lock and checked that it has `quantity`
    seats. `reference` names what upgraded it (`{"serial": code}`, `{"notification": code}`).
    Events go to `events` when given, as in license_issue, or are written here.
    """
    left = license.quantity - quantity
    # A file is reissued for the seats left; none for no seats (license_file_refusal): the
    # date stays the last file's.
    reissued_at = timezone.now() if left else license.file_issued_at
    License.objects.filter(pk=license.pk).update(
        quantity=left,
        status=License.Status.SUPERSEDED if left == 0 else License.Status.ACTIVE,
        file_issued_at=reissued_at,
    )
    written = [
        audit_event_build(
            action="license.upgraded",
            actor=acting_user,
            organization=organization,
            obj=license,
            details={
                "to_version": new_license.version.version,
                "quantity": quantity,
                "left": left,
                "new_license": str(new_license.pk),
                **reference,
            },
        )
    ]
    if left == 0:
        written.append(
            audit_event_build(
                action="license.superseded",
                actor=acting_user,
                organization=organization,
                obj=license,
                details={
                    "by": str(new_license.pk),
                    "key": license.key,
                    "quantity": quantity,
                    "to_version": new_license.version.version,
                    **reference,
                },
            )
        )
    _events_write(written, events)
    license.quantity, license.file_issued_at = left, reissued_at
    if left:
        # The customer's inbox holds the license's file with the old quantity, which a
        # verifier would still accept: the reissued one goes out too. An email of its own,
        # beside the new license's: each license's recipients, and who among them gets its
        # page's link, are decided for that license (a partner sees the key it obtained, not
        # necessarily this one), and each email carries one key and its file.
        license_email_queue(
            license=license,
            acting_user=acting_user,
            event="upgraded_in_part",
            context={"new_license": new_license, "upgraded": quantity},
        )
    return left


@transaction.atomic(savepoint=False)
def licenses_issue(
    *,
    sources: Sequence[IssueSource],
    owner: Organization,
    registration: SupportRegistration,
    acting_user: User | None,
) -> list[License]:
    """The bulk form of license_issue, for callers that issue many at once (voucher conversions).

    The same rows as one license_issue(notify=False) per source: the licenses in one INSERT, their
    `license.issued` audit events in another. Superseding stays license_issue's; the caller sends
    one email listing them all.
    """
    if any(source.supersedes is not None for source in sources):
        raise ValueError("licenses_issue does not supersede; call license_issue for that.")
    if any(source.quantity <= 0 for source in sources):
        raise LicensingError(_("A license needs a quantity of at least 1."))
    now = timezone.now()
    preset = [canonical_key(source.preset_key) for source in sources if source.preset_key]
    if preset and (
        len(set(preset)) != len(preset)
        or License.objects.filter(key__in=preset).exists()
        or RetiredKey.objects.filter(key__in=preset).exists()
    ):
        raise LicensingError(
            _("The license key printed on this certificate is already registered.")
        )
    partner = _partner_for(owner)
    licenses = License.objects.bulk_create(
        [
            _license_row(
                source,
                key=canonical_key(source.preset_key)
                if source.preset_key
                else generate_license_key(),
                owner=owner,
                registration=registration,
                acting_user=acting_user,
                partner=partner,
                now=now,
            )
            for source in sources
        ]
    )
    AuditEvent.objects.bulk_create(
        [
            audit_event_build(
                action="license.issued",
                actor=acting_user,
                organization=owner,
                obj=license,
                details=_issued_details(license, source),
            )
            for license, source in zip(licenses, sources, strict=True)
        ]
    )
    return licenses


def _license_row(
    source: IssueSource,
    *,
    key: str,
    owner: Organization,
    registration: SupportRegistration,
    acting_user: User | None,
    partner: Organization | None,
    now: datetime,
) -> License:
    """The unsaved license row license_issue and licenses_issue write for one source."""
    return License(
        key=key,
        owner=owner,
        version=source.version,
        quantity=source.quantity,
        maintenance_start=source.maintenance_start,
        maintenance_end=source.maintenance_end,
        earlier_maintenance_start=source.earlier_period[0],
        earlier_maintenance_end=source.earlier_period[1],
        host_id=source.host_id,
        source=source.kind,
        source_ref=source.ref,
        supersedes=source.supersedes,
        registration=registration,
        issued_at=now,
        issued_by=acting_user,
        partner=partner,
        file_issued_at=now,
    )


def _partner_for(owner: Organization) -> Organization | None:
    delegation = current_delegation()
    return (
        delegation.partner
        if delegation is not None and delegation.customer_id == owner.pk
        else None
    )


def _issued_details(license: License, source: IssueSource) -> dict[str, Any]:
    return {
        "key": license.key,
        "source": source.kind,
        "source_ref": source.ref,
        "product": source.version.product.sku,
        "version": source.version.version,
        "quantity": source.quantity,
        "maintenance_end": source.maintenance_end.isoformat(),
    }


# ---------------------------------------------------------------------------------------------
# Serial numbers


def serial_check(
    *,
    code: str,
    organization: Organization,
    today: date,
    any_seats: bool = False,
    serials: QuerySet[SerialNumber] | None = None,
) -> SerialNumber:
    """Finds a serial the organization may redeem, or raises SerialError saying why not.

    An upgrade or renewal serial that applies to none of the organization's licenses is
    refused here. `any_seats`: whatever their seats, for a caller that names the license
    (a renewal from its own page): serial_redeem refuses a license whose seats the serial
    does not fit with a reason that names both numbers. `serials`: where to look it up, for a
    caller whose lookup carries more (the failed-attempt budgets, CodeGuard.counted).
    """
    serial = (
        (serials if serials is not None else SerialNumber.objects.all())
        .select_related("version__product", "license")
        .filter(code=canonical_code(code))
        .first()
    )
    serial_refusal_raise(serial=serial, organization=organization, today=today)
    assert serial is not None
    if (
        serial.kind != SerialNumber.Kind.NEW
        and not target_licenses(
            serial=serial, organization=organization, any_seats=any_seats
        ).exists()
    ):
        raise SerialError(_no_target_message(serial=serial, organization=organization))
    return serial


def serial_refusal_raise(
    *,
    serial: SerialNumber | None,
    organization: Organization,
    today: date,
    accepted_before: bool = False,
) -> None:
    """Raises SerialError (or SerialAlreadyRedeemed) when the organization may not redeem
    `serial` as it was read; returns when it may.

    `accepted_before`: the code was accepted at an earlier step of the same wizard, so its
    existence is no secret to the actor; gone since, it is said to be gone, not unknown.
    """
    # Unknown, void and redeemed-by-someone-else read the same, so codes cannot be probed.
    unknown = _(
        "We could not find this serial number. Check it against your license certificate; "
        "if it is right, contact customer care."
    )
    if accepted_before:
        unknown = _(
            "This serial number was redeemed or withdrawn after you entered it, and can no "
            "longer be redeemed. If it is yours, contact customer care."
        )
    if serial is None or serial.status == SerialNumber.Status.VOID:
        raise SerialError(unknown)
    if serial.status == SerialNumber.Status.REDEEMED:
        if serial.redeemed_by_id == organization.pk and serial.license is not None:
            raise SerialAlreadyRedeemed(serial.license)
        raise SerialError(unknown)
    if serial.status != SerialNumber.Status.OPEN:
        raise SerialError(_("This serial number can no longer be redeemed."))
    if serial.is_expired(today=today):
        raise SerialError(
            _("This serial number expired on %(date)s and can no longer be redeemed.")
            % {"date": short_date(serial.expires_on)}
        )
    if not serial.terms_in_range():
        # Stored before admin enforced the limits: its license's dates would not even compute.
        raise SerialError(
            _(
                "This serial number cannot be redeemed online: its terms are out of range. "
                "Contact customer care."
            )
        )


def target_licenses(
    *, serial: SerialNumber, organization: Organization, any_seats: bool = False
) -> QuerySet[License]:
    """The organization's licenses an upgrade or renewal serial can apply to.

    Keys drawn down from an Enterprise Flexible contract are kept current through the contract,
    never with a serial; an upgrade serial applies only to versions older than its own. Only
    licenses whose seats the serial fits (serial_seats_refusal), unless `any_seats`: for
    serial_redeem, which refuses a chosen license that does not fit with both numbers.
    """
    licenses = License.objects.filter(
        owner=organization,
        status=License.Status.ACTIVE,
        version__product_id=serial.version.product_id,
    ).exclude(source=License.Source.EF_DRAWDOWN)
    if serial.kind == SerialNumber.Kind.UPGRADE:
        licenses = licenses.exclude(version_id=serial.version_id).exclude(
            version__released_on__gt=serial.version.released_on
        )
        if not any_seats:
            licenses = licenses.filter(quantity__gte=serial.quantity)
    elif serial.kind == SerialNumber.Kind.RENEWAL and not any_seats:
        licenses = licenses.filter(quantity__lte=serial.quantity)
    return licenses.select_related("version__product", "registration").order_by("-issued_at")


def serial_seats_refusal(*, serial: SerialNumber, license: License) -> str | None:
    """Why `license`'s seats do not fit upgrade or renewal `serial` (a sentence), or None.

    An upgrade serial moves seats to its version, never makes them: it upgrades at most the
    seats the license holds (fewer: the rest stay, license_seats_upgraded). A renewal extends
    the maintenance of the whole license, so it must be for at least all of its seats.
    """
    if serial.kind == SerialNumber.Kind.UPGRADE and serial.quantity > license.quantity:
        return _(
            "This upgrade serial number is for %(serial)d seats, and license %(key)s has "
            "%(seats)d. Choose a license with at least %(serial)d seats, or contact customer "
            "care."
        ) % {"serial": serial.quantity, "key": mask_key(license.key), "seats": license.quantity}
    if serial.kind == SerialNumber.Kind.RENEWAL and serial.quantity < license.quantity:
        return ngettext(
            "This renewal serial number is for %(serial)d seat, and license %(key)s has "
            "%(seats)d: a renewal covers every seat of a license. Renew it with a serial "
            "number for at least %(seats)d seats, or contact customer care.",
            "This renewal serial number is for %(serial)d seats, and license %(key)s has "
            "%(seats)d: a renewal covers every seat of a license. Renew it with a serial "
            "number for at least %(seats)d seats, or contact customer care.",
            serial.quantity,
        ) % {"serial": serial.quantity, "key": mask_key(license.key), "seats": license.quantity}
    return None


def serial_upgrade_maintenance(
    *, serial: SerialNumber, license: License, today: date
) -> tuple[date, date]:
    """The maintenance period of the license an upgrade serial issues for `license`.

    It ends at the later of the upgraded license's end and the serial's months from today:
    maintenance the customer paid for (a renewal) is not thrown away by the upgrade. While the
    upgraded license's maintenance runs, the period starts where that one started, so that
    what it entitled to (FileConnect: releases within the period) carries over without a gap;
    after a lapse it starts today.
    """
    end = max(license.maintenance_end, add_months(today, serial.maintenance_months))
    start = license.maintenance_start if license.maintenance_end >= today else today
    return min(start, today), end


def _no_target_message(*, serial: SerialNumber, organization: Organization) -> str:
    """Why an upgrade or renewal serial fits none of the organization's licenses, in its terms."""
    held = License.objects.filter(
        owner=organization,
        status=License.Status.ACTIVE,
        version__product_id=serial.version.product_id,
    )
    names = {"product": serial.version.product.name, "version": serial.version.version}
    if target_licenses(serial=serial, organization=organization, any_seats=True).exists():
        # Licenses it could apply to, none with seats it fits (serial_seats_refusal).
        if serial.kind == SerialNumber.Kind.UPGRADE:
            return _(
                "This upgrade serial number is for %(count)d seats, and none of your "
                "organization's %(product)s licenses it could upgrade has that many: it "
                "upgrades seats of one license, at most as many as that license has. Contact "
                "customer care."
            ) % {**names, "count": serial.quantity}
        return ngettext(
            "This renewal serial number is for %(count)d seat, and each of your "
            "organization's %(product)s licenses has more: a renewal covers every seat of a "
            "license. Renew with a serial number for at least as many seats as the license, "
            "or contact customer care.",
            "This renewal serial number is for %(count)d seats, and each of your "
            "organization's %(product)s licenses has more: a renewal covers every seat of a "
            "license. Renew with a serial number for at least as many seats as the license, "
            "or contact customer care.",
            serial.quantity,
        ) % {**names, "count": serial.quantity}
    if held.exclude(source=License.Source.EF_DRAWDOWN).exists():
        # Only an upgrade serial can refuse licenses of the product that are not EF keys.
        return (
            _(
                "Your organization's active %(product)s licenses are already at version "
                "%(version)s or later, so this upgrade serial number has nothing to upgrade. It "
                "upgrades earlier versions of %(product)s to %(version)s."
            )
            % names
        )
    if held.exists():
        return (
            _(
                "Your organization's %(product)s licenses were drawn down from an Enterprise "
                "Flexible contract: they are renewed and upgraded through the contract, not with a "
                "serial number."
            )
            % names
        )
    if serial.kind == SerialNumber.Kind.UPGRADE:
        return (
            _(
                "This upgrade serial number applies to a %(product)s license, and your "
                "organization has no active one. Redeem the original purchase first."
            )
            % names
        )
    return (
        _(
            "This renewal serial number extends the maintenance of a %(product)s "
            "license, and your organization has no active one."
        )
        % names
    )


@dataclass(frozen=True)
class RedeemResult:
    license: License
    renewed: bool


# The serial a redemption reads, locked, with its version and product: compiled once (RowQuery).
_SERIAL_LOCKED: RowQuery[SerialNumber] = RowQuery(
    lambda code: (
        SerialNumber.objects.select_for_update(of=("self",))
        .select_related("version__product")
        .filter(code=code)
    )
)


@transaction.atomic
def serial_redeem(
    *,
    code: str,
    organization: Organization,
    registration: dict[str, str] | None,
    acting_user: User,
    target_license_id: str | None = None,
    host_id: str = "",
    registration_reuse_id: int | None = None,
    accepted_before: bool = False,
    target_quantity: int | None = None,
) -> RedeemResult:
    """Redeems a serial: a new or upgraded license, or a maintenance renewal of one it names.

    `registration_reuse_id`: the organization's support registration the form was prefilled
    with; reused, not copied, when it still holds exactly `registration`.
    `accepted_before`: the wizard's serial step accepted the code (see serial_refusal_raise).
    `target_quantity`: the seats the target license had on the page the person confirmed;
    refused if it has another number now (_target_lock).
    """
    today = timezone.localdate()
    events: list[AuditEvent] = []  # the mint's audit events, written at the end in one INSERT
    # Read once, locked: the row lock serialises concurrent redemptions of one serial; the second
    # waits here, then sees the first one's committed status and is refused (or shown the first
    # one's result). The license is not joined: a row re-read after a lock wait would come
    # with the join partner of the old row version, so SerialAlreadyRedeemed loads it itself.
    serial = _SERIAL_LOCKED.first(canonical_code(code))
    serial_refusal_raise(
        serial=serial, organization=organization, today=today, accepted_before=accepted_before
    )
    assert serial is not None

    product = serial.version.product
    target: License | None = None
    if serial.kind != SerialNumber.Kind.NEW:
        target = _target_lock(
            serial=serial,
            organization=organization,
            license_id=target_license_id,
            seen_quantity=target_quantity,
        )
    if product.node_locked and serial.kind != SerialNumber.Kind.RENEWAL and not host_id.strip():
        raise SerialError(
            _("%(product)s is node-locked: enter the host ID of the machine.")
            % {"product": product.name}
        )

    # A renewal applied from the license's page keeps the license's registration.
    if registration is None and serial.kind != SerialNumber.Kind.RENEWAL:
        raise SerialError(_("Enter the product registration and support contacts."))
    support = (
        _registration_for(
            organization=organization, data=registration, reuse_id=registration_reuse_id
        )
        if registration is not None
        else None
    )
    if serial.kind == SerialNumber.Kind.RENEWAL:
        assert target is not None
        license = license_renew(
            license=target,
            months=serial.maintenance_months,
            registration=support,
            acting_user=acting_user,
            reference=serial.code,
        )
        renewed = True
    else:
        assert support is not None
        # An upgrade serial for fewer seats than its license holds upgrades that many: the rest
        # stay on the license, under its key (as a version upgrade of part of a license does).
        # For all of them, the new license replaces the old one (_target_lock refused more).
        partial = target is not None and serial.quantity < target.quantity
        earlier: tuple[date | None, date | None] = (None, None)
        if target is not None:
            start, end = serial_upgrade_maintenance(serial=serial, license=target, today=today)
            earlier = target.earlier_period_for(start)
        else:
            start, end = today, add_months(today, serial.maintenance_months)
        license = license_issue(
            source=IssueSource(
                kind=License.Source.SERIAL,
                ref=serial.code,
                version=serial.version,
                quantity=serial.quantity,
                maintenance_start=start,
                maintenance_end=end,
                earlier_period=earlier,
                host_id=host_id.strip() if product.node_locked else "",
                preset_key=serial.printed_key,
                supersedes=target,
                retire_superseded=not partial,
            ),
            owner=organization,
            registration=support,
            acting_user=acting_user,
            events=events,
        )
        if partial:
            assert target is not None
            license_seats_upgraded(
                license=target,
                new_license=license,
                quantity=serial.quantity,
                acting_user=acting_user,
                organization=organization,
                reference={"serial": serial.code},
                events=events,
            )
        renewed = False
    now = timezone.now()
    _redemption_record(
        serial=serial, license=license, organization=organization, actor=acting_user, now=now
    )
    serial.status = SerialNumber.Status.REDEEMED
    serial.redeemed_by = organization
    serial.redeemed_at = now
    serial.license = license
    row_update(serial, ["status", "redeemed_by", "redeemed_at", "license"])
    events.append(
        audit_event_build(
            action="serial.redeemed",
            actor=acting_user,
            organization=organization,
            obj=serial,
            details={"code": serial.code, "kind": serial.kind, "license": str(license.pk)},
        )
    )
    rows_insert(events)
    logger.info(
        "Serial %s redeemed by %s: license %s (%s)",
        serial.code,
        organization.account_number,
        license.key,
        "renewed" if renewed else serial.kind,
    )
    return RedeemResult(license=license, renewed=renewed)


def _target_lock(
    *,
    serial: SerialNumber,
    organization: Organization,
    license_id: str | None,
    seen_quantity: int | None,
) -> License:
    """The license an upgrade or renewal serial applies to, locked, or SerialError saying why
    it cannot be that one.

    Decided on the locked row: another session may have upgraded seats of it since the person
    chose it (a version upgrade of part of it), and a confirmation page that said "5 of its 20
    seats" must not turn into something else on a license that has 2.
    """
    target = (
        target_licenses(serial=serial, organization=organization, any_seats=True)
        .select_for_update(of=("self",))
        .filter(pk=license_id)
        .first()
        if license_id
        else None
    )
    if target is None:
        if not target_licenses(serial=serial, organization=organization).exists():
            raise SerialError(_no_target_message(serial=serial, organization=organization))
        raise SerialTargetError(
            _("Choose which of your %(product)s licenses this serial applies to.")
            % {"product": serial.version.product.name}
        )
    if seen_quantity is not None and target.quantity != seen_quantity:
        raise SerialTargetError(
            ngettext(
                "The license you chose now has %(count)d seat, not %(before)d: someone may "
                "have upgraded part of it meanwhile. Nothing was changed. Check it and choose "
                "again.",
                "The license you chose now has %(count)d seats, not %(before)d: someone may "
                "have upgraded part of it meanwhile. Nothing was changed. Check it and choose "
                "again.",
                target.quantity,
            )
            % {"count": target.quantity, "before": seen_quantity}
        )
    refusal = serial_seats_refusal(serial=serial, license=target)
    if refusal:
        raise SerialTargetError(refusal)
    return target


def _registration_for(
    *, organization: Organization, data: dict[str, str], reuse_id: int | None
) -> SupportRegistration:
    """The registration a mint links its license to: `reuse_id` if it still holds `data`,
    otherwise a new one.

    Sharing a row is safe because editing a license's registration copies a shared row
    (registration_update). The row is locked while it is compared: an edit that got to it first
    is waited for and then compared against (no longer equal: a new row); an edit that comes
    second waits for this mint and then finds the row shared, so it copies it.
    """
    if reuse_id is not None:
        reused = (
            SupportRegistration.objects.select_for_update()
            .filter(pk=reuse_id, organization=organization, **data)
            .first()
        )
        if reused is not None:
            return reused
    created = SupportRegistration(organization=organization, **data)
    rows_insert([created])
    return created


def _redemption_record(
    *,
    serial: SerialNumber,
    license: License,
    organization: Organization,
    actor: User,
    now: datetime,
) -> None:
    # The unique serial and code of SerialRedemption are the last word: if anything reopened
    # this serial after it was redeemed, this insert fails and the whole redemption (license,
    # audit event, email) rolls back with it. No savepoint of its own: nothing runs between the
    # failed insert and leaving serial_redeem's atomic block, which rolls back (to its own
    # savepoint when nested).
    try:
        rows_insert(
            [
                SerialRedemption(
                    serial=serial,
                    code=serial.code,
                    kind=serial.kind,
                    license=license,
                    organization=organization,
                    redeemed_by=actor,
                    redeemed_at=now,
                )
            ]
        )
    except IntegrityError as exc:
        raise SerialError(_("This serial number can no longer be redeemed.")) from exc


@transaction.atomic
def license_renew(
    *,
    license: License,
    months: int,
    registration: SupportRegistration | None,
    acting_user: User | None,
    reference: str,
) -> License:
    """Extends maintenance by `months` from its end, or starts a new period today if it lapsed
    (License.renewal_period), and reissues the file."""
    locked = (
        License.objects.select_for_update(of=("self",))
        .select_related("registration")
        .get(pk=license.pk)
    )
    if locked.status != License.Status.ACTIVE:
        raise LicensingError(_("Only active licenses can be renewed."))
    old_start, old_end = locked.maintenance_start, locked.maintenance_end
    details: dict[str, Any] = {"from": old_end.isoformat(), "reference": reference}
    locked.maintenance_start, locked.maintenance_end = locked.renewal_period(
        months=months, today=timezone.localdate()
    )
    locked.file_issued_at = timezone.now()
    fields = ["maintenance_start", "maintenance_end", "file_issued_at"]
    if locked.maintenance_start != old_start:
        # Renewed after it lapsed: the history says the coverage restarted, and from when.
        details["start_from"] = old_start.isoformat()
        details["start_to"] = locked.maintenance_start.isoformat()
        # What the paid period before the lapse covered stays covered (License.covers): that
        # period alone. After a second lapse it replaces the one kept before: stretched from
        # the first start to this end, it covered the versions of the first lapse too.
        locked.earlier_maintenance_start, locked.earlier_maintenance_end = old_start, old_end
        fields += ["earlier_maintenance_start", "earlier_maintenance_end"]
    if registration is not None and registration.pk != locked.registration_id:
        # The renewal's registration step replaces the license's: its history says what changed,
        # as an edit of the registration does (registration_update).
        changes = locked.registration.changes(
            {name: getattr(registration, name) for name in SupportRegistration.FIELDS}
        )
        if changes:
            details["registration_changes"] = changes
        locked.registration = registration
        fields.append("registration")
    locked.save(update_fields=fields)
    audit_record(
        action="license.renewed",
        actor=acting_user,
        organization=locked.owner,
        obj=locked,
        details={**details, "to": locked.maintenance_end.isoformat()},
    )
    license_email_queue(license=locked, acting_user=acting_user, event="renewed")
    return locked


@transaction.atomic
def serials_create(
    *,
    version: ProductVersion,
    count: int,
    kind: str = SerialNumber.Kind.NEW,
    quantity: int = 1,
    maintenance_months: int = 12,
    expires_on: date | None = None,
    created_by: User | None = None,
) -> list[SerialNumber]:
    """Generates `count` new serial numbers for a product version."""
    if not 1 <= count <= 100_000:
        raise LicensingError(_("Generate between 1 and 100,000 serial numbers at a time."))
    if quantity < 1:
        raise LicensingError(_("A serial number needs a quantity of at least 1."))
    if quantity > MAX_QUANTITY:
        raise LicensingError(
            _("Quantity must be from 1 to %(max)s.") % {"max": f"{MAX_QUANTITY:,}"}
        )
    if not 0 <= maintenance_months <= MAX_MAINTENANCE_MONTHS:
        raise LicensingError(
            _("Maintenance months must be from 0 to %(max)d.") % {"max": MAX_MAINTENANCE_MONTHS}
        )
    serials = SerialNumber.objects.bulk_create(
        [
            SerialNumber(
                version=version,
                kind=kind,
                quantity=quantity,
                maintenance_months=maintenance_months,
                expires_on=expires_on,
            )
            for _ in range(count)
        ],
        batch_size=1000,
    )
    audit_record(
        action="serials.created",
        actor=created_by,
        details={
            "product": version.product.sku,
            "version": version.version,
            "kind": kind,
            "count": count,
            "quantity": quantity,
            "maintenance_months": maintenance_months,
        },
    )
    return serials
