"""Calendar arithmetic: tpi's cached date + duration is exactly dateutil's relativedelta."""

from __future__ import annotations

import itertools
from datetime import date

import pytest
from dateutil.relativedelta import relativedelta
from hypothesis import given, settings
from hypothesis import strategies as st

from tpi_cli.dates import MAX_DATE, MIN_DATE, Duration

DURATIONS = [Duration(years, months, days) for years, months, days in
             itertools.product([0, 1, 2], [0, 1, 2, 3, 6, 11, 13, -1], [0, 1, 3, 7, 14, 30, -7])]


def reference(day: int, duration: Duration) -> int:
    delta = relativedelta(years=duration.years, months=duration.months, days=duration.days)
    return (date.fromordinal(day) + delta).toordinal()


@pytest.mark.parametrize("year", [1900, 2000, 2023, 2024, 2100])
def test_add_is_relativedelta_on_every_day_of_the_year(year: int) -> None:
    # Every day of a year (a leap year, century years, 1900 which is not leap) and its month ends.
    start = date(year, 1, 1).toordinal()
    for day in range(start, start + 366):
        for duration in DURATIONS:
            assert duration.add(day) == reference(day, duration), (date.fromordinal(day), duration)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(day=st.integers(MIN_DATE.toordinal(), MAX_DATE.toordinal()), years=st.integers(0, 99),
       months=st.integers(-24, 24), days=st.integers(-400, 400))
def test_add_is_relativedelta_anywhere(day: int, years: int, months: int, days: int) -> None:
    duration = Duration(years, months, days)
    assert duration.add(day) == reference(day, duration)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(day=st.integers(MIN_DATE.toordinal() + 40000, MAX_DATE.toordinal()), years=st.integers(0, 5),
       months=st.integers(0, 24), days=st.integers(0, 400))
def test_first_start_after_is_the_first_start_still_inside(day: int, years: int, months: int, days: int) -> None:
    duration = Duration(years, months, days or (0 if years or months else 1))
    start = duration.first_start_after(day)
    assert reference(start, duration) > day  # an injection on `start` is still inside on `day`
    assert reference(start - 1, duration) <= day  # one a day earlier has dropped out
