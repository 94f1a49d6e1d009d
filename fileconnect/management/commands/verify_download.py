"""`manage.py verify_download FILE [--file-id ID]`: is this the file the portal published?"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from fileconnect.integrity import digest_stream
from fileconnect.models import ReleaseFile
from fileconnect.verification import file_problems
from licensing.signing import get_public_key, key_id, load_public_key, published_key


class Command(BaseCommand):
    help = (
        "Check a downloaded file's size, SHA-256 and Ed25519 signature against the release file "
        "it should be; exits with status 1 and says what differs on a mismatch."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="The downloaded file.")
        parser.add_argument(
            "--file-id",
            type=int,
            default=None,
            help="The release file it should be (default: the one with the same SHA-256).",
        )
        parser.add_argument(
            "--public-key",
            default=None,
            help=(
                "A PEM or hex public key file (default: the portal's published key that signed "
                "the release file, current or retired)."
            ),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(f"No file at {path}.")
        given = None
        if options["public_key"]:
            try:
                given = load_public_key(Path(options["public_key"]).read_bytes())
            except (OSError, ValueError) as exc:
                raise CommandError(f"Cannot read the public key: {exc}") from None
        with path.open("rb") as handle:
            digest = digest_stream(handle)
        release_file = self._release_file(options["file_id"], digest.hex)
        if given is not None:
            public_key = given
        else:
            # The key that signed the file, also when it was retired by a rotation since.
            published = published_key(release_file.key_id)
            public_key = published.public_key if published else get_public_key()
        problems = file_problems(
            digest, release_file, public_key=public_key, public_key_id=key_id(public_key)
        )
        described = (
            f"release file {release_file.pk} ({release_file.display_name}, "
            f"{release_file.release.version}, {release_file.platform})"
        )
        if problems:
            raise CommandError(f"MISMATCH: {path} is not {described}: " + "; ".join(problems) + ".")
        withdrawn = " (its release is withdrawn)" if release_file.release.is_withdrawn else ""
        self.stdout.write(
            f"OK: {path} is {described}{withdrawn}: {digest.size} bytes, SHA-256 {digest.hex}, "
            f"signature valid for key {release_file.key_id}."
        )

    def _release_file(self, file_id: int | None, sha256: str) -> ReleaseFile:
        files = ReleaseFile.objects.select_related("release__version__product")
        if file_id is not None:
            found = files.filter(pk=file_id).first()
            if found is None:
                raise CommandError(f"No release file with id {file_id}.")
            return found
        found = files.filter(sha256=sha256).order_by("-pk").first()
        if found is None:
            raise CommandError(
                f"MISMATCH: no release file has the SHA-256 {sha256}: the file is not one the "
                "portal published, or it was altered or cut short. Name the file it should be "
                "with --file-id to see what differs."
            )
        return found
