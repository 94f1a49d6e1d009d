"""The portal's Ed25519 signing key: the one secret every issued license file depends on.

A rotation (`manage.py signing_key rotate`) replaces the key file and keeps the retired key's
public half, named by its key ID, in the retired-keys directory: release files and license files
already handed out stay verifiable with the key they were signed with, which the portal keeps
publishing beside the current one.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import logging
import os
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

logger = logging.getLogger(__name__)

RETIRED_KEYS_DIR_NAME = "retired-signing-keys"


@dataclass(frozen=True)
class _LoadedKey:
    key: Ed25519PrivateKey
    key_id: str
    # (inode, size, mtime) of the file it was read from: a replaced or rewritten file is read again.
    stamp: tuple[int, int, int]


@dataclass(frozen=True)
class PublishedKey:
    """A public key the portal publishes: the current signing key's, or a retired one's."""

    key_id: str
    public_key: Ed25519PublicKey
    current: bool

    @property
    def hex(self) -> str:
        return public_key_hex(self.public_key)

    @property
    def pem(self) -> str:
        return public_key_pem(self.public_key)


@dataclass(frozen=True)
class KeyRotation:
    retired_key_id: str
    key_id: str
    retired_file: Path


# Loaded once per process and setting value, then reused for every file signed: reading and
# parsing the PEM (and hashing the public key for its ID) per license made a bulk conversion
# spend more time resolving the key than signing. Keyed by the setting's value, so a test (or a
# deployment) that points it elsewhere gets that file's key, never one cached from another path.
_KEY_CACHE: dict[str, _LoadedKey] = {}
_KEY_CACHE_LOCK = threading.Lock()


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_ino, info.st_size, info.st_mtime_ns)


# Retired public keys per directory, read again when the directory's stamp changes (a rotation
# links a new file into it).
_RETIRED_CACHE: dict[Path, tuple[tuple[int, int, int], tuple[PublishedKey, ...]]] = {}


@receiver(setting_changed)
def _forget_keys(*, setting: str, **kwargs: object) -> None:
    if setting in ("LICENSE_SIGNING_KEY_FILE", "LICENSE_SIGNING_RETIRED_KEYS_DIR"):
        _forget_loaded()


def _forget_loaded() -> None:
    with _KEY_CACHE_LOCK:
        _KEY_CACHE.clear()
        _RETIRED_CACHE.clear()


def _publish_no_clobber(tmp_name: str, path: Path) -> None:
    """Move the finished temp file to `path`, raising FileExistsError if `path` already exists."""
    try:
        # A hard link is an atomic create-if-absent: unlike os.replace it can never overwrite a key
        # another process published a moment ago, which would orphan every license it signed.
        os.link(tmp_name, path)
    except FileExistsError:
        raise
    except OSError:
        # Filesystems without hard links: check-then-replace is the best we can do there.
        if path.exists():
            raise FileExistsError(f"{path} already exists") from None
        os.replace(tmp_name, path)


def _write_file(path: Path, data: bytes, *, mode: int, replace: bool) -> None:
    """Write `data` to `path` all at once: readers see the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Same directory as the target so the final link/rename never crosses filesystems.
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp_name, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            os.replace(tmp_name, path)
        else:
            _publish_no_clobber(tmp_name, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)


def _private_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )


def create_signing_key(path: Path) -> Ed25519PrivateKey:
    """Generate a new Ed25519 key and write it to `path` as unencrypted PKCS8 PEM (mode 0600)."""
    path = Path(path).expanduser()
    if path.exists():
        raise FileExistsError(f"{path} already exists; refusing to overwrite a signing key.")
    key = Ed25519PrivateKey.generate()
    _write_file(path, _private_pem(key), mode=0o600, replace=False)
    _forget_loaded()
    return key


def retired_keys_dir(key_path: Path | None = None) -> Path:
    """Where retired public keys are kept: the setting, else a directory beside the key file."""
    if settings.LICENSE_SIGNING_RETIRED_KEYS_DIR:
        return Path(settings.LICENSE_SIGNING_RETIRED_KEYS_DIR).expanduser()
    key_path = Path(key_path or settings.LICENSE_SIGNING_KEY_FILE).expanduser()
    return key_path.parent / RETIRED_KEYS_DIR_NAME


