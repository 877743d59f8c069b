"""Dates and calendar durations, exactly as SPEC.md defines them.

Stored dates are ISO ``YYYY-MM-DD`` (an ISO datetime is cut to its date); nothing ambiguous such
as ``03/04/2026`` is guessed at. Durations are calendar durations applied with dateutil's
``relativedelta``, always from the original date (31 January + 1 month = 28/29 February).

Inside the engine a date is its proleptic ordinal (``date.toordinal()``), an ``int``: comparisons
are then integer comparisons, and each ``date + duration`` is computed once and cached.
"""

from __future__ import annotations

import functools
import re
from datetime import date

from dateutil.relativedelta import relativedelta

from tpi_cli.errors import did_you_mean, quote

# The range tpi accepts: wide enough for any real record or plan, narrow enough that every date
# plus the longest duration stays a valid date.
MIN_DATE = date(1900, 1, 1)
MAX_DATE = date(2999, 12, 31)
MAX_DURATION_YEARS = 100

_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})(?:[T ](.*))?\Z")
_TIME = re.compile(r"([01][0-9]|2[0-3])(?::[0-5][0-9](?::[0-5][0-9](?:[.,][0-9]{1,9})?)?)?"
                   r"(?:Z|z|[+-](?:[01][0-9]|2[0-3])(?::?[0-5][0-9])?)?\Z")


def parse_date(text: str) -> date:
    """An ISO date, or an ISO datetime cut to its date. Raises ValueError with a reason."""
    if len(text) == 10 and text.isascii() and text[4] == "-" and text[7] == "-" and \
            text[:4].isdigit() and text[5:7].isdigit() and text[8:].isdigit():
        try:  # plain YYYY-MM-DD, the usual case: the C parser
            result = date.fromisoformat(text)
        except ValueError:
            pass  # not on the calendar: the full parse says so
        else:
            if MIN_DATE <= result <= MAX_DATE:
                return result
    value = text.strip()
    match = _DATE.match(value)
    if match is None:
        raise ValueError(f"{quote(value)} is not an ISO date (YYYY-MM-DD)")
    year, month, day, time = match.groups()
    if time is not None and not _TIME.match(time):
        raise ValueError(f"{quote(value)} is not an ISO date or datetime")
    try:
        result = date(int(year), int(month), int(day))
    except ValueError:
        raise ValueError(f"{quote(value)} is not a date on the calendar") from None
    if not MIN_DATE <= result <= MAX_DATE:
        raise ValueError(f"{quote(value)} is outside {MIN_DATE.isoformat()} to {MAX_DATE.isoformat()}")
    return result


def check_date_range(value: date) -> date:
    if not MIN_DATE <= value <= MAX_DATE:
        raise ValueError(f"{value.isoformat()} is outside {MIN_DATE.isoformat()} to {MAX_DATE.isoformat()}")
    return value


_UNITS = {
    "d": "days", "day": "days", "days": "days",
    "w": "weeks", "wk": "weeks", "wks": "weeks", "week": "weeks", "weeks": "weeks",
    "mo": "months", "month": "months", "months": "months",
    "y": "years", "yr": "years", "yrs": "years", "year": "years", "years": "years",
}
_PART = re.compile(r"\s*([0-9]{1,6})\s*([a-z]+)\s*,?", re.IGNORECASE)
_ISO_DURATION = re.compile(r"P(?:([0-9]{1,6})Y)?(?:([0-9]{1,6})M)?(?:([0-9]{1,6})W)?(?:([0-9]{1,6})D)?\Z",
                           re.IGNORECASE)


_CACHES: dict[tuple[int, int], tuple[dict[int, int], dict[int, int]]] = {}


class UnknownUnit(ValueError):
    """A duration's unit tpi does not know. ``str()`` gives the hint for a slip in the message
    (``...; did you mean 'weeks'?)``); ``plain`` is the message without it, and ``suggestions`` the
    unit meant, for a report that lists suggestions apart."""

    def __init__(self, plain: str, message: str, suggestions: list[str]) -> None:
        super().__init__(message)
        self.plain = plain
        self.suggestions = suggestions


