"""Verify and decrypt a license file the way a customer's software would."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _

from licensing.codes import canonical_key
from licensing.licensefile import LicenseFileError, LicenseSignatureError, verify_license_file
from licensing.signing import key_id, load_public_key, published_keys


class Command(BaseCommand):
    help = _("Verify a license file's signature, decrypt it with its license key and print it.")
    # Pure key/crypto work: it must run even while URLs or other apps are misconfigured.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        """Declare the command-line arguments."""
        parser.add_argument("file", help=_("Path to the license file."))
        parser.add_argument("--key", required=True, help=_("The license key the file is for."))
        parser.add_argument(
            "--public-key",
            dest="public_key",
            help=_(
                "File holding the Ed25519 public key (PEM or 64 hex characters). "
                "Defaults to this portal's published keys: the current one and the retired ones."
            ),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Verify the license file and print its payload."""
        if options["public_key"]:
            public_keys = [self._read_public_key(Path(options["public_key"]))]
        else:
            try:
                # A file issued before a rotation verifies with the retired key that signed it.
                public_keys = [key.public_key for key in published_keys()]
            except ImproperlyConfigured as err:
                raise CommandError(str(err)) from None
        path = Path(options["file"])
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise CommandError(
                _("%(path)s is not a license file: it is not text.") % {"path": path}
            ) from None
        except OSError as err:
            raise CommandError(
                _("Cannot read the license file %(path)s: %(reason)s.")
                % {"path": path, "reason": err.strerror or err}
            ) from None
        payload, public_key = self._verify(text, canonical_key(options["key"]), public_keys)
        self.stdout.write(
            _("License file is valid. Signed by key %(key_id)s.") % {"key_id": key_id(public_key)}
        )
        self.stdout.write(json.dumps(payload, indent=2, sort_keys=False, ensure_ascii=False))

    def _verify(
        self, text: str, license_key: str, public_keys: list[Ed25519PublicKey]
    ) -> tuple[dict[str, Any], Ed25519PublicKey]:
        """The payload and the key that verified it."""
        error: LicenseFileError | None = None
        for public_key in public_keys:
            try:
                return verify_license_file(
                    text, license_key=license_key, public_key=public_key
                ), public_key
            except LicenseSignatureError as err:
                error = err  # another of the published keys may have signed it
            except LicenseFileError as err:
                raise CommandError(str(err)) from None
        raise CommandError(str(error))

    def _read_public_key(self, path: Path) -> Ed25519PublicKey:
        try:
            return load_public_key(path.read_bytes())
        except OSError as err:
            raise CommandError(
                _("Cannot read the public key file %(path)s: %(reason)s.")
                % {"path": path, "reason": err.strerror or err}
            ) from None
        except ValueError as err:
            raise CommandError(
                _("%(path)s does not hold a usable public key: %(reason)s")
                % {"path": path, "reason": err}
            ) from None