def retire_public_key(public_key: Ed25519PublicKey, directory: Path) -> Path:
    """Keep a public key in `directory` as `<key ID>.pem`; an existing copy is left as it is."""
    path = directory / f"{_key_id_of(public_key)}.pem"
    # Already there when a rotation was interrupted after this step: the same key, so keep it.
    with contextlib.suppress(FileExistsError):
        _write_file(path, public_key_pem(public_key).encode("ascii"), mode=0o644, replace=False)
    return path


class RotationUnderWay(Exception):
    """Another rotation of the same key file holds its lock (`lock_path`)."""

    def __init__(self, lock_path: Path) -> None:
        super().__init__(f"{lock_path} is held by another rotation")
        self.lock_path = lock_path


@contextlib.contextmanager
def rotation_lock(path: Path) -> Iterator[None]:
    """Held for a whole rotation of the key file at `path`, refused while another one runs.

    Two rotations at once both read the old key; the second one's new key then replaced the
    first one's, which was never retired: what it signed in between could no longer be verified.
    A lock on a file beside the key works whatever the database (the demo's SQLite too), covers
    exactly the directory being changed, and the kernel releases it if the process dies.
    """
    lock_path = path.with_name(f"{path.name}.lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RotationUnderWay(lock_path) from None
        yield
    finally:
        os.close(fd)  # releases the lock


def rotate_signing_key(path: Path) -> KeyRotation:
    """Replace the signing key at `path` with a new one, keeping the old public key published.

    The old public key is stored in the retired-keys directory before the new private key takes
    its place, so that at no moment can a file signed with either key go unverifiable. Running
    processes pick the new key up by the file's stamp; no restart is needed.
    """
    path = Path(path).expanduser()
    old = load_signing_key(path)
    retired_file = retire_public_key(old.public_key(), retired_keys_dir(path))
    key = Ed25519PrivateKey.generate()
    _write_file(path, _private_pem(key), mode=0o600, replace=True)
    _forget_loaded()
    rotation = KeyRotation(
        retired_key_id=_key_id_of(old.public_key()),
        key_id=_key_id_of(key.public_key()),
        retired_file=retired_file,
    )
    logger.warning(
        "License signing key %s rotated: key %s retired (public key kept in %s), key %s signs",
        path,
        rotation.retired_key_id,
        retired_file,
        rotation.key_id,
    )
    return rotation


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    """Read an Ed25519 private key from a PEM file (uncached)."""
    data = Path(path).expanduser().read_bytes()
    key = serialization.load_pem_private_key(data, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} does not hold an Ed25519 private key.")
    return key


@functools.lru_cache(maxsize=16)
def _key_path(setting: str) -> Path:
    # Parsed once per setting value: building the Path for every file signed cost as much as
    # the stat itself, twice per license (its key and its key ID) in a bulk conversion.
    return Path(setting).expanduser()


def _loaded() -> _LoadedKey:
    cache_key = str(settings.LICENSE_SIGNING_KEY_FILE)
    with _KEY_CACHE_LOCK:
        cached = _KEY_CACHE.get(cache_key)
    path = _key_path(cache_key)
    stamp = _stamp(path)
    # One stat per call: cheap, and a key file replaced on disk (a rotation) is picked up. A file
    # that vanished keeps the key in use rather than minting a new one under running workers.
    if cached is not None and (stamp is None or stamp == cached.stamp):
        return cached
    if stamp is not None:
        key = load_signing_key(path)
    elif settings.PRODUCTION:
        # A silently generated key in production would issue licenses nobody can verify later.
        raise ImproperlyConfigured(
            f"LICENSE_SIGNING_KEY_FILE ({path}) does not exist. Create the Ed25519 signing key "
            "with `manage.py signing_key create --path FILE`, back it up, and restart."
        )
    else:
        try:
            key = create_signing_key(path)
        except FileExistsError:
            # Another process (a second worker starting up) created it first; use theirs.
            key = load_signing_key(path)
    loaded = _LoadedKey(
        key=key, key_id=_key_id_of(key.public_key()), stamp=_stamp(path) or (0, 0, 0)
    )
    with _KEY_CACHE_LOCK:
        _KEY_CACHE[cache_key] = loaded
    return loaded


def get_signing_key() -> Ed25519PrivateKey:
    """Return the portal's signing key, creating it on first use outside production."""
    return _loaded().key


def current_signing_key() -> tuple[Ed25519PrivateKey, str]:
    """The signing key and its key ID, read together: a rotation between two separate reads
    would stamp a file with the ID of a key that did not sign it."""
    loaded = _loaded()
    return loaded.key, loaded.key_id


def get_public_key() -> Ed25519PublicKey:
    """Return the public half of the portal's signing key."""
    return get_signing_key().public_key()


def _raw_public_bytes(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(
        encoding=serialization.Encoding.Raw, format=serialization.PublicFormat.Raw
    )


def public_key_pem(public_key: Ed25519PublicKey | None = None) -> str:
    """Return the (portal's) public key as SubjectPublicKeyInfo PEM text."""
    public_key = public_key or get_public_key()
    return public_key.public_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PublicFormat.SubjectPublicKeyInfo,
    ).decode("ascii")


def public_key_hex(public_key: Ed25519PublicKey | None = None) -> str:
    """Return the (portal's) raw 32-byte public key as lowercase hex, the form Keygen SDKs take."""
    return _raw_public_bytes(public_key or get_public_key()).hex()


def _key_id_of(public_key: Ed25519PublicKey) -> str:
    return hashlib.sha256(_raw_public_bytes(public_key)).hexdigest()[:16]


def key_id(public_key: Ed25519PublicKey | None = None) -> str:
    """Return a stable 16-hex-character ID for a public key (default: the portal's, cached)."""
    return _loaded().key_id if public_key is None else _key_id_of(public_key)


def load_public_key(data: str | bytes) -> Ed25519PublicKey:
    """Load an Ed25519 public key from PEM text or a 64-character hex string."""
    text = data.decode("ascii", errors="replace") if isinstance(data, bytes) else data
    text = text.strip()
    if text.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_public_key(text.encode("ascii", errors="replace"))
        except (ValueError, UnsupportedAlgorithm) as err:
            raise ValueError(f"The PEM public key cannot be read: {err}") from err
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("The PEM public key is not an Ed25519 key.")
        return key
    if len(text) == 64:
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            pass
        else:
            return Ed25519PublicKey.from_public_bytes(raw)
    raise ValueError("Not an Ed25519 public key: expected PEM text or 64 hexadecimal characters.")


def _retired_keys(directory: Path) -> tuple[PublishedKey, ...]:
    stamp = _stamp(directory)
    if stamp is None:
        return ()
    with _KEY_CACHE_LOCK:
        cached = _RETIRED_CACHE.get(directory)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    found: dict[str, tuple[int, PublishedKey]] = {}
    for path in directory.glob("*.pem"):
        try:
            public_key = load_public_key(path.read_bytes())
            retired_at = path.stat().st_mtime_ns
        except (OSError, ValueError) as err:
            # One damaged file must not hide the other keys (or take a page down).
            logger.error("Retired signing key %s cannot be read: %s", path, err)
            continue
        # The ID is computed, not read from the name: a misnamed file still publishes its key.
        kid = _key_id_of(public_key)
        found[kid] = (retired_at, PublishedKey(key_id=kid, public_key=public_key, current=False))
    keys = tuple(key for _at, key in sorted(found.values(), key=lambda item: -item[0]))
    with _KEY_CACHE_LOCK:
        _RETIRED_CACHE[directory] = (stamp, keys)
    return keys


def published_keys() -> list[PublishedKey]:
    """The current key, then the retired ones (most recently retired first), by key ID."""
    current = _loaded()
    keys = [PublishedKey(key_id=current.key_id, public_key=current.key.public_key(), current=True)]
    keys += [key for key in _retired_keys(retired_keys_dir()) if key.key_id != current.key_id]
    return keys


def published_key(kid: str) -> PublishedKey | None:
    """The published key with this key ID, current or retired; None if the portal has none."""
    kid = kid.strip().lower()
    return next((key for key in published_keys() if key.key_id == kid), None)