class Duration:
    """A calendar duration: years and months (applied first, with month-end clamping), then days."""

    __slots__ = ("_after", "_in_months", "_start_after", "days", "months", "text", "years")

    def __init__(self, years: int = 0, months: int = 0, days: int = 0, text: str = "") -> None:
        self.years = years
        self.months = months
        self.days = days
        self.text = text or self._describe()
        self._in_months = years * 12 + months
        # Equal durations share their caches ("12 months" and "1 year" are one).
        self._after, self._start_after = _CACHES.setdefault((self._in_months, days), ({}, {}))

    @classmethod
    def parse(cls, text: str) -> Duration:
        """``6 weeks``, ``3 months``, ``1 month 2 weeks``, ``P6W``, ``P1Y2M``. Raises ValueError."""
        value = text.strip()
        if not value:
            raise ValueError("empty duration")
        parts = {"years": 0, "months": 0, "weeks": 0, "days": 0}
        iso = _ISO_DURATION.match(value)
        if iso is not None and value.upper() != "P":
            for name, number in zip(("years", "months", "weeks", "days"), iso.groups(), strict=True):
                parts[name] = int(number or 0)
        else:
            position = 0
            seen: set[str] = set()
            while position < len(value):
                part = _PART.match(value, position)
                if part is None:
                    raise ValueError(
                        f"{quote(value)} is not a duration (e.g. '6 weeks', '3 months', '1 month 2 weeks', 'P6W')")
                unit = _UNITS.get(part.group(2).lower())
                if unit is None:
                    word = part.group(2)
                    close = [unit for unit in did_you_mean(word, ("days", "weeks", "months", "years"))
                             if unit[:2] == word[:2].lower()]  # a slip: "weks", "monts"; not "minutes"
                    plain = f"{quote(value)}: unknown unit {quote(word)} (days, weeks, months, years"
                    hint = f"; did you mean {close[0]!r}?" if close else ""
                    raise UnknownUnit(plain + ")", plain + hint + ")", close[:1])
                if unit in seen:
                    raise ValueError(f"{quote(value)} gives {unit} twice")
                seen.add(unit)
                parts[unit] = int(part.group(1))
                position = part.end()
        duration = cls(parts["years"], parts["months"], parts["weeks"] * 7 + parts["days"], value)
        if duration.approximate_days() > MAX_DURATION_YEARS * 365.25:
            raise ValueError(f"{quote(value)} is longer than {MAX_DURATION_YEARS} years")
        return duration

    def _describe(self) -> str:
        words = []
        for number, unit in ((self.years, "year"), (self.months, "month"), (self.days, "day")):
            if number:
                words.append(f"{number} {unit}{'' if abs(number) == 1 else 's'}")
        return " ".join(words) or "0 days"

    def approximate_days(self) -> float:
        """The average length in days (a year of 365.25 days), to compare durations of other units."""
        return (self.years * 12 + self.months) * 365.25 / 12 + self.days

    def always_positive(self) -> bool:
        """Whether it ends after its start from every start date (years and months first, clipped
        to the month's end, then days, as relativedelta adds them). k months span at least 28 k
        days, which settles the usual cases without a look at the calendar."""
        months = self.years * 12 + self.months
        if months == 0:
            return self.days > 0
        if months > 0 and self.days + 28 * months > 0:
            return True
        if months < 0 and self.days <= 0:
            return False
        return _shortest_month_span(months) + self.days > 0

    def max_days(self) -> int:
        return self.years * 366 + self.months * 31 + self.days

    def is_zero(self) -> bool:
        return self.years == 0 and self.months == 0 and self.days == 0

    def minus(self, other: Duration) -> Duration:
        """This duration shortened by ``other`` as one relativedelta (never two chained steps)."""
        return Duration(self.years - other.years, self.months - other.months, self.days - other.days,
                        f"{self.text} - {other.text}")

    def delta(self) -> relativedelta:
        return relativedelta(years=self.years, months=self.months, days=self.days)

    def add(self, day: int) -> int:
        """The ordinal of ``date.fromordinal(day) + self.delta()``, cached.

        Computed as relativedelta does it (tests compare the two over every day of many years):
        years and months first, the day of the month clamped to the month's end, then days."""
        if not self._in_months:
            return day + self.days
        result = self._after.get(day)
        if result is None:
            result = _shift(day, self._in_months) + self.days
            self._after[day] = result
        return result

    def first_start_after(self, day: int) -> int:
        """The first start ``s`` with ``s + self > day``: an injection on ``s`` or later is still
        inside a window of this length on ``day`` (``s + self`` is non-decreasing in ``s``). Cached."""
        if not self._in_months:
            return day - self.days + 1  # day-only: s + days > day from s = day - days + 1
        start = self._start_after.get(day)
        if start is None:
            start = _shift(day, -self._in_months) - self.days
            while self.add(start - 1) > day:
                start -= 1
            while self.add(start) <= day:
                start += 1
            self._start_after[day] = start
        return start

    def __repr__(self) -> str:
        return f"Duration({self.text!r})"

    def __str__(self) -> str:
        return self.text


def _shift(day: int, months: int) -> int:
    """``day`` moved by whole months, the day of the month clamped to the new month's length."""
    if not months:
        return day
    base = date.fromordinal(day)
    index = base.year * 12 + base.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    return date(year, month, min(base.day, _month_length(year, month))).toordinal()


def _month_length(year: int, month: int) -> int:
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def iso(day: int) -> str:
    return date.fromordinal(day).isoformat()


@functools.lru_cache(maxsize=1024)
def _shortest_month_span(months: int) -> int:
    """The fewest days ``months`` calendar months span from any start date. From day q of one month
    to the same day (clipped) ``k`` months on is the sum of ``k`` consecutive month lengths, or,
    when clipped, the sum of the ``k`` after it; so the shortest is the smallest such sum over a
    400-year Gregorian cycle (the calendar repeats), and going back, minus the largest."""
    if months == 0:
        return 0
    count = abs(months)
    cycle = _cycle_lengths()
    lengths = cycle + cycle * (count // 4800) + cycle[: count % 4800]  # windows that wrap around the cycle
    window = sum(lengths[:count])
    smallest = largest = window
    for start in range(1, 4800):
        window += lengths[start + count - 1] - lengths[start - 1]
        smallest = min(smallest, window)
        largest = max(largest, window)
    return smallest if months > 0 else -largest


@functools.lru_cache(maxsize=1)
def _cycle_lengths() -> list[int]:
    """The lengths of the 4,800 months of a 400-year Gregorian cycle (2000 to 2399)."""
    return [_month_length(2000 + m // 12, m % 12 + 1) for m in range(4800)]
