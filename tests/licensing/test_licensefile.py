"""License files: Keygen's aes-256-gcm+ed25519 format, checked independently of our parser."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from licensing.licensefile import (
    ALGORITHM,
    LicenseFileError,
    build_license_file,
    parse_license_file,
    verify_license_file,
)

LICENSE_KEY = "ABCDE-FGHJK-MNPQR-STVWX-YZ012"
PAYLOAD: dict[str, Any] = {
    "meta": {"issued": "2025-01-01T00:00:00Z", "expiry": "2026-01-01T00:00:00Z", "ttl": 31536000},
    "data": {"type": "licenses", "id": "42", "attributes": {"key": LICENSE_KEY, "name": "Café"}},
}
BAD_SIGNATURE = "signature is invalid: the file was altered or was not issued by this portal"
WRONG_KEY = "The license key does not match this license file."
NOT_A_LICENSE_FILE = "This is not a license file: "


@pytest.fixture(scope="module")
def signing_key() -> Ed25519PrivateKey:
    """A throwaway signing key for this module."""
    return Ed25519PrivateKey.generate()


@pytest.fixture
def license_file(signing_key: Ed25519PrivateKey) -> str:
    """A freshly built license file for LICENSE_KEY."""
    return build_license_file(payload=PAYLOAD, license_key=LICENSE_KEY, signing_key=signing_key)


def _armour(document: dict[str, str] | bytes) -> str:
    raw = document if isinstance(document, bytes) else json.dumps(document).encode()
    body = base64.b64encode(raw).decode()
    lines = [body[i : i + 60] for i in range(0, len(body), 60)]
    return "\n".join(["-----BEGIN LICENSE FILE-----", *lines, "-----END LICENSE FILE-----"]) + "\n"


def _decode_document(text: str) -> bytes:
    lines = text.strip().splitlines()
    return base64.b64decode("".join(lines[1:-1]))


def test_round_trip(license_file: str, signing_key: Ed25519PrivateKey) -> None:
    payload = verify_license_file(
        license_file, license_key=LICENSE_KEY, public_key=signing_key.public_key()
    )
    assert payload == PAYLOAD


def test_each_build_uses_a_fresh_iv(signing_key: Ed25519PrivateKey) -> None:
    first = build_license_file(payload=PAYLOAD, license_key=LICENSE_KEY, signing_key=signing_key)
    second = build_license_file(payload=PAYLOAD, license_key=LICENSE_KEY, signing_key=signing_key)
    assert parse_license_file(first)["enc"] != parse_license_file(second)["enc"]


def test_armour_shape(license_file: str) -> None:
    assert license_file.endswith("-----END LICENSE FILE-----\n")
    lines = license_file.split("\n")
    assert lines[0] == "-----BEGIN LICENSE FILE-----"
    assert lines[-2] == "-----END LICENSE FILE-----"
    assert lines[-1] == ""
    body = lines[1:-2]
    assert body
    assert all(0 < len(line) <= 60 for line in body)
    assert all(len(line) == 60 for line in body[:-1])

    raw = _decode_document(license_file)
    assert raw.startswith(b'{"enc":"')
    document = json.loads(raw)
    assert list(document) == ["enc", "sig", "alg"]
    assert document["alg"] == ALGORITHM == "aes-256-gcm+ed25519"
    # Compact JSON, exactly as Keygen writes it.
    assert raw == json.dumps(document, separators=(",", ":")).encode()


def test_enc_parts(license_file: str) -> None:
    enc = parse_license_file(license_file)["enc"]
    parts = enc.split(".")
    assert len(parts) == 3
    ciphertext, iv, tag = (base64.b64decode(part, validate=True) for part in parts)
    assert len(iv) == 12
    assert len(tag) == 16
    assert len(ciphertext) == len(json.dumps(PAYLOAD, separators=(",", ":")).encode())


def test_independent_keygen_style_verification(
    license_file: str, signing_key: Ed25519PrivateKey
) -> None:
    """Re-implement Keygen's documented verification steps with plain `cryptography`."""
    # 1. Strip the armour and decode the base64 JSON document.
    document = json.loads(_decode_document(license_file))
    enc, sig, alg = document["enc"], document["sig"], document["alg"]
    assert alg == "aes-256-gcm+ed25519"
    # 2. Verify the Ed25519 signature over "license/" + enc (raises InvalidSignature if wrong).
    signing_key.public_key().verify(base64.b64decode(sig), b"license/" + enc.encode())
    # 3. SHA-256 of the license key is the AES-256-GCM key; decrypt ciphertext + tag.
    ciphertext, iv, tag = (base64.b64decode(part) for part in enc.split("."))
    aes_key = hashlib.sha256(LICENSE_KEY.encode()).digest()
    plaintext = AESGCM(aes_key).decrypt(iv, ciphertext + tag, None)
    assert json.loads(plaintext) == PAYLOAD


