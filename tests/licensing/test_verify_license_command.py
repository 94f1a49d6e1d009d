"""The verify_license and signing_key management commands, in-process and as a real CLI."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import call_command
from django.core.management.base import CommandError

from licensing import signing
from licensing.codes import canonical_key as _canonical_key
from licensing.licensefile import build_license_file

if TYPE_CHECKING:
    from pytest_django.fixtures import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]
LICENSE_KEY = "ABCDE-FGHJK-MNPQR-STVWX-YZ012"
PAYLOAD: dict[str, Any] = {"data": {"id": "7", "attributes": {"key": LICENSE_KEY, "seats": 3}}}
BAD_SIGNATURE = (
    "The license file's signature is invalid: the file was altered or was not issued by "
    "this portal."
)
WRONG_KEY = "The license key does not match this license file."


@pytest.fixture
def key_file(settings: Settings, tmp_path: Path) -> Path:
    """A fresh portal signing key in tmp_path, configured as the portal's key."""
    path = tmp_path / "license-signing-key.pem"
    signing.create_signing_key(path)
    settings.LICENSE_SIGNING_KEY_FILE = path
    settings.PRODUCTION = False
    return path


@pytest.fixture
def license_path(key_file: Path, tmp_path: Path) -> Path:
    """A license file for LICENSE_KEY signed with the portal key."""
    path = tmp_path / "license.lic"
    text = build_license_file(
        payload=PAYLOAD, license_key=LICENSE_KEY, signing_key=signing.load_signing_key(key_file)
    )
    path.write_text(text)
    return path


@pytest.fixture
def tampered_path(license_path: Path, tmp_path: Path) -> Path:
    """The license file with its ciphertext altered and the JSON re-encoded."""
    lines = license_path.read_text().strip().splitlines()
    document = json.loads(base64.b64decode("".join(lines[1:-1])))
    first = document["enc"][0]
    document["enc"] = ("B" if first == "A" else "A") + document["enc"][1:]
    body = base64.b64encode(json.dumps(document, separators=(",", ":")).encode()).decode()
    path = tmp_path / "tampered.lic"
    path.write_text(f"{lines[0]}\n{body}\n{lines[-1]}\n")
    return path


def _verify(*args: str, **options: Any) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("verify_license", *args, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


def _output_payload(out: str) -> dict[str, Any]:
    first, _, rest = out.partition("\n")
    assert first == f"License file is valid. Signed by key {signing.key_id()}."
    return json.loads(rest)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (LICENSE_KEY, LICENSE_KEY),
        ("abcde-fghjk-mnpqr-stvwx-yz012", LICENSE_KEY),
        ("abcdefghjkmnpqrstvwxyz012", LICENSE_KEY),
        ("  ABCDE FGHJK\tMNPQR STVWX YZ012 \n", LICENSE_KEY),
        ("abc-defghjkmnpqrstvwxyz0-12", LICENSE_KEY),
        # Not Crockford base32 (U is excluded) or the wrong length: only upper-cased and trimmed.
        ("abcde-fghjk-mnpqr-stuwx-yz012", "ABCDE-FGHJK-MNPQR-STUWX-YZ012"),
        ("some legacy key", "SOMELEGACYKEY"),
        ("abcd-1234", "ABCD-1234"),
    ],
)
def test_canonical_key(raw: str, expected: str) -> None:
    assert _canonical_key(raw) == expected


def test_verify_good_file(license_path: Path) -> None:
    out, _ = _verify(str(license_path), key=LICENSE_KEY)
    assert _output_payload(out) == PAYLOAD
    assert '\n  "data": {' in out  # pretty-printed with indent 2


def test_verify_lowercase_key_without_dashes(license_path: Path) -> None:
    out, _ = _verify(str(license_path), key="abcdefghjkmnpqrstvwxyz012")
    assert _output_payload(out) == PAYLOAD


def test_verify_with_explicit_public_key_files(
    license_path: Path, key_file: Path, tmp_path: Path
) -> None:
    pem_file = tmp_path / "public.pem"
    pem_file.write_text(signing.public_key_pem())
    hex_file = tmp_path / "public.hex"
    hex_file.write_text(signing.public_key_hex() + "\n")
    for public in (pem_file, hex_file):
        out, _ = _verify(str(license_path), "--public-key", str(public), key=LICENSE_KEY)
        assert _output_payload(out) == PAYLOAD


