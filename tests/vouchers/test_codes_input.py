"""How codes arrive: typed, pasted in any shape, or as a CSV file; and the clear refusals."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from licensing.codes import generate_code
from tests.portal.factories import MembershipFactory
from tests.vouchers.factories import vouchers
from tests.vouchers.wizard import form_errors, submit_codes
from vouchers.forms import codes_from_csv, split_codes, unique_entries

A, B, C = (generate_code() for _ in range(3))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"{A}\n{B}\r\n{C}", [A, B, C]),
        (f"{A}, {B};{C}", [A, B, C]),
        (f"{A} {B}\t{C}", [A, B, C]),
        (f"{A.lower()}  {B.replace('-', '')}", [A.lower(), B.replace("-", "")]),
        # A code typed with spaces between its groups stays one code.
        (
            f"{A.replace('-', ' ')}\n{B.replace('-', ' ')}",
            [A.replace("-", " "), B.replace("-", " ")],
        ),
        (f"{A.replace('-', ' ')} {B}", [A.replace("-", " "), B]),
        (f"oops {A}", ["oops", A]),
        ("\n\n , ;  \n", []),
    ],
)
def test_split_codes(text, expected) -> None:  # type: ignore[no-untyped-def]
    assert split_codes(text) == expected


def test_unique_entries_sees_through_case_and_dashes() -> None:
    assert unique_entries([A, A.lower(), A.replace("-", ""), B]) == [A, B]


def upload(content: bytes, name: str = "codes.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="text/csv")


@pytest.mark.parametrize(
    "content",
    [
        f"{A}\n{B}\n{C}\n",
        f"code,product,version\n{A},SEP,14\n{B},SEP,14\n{C},SEP,14\n",
        f"Product;Voucher code\nSEP;{A}\nSEP;{B}\nSEP;{C}\n",
        f"\ufeff{A},{B},{C}\n",  # one row, with the BOM Excel writes
        f'"{A}"\r\n"{B}"\r\n"{C}"\r\n',
        f"Serial,Note\n{A},ok\n{B},caf\xe9\n{C},\n",  # legacy encoding, below
    ],
)
def test_csv_shapes(content) -> None:  # type: ignore[no-untyped-def]
    data = content.encode("cp1252") if "caf" in content else content.encode()
    assert codes_from_csv(upload(data)) == [A, B, C]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"PK\x03\x04\x14\x00\x06\x00" + bytes(range(256)) * 4, "not a CSV file"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not a CSV file"),
        (bytes(range(128, 256)) * 50, "not a CSV file"),
        (b"", "The file is empty"),
        (b"\n\n,,\n", "The file is empty"),
        (b"name,city\nAna,Recife\nJo,Natal\n", "found no voucher codes"),
        (b"x" * (1024 * 1024 + 1), "larger than 1 MB"),
    ],
)
def test_bad_files(content, message) -> None:  # type: ignore[no-untyped-def]
    from django import forms

    with pytest.raises(forms.ValidationError, match=message):
        codes_from_csv(upload(content))


@pytest.mark.django_db
def test_bad_file_on_the_page_is_a_field_error(client) -> None:  # type: ignore[no-untyped-def]
    client.force_login(MembershipFactory().user)
    response = submit_codes(client, file=io.BytesIO(b"\x00\x01\x02binary"))
    assert response.status_code == 200
    assert "not a CSV file" in str(form_errors(response)["file"])


@pytest.mark.django_db
def test_codes_and_file_together(client) -> None:  # type: ignore[no-untyped-def]
    client.force_login(MembershipFactory().user)
    typed, uploaded = vouchers(2)
    file = upload(f"{uploaded.code}\n{typed.code}\n".encode())
    assert submit_codes(client, typed.code, file=file).status_code == 302
    page = client.get("/vouchers/preview/").content.decode()
    assert "All 2 codes can be converted" in page


# -- size and count caps, linear parsing --------------------------------------------------------


def largest_accepted_text() -> str:
    """1,000 codes typed in their slowest shape (groups split by spaces, so that pieces must be
    joined), padded with separators to the size limit."""
    from vouchers.forms import MAX_CODES, MAX_TEXT_CHARS

    codes = [generate_code().replace("-", " ") for _ in range(MAX_CODES)]
    text = "\n".join(codes)
    padding = MAX_TEXT_CHARS - len(text) - 1
    assert padding > 0
    return text + "\n" + ("- " * padding)[:padding]


def largest_accepted_csv() -> bytes:
    """A 1 MB CSV of 1,000 codes, each beside a cell of dashes and spaces."""
    from vouchers.forms import MAX_CODES, MAX_FILE_BYTES

    filler = "- " * ((MAX_FILE_BYTES // MAX_CODES - 40) // 2)
    content = "code,note\n" + "".join(f"{generate_code()},{filler}\n" for _ in range(MAX_CODES))
    data = content.encode()
    assert MAX_FILE_BYTES * 0.9 < len(data) <= MAX_FILE_BYTES
    return data


def test_the_largest_accepted_text_parses_in_linear_time() -> None:
    import time

    from vouchers.forms import MAX_CODES, MAX_TEXT_CHARS

    text = largest_accepted_text()
    assert len(text) == MAX_TEXT_CHARS
    started = time.perf_counter()
    entries = split_codes(text)
    elapsed = time.perf_counter() - started
    assert len(unique_entries(entries)) == MAX_CODES
    # A smoke check only (the figure is bench/bench_voucher_parsing.py's): quadratic splitting
    # took 9 s on a quarter of this.
    assert elapsed < 2, f"{elapsed:.2f} s"
    # The shape from the report, at the same size: one piece of dashes and spaces.
    started = time.perf_counter()
    assert split_codes("- " * (MAX_TEXT_CHARS // 2)) == []
    assert time.perf_counter() - started < 2


def test_the_largest_accepted_csv_parses_in_linear_time() -> None:
    import time

    from vouchers.forms import MAX_CODES

    data = largest_accepted_csv()
    started = time.perf_counter()
    entries = codes_from_csv(upload(data))
    elapsed = time.perf_counter() - started
    assert len(entries) == MAX_CODES
    assert elapsed < 2, f"{elapsed:.2f} s"


@pytest.mark.django_db
def test_oversize_text_is_refused_before_it_is_parsed(client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import time

    import vouchers.forms

    client.force_login(MembershipFactory().user)
    calls: list[int] = []
    real = vouchers.forms.split_codes
    monkeypatch.setattr(
        vouchers.forms, "split_codes", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    started = time.perf_counter()
    response = submit_codes(client, "- " * 160_000)  # the 320 KB POST of the report
    assert time.perf_counter() - started < 2
    assert response.status_code == 200
    assert "Paste at most 64 KB" in str(form_errors(response)["codes"])
    assert not calls  # refused on its size, never split


@pytest.mark.django_db
def test_more_codes_than_allowed_are_refused(client) -> None:  # type: ignore[no-untyped-def]
    client.force_login(MembershipFactory().user)
    text = "\n".join(generate_code() for _ in range(2_100))[:60_000]
    response = submit_codes(client, text)
    assert response.status_code == 200
    assert "Convert at most 1,000 at a time" in str(form_errors(response))


def test_a_csv_with_too_many_cells_is_refused_before_it_is_parsed() -> None:
    from django import forms

    with pytest.raises(forms.ValidationError, match="too many cells"):
        codes_from_csv(upload(b"a," * 400_000))


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", "You entered 1,001 codes. Convert at most 1,000 at a time"),
        ("pt-br", "Você inseriu 1.001 códigos. Converta no máximo 1.000 por vez"),
    ],
)
def test_the_counts_of_a_refusal_are_grouped_as_the_reader_writes_numbers(
    client, language, expected
) -> None:  # type: ignore[no-untyped-def]
    from django.urls import reverse

    client.force_login(MembershipFactory().user)
    text = "\n".join(generate_code() for _ in range(1001))
    response = client.post(
        reverse("voucher-center"), {"codes": text}, HTTP_ACCEPT_LANGUAGE=language
    )
    assert response.status_code == 200
    assert expected in str(form_errors(response))
