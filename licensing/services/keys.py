"""The license signing key's rotation: a new key signs, the retired one stays published."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

from portal.models import User
from portal.services import audit_record

from ..signing import KeyRotation, rotate_signing_key, rotation_lock


def signing_key_rotate(*, actor: User | None, path: Path | None = None) -> KeyRotation:
    """Replaces the signing key (default: LICENSE_SIGNING_KEY_FILE) and keeps its public key
    published by key ID, so what it signed still verifies; audited once the files are in place.
    Refused (RotationUnderWay) while another rotation of the same key file runs."""
    key_path = Path(path or settings.LICENSE_SIGNING_KEY_FILE).expanduser()
    # One at a time (two staff members, a deploy script racing a person): a second one is
    # refused with RotationUnderWay, the audit events follow the keys' order.
    with rotation_lock(key_path):
        # Files first, then the audit: the key file cannot join a database transaction, and an
        # event for a rotation that failed half-way would be worse than none (it is logged too).
        rotation = rotate_signing_key(key_path)
        audit_record(
            action="signing_key.rotated",
            actor=actor,
            details={
                "retired_key_id": rotation.retired_key_id,
                "key_id": rotation.key_id,
                "retired_file": str(rotation.retired_file),
            },
        )
    return rotation
