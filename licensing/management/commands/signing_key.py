"""Create, show or rotate the portal's Ed25519 license-signing key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError
from django.utils.translation import gettext as _

from licensing.services import signing_key_rotate
from licensing.signing import (
    RotationUnderWay,
    create_signing_key,
    get_public_key,
    key_id,
    load_signing_key,
    public_key_hex,
    public_key_pem,
)


class Command(BaseCommand):
    help = _("Create the license-signing key, show its public half, or rotate it.")
    # Pure key/crypto work: it must run even while URLs or other apps are misconfigured.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        """Declare the command-line arguments."""
        parser.add_argument(
            "action",
            choices=["create", "show", "rotate"],
            help=_(
                "create: generate a new key file; show: print the public key; rotate: replace "
                "the key with a new one, keeping the old public key published."
            ),
        )
        parser.add_argument(
            "--path",
            help=_("Key file to use. Defaults to settings.LICENSE_SIGNING_KEY_FILE."),
        )
        parser.add_argument(
            "--if-missing",
            action="store_true",
            dest="if_missing",
            help=_("With create: do nothing (and succeed) if the key file already exists."),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Dispatch to the chosen action."""
        path = Path(options["path"] or settings.LICENSE_SIGNING_KEY_FILE).expanduser()
        if options["action"] == "create":
            self._create(path, if_missing=options["if_missing"])
        elif options["action"] == "rotate":
            self._rotate(path)
        else:
            self._show(path if options["path"] else None)

    def _create(self, path: Path, *, if_missing: bool) -> None:
        try:
            key = create_signing_key(path)
        except FileExistsError:
            if not if_missing:
                # Overwriting would make every license already issued fail verification.
                raise CommandError(
                    _(
                        "The signing key %(path)s already exists; refusing to replace it because "
                        "licenses signed with it would stop verifying. Use --if-missing to accept "
                        "an existing key."
                    )
                    % {"path": path}
                ) from None
            existing = self._load(path)
            self.stdout.write(
                _("Signing key %(path)s already exists (key id %(key_id)s).")
                % {"path": path, "key_id": key_id(existing.public_key())}
            )
            return
        except OSError as err:
            raise CommandError(
                _("Cannot create the signing key %(path)s: %(reason)s.")
                % {"path": path, "reason": err.strerror or err}
            ) from None
        self.stdout.write(
            _(
                "Created signing key %(path)s (key id %(key_id)s). Back it up: licenses it signs "
                "can only be verified with its public key."
            )
            % {"path": path, "key_id": key_id(key.public_key())}
        )

    def _rotate(self, path: Path) -> None:
        if not path.exists():
            raise CommandError(
                _(
                    "There is no signing key at %(path)s to rotate. Create one with "
                    "`manage.py signing_key create`, or name the key file with --path."
                )
                % {"path": path}
            )
        # Loaded first for its errors: an unusable key is reported before anything is written.
        self._load(path)
        try:
            rotation = signing_key_rotate(actor=None, path=path)
        except RotationUnderWay as busy:
            raise CommandError(
                _(
                    "Another rotation of the signing key %(path)s is under way (it holds "
                    "%(lock)s). Nothing was replaced: once it has finished, check the key with "
                    "`manage.py signing_key show --path %(path)s` and rotate again only if you "
                    "still need to."
                )
                % {"path": path, "lock": busy.lock_path}
            ) from None
        except OSError as err:
            raise CommandError(
                _("Cannot rotate the signing key %(path)s: %(reason)s. Nothing was replaced.")
                % {"path": path, "reason": err.strerror or err}
            ) from None
        except DatabaseError as err:
            # The files are written before the audit: the rotation itself took place.
            raise CommandError(
                _(
                    "The signing key %(path)s was rotated (key %(key_id)s signs now), but its "
                    "audit event could not be written: %(reason)s. The rotation is in the log."
                )
                % {"path": path, "key_id": key_id(self._load(path).public_key()), "reason": err}
            ) from None
        self.stdout.write(
            _(
                "Rotated the signing key %(path)s: key %(key_id)s signs from now on; key "
                "%(retired_key_id)s is retired, its public key kept in %(retired_file)s."
            )
            % {
                "path": path,
                "key_id": rotation.key_id,
                "retired_key_id": rotation.retired_key_id,
                "retired_file": rotation.retired_file,
            }
        )
        self.stdout.write(
            _(
                "Running servers and workers pick the new key up without a restart. The portal "
                "publishes the retired key beside the new one (/signing-key/ and "
                "/.well-known/license-signing-key), so license files and downloads signed "
                "before still verify."
            )
        )
        self.stdout.write(
            _(
                "Now: back up the new key file; copy it and the retired-keys directory to any "
                "server that reads its own copy; run `manage.py releases resign` to sign "
                "FileConnect's files again with the new key."
            )
        )

    def _show(self, path: Path | None) -> None:
        if path:
            public_key = self._load(path).public_key()
        else:
            try:
                public_key = get_public_key()
            except ImproperlyConfigured as err:
                raise CommandError(str(err)) from None
        self.stdout.write(_("Key id: %(key_id)s") % {"key_id": key_id(public_key)})
        self.stdout.write(_("Public key (hex): %(hex)s") % {"hex": public_key_hex(public_key)})
        self.stdout.write(_("Public key (PEM):"))
        self.stdout.write(public_key_pem(public_key).rstrip("\n"))

    def _load(self, path: Path) -> Ed25519PrivateKey:
        try:
            return load_signing_key(path)
        except OSError as err:
            raise CommandError(
                _("Cannot read the signing key %(path)s: %(reason)s.")
                % {"path": path, "reason": err.strerror or err}
            ) from None
        except ValueError as err:
            raise CommandError(
                _("%(path)s is not a usable signing key: %(reason)s")
                % {"path": path, "reason": err}
            ) from None