def test_changed_character_in_body(license_file: str, signing_key: Ed25519PrivateKey) -> None:
    lines = license_file.split("\n")
    # Character 20 of the body lies inside the enc ciphertext (the JSON starts {"enc":"...).
    original = lines[1][20]
    tampered_texts = []
    for replacement in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789":
        if replacement == original:
            continue
        candidate = [*lines]
        candidate[1] = lines[1][:20] + replacement + lines[1][21:]
        tampered = "\n".join(candidate)
        try:
            parse_license_file(tampered)
        except LicenseFileError:
            continue  # that byte broke the JSON; the next replacement will keep it well-formed
        tampered_texts.append(tampered)
    assert tampered_texts
    for tampered in tampered_texts[:5]:
        with pytest.raises(LicenseFileError, match=BAD_SIGNATURE):
            verify_license_file(
                tampered, license_key=LICENSE_KEY, public_key=signing_key.public_key()
            )


def test_damaged_body_is_not_a_license_file(
    license_file: str, signing_key: Ed25519PrivateKey
) -> None:
    lines = license_file.split("\n")
    lines[1] = "!" + lines[1][1:]
    with pytest.raises(LicenseFileError, match=NOT_A_LICENSE_FILE):
        verify_license_file(
            "\n".join(lines), license_key=LICENSE_KEY, public_key=signing_key.public_key()
        )


def test_changed_enc_reencoded(license_file: str, signing_key: Ed25519PrivateKey) -> None:
    document = parse_license_file(license_file)
    ciphertext, iv, tag = (base64.b64decode(part) for part in document["enc"].split("."))
    flipped = bytes([ciphertext[0] ^ 0x01]) + ciphertext[1:]
    document["enc"] = ".".join(base64.b64encode(part).decode() for part in (flipped, iv, tag))
    with pytest.raises(LicenseFileError, match=BAD_SIGNATURE):
        verify_license_file(
            _armour(document), license_key=LICENSE_KEY, public_key=signing_key.public_key()
        )


def test_wrong_license_key(license_file: str, signing_key: Ed25519PrivateKey) -> None:
    with pytest.raises(LicenseFileError) as excinfo:
        verify_license_file(
            license_file,
            license_key="ABCDE-FGHJK-MNPQR-STVWX-YZ013",
            public_key=signing_key.public_key(),
        )
    assert str(excinfo.value) == WRONG_KEY


def test_key_is_used_exactly_as_given(license_file: str, signing_key: Ed25519PrivateKey) -> None:
    # Normalising user input is the caller's job; the module must not guess.
    with pytest.raises(LicenseFileError, match=WRONG_KEY):
        verify_license_file(
            license_file, license_key=LICENSE_KEY.lower(), public_key=signing_key.public_key()
        )


def test_signed_by_another_key(signing_key: Ed25519PrivateKey) -> None:
    other = Ed25519PrivateKey.generate()
    text = build_license_file(payload=PAYLOAD, license_key=LICENSE_KEY, signing_key=other)
    with pytest.raises(LicenseFileError) as excinfo:
        verify_license_file(text, license_key=LICENSE_KEY, public_key=signing_key.public_key())
    assert str(excinfo.value) == (
        "The license file's signature is invalid: the file was altered or was not issued by "
        "this portal."
    )


def test_alg_changed(license_file: str, signing_key: Ed25519PrivateKey) -> None:
    document = parse_license_file(license_file)
    document["alg"] = "aes-256-gcm+rsa-pss-sha256"
    with pytest.raises(LicenseFileError, match=NOT_A_LICENSE_FILE + ".*unsupported algorithm"):
        verify_license_file(
            _armour(document), license_key=LICENSE_KEY, public_key=signing_key.public_key()
        )


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \n\n",
        "hello, this is definitely not a license",
        "-----BEGIN LICENSE FILE-----\n-----END LICENSE FILE-----\n",
        "-----BEGIN LICENSE FILE-----\nZm9v\n",
        _armour(b"not json"),
        _armour(b"[1, 2, 3]"),
        _armour({"enc": "a.b.c", "sig": "c2ln"}),
        "-----BEGIN PGP MESSAGE-----\nZm9v\n-----END PGP MESSAGE-----\n",
    ],
    ids=[
        "empty",
        "blank",
        "garbage",
        "no-body",
        "no-end",
        "not-json",
        "not-object",
        "no-alg",
        "pgp",
    ],
)
def test_not_a_license_file(text: str, signing_key: Ed25519PrivateKey) -> None:
    with pytest.raises(LicenseFileError) as excinfo:
        verify_license_file(text, license_key=LICENSE_KEY, public_key=signing_key.public_key())
    message = str(excinfo.value)
    assert message.startswith(NOT_A_LICENSE_FILE)
    # The message says what to do about it, not just what is wrong.
    assert "Download the license file again" in message


def test_empty_string_message() -> None:
    with pytest.raises(LicenseFileError, match=r"^This is not a license file: it is empty\."):
        parse_license_file("")


def test_crlf_and_missing_trailing_newline_tolerated(
    license_file: str, signing_key: Ed25519PrivateKey
) -> None:
    public_key = signing_key.public_key()
    variants = [
        license_file.replace("\n", "\r\n"),
        license_file.rstrip("\n"),
        license_file.replace("\n", "\r\n").rstrip("\r\n"),
        "\n\n  " + license_file + "  \n\n",
    ]
    for text in variants:
        assert verify_license_file(text, license_key=LICENSE_KEY, public_key=public_key) == PAYLOAD
