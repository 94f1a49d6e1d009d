"""Contract years, phases and the grey year: the dates every other rule reads."""

from __future__ import annotations

from datetime import date

import pytest

from enterprise_flex.models import EFContract
from enterprise_flex.services import default_grey_year_end


def contract(start: date, end: date, grey: date | None = None) -> EFContract:
    return EFContract(
        period_start=start, period_end=end, grey_year_end=grey or default_grey_year_end(end)
    )


def test_three_year_contract_has_three_contract_years() -> None:
    c = contract(date(2026, 3, 15), date(2029, 3, 14))
    assert [(y.number, y.start, y.end) for y in c.years()] == [
        (1, date(2026, 3, 15), date(2027, 3, 14)),
        (2, date(2027, 3, 15), date(2028, 3, 14)),
        (3, date(2028, 3, 15), date(2029, 3, 14)),
    ]
    assert c.grey_year_end == date(2030, 3, 14)
    assert c.year(2) is not None and c.year(4) is None and c.year(0) is None


def test_a_short_last_year_ends_with_the_period() -> None:
    c = contract(date(2026, 1, 31), date(2027, 6, 30))
    years = c.years()
    assert [(y.start, y.end) for y in years] == [
        (date(2026, 1, 31), date(2027, 1, 30)),
        (date(2027, 1, 31), date(2027, 6, 30)),
    ]
    assert years[1].report_due == date(2027, 7, 30)


def test_leap_day_start_clamps_to_the_end_of_february() -> None:
    c = contract(date(2028, 2, 29), date(2030, 2, 27))
    assert [y.end for y in c.years()] == [date(2029, 2, 27), date(2030, 2, 27)]
    assert default_grey_year_end(date(2028, 2, 28)) == date(2029, 2, 28)


@pytest.mark.parametrize(
    ("today", "phase", "draws"),
    [
        (date(2026, 3, 14), "upcoming", False),
        (date(2026, 3, 15), "deployment", True),
        (date(2029, 3, 14), "deployment", True),  # the period's last day still draws down
        (date(2029, 3, 15), "grey", False),
        (date(2030, 3, 14), "grey", False),
        (date(2030, 3, 15), "ended", False),
    ],
)
def test_phase_by_date(today: date, phase: str, draws: bool) -> None:
    c = contract(date(2026, 3, 15), date(2029, 3, 14))
    c.status = EFContract.Status.ACTIVE
    assert c.phase(today=today) == phase
    assert c.allows_drawdown(today=today) is draws


def test_a_suspended_contract_draws_nothing_even_in_its_period() -> None:
    c = contract(date(2026, 3, 15), date(2029, 3, 14))
    c.status = EFContract.Status.SUSPENDED
    assert not c.allows_drawdown(today=date(2027, 1, 1))


def test_year_of_a_day() -> None:
    c = contract(date(2026, 3, 15), date(2029, 3, 14))
    assert c.year_of(date(2027, 3, 14)).number == 1  # type: ignore[union-attr]
    assert c.year_of(date(2027, 3, 15)).number == 2  # type: ignore[union-attr]
    assert c.year_of(date(2029, 3, 15)) is None
