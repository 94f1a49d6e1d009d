"""How a customer checks a downloaded file: the commands shown on the page, and the checks
`manage.py verify_download` makes."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from .integrity import Digest, signature_valid
from .models import ReleaseFile

PUBLIC_KEY_FILE = "portal-signing-key.pem"


@dataclass(frozen=True)
class VerifyCommands:
    checksum: str
    # None when the portal does not publish the key that signed the file: commands using
    # another key would only ever print a verification failure.
    save_key: str | None
    openssl: str | None
    python: str | None


def verify_commands(
    release_file: ReleaseFile, *, public_key_pems: Mapping[str, str]
) -> VerifyCommands:
    """Copy-paste commands that check a file with sha256sum, openssl or Python + cryptography,
    with the public key (from `public_key_pems`, by key ID) that signed it."""
    # The name goes to sha256sum as data (a line of the check list), never as an argument.
    checksum = (
        f"echo '{release_file.sha256}  '{shlex.quote(release_file.display_name)}"
        " | sha256sum --check"
    )
    public_key_pem = public_key_pems.get(release_file.key_id)
    if public_key_pem is None:
        return VerifyCommands(checksum=checksum, save_key=None, openssl=None, python=None)
    name = _argument(release_file.display_name)
    sig = _argument(f"{release_file.display_name}.sig")
    digest_file = _argument(f"{release_file.display_name}.sha256")
    # openssl signs and verifies Ed25519 over raw input (-rawin): the signed bytes are the
    # binary SHA-256 digest, which `openssl dgst -binary` writes.
    openssl = "\n".join(
        [
            f"printf '%s' {release_file.signature} | openssl base64 -d -A > {sig}",
            f"openssl dgst -sha256 -binary {name} > {digest_file}",
            f"openssl pkeyutl -verify -pubin -inkey {PUBLIC_KEY_FILE} -rawin "
            f"-in {digest_file} -sigfile {sig}",
        ]
    )
    python = (
        'python3 -c "import base64,hashlib,sys;'
        "from cryptography.hazmat.primitives.serialization import load_pem_public_key as L;"
        "f,s,h=sys.argv[1:];d=hashlib.file_digest(open(f,'rb'),'sha256').digest();"
        "assert d.hex()==h,'SHA-256 mismatch';"
        f"L(open('{PUBLIC_KEY_FILE}','rb').read()).verify(base64.b64decode(s),d);"
        f"print('Signature OK')\" {name} {release_file.signature} {release_file.sha256}"
    )
    return VerifyCommands(
        checksum=checksum,
        save_key=f"cat > {PUBLIC_KEY_FILE} <<'EOF'\n{public_key_pem.strip()}\nEOF",
        openssl=openssl,
        python=python,
    )


def _argument(filename: str) -> str:
    """A file in the current folder as one shell word that no command reads as an option:
    `./-rf.zip`, not `-rf.zip`; quoted when it has spaces, accents or shell characters."""
    return shlex.quote(f"./{filename}")


def file_problems(
    digest: Digest, release_file: ReleaseFile, *, public_key: Ed25519PublicKey, public_key_id: str
) -> list[str]:
    """What does not match between a local file's digest and a release file; empty if all does."""
    problems = []
    if digest.size != release_file.size:
        problems.append(f"size is {digest.size} bytes, expected {release_file.size}")
    if digest.hex != release_file.sha256:
        problems.append(f"SHA-256 is {digest.hex}, expected {release_file.sha256}")
    if not signature_valid(
        sha256_hex=digest.hex, signature_b64=release_file.signature, public_key=public_key
    ):
        if release_file.key_id != public_key_id:
            problems.append(
                f"the signature was made with key {release_file.key_id}, "
                f"and the public key given is {public_key_id}"
            )
        else:
            problems.append("the signature does not verify for this file with the public key")
    return problems
