from __future__ import annotations

import re

import pytest

from licensing.codes import (
    ALPHABET,
    CodeFormatError,
    canonical_code,
    canonical_key,
    check_character,
    generate_code,
    generate_license_key,
)

GROUPED = re.compile(r"^[0-9A-HJKMNP-TV-Z]{5}(-[0-9A-HJKMNP-TV-Z]{5}){4}$")


def test_license_keys_are_125_bit_crockford_groups() -> None:
    keys = {generate_license_key() for _ in range(2000)}
    assert len(keys) == 2000
    assert all(GROUPED.match(key) for key in keys)
    assert not any(set(key) & set("ILOU") for key in keys)


def test_generated_codes_carry_a_valid_check_character() -> None:
    for _ in range(500):
        code = generate_code()
        assert GROUPED.match(code)
        body = code.replace("-", "")
        assert check_character(body[:-1]) == body[-1]
        assert canonical_code(code) == code


def test_every_single_character_substitution_is_caught() -> None:
    code = generate_code().replace("-", "")
    for position in range(len(code)):
        for replacement in ALPHABET:
            if replacement == code[position]:
                continue
            typo = code[:position] + replacement + code[position + 1 :]
            with pytest.raises(CodeFormatError) as excinfo:
                canonical_code(typo)
            assert excinfo.value.reason == "check"


def test_adjacent_swaps_are_mostly_caught() -> None:
    caught = total = 0
    for _ in range(200):
        code = generate_code().replace("-", "")
        for i in range(len(code) - 1):
            if code[i] == code[i + 1]:
                continue
            swapped = code[:i] + code[i + 1] + code[i] + code[i + 2 :]
            total += 1
            try:
                canonical_code(swapped)
            except CodeFormatError:
                caught += 1
    assert caught / total > 0.95


def test_input_is_forgiving_about_case_separators_and_lookalikes() -> None:
    code = generate_code()
    messy = " " + code.lower().replace("-", " ") + "\n"
    assert canonical_code(messy) == code
    assert canonical_code(code.replace("-", "")) == code
    if "0" in code:
        assert canonical_code(code.replace("0", "O")) == code
    if "1" in code:
        assert canonical_code(code.replace("1", "l")) == code


@pytest.mark.parametrize(
    ("raw", "reason"),
    [("", "empty"), ("  - ", "empty"), ("ab$%", "malformed"), ("X" * 41, "malformed")],
)
def test_format_errors(raw: str, reason: str) -> None:
    with pytest.raises(CodeFormatError) as excinfo:
        canonical_code(raw)
    assert excinfo.value.reason == reason


def test_legacy_serials_are_accepted_as_they_are() -> None:
    assert canonical_code("m-1234567") == "M1234567"


def test_canonical_key_groups_typed_keys() -> None:
    key = generate_license_key()
    assert canonical_key(key.lower().replace("-", "")) == key


def test_a_key_or_code_reads_the_csprng_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import secrets

    calls: list[int] = []
    real = secrets.token_bytes

    def counting(n: int) -> bytes:
        calls.append(n)
        return real(n)

    monkeypatch.setattr(secrets, "token_bytes", counting)
    generate_license_key()
    generate_code()
    assert calls == [16, 15]  # 125 and 120 bits, rounded up to whole bytes


def test_every_character_of_the_alphabet_is_drawn_at_every_position() -> None:
    keys = [generate_license_key().replace("-", "") for _ in range(3000)]
    for position in (0, 12, 24):
        assert {key[position] for key in keys} == set(ALPHABET)