def test_verify_with_another_public_key(license_path: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.hex"
    other.write_text(signing.public_key_hex(Ed25519PrivateKey.generate().public_key()))
    with pytest.raises(CommandError, match="signature is invalid"):
        _verify(str(license_path), "--public-key", str(other), key=LICENSE_KEY)


def test_verify_unusable_public_key_file(license_path: Path, tmp_path: Path) -> None:
    junk = tmp_path / "junk.txt"
    junk.write_text("not a key")
    with pytest.raises(CommandError, match="does not hold a usable public key"):
        _verify(str(license_path), "--public-key", str(junk), key=LICENSE_KEY)
    with pytest.raises(CommandError, match="Cannot read the public key file"):
        _verify(str(license_path), "--public-key", str(tmp_path / "nope"), key=LICENSE_KEY)


def test_verify_tampered_file(tampered_path: Path) -> None:
    with pytest.raises(CommandError) as excinfo:
        _verify(str(tampered_path), key=LICENSE_KEY)
    assert str(excinfo.value) == BAD_SIGNATURE


def test_verify_wrong_key(license_path: Path) -> None:
    with pytest.raises(CommandError) as excinfo:
        _verify(str(license_path), key="ABCDE-FGHJK-MNPQR-STVWX-YZ013")
    assert str(excinfo.value) == WRONG_KEY


def test_verify_missing_file(key_file: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.lic"
    with pytest.raises(CommandError, match=r"Cannot read the license file .*nowhere\.lic"):
        _verify(str(missing), key=LICENSE_KEY)


def test_verify_binary_file(key_file: Path, tmp_path: Path) -> None:
    binary = tmp_path / "binary.lic"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(CommandError, match="is not a license file"):
        _verify(str(binary), key=LICENSE_KEY)


def test_verify_garbage_file(key_file: Path, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.lic"
    garbage.write_text("hello")
    with pytest.raises(CommandError, match=r"^This is not a license file: "):
        _verify(str(garbage), key=LICENSE_KEY)


def test_key_is_required(license_path: Path) -> None:
    with pytest.raises(CommandError, match="--key"):
        _verify(str(license_path))


# --- The real command line: exit codes and stderr, as an operator sees them. ---


def _run_cli(key_file: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "LICENSE_SIGNING_KEY_FILE": str(key_file),
        "PORTAL_VAR_DIR": str(tmp_path),
    }
    env.pop("DJANGO_PRODUCTION", None)
    python = REPO_ROOT / ".venv" / "bin" / "python"
    return subprocess.run(
        [str(python if python.exists() else sys.executable), "manage.py", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_cli_exit_codes(
    key_file: Path, license_path: Path, tampered_path: Path, tmp_path: Path
) -> None:
    good = _run_cli(
        key_file,
        tmp_path,
        "verify_license",
        str(license_path),
        "--key",
        "abcdefghjkmnpqrstvwxyz012",
    )
    assert good.returncode == 0, good.stderr
    assert _output_payload(good.stdout) == PAYLOAD

    tampered = _run_cli(
        key_file, tmp_path, "verify_license", str(tampered_path), "--key", LICENSE_KEY
    )
    assert tampered.returncode != 0
    assert BAD_SIGNATURE in tampered.stderr
    assert "Traceback" not in tampered.stderr
    assert tampered.stdout == ""

    wrong = _run_cli(
        key_file, tmp_path, "verify_license", str(license_path), "--key", LICENSE_KEY[:-1] + "3"
    )
    assert wrong.returncode != 0
    assert WRONG_KEY in wrong.stderr
    assert "Traceback" not in wrong.stderr


# --- signing_key ---


def _signing_key(*args: str, **options: Any) -> str:
    out = StringIO()
    call_command("signing_key", *args, stdout=out, **options)
    return out.getvalue()


def test_signing_key_create(tmp_path: Path) -> None:
    path = tmp_path / "new" / "key.pem"
    out = _signing_key("create", "--path", str(path))
    assert path.is_file()
    assert signing.key_id(signing.load_signing_key(path).public_key()) in out
    assert "Created signing key" in out


def test_signing_key_create_default_path(settings: Settings, tmp_path: Path) -> None:
    settings.LICENSE_SIGNING_KEY_FILE = tmp_path / "default.pem"
    settings.PRODUCTION = False
    _signing_key("create")
    assert (tmp_path / "default.pem").is_file()


def test_signing_key_create_refuses_existing(key_file: Path) -> None:
    before = key_file.read_bytes()
    with pytest.raises(CommandError, match="already exists"):
        _signing_key("create", "--path", str(key_file))
    with pytest.raises(CommandError, match="already exists"):
        _signing_key("create")
    assert key_file.read_bytes() == before


def test_signing_key_create_if_missing(key_file: Path, tmp_path: Path) -> None:
    before = key_file.read_bytes()
    out = _signing_key("create", "--path", str(key_file), "--if-missing")
    assert signing.key_id() in out
    assert "already exists" in out
    assert key_file.read_bytes() == before

    fresh = tmp_path / "fresh.pem"
    out = _signing_key("create", path=str(fresh), if_missing=True)
    assert fresh.is_file()
    assert "Created signing key" in out


def test_signing_key_show(key_file: Path) -> None:
    out = _signing_key("show")
    assert f"Key id: {signing.key_id()}" in out
    assert f"Public key (hex): {signing.public_key_hex()}" in out
    assert signing.public_key_pem().strip() in out
    assert "PRIVATE" not in out


def test_signing_key_show_path(key_file: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.pem"
    other_key = signing.create_signing_key(other)
    out = _signing_key("show", "--path", str(other))
    assert f"Key id: {signing.key_id(other_key.public_key())}" in out
    with pytest.raises(CommandError, match="Cannot read the signing key"):
        _signing_key("show", "--path", str(tmp_path / "missing.pem"))


def test_signing_key_rejects_unknown_action() -> None:
    with pytest.raises(CommandError, match="invalid choice"):
        _signing_key("destroy")


def test_production_without_key_is_a_clean_error(settings: Settings, tmp_path: Path) -> None:
    settings.LICENSE_SIGNING_KEY_FILE = tmp_path / "missing.pem"
    settings.PRODUCTION = True
    license_file = tmp_path / "license.lic"
    license_file.write_text("irrelevant")
    with pytest.raises(CommandError, match="signing_key create"):
        _verify(str(license_file), key=LICENSE_KEY)
    with pytest.raises(CommandError, match="signing_key create"):
        _signing_key("show")
    assert not (tmp_path / "missing.pem").exists()
