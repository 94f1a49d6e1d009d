"""`manage.py releases add-file|list|withdraw|restore|resign|seed-demo`: FileConnect's release
files."""

from __future__ import annotations

import io
import zipfile
from datetime import date
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.template.defaultfilters import filesizeformat

from fileconnect.models import Release, ReleaseFile
from fileconnect.services import (
    FileConnectError,
    release_file_add,
    release_files_resign,
    release_restore,
    release_withdraw,
)
from licensing.management.catalog import product_version
from licensing.models import ProductVersion

# (SKU, version, platform, file name): small stand-ins for installers, for the local demo.
DEMO_FILES = [
    ("SEP-ENT", "14.3", "Windows x64", "sep-ent-14.3-win-x64.zip"),
    ("SEP-ENT", "14.3", "Linux x86_64", "sep-ent-14.3-linux-x86_64.zip"),
    ("SEP-ENT", "15.0", "Windows x64", "sep-ent-15.0-win-x64.zip"),
    ("SEP-ENT", "15.0", "Linux x86_64", "sep-ent-15.0-linux-x86_64.zip"),
    ("SEP-ENT", "15.0", "macOS", "sep-ent-15.0-macos.zip"),
    ("DLP-NET", "16.0", "Linux x86_64", "dlp-net-16.0-linux-x86_64.zip"),
    ("WSS-GW", "7.2", "Virtual appliance", "wss-gw-7.2-appliance.zip"),
]


def demo_archive(version: ProductVersion, platform: str) -> bytes:
    """A small zip with a README, the same bytes on every run (fixed timestamps)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        info = zipfile.ZipInfo("README.txt", date_time=(2026, 1, 1, 0, 0, 0))
        archive.writestr(
            info,
            f"{version.product.name} {version.version} for {platform}\n"
            "Demo download from the Licensing Portal's FileConnect. Not real software.\n",
        )
    return buffer.getvalue()


class Command(BaseCommand):
    help = "Add files to releases (streamed, checksummed and signed), list and withdraw releases."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        add = sub.add_parser("add-file", help="Add a file to a product version's release.")
        add.add_argument("--product", required=True, help="Product SKU.")
        add.add_argument("--version", required=True, help="Product version, e.g. 14.3.")
        add.add_argument("--platform", required=True, help='e.g. "Windows x64".')
        add.add_argument("--language", default="", help="Empty: every language.")
        add.add_argument("--name", default="", help="Download file name (default: PATH's).")
        add.add_argument(
            "--release-date",
            type=date.fromisoformat,
            default=None,
            help="For a new release (YYYY-MM-DD); default: the version's release date.",
        )
        add.add_argument("--notes", default="", help="Release notes, for a new release.")
        add.add_argument("path", help="The file to add.")
        listing = sub.add_parser("list", help="Releases and their files.")
        listing.add_argument("--product", default="", help="Only this product SKU.")
        for verb in ("withdraw", "restore"):
            change = sub.add_parser(verb, help=f"{verb.capitalize()} a release.")
            change.add_argument("release_id", type=int)
        sub.add_parser(
            "resign",
            help="Sign files signed with a retired key again with the current one (audited).",
        )
        sub.add_parser("seed-demo", help="Small demo files for the demo products (idempotent).")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "add-file":
            self._add_file(options)
        elif action == "list":
            self._list(options["product"])
        elif action == "seed-demo":
            self._seed_demo()
        elif action == "resign":
            self._resign()
        else:
            release = (
                Release.objects.select_related("version__product")
                .filter(pk=options["release_id"])
                .first()
            )
            if release is None:
                raise CommandError(f"No release with id {options['release_id']}.")
            service = release_withdraw if action == "withdraw" else release_restore
            try:
                service(release=release, actor=None)
            except FileConnectError as exc:
                raise CommandError(str(exc)) from None
            done = "withdrawn" if action == "withdraw" else "restored"
            self.stdout.write(f"Release {release.pk} ({release}) {done}.")

    def _add_file(self, options: dict[str, Any]) -> None:
        path = Path(options["path"])
        if not path.is_file():
            raise CommandError(f"No file at {path}.")
        version = product_version(options["product"], options["version"])
        try:
            with path.open("rb") as source:
                added = release_file_add(
                    version=version,
                    platform=options["platform"],
                    language=options["language"],
                    source=source,
                    filename=options["name"] or path.name,
                    actor=None,
                    released_on=options["release_date"],
                    notes=options["notes"],
                )
        except FileConnectError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"id: {added.pk}")
        self.stdout.write(f"sha256: {added.sha256}")
        self.stdout.write(
            f"File {added.pk} {added.display_name} ({added.size} bytes) added to release "
            f"{added.release_id} of {version}, {added.platform}."
        )

    def _resign(self) -> None:
        result = release_files_resign(actor=None)
        for release_file in result.resigned:
            self.stdout.write(
                f"File {release_file.pk} {release_file.display_name}: signed with key "
                f"{release_file.key_id}."
            )
        for release_file in result.refused:
            self.stderr.write(
                f"File {release_file.pk} {release_file.display_name}: NOT signed again: no "
                f"published key verifies its signature (key {release_file.key_id}). Check the "
                f"file with `manage.py verify_download`, then add it again."
            )
        self.stdout.write(
            f"{len(result.resigned)} file(s) signed again, {len(result.refused)} refused."
        )
        if result.refused:
            raise CommandError("Some files were not signed again; see above.")

    def _list(self, sku: str) -> None:
        releases = Release.objects.select_related("version__product").prefetch_related("files")
        if sku:
            releases = releases.filter(version__product__sku=sku)
        for release in releases:
            state = " (withdrawn)" if release.is_withdrawn else ""
            self.stdout.write(f"Release {release.pk}: {release}{state}")
            for release_file in release.files.all():
                withdrawn = "  (withdrawn)" if release_file.withdrawn_at else ""
                self.stdout.write(
                    f"  {release_file.pk:>6}  {release_file.platform:<20} "
                    f"{release_file.display_name}  {filesizeformat(release_file.size)}  "
                    f"{release_file.sha256}{withdrawn}"
                )

    def _seed_demo(self) -> None:
        added = 0
        for sku, version_name, platform, filename in DEMO_FILES:
            version = (
                ProductVersion.objects.select_related("product")
                .filter(product__sku=sku, version=version_name)
                .first()
            )
            if version is None:
                raise CommandError("Run `manage.py seed_demo` first.")
            if ReleaseFile.objects.filter(release__version=version, display_name=filename).exists():
                continue
            release_file_add(
                version=version,
                platform=platform,
                source=io.BytesIO(demo_archive(version, platform)),
                filename=filename,
                actor=None,
                notes=f"{version.product.name} {version.version}: demo release.",
            )
            added += 1
        total = ReleaseFile.objects.filter(
            withdrawn_at__isnull=True, release__withdrawn_at__isnull=True
        ).count()
        self.stdout.write(
            f"FileConnect: {added} demo file(s) added, {total} available. Try a serial number "
            "above in FileConnect, or pick Acme's license."
        )
