"""Keygen-compatible license files (algorithm aes-256-gcm+ed25519).

A license file is armoured base64 of the JSON {"enc", "sig", "alg"}. `enc` is the payload
encrypted with AES-256-GCM under SHA-256(license key), so only the holder of the key can read it;
`sig` is an Ed25519 signature over "license/" + enc, so anyone with the portal's public key can
check it was issued here and not altered. Keygen's SDKs verify and decrypt the same format.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from typing import Any

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.utils.translation import gettext as _

ALGORITHM = "aes-256-gcm+ed25519"

BEGIN_LINE = "-----BEGIN LICENSE FILE-----"
END_LINE = "-----END LICENSE FILE-----"
LINE_WIDTH = 60
IV_BYTES = 12
TAG_BYTES = 16
SIGNING_PREFIX = "license/"


class LicenseFileError(Exception):
    """A license file that cannot be read, was tampered with, or does not match the key."""


class LicenseSignatureError(LicenseFileError):
    """The signature does not verify with the public key given (altered, or another key's)."""


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _b64decode(text: str) -> bytes:
    # validate=True: a stray character means a damaged file, not something to silently skip.
    return base64.b64decode(text.encode("ascii"), validate=True)


def _not_a_license_file(reason: str) -> LicenseFileError:
    return LicenseFileError(
        _(
            "This is not a license file: %(reason)s. Download the license file again from the "
            "portal and use it unchanged."
        )
        % {"reason": reason}
    )


def _aes_key(license_key: str) -> bytes:
    return hashlib.sha256(license_key.encode("utf-8")).digest()


def build_license_file(
    *, payload: dict[str, Any], license_key: str, signing_key: Ed25519PrivateKey
) -> str:
    """Encrypt `payload` for `license_key`, sign it, and return the armoured license file text."""
    plaintext = json.dumps(payload, separators=(",", ":")).encode("utf-8")
    iv = os.urandom(IV_BYTES)
    # cryptography's AESGCM returns ciphertext || tag; Keygen keeps them as separate fields.
    sealed = AESGCM(_aes_key(license_key)).encrypt(iv, plaintext, None)
    ciphertext, tag = sealed[:-TAG_BYTES], sealed[-TAG_BYTES:]
    enc = f"{_b64encode(ciphertext)}.{_b64encode(iv)}.{_b64encode(tag)}"
    sig = _b64encode(signing_key.sign(f"{SIGNING_PREFIX}{enc}".encode()))
    # Key order enc, sig, alg matches what Keygen itself emits.
    document = json.dumps({"enc": enc, "sig": sig, "alg": ALGORITHM}, separators=(",", ":"))
    body = _b64encode(document.encode("utf-8"))
    lines = [body[i : i + LINE_WIDTH] for i in range(0, len(body), LINE_WIDTH)]
    return "\n".join([BEGIN_LINE, *lines, END_LINE]) + "\n"


def parse_license_file(text: str) -> dict[str, str]:
    """Strip the armour and return the license file's {"enc", "sig", "alg"} fields."""
    if not isinstance(text, str):
        raise _not_a_license_file(_("expected text"))
    # Files pass through mail clients, Windows editors and copy-paste: be lenient on layout only.
    lines = [line.strip() for line in text.lstrip("\ufeff").strip().splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        raise _not_a_license_file(_("it is empty"))
    if lines[0] != BEGIN_LINE:
        raise _not_a_license_file(_("it does not start with %(line)s") % {"line": BEGIN_LINE})
    if lines[-1] != END_LINE or len(lines) < 2:
        raise _not_a_license_file(_("it does not end with %(line)s") % {"line": END_LINE})
    body = "".join(lines[1:-1])
    if not body:
        raise _not_a_license_file(_("it has no content between the BEGIN and END lines"))
    try:
        document = json.loads(_b64decode(body).decode("utf-8"))
    except (ValueError, binascii.Error):
        # UnicodeDecodeError and JSONDecodeError are ValueErrors too.
        raise _not_a_license_file(_("its content is damaged")) from None
    if not isinstance(document, dict):
        raise _not_a_license_file(_("its content is damaged"))
    for field in ("enc", "sig", "alg"):
        if not isinstance(document.get(field), str) or not document[field]:
            raise _not_a_license_file(_("the field %(field)s is missing") % {"field": f'"{field}"'})
    if document["alg"] != ALGORITHM:
        raise _not_a_license_file(
            _("it uses the unsupported algorithm %(alg)s (expected %(expected)s)")
            % {"alg": repr(document["alg"]), "expected": ALGORITHM}
        )
    return {"enc": document["enc"], "sig": document["sig"], "alg": document["alg"]}


def verify_license_file(
    text: str, *, license_key: str, public_key: Ed25519PublicKey
) -> dict[str, Any]:
    """Check the license file's signature, decrypt it with `license_key`, and return its payload."""
    fields = parse_license_file(text)
    enc = fields["enc"]
    invalid_signature = LicenseSignatureError(
        _(
            "The license file's signature is invalid: the file was altered or was not issued by "
            "this portal."
        )
    )
    # Signature first: never feed unauthenticated bytes to the decryption step.
    try:
        signature = _b64decode(fields["sig"])
        public_key.verify(signature, f"{SIGNING_PREFIX}{enc}".encode())
    except (InvalidSignature, ValueError, binascii.Error):
        raise invalid_signature from None

    parts = enc.split(".")
    try:
        if len(parts) != 3:
            raise ValueError("enc must have three parts")
        ciphertext, iv, tag = (_b64decode(part) for part in parts)
    except (ValueError, binascii.Error):
        raise _not_a_license_file(_("its encrypted content is damaged")) from None
    if len(iv) != IV_BYTES or len(tag) != TAG_BYTES:
        raise _not_a_license_file(_("its encrypted content is damaged"))

    try:
        plaintext = AESGCM(_aes_key(license_key)).decrypt(iv, ciphertext + tag, None)
    except InvalidTag:
        raise LicenseFileError(_("The license key does not match this license file.")) from None

    try:
        payload = json.loads(plaintext.decode("utf-8"))
    except ValueError:
        raise _not_a_license_file(_("its decrypted content is not valid JSON")) from None
    if not isinstance(payload, dict):
        raise _not_a_license_file(_("its decrypted content is not a JSON object"))
    return payload
