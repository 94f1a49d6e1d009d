"""Customer care's writes on issued licenses, from admin: revoke a key, allow one more rehost."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from django.db import transaction
from django.utils.functional import Promise as StrPromise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from portal.emails import queue_email
from portal.models import User
from portal.services import admin_emails

from ..models import License
from .issue import LicensingError
from .manage import _audit_license

MAX_REASON_LENGTH = 500
# Said by the service and by the admin's form, whichever finds the reason missing first.
REHOST_GRANT_REASON_MISSING = gettext_lazy(
    "Say why this license may move once more (a failed server, a move to a new data centre…): "
    "it is audited and shown in the license's history."
)


@dataclass
class RevokeResult:
    revoked: list[License] = field(default_factory=list)
    # Superseded or revoked already: left as they were.
    refused: list[License] = field(default_factory=list)


def revoke_reason_clean(raw: str) -> str:
    """The reason staff typed for a revocation, or LicensingError saying what to type."""
    return _reason_clean(
        raw,
        missing=_(
            "Say why the licenses are revoked (a refund, a fraudulent order…): it is audited."
        ),
    )


def rehost_grant_reason_clean(raw: str) -> str:
    """The reason staff typed for allowing one more rehost, or LicensingError saying what to
    type."""
    return _reason_clean(raw, missing=REHOST_GRANT_REASON_MISSING)


def _reason_clean(raw: str, *, missing: str | StrPromise) -> str:
    """A reason staff typed, on one line, or LicensingError: `missing` when there is none."""
    reason = " ".join((raw or "").split())
    if not reason:
        raise LicensingError(str(missing))
    if len(reason) > MAX_REASON_LENGTH:
        raise LicensingError(
            _("Write the reason in at most %(max)d characters.") % {"max": MAX_REASON_LENGTH}
        )
    return reason


@transaction.atomic
def licenses_revoke(*, license_ids: Sequence[UUID | str], reason: str, actor: User) -> RevokeResult:
    """Revokes the active licenses among `license_ids`: they are renewed, rehosted, upgraded
    and downloaded with no more. Each is audited with `reason` and its owner's administrators
    are emailed; superseded and revoked ones are left as they are and returned as refused."""
    reason = revoke_reason_clean(reason)
    result = RevokeResult()
    # Locked in id order (as every writer of several licenses locks them), so a renewal or a
    # rehost in progress finishes first and this sees the license as it left it.
    locked = (
        License.objects.select_for_update(of=("self",))
        .select_related("version__product", "owner")
        .filter(pk__in=list(license_ids))
        .order_by("pk")
    )
    for license in locked:
        if license.status != License.Status.ACTIVE:
            result.refused.append(license)
            continue
        license.status = License.Status.REVOKED
        license.save(update_fields=["status"])
        _audit_license(
            "license.revoked",
            license=license,
            actor=actor,
            details={"reason": reason, "key": license.key},
        )
        _revoked_email_queue(license)
        result.revoked.append(license)
    return result


def _revoked_email_queue(license: License) -> None:
    """Tells the owner's administrators, each in their own language, that the key stopped
    working. The reason stays in the audit trail: it is customer care's note, not a message."""
    to = admin_emails(license.owner)
    if to:
        context: dict[str, Any] = {"license": license, "product": license.version.product}
        queue_email(template="license_revoked", to=to, context=context)


def rehost_grant_refusal(license: License) -> str | None:
    """Why `license` cannot be allowed one more rehost (a sentence naming its key), or None."""
    if not license.version.product.node_locked:
        return _("%(key)s: %(product)s is not node-locked, so its licenses are never rehosted.") % {
            "key": license.key,
            "product": license.version.product.name,
        }
    if license.status != License.Status.ACTIVE:
        return _("%(key)s is %(status)s: only active licenses can be rehosted.") % {
            "key": license.key,
            "status": license.get_status_display().lower(),
        }
    return None


@transaction.atomic
def license_rehost_grant(*, license: License, reason: str, actor: User) -> License:
    """Allows a node-locked license one more move than its product's rehost limit, audited
    with `reason` (its history shows it to the owner); the next rehost past the limit spends
    it (license_rehost)."""
    reason = rehost_grant_reason_clean(reason)
    locked = (
        License.objects.select_for_update(of=("self",))
        .select_related("version__product", "owner")
        .get(pk=license.pk)
    )
    refusal = rehost_grant_refusal(locked)
    if refusal:
        raise LicensingError(refusal)
    before = locked.rehosts_granted
    locked.rehosts_granted = before + 1
    locked.save(update_fields=["rehosts_granted"])
    _audit_license(
        "license.rehost_granted",
        license=locked,
        actor=actor,
        details={
            "changes": {"rehosts_granted": {"from": before, "to": locked.rehosts_granted}},
            "reason": reason,
        },
    )
    return locked
