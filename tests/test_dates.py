"""Dates and calendar durations (SPEC.md "Words": durations; "History input": date; README 14)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, timedelta

import pytest
from click.testing import Result
from dateutil.relativedelta import relativedelta
from hypothesis import given
from hypothesis import strategies as st

from tpi_cli.dates import Duration, parse_date


def ordinal(text: str) -> int:
    return date.fromisoformat(text).toordinal()


def day_after(start: str, duration: str) -> str:
    return date.fromordinal(Duration.parse(duration).add(ordinal(start))).isoformat()


# --- parse_date ------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("2026-11-28", date(2026, 11, 28)),
    ("2024-02-29", date(2024, 2, 29)),
    ("2000-02-29", date(2000, 2, 29)),
    ("1900-01-01", date(1900, 1, 1)),
    ("2999-12-31", date(2999, 12, 31)),
    # an ISO datetime is cut to its date
    ("2026-11-28T10:00:00", date(2026, 11, 28)),
    ("2026-11-28T10:00", date(2026, 11, 28)),
    ("2026-11-28T23:59:59.123456", date(2026, 11, 28)),
    ("2026-11-28T10:00:00Z", date(2026, 11, 28)),
    # cut, never converted to UTC: the recorded calendar date is the date of the injection
    ("2026-11-28T23:30:00-05:00", date(2026, 11, 28)),
    ("2026-11-28T00:30:00+14:00", date(2026, 11, 28)),
])
def test_parse_date_accepts_iso_dates_and_cuts_datetimes(text: str, expected: date) -> None:
    assert parse_date(text) == expected


@pytest.mark.parametrize("text", [
    "03/04/2026",      # ambiguous: 3 April or 4 March
    "04/03/2026",
    "2026/03/04",
    "20261128",        # ISO basic format is not accepted
    "2026-1-5",
    "26-01-05",
    "5 Jan 2026",
    "Jan 5, 2026",
    "2026-11",
    "",
    "   ",
    "2026-11-28x",
    "2026-11-28T",
    "today",
])
def test_parse_date_rejects_non_iso_and_ambiguous_forms(text: str) -> None:
    with pytest.raises(ValueError, match="ISO"):
        parse_date(text)


@pytest.mark.parametrize("text", ["2026-02-30", "2025-02-29", "1900-02-29", "2026-13-01", "2026-00-10",
                                  "2026-04-31", "2026-01-00", "2026-01-32"])
def test_parse_date_rejects_impossible_dates(text: str) -> None:
    with pytest.raises(ValueError, match="calendar"):
        parse_date(text)


@pytest.mark.parametrize("text", ["1899-12-31", "3000-01-01", "9999-12-31", "1000-06-15"])
def test_parse_date_rejects_years_out_of_range(text: str) -> None:
    with pytest.raises(ValueError, match="outside 1900-01-01 to 2999-12-31"):
        parse_date(text)


@pytest.mark.parametrize("text", ["0000-01-01", "10000-01-01"])
def test_parse_date_rejects_years_that_cannot_be_dates(text: str) -> None:
    with pytest.raises(ValueError, match=r"not (an ISO date|a date on the calendar)"):
        parse_date(text)


@pytest.mark.parametrize("text", ["2026-11-28T25:00", "2026-11-28T10:61", "2026-11-28T99"])
def test_parse_date_rejects_datetimes_with_impossible_times(text: str) -> None:
    with pytest.raises(ValueError, match="2026-11-28T"):
        parse_date(text)


# --- Duration.parse --------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "years", "months", "days"), [
    ("6 weeks", 0, 0, 42),
    ("3 months", 0, 3, 0),
    ("1 year", 1, 0, 0),
    ("10 days", 0, 0, 10),
    ("1 month 2 weeks", 0, 1, 14),
    ("P6W", 0, 0, 42),
    ("P1Y2M", 1, 2, 0),
    ("12 months", 0, 12, 0),
    ("2 years", 2, 0, 0),
    ("1 day", 0, 0, 1),
    ("1 week", 0, 0, 7),
    ("6 Weeks", 0, 0, 42),
    ("6weeks", 0, 0, 42),
    ("p6w", 0, 0, 42),
    ("P10D", 0, 0, 10),
    ("P1Y2M3W4D", 1, 2, 25),
    ("1 year 2 months 3 days", 1, 2, 3),
    ("100 years", 100, 0, 0),
])
def test_duration_parse_every_spec_form(text: str, years: int, months: int, days: int) -> None:
    duration = Duration.parse(text)
    assert (duration.years, duration.months, duration.days) == (years, months, days)


def test_duration_parse_keeps_the_text_for_messages() -> None:
    assert str(Duration.parse("6 weeks")) == "6 weeks"


@pytest.mark.parametrize("text", ["0 days", "P0D"])
def test_zero_duration_parses_and_knows_it_is_zero(text: str) -> None:
    assert Duration.parse(text).is_zero()


@pytest.mark.parametrize(("text", "reason"), [
    ("6", "not a duration"),             # unitless
    ("12", "not a duration"),
    ("P", "not a duration"),             # ISO with no parts
    ("", "empty"),
    ("   ", "empty"),
    ("6 fortnights", "unknown unit"),
    ("6 hours", "unknown unit"),
    ("6 wekes", "unknown unit"),
    ("1 week 2 weeks", "twice"),         # repeats
    ("6 weeks 6 weeks", "twice"),
    ("1 month 1 months", "twice"),
    ("-6 weeks", "not a duration"),      # negative
    ("6.5 weeks", "not a duration"),
    ("PT6H", "not a duration"),          # a time part: not a calendar duration
    ("P1Y1Y", "not a duration"),
    ("P2M1Y", "not a duration"),         # ISO parts out of order
    ("weeks", "not a duration"),
    ("101 years", "longer than 100 years"),
    ("1300 months", "longer than 100 years"),
])
def test_duration_parse_refuses_bad_text(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        Duration.parse(text)


# --- calendar arithmetic ---------------------------------------------------------------------

@pytest.mark.parametrize(("start", "duration", "expected"), [
    ("2026-01-31", "1 month", "2026-02-28"),
    ("2024-01-31", "1 month", "2024-02-29"),       # leap year
    ("2024-02-29", "1 year", "2025-02-28"),
    ("2024-02-29", "4 years", "2028-02-29"),
    ("2024-02-29", "12 months", "2025-02-28"),
    ("2026-01-31", "2 months", "2026-03-31"),      # never chained: not 28 March
    ("2026-01-31", "3 months", "2026-04-30"),
    ("2026-03-31", "1 month", "2026-04-30"),
    ("2026-08-31", "6 months", "2027-02-28"),
    ("2026-01-31", "1 month 2 weeks", "2026-03-14"),  # months first, then days, one step
    ("2026-11-20", "6 weeks", "2027-01-01"),
    ("2026-12-25", "10 days", "2027-01-04"),
    ("2024-02-29", "P1Y2M", "2025-04-29"),
    ("2026-01-01", "P6W", "2026-02-12"),
])
def test_duration_add_is_calendar_arithmetic(start: str, duration: str, expected: str) -> None:
    assert day_after(start, duration) == expected


def test_duration_add_is_computed_from_the_original_date_not_chained() -> None:
    one = Duration.parse("1 month")
    chained = one.add(one.add(ordinal("2026-01-31")))
    assert date.fromordinal(chained).isoformat() == "2026-03-28"
    assert day_after("2026-01-31", "2 months") == "2026-03-31"


def test_duration_add_same_day_twice_gives_same_answer() -> None:
    duration = Duration.parse("1 month")
    first = duration.add(ordinal("2026-01-31"))
    assert duration.add(ordinal("2026-01-31")) == first
    assert duration.add(ordinal("2026-01-30")) == first  # both clamp to 28 February


@pytest.mark.parametrize(("interval", "grace", "start", "expected"), [
    ("6 weeks", "1 week", "2026-01-01", "2026-02-05"),
    ("3 months", "1 week", "2026-01-31", "2026-04-23"),  # one relativedelta(months=3, days=-7)
    ("1 year", "1 month", "2024-02-29", "2025-01-29"),
])
def test_duration_minus_is_one_step_from_the_date(interval: str, grace: str, start: str, expected: str) -> None:
    shortened = Duration.parse(interval).minus(Duration.parse(grace))
    assert date.fromordinal(shortened.add(ordinal(start))).isoformat() == expected


# --- first_start_after -----------------------------------------------------------------------

@pytest.mark.parametrize(("day", "duration", "expected"), [
    ("2026-03-28", "1 month", "2026-03-01"),   # 28 Feb + 1 month = 28 Mar: already out on 28 Mar
    ("2026-03-27", "1 month", "2026-02-28"),
    ("2026-03-31", "1 month", "2026-03-01"),   # 28..31 Jan + 1 month all clamp to 28 Feb
    ("2026-02-27", "1 month", "2026-01-28"),
    ("2026-02-28", "1 month", "2026-02-01"),   # 31 Jan + 1 month = 28 Feb: out on 28 Feb
    ("2024-02-28", "1 month", "2024-01-29"),
    ("2024-02-29", "1 month", "2024-02-01"),
    ("2025-02-28", "1 year", "2024-03-01"),    # 29 Feb 2024 + 1 year = 28 Feb 2025
    ("2025-02-27", "1 year", "2024-02-28"),
    ("2024-02-29", "1 year", "2023-03-01"),
    ("2026-11-28", "6 weeks", "2026-10-18"),
    ("2027-01-01", "6 weeks", "2026-11-21"),   # 20 Nov + 6 weeks = 1 Jan: 20 Nov is out
    ("2026-05-15", "12 months", "2025-05-16"),
])
def test_first_start_after_examples(day: str, duration: str, expected: str) -> None:
    found = Duration.parse(duration).first_start_after(ordinal(day))
    assert date.fromordinal(found).isoformat() == expected


def _days(first: str, count: int) -> list[date]:
    start = date.fromisoformat(first)
    return [start + timedelta(days=n) for n in range(count)]


@pytest.mark.parametrize("duration", ["1 month", "2 months", "1 year", "12 months", "6 weeks", "10 days",
                                      "1 month 2 weeks", "P1Y2M", "3 months"])
def test_first_start_after_is_the_first_start_whose_window_still_covers_the_day(duration: str) -> None:
    """For every day around month ends and leap days: s + dur > day, and (s - 1) + dur <= day."""
    parsed = Duration.parse(duration)
    delta = relativedelta(years=parsed.years, months=parsed.months, days=parsed.days)
    days = _days("2024-01-25", 50) + _days("2025-02-20", 15) + _days("2026-12-20", 15) + _days("2028-02-25", 8)
    for day in days:
        start = date.fromordinal(parsed.first_start_after(day.toordinal()))
        assert start + delta > day, (duration, day, start)
        assert start - timedelta(days=1) + delta <= day, (duration, day, start)


# --- the CLI's date and duration options ------------------------------------------------------

HISTORY = "patient_id,date,site,side,drug,dose\nP1,2026-01-05,trapezius,left,triamcinolone,20 mg\n"


@pytest.mark.parametrize("on", ["03/04/2026", "20261128", "2026-02-30", "1899-12-31", "3000-01-01", "tomorrow"])
def test_bad_on_date_exits_2_and_writes_nothing(tpi: Callable[..., Result], write: Callable[[str, str], str],
                                                spec_rules: str, on: str) -> None:
    history = write("h.csv", HISTORY)
    result = tpi("totals", history, "--rules", spec_rules, "--on", on, "--format", "json")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "--on" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("window", ["6", "P", "6 fortnights", "1 week 2 weeks", "-6 weeks", "0 days", "101 years"])
def test_bad_window_duration_exits_2(tpi: Callable[..., Result], write: Callable[[str, str], str],
                                     spec_rules: str, window: str) -> None:
    history = write("h.csv", HISTORY)
    result = tpi("totals", history, "--rules", spec_rules, "--on", "2026-02-01", "--window", window,
                 "--format", "json")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "--window" in result.stderr


@pytest.mark.parametrize(("window", "inside"), [
    # an injection on p is inside iff p <= on < p + window: 2026-01-05 + 1 month = 2026-02-05
    ("1 month", "2026-02-04"),
    ("P1M", "2026-02-04"),
    ("4 weeks", "2026-02-01"),
])
def test_window_option_uses_calendar_arithmetic(tpi: Callable[..., Result], write: Callable[[str, str], str],
                                                spec_rules: str, window: str, inside: str) -> None:
    history = write("h.csv", HISTORY)
    last_in = tpi("totals", history, "--rules", spec_rules, "--on", inside, "--window", window, "--format", "json")
    assert last_in.exit_code == 0, last_in.stderr
    assert json.loads(last_in.stdout)["rows"][0]["steroid_injections"] == 1
    next_day = (date.fromisoformat(inside) + timedelta(days=1)).isoformat()
    first_out = tpi("totals", history, "--rules", spec_rules, "--on", next_day, "--window", window,
                    "--format", "json")
    assert first_out.exit_code == 0, first_out.stderr
    rows = json.loads(first_out.stdout)["rows"]
    assert all(row["steroid_injections"] == 0 for row in rows)


@given(st.from_regex(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}\Z") | st.dates(date(1890, 1, 1), date(3010, 12, 31)).map(str))
def test_parse_date_plain_dates_agree_with_the_full_parse(text: str) -> None:
    # Plain YYYY-MM-DD takes a quick path; a leading space forces the full one: same date or same refusal.
    def outcome(value: str) -> object:
        try:
            return parse_date(value)
        except ValueError as exc:
            return str(exc).replace(repr(value), repr(text))

    assert outcome(text) == outcome(" " + text)


@pytest.mark.parametrize("text", ["٢٠٢٦-٠١-٠١", "２０２６-01-01", "2026-0١-01", "2026-01-01T1２:00"])
def test_dates_take_ascii_digits_only(text: str) -> None:
    # ISO 8601 digits are 0-9; other scripts' digits (which int() would read) are refused.
    with pytest.raises(ValueError, match="not an ISO date"):
        parse_date(text)


@pytest.mark.parametrize("text", ["٦ weeks", "P٦W", "１2 months"])
def test_durations_take_ascii_digits_only(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        Duration.parse(text)


@pytest.mark.parametrize("months", [*range(-25, 26), 119, -121])
def test_the_shortest_span_of_months_matches_the_calendar(months: int) -> None:
    # Against relativedelta over start dates from 1996 to 2105: leap years, non-leap 2100, every month
    # end (a span of up to ten years finds its shortest and longest month runs there).
    from tpi_cli.dates import _shortest_month_span

    spans = [(start + relativedelta(months=months)).toordinal() - start.toordinal()
             for year in (*range(1996, 2006), *range(2094, 2106)) for month in range(1, 13)
             for start in (date(year, month, 1), date(year, month, 28) + relativedelta(day=31))]
    assert _shortest_month_span(months) == min(spans)
