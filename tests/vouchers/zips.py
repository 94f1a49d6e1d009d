"""Checks on the zip of a conversion's license files, shared by the email and worker tests."""

from __future__ import annotations

import io
import zipfile

from licensing.licensefile import verify_license_file
from licensing.signing import get_public_key
from vouchers.emails import license_file_names
from vouchers.models import VoucherConversion
from vouchers.selectors import conversion_licenses


def assert_zip_of(content: bytes, conversion: VoucherConversion) -> None:
    """The zip holds exactly the conversion's license files, in its order, each one verifying."""
    licenses = conversion_licenses(conversion)
    archive = zipfile.ZipFile(io.BytesIO(content))
    assert archive.namelist() == license_file_names(licenses)
    for name, license in zip(archive.namelist(), licenses, strict=True):
        payload = verify_license_file(
            archive.read(name).decode(), license_key=license.key, public_key=get_public_key()
        )
        assert payload["data"]["id"] == str(license.pk)
        assert payload["data"]["attributes"]["key"] == license.key
