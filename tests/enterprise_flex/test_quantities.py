"""Quantities are typed with plain digits. Django's IntegerField read "1.000" (a thousand, to a
Brazilian) as 1, and "25.0", "1_000" and Arabic-Indic "١٢" as numbers too: a report saved 1
where a thousand was deployed. Separators are refused with how to write the number; other
characters are "Enter a whole number"; limits are written grouped, as each language does."""

from __future__ import annotations

import html

import pytest
from django.utils import translation

from enterprise_flex.forms import DeploymentReportForm, QuantitySiteForm
from enterprise_flex.models import EFDeploymentReport, EFDrawdown
from tests.enterprise_flex.factories import draw_down, make_world
from tests.enterprise_flex.test_reports import draw, report_url, world_in_report_window

pytestmark = pytest.mark.django_db

AMBIGUOUS = {
    "en": "without thousands separators: 1000.",
    "pt-br": "sem separadores de milhar: 1000.",
}
NOT_A_NUMBER = {
    "en": "Enter a whole number, like 25.",
    "pt-br": "Informe um número inteiro, como 25.",
}
NOT_WHOLE = "is not a whole number: write the quantity with digits only"


def _quantity_error(value: str, language: str) -> str:
    with translation.override(language):
        form = QuantitySiteForm({"quantity": value, "site": ""}, line=None, sites=[])
        form.is_valid()
        return " ".join(str(e) for e in form.errors.get("quantity", []))


@pytest.mark.parametrize(
    "value,whole",
    [("1.000", "1000"), ("1,000", "1000"), ("1_000", "1000"), ("2.500.000", "2500000")],
)
def test_thousands_separators_are_refused_with_the_number_to_type(value: str, whole: str) -> None:
    error = _quantity_error(value, "en")
    assert error == f"Quantity: write “{value}” without thousands separators: {whole}."
    error = _quantity_error(value, "pt-br")
    assert error == f"Quantidade: escreva “{value}” sem separadores de milhar: {whole}."


@pytest.mark.parametrize("value", ["25.0", "0,5", "1.5", "1_0", "1.000,5", "1,000.000"])
def test_other_points_and_commas_are_not_a_whole_number(value: str) -> None:
    error = _quantity_error(value, "en")
    assert NOT_WHOLE in error and f"“{value}”" in error


@pytest.mark.parametrize("value", ["١٢", "12a", "1e3", "NaN", "+5", "½", "１２"])
def test_other_non_digits_are_not_a_whole_number(value: str) -> None:
    assert _quantity_error(value, "en") == NOT_A_NUMBER["en"]


@pytest.mark.parametrize("value,number", [("12", 12), (" 7 ", 7), ("0012", 12)])
def test_plain_digits_are_read(value: str, number: int) -> None:
    form = DeploymentReportForm({"add_quantity": value}, rows=[], lines=[], sites=[])
    form.is_valid()
    assert form.cleaned_data["add_quantity"] == number


def test_limits_are_grouped_as_the_language_writes_them() -> None:
    assert "1,000,000" in _quantity_error("1000001", "en")
    assert "1.000.000" in _quantity_error("1000001", "pt-br")
    assert "1,000,000" in _quantity_error("9" * 40, "en")  # no huge int(), the same message
    with translation.override("en"):
        form = DeploymentReportForm({"add_quantity": "-3"}, rows=[], lines=[], sites=[])
        assert form.errors["add_quantity"] == ["Enter a quantity of at least 0."]


@pytest.mark.parametrize("language", ["en", "pt-br"])
@pytest.mark.parametrize("value", ["1.000", "1,000", "1_000"])
def test_a_report_draft_refuses_a_separated_quantity_and_saves_nothing(
    client, language: str, value: str
) -> None:  # type: ignore[no-untyped-def]
    world = world_in_report_window()
    draw(world, 4)
    client.force_login(world.contract_user)
    key = f"q_{world.line.pk}_{world.site.pk}"
    # The request activates its language in this thread: `override` puts back what was active.
    with translation.override("en"):
        response = client.post(
            report_url(world), {key: value, "save": "1"}, HTTP_ACCEPT_LANGUAGE=language
        )
    assert response.status_code == 400
    assert AMBIGUOUS[language] in html.unescape(response.content.decode())
    assert not EFDeploymentReport.objects.exists()
    with translation.override("en"):
        response = client.post(
            report_url(world), {key: "١٢", "save": "1"}, HTTP_ACCEPT_LANGUAGE=language
        )
    assert response.status_code == 400
    assert NOT_A_NUMBER[language] in html.unescape(response.content.decode())
    assert not EFDeploymentReport.objects.exists()
    # Digits only are saved as typed.
    response = client.post(report_url(world), {key: "1000", "save": "1"})
    assert response.status_code == 302
    assert EFDeploymentReport.objects.get().entries.get().quantity == 1000


@pytest.mark.parametrize("language", ["en", "pt-br"])
def test_the_drawdown_wizard_refuses_a_separated_quantity(client, language: str) -> None:  # type: ignore[no-untyped-def]
    world = make_world(committed_quantity=5000)
    client.force_login(world.contract_user)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = language
    for value, expected in (("1.000", AMBIGUOUS), ("١٢", NOT_A_NUMBER)):
        with translation.override("en"):
            response = draw_down(
                client, world.contract, line=world.line, site=world.site, quantity=value
            )
        assert response.status_code == 200
        assert response.context["wizard"]["steps"].current == "quantity"
        assert expected[language] in html.unescape(response.content.decode())
    assert not EFDrawdown.objects.exists()
