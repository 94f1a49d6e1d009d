"""Codes people type: license keys, serial numbers and voucher codes.

All use Crockford's base32 alphabet (no I, L, O, U), upper case, in dash-separated groups of five.
Serial numbers and voucher codes end with a check character (Luhn mod 32 over the same alphabet),
so a typo is caught before any lookup; license keys carry no check character.
"""

from __future__ import annotations

import base64
import re
import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_VALUE = {ch: i for i, ch in enumerate(ALPHABET)}
# Crockford's decoding rules: letters easily misread for digits are read as those digits.
_CONFUSABLE = str.maketrans({"O": "0", "I": "1", "L": "1"})
_SEPARATORS = re.compile(r"[\s\-_.]+")

KEY_LENGTH = 25  # 125 bits
CODE_BODY_LENGTH = 24  # 120 bits, plus one check character
GROUP = 5


# RFC 4648 base32 digit → the Crockford digit of the same value: both map 5 bits to one symbol.
_RFC4648_TO_CROCKFORD = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", ALPHABET.encode())


def _random_chars(count: int) -> str:
    """`count` uniformly random characters, 5 bits each, from one call to the CSPRNG.

    One secrets.choice per character cost a system call each: 25 per license key, 250,000 for a
    conversion of 10,000 vouchers. Every 5-bit group of random bytes is uniform, so reading
    them as base32 digits gives the same distribution.
    """
    raw = secrets.token_bytes((count * 5 + 7) // 8)
    return base64.b32encode(raw)[:count].translate(_RFC4648_TO_CROCKFORD).decode("ascii")


def group(chars: str) -> str:
    """Splits characters into dash-separated groups of five."""
    return "-".join(chars[i : i + GROUP] for i in range(0, len(chars), GROUP))


def compact(raw: str) -> str:
    """Upper-cases and strips separators: the form input is compared in."""
    return _SEPARATORS.sub("", raw or "").upper()


def check_character(body: str) -> str:
    """Luhn mod 32: catches every single-character error and most adjacent swaps."""
    factor = 2
    total = 0
    n = len(ALPHABET)
    for ch in reversed(body):
        addend = factor * _VALUE[ch]
        factor = 1 if factor == 2 else 2
        total += addend // n + addend % n
    return ALPHABET[(n - total % n) % n]


def generate_license_key() -> str:
    """A new license key: 125 random bits, five groups of five."""
    return group(_random_chars(KEY_LENGTH))


def generate_code() -> str:
    """A new serial number or voucher code: 120 random bits and a check character."""
    body = _random_chars(CODE_BODY_LENGTH)
    return group(body + check_character(body))


def is_base32(chars: str) -> bool:
    return bool(chars) and all(ch in _VALUE for ch in chars)


def canonical_key(raw: str) -> str:
    """The stored form of a typed license key; legacy keys keep their dashes, lose whitespace."""
    chars = compact(raw).translate(_CONFUSABLE)
    if len(chars) == KEY_LENGTH and is_base32(chars):
        return group(chars)
    return "".join((raw or "").split()).upper()


# A key printed on a certificate as the portal stores it (canonical_key): a generated key, or a
# legacy one in letters, digits and dashes. Nothing else, so no spreadsheet runs one as a formula.
_PRINTED_KEY = re.compile(r"^[A-Z0-9]+(-[A-Z0-9]+)*$")


def is_printed_key(key: str) -> bool:
    """Whether `key` (as canonical_key stores it) can be a printed license key."""
    return bool(_PRINTED_KEY.match(key))


class CodeFormatError(ValueError):
    """A typed serial or voucher code that cannot be right, whatever is in the database."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason  # "empty", "malformed" or "check"


_LEGACY = re.compile(r"^[A-Z0-9]{6,40}$")


def canonical_code(raw: str) -> str:
    """The stored form of a typed serial number or voucher code.

    Generated codes (25 base32 characters) must pass the check character; imported legacy
    serials in other formats are accepted as they are, upper-cased and without separators.
    """
    chars = compact(raw)
    if not chars:
        raise CodeFormatError("empty")
    decoded = chars.translate(_CONFUSABLE)
    if len(decoded) == CODE_BODY_LENGTH + 1 and is_base32(decoded):
        if check_character(decoded[:-1]) != decoded[-1]:
            raise CodeFormatError("check")
        return group(decoded)
    if not _LEGACY.match(chars):
        raise CodeFormatError("malformed")
    return chars


# Upgrade notification IDs are read over the phone: shorter (75 bits, still unguessable behind
# the failed-attempt limit) and in groups of four.
SHORT_BODY_LENGTH = 15
SHORT_GROUP = 4


def generate_short_code() -> str:
    """A new notification ID: 75 random bits and a check character, XXXX-XXXX-XXXX-XXXX."""
    body = _random_chars(SHORT_BODY_LENGTH)
    chars = body + check_character(body)
    return "-".join(chars[i : i + SHORT_GROUP] for i in range(0, len(chars), SHORT_GROUP))


def canonical_short_code(raw: str) -> str:
    """The stored form of a typed notification ID, or CodeFormatError saying what is wrong."""
    chars = compact(raw)
    if not chars:
        raise CodeFormatError("empty")
    decoded = chars.translate(_CONFUSABLE)
    if len(decoded) != SHORT_BODY_LENGTH + 1 or not is_base32(decoded):
        raise CodeFormatError("malformed")
    if check_character(decoded[:-1]) != decoded[-1]:
        raise CodeFormatError("check")
    return "-".join(decoded[i : i + SHORT_GROUP] for i in range(0, len(decoded), SHORT_GROUP))
