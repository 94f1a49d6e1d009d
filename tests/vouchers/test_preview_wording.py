"""The preview's and the confirmation's words and layout: the count's sentence fits the number of
codes, the duplicates notice names codes as the table does, and the licenses stack on a phone."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from tests.portal.factories import MembershipFactory
from tests.vouchers.factories import vouchers, with_typo
from tests.vouchers.wizard import state_token, submit_codes, walk_from_preview

pytestmark = pytest.mark.django_db


@pytest.fixture
def member(client):  # type: ignore[no-untyped-def]
    membership = MembershipFactory()
    client.force_login(membership.user)
    return membership


def _status(client, language: str = "en") -> str:  # type: ignore[no-untyped-def]
    """The text of the preview's first alert (how many codes can be converted): a status, or an
    alert when none can be."""
    page = client.get(reverse("voucher-center-preview"), HTTP_ACCEPT_LANGUAGE=language)
    html = page.content.decode()
    alert = re.split(r'role="(?:status|alert)"', html, maxsplit=1)[1].split("</div>", 1)[0]
    return " ".join(re.sub(r"<[^>]+>", " ", alert.split(">", 1)[1]).split())


def test_a_single_good_code_is_the_code_not_1_of_1_codes(client, member) -> None:  # type: ignore[no-untyped-def]
    (voucher,) = vouchers(1)
    submit_codes(client, voucher.code)
    assert _status(client) == "The code can be converted."
    assert " de 1 " not in _status(client, "pt-br")


def test_a_single_bad_code_is_this_code_not_none_of_these(client, member) -> None:  # type: ignore[no-untyped-def]
    (voucher,) = vouchers(1)
    submit_codes(client, with_typo(voucher.code))
    assert _status(client) == "This code cannot be converted. The table says why."


def test_several_codes_all_good_or_some_good(client, member) -> None:  # type: ignore[no-untyped-def]
    good = vouchers(3)
    submit_codes(client, "\n".join(v.code for v in good))
    assert _status(client) == "All 3 codes can be converted."
    submit_codes(client, f"{good[0].code}\n{with_typo(good[1].code)}\n{with_typo(good[2].code)}")
    assert _status(client).startswith("1 of 3 codes can be converted.")
    # Portuguese: the verb agrees with the count, the noun with the total.
    assert _status(client, "pt-br").startswith("1 de 3 códigos pode ser convertido.")
    submit_codes(client, f"{good[0].code}\n{good[1].code}\n{with_typo(good[2].code)}")
    assert _status(client, "pt-br").startswith("2 de 3 códigos podem ser convertidos.")
    submit_codes(client, f"{with_typo(good[0].code)}\n{with_typo(good[1].code)}")
    assert _status(client).startswith("None of these codes can be converted.")


def test_the_duplicates_notice_names_codes_as_the_table_does(client, member) -> None:  # type: ignore[no-untyped-def]
    (voucher,) = vouchers(1)
    typed = voucher.code.lower().replace("-", "")
    submit_codes(client, f"{typed}\n{voucher.code}")
    page = client.get(reverse("voucher-center-preview")).content.decode()
    notice = page.split('data-testid="voucher-duplicates"')[1].split("</div>")[0]
    assert voucher.code in notice and typed not in notice
    assert f'data-code="{voucher.code}"' in page


def test_the_confirmation_lists_its_licenses_as_cards_on_a_phone(client, member) -> None:  # type: ignore[no-untyped-def]
    # The preview and the result stack their rows on a phone (table-stack); the confirmation's
    # four columns were cut off at 390 px ("Vouch…") and had to be scrolled sideways.
    codes = vouchers(2)
    submit_codes(client, "\n".join(v.code for v in codes))
    page = walk_from_preview(client, state_token(client), confirm=False).content.decode()
    table = page.split("<table", 1)[1].split("</table>", 1)[0]
    assert "table-stack" in table.split(">", 1)[0]
    cells = re.findall(r"<td[^>]*>", table)
    assert cells and all("data-label=" in cell for cell in cells)
    for label in ("Product", "Quantity", "Maintenance", "Vouchers"):
        assert f'data-label="{label}"' in table
