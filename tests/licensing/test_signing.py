"""The signing key: created on first use in the demo, required in production, cached per path."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.exceptions import ImproperlyConfigured

from licensing import signing

if TYPE_CHECKING:
    from pytest_django.fixtures import Settings


@pytest.fixture
def key_file(settings: Settings, tmp_path: Path) -> Path:
    """Point the portal at a not-yet-existing key file in non-production mode."""
    path = tmp_path / "keys" / "license-signing-key.pem"
    settings.LICENSE_SIGNING_KEY_FILE = path
    settings.PRODUCTION = False
    return path


def _raw(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(
        encoding=serialization.Encoding.Raw, format=serialization.PublicFormat.Raw
    )


def test_created_on_first_use_outside_production(key_file: Path) -> None:
    assert not key_file.exists()
    key = signing.get_signing_key()
    assert key_file.is_file()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key_file.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    # No temp files are left next to the key.
    assert sorted(p.name for p in key_file.parent.iterdir()) == [key_file.name]
    assert _raw(signing.load_signing_key(key_file)) == _raw(key)


def test_loaded_again_gives_the_same_key(key_file: Path) -> None:
    first = signing.get_public_key()
    signing._KEY_CACHE.clear()  # force a real reload from disk
    assert signing.public_key_hex() == signing.public_key_hex(first)
    assert signing.get_signing_key() is signing.get_signing_key()


def test_existing_file_is_loaded_not_replaced(key_file: Path) -> None:
    created = signing.create_signing_key(key_file)
    before = key_file.read_bytes()
    assert _raw(signing.get_signing_key()) == _raw(created)
    assert key_file.read_bytes() == before


def test_cache_follows_the_setting(settings: Settings, tmp_path: Path) -> None:
    settings.PRODUCTION = False
    settings.LICENSE_SIGNING_KEY_FILE = tmp_path / "a.pem"
    key_a = signing.public_key_hex()
    settings.LICENSE_SIGNING_KEY_FILE = tmp_path / "b.pem"
    key_b = signing.public_key_hex()
    assert key_a != key_b
    settings.LICENSE_SIGNING_KEY_FILE = tmp_path / "a.pem"
    assert signing.public_key_hex() == key_a


def test_production_without_key_is_improperly_configured(
    settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "missing.pem"
    settings.LICENSE_SIGNING_KEY_FILE = path
    settings.PRODUCTION = True
    with pytest.raises(ImproperlyConfigured, match="signing_key create"):
        signing.get_signing_key()
    assert not path.exists()


def test_production_with_key_loads_it(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "prod.pem"
    created = signing.create_signing_key(path)
    settings.LICENSE_SIGNING_KEY_FILE = path
    settings.PRODUCTION = True
    assert _raw(signing.get_signing_key()) == _raw(created)


def test_race_with_another_process_loads_their_key(
    key_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_create = signing.create_signing_key
    theirs: list[Ed25519PrivateKey] = []

    def lose_the_race(path: Path) -> Ed25519PrivateKey:
        theirs.append(real_create(path))  # the other process gets there first
        raise FileExistsError(path)

    monkeypatch.setattr(signing, "create_signing_key", lose_the_race)
    assert _raw(signing.get_signing_key()) == _raw(theirs[0])


def test_create_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    signing.create_signing_key(path)
    before = path.read_bytes()
    with pytest.raises(FileExistsError):
        signing.create_signing_key(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["key.pem"]


def test_key_id_is_16_hex_and_stable(key_file: Path) -> None:
    kid = signing.key_id()
    assert re.fullmatch(r"[0-9a-f]{16}", kid)
    assert signing.key_id(signing.get_public_key()) == kid
    signing._KEY_CACHE.clear()
    assert signing.key_id() == kid
    assert signing.key_id(Ed25519PrivateKey.generate().public_key()) != kid


def test_public_key_formats(key_file: Path) -> None:
    hex_key = signing.public_key_hex()
    assert re.fullmatch(r"[0-9a-f]{64}", hex_key)
    pem = signing.public_key_pem()
    assert pem.startswith("-----BEGIN PUBLIC KEY-----\n")
    assert pem.rstrip().endswith("-----END PUBLIC KEY-----")


def test_load_public_key_accepts_pem_and_hex(key_file: Path) -> None:
    expected = signing.public_key_hex()
    pem = signing.public_key_pem()
    for data in (
        pem,
        pem.encode(),
        expected,
        expected.upper(),
        f"  {expected}\n",
        expected.encode(),
    ):
        assert signing.public_key_hex(signing.load_public_key(data)) == expected


@pytest.mark.parametrize(
    "data",
    ["", "abc", "zz" * 32, "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n"],
)
def test_load_public_key_rejects_junk(data: str) -> None:
    with pytest.raises(ValueError, match="public key"):
        signing.load_public_key(data)


def test_load_public_key_rejects_other_algorithms() -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(
            encoding=serialization.Encoding.PEM,
            format=serialization.PublicFormat.SubjectPublicKeyInfo,
        )
    )
    with pytest.raises(ValueError, match="not an Ed25519 key"):
        signing.load_public_key(pem)


def test_key_file_is_not_world_readable_even_with_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        path = tmp_path / "umask.pem"
        signing.create_signing_key(path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_key_is_read_once_for_many_files(key_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    signing.create_signing_key(key_file)
    reads: list[Path] = []
    real_load = signing.load_signing_key

    def counting_load(path: Path) -> Ed25519PrivateKey:
        reads.append(path)
        return real_load(path)

    monkeypatch.setattr(signing, "load_signing_key", counting_load)
    kid = signing.key_id()
    for _ in range(50):
        assert signing.get_signing_key() is signing.get_signing_key()
        assert signing.key_id() == kid
    assert len(reads) == 1


def test_a_replaced_key_file_is_read_again(key_file: Path) -> None:
    signing.create_signing_key(key_file)
    before = signing.key_id()
    # A rotation: another key written in place of the file the process already loaded.
    other = key_file.with_name("other.pem")
    signing.create_signing_key(other)
    os.replace(other, key_file)
    assert signing.key_id() != before
    assert signing.key_id() == signing.key_id(signing.load_signing_key(key_file).public_key())
