"""Exact numbers: doses, weights and limits, in integers.

Masses are whole picograms (``PG_PER_MG`` to the mg), so sums and comparisons are integer
arithmetic: exact, and a total that lands exactly on a limit is within it. A dose more precise than
a picogram is refused rather than rounded. Numbers are read as plain decimals only: no exponents,
no ``NaN`` or ``inf``, no signs.
"""

from __future__ import annotations

import re
from math import gcd

from tpi_cli.errors import quote

PG_PER_MG = 10**9
MG_PER_G = 1000
_MAX_DIGITS = 18

_NUMBER = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)\Z")


class Ratio:
    """A non-negative exact ratio of two ints (a tiny, fast stand-in for ``fractions.Fraction``)."""

    __slots__ = ("den", "num")

    def __init__(self, num: int, den: int = 1) -> None:
        if den <= 0:
            raise ValueError("denominator must be positive")
        common = gcd(num, den)
        self.num = num // common
        self.den = den // common

    def __add__(self, other: Ratio) -> Ratio:
        return Ratio(self.num * other.den + other.num * self.den, self.den * other.den)

    def __mul__(self, other: Ratio) -> Ratio:
        return Ratio(self.num * other.num, self.den * other.den)

    def __truediv__(self, other: Ratio) -> Ratio:
        if other.num == 0:
            raise ZeroDivisionError("division by zero")
        return Ratio(self.num * other.den, self.den * other.num)

    def __le__(self, other: Ratio) -> bool:
        return self.num * other.den <= other.num * self.den

    def __lt__(self, other: Ratio) -> bool:
        return self.num * other.den < other.num * self.den

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Ratio) and self.num == other.num and self.den == other.den

    def __hash__(self) -> int:
        return hash((self.num, self.den))

    def __float__(self) -> float:
        return self.num / self.den

    def __repr__(self) -> str:
        return f"Ratio({self.num}, {self.den})"

    def is_int(self) -> bool:
        return self.den == 1

    def round2(self) -> float:
        """Rounded half up to 2 decimals, for display (the arithmetic itself stays exact)."""
        return rounded(self.num, self.den, 2) / 100

    def decimal_text(self, places: int = 2) -> str:
        """``12.5`` / ``5.33``: rounded half up, trailing zeros dropped."""
        return _decimal_text(self.num, self.den, places)


def decimal_text(num: int, den: int, places: int = 2) -> str:
    """``num / den`` as ``12.5`` / ``5.33``: rounded half up, trailing zeros dropped (no Ratio made;
    remembered: validate writes the same few amounts many times)."""
    key = (num, den, places)
    found = _DECIMALS.get(key)
    if found is None:
        if len(_DECIMALS) >= 65_536:
            _DECIMALS.clear()
        found = _DECIMALS[key] = _decimal_text(num, den, places)
    return found


_DECIMALS: dict[tuple[int, int, int], str] = {}


def rounded(num: int, den: int, places: int) -> int:
    """``num / den`` rounded half up to ``places`` decimals, in units of ``10**-places``."""
    scale: int = 10**places
    return (num * scale * 2 + den) // (2 * den)


def _decimal_text(num: int, den: int, places: int) -> str:
    scale = 10**places
    units = rounded(num, den, places)
    whole, frac = divmod(units, scale)
    if not frac:
        return str(whole)
    return f"{whole}.{frac:0{places}d}".rstrip("0")


def parse_decimal(text: str) -> Ratio:
    """A plain non-negative decimal (``20``, ``0.75``, ``.5``) as an exact ratio. Raises ValueError."""
    value = text.strip()
    if not _NUMBER.match(value):
        lowered = value.lower()
        if lowered.lstrip("+-") in {"nan", "inf", "infinity"}:
            raise ValueError(f"{quote(value)} is not a finite number")
        if value.startswith("-"):
            raise ValueError(f"{quote(value)} is negative")
        raise ValueError(f"{quote(value)} is not a plain decimal number")
    if len(value) > _MAX_DIGITS + 1:
        raise ValueError(f"{quote(value)} has more than {_MAX_DIGITS} digits")
    whole, _, frac = value.partition(".")
    return Ratio(int((whole or "0") + frac), 10 ** len(frac))


def to_units(value: Ratio, per_unit: int, what: str) -> int:
    """``value * per_unit`` as an exact int; refuses a value more precise than one unit."""
    scaled = value.num * per_unit
    if scaled % value.den:
        raise ValueError(f"{what} is more precise than tpi counts")
    return scaled // value.den


# --- doses -----------------------------------------------------------------------------------

MASS, VOLUME, UNITS = "mg", "mL", "units"

_NUM = r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
_MASS = re.compile(_NUM + r"\s*(mg|mcg|µg|μg|ug|g)\Z", re.IGNORECASE)
_SOLUTION = re.compile(_NUM + r"\s*ml\s*(?:@|of)\s*" + _NUM + r"\s*(%|mg\s*/\s*ml)\Z", re.IGNORECASE)
_VOLUME = re.compile(_NUM + r"\s*ml\Z", re.IGNORECASE)
_UNITS = re.compile(_NUM + r"\s*(units?|iu|u)\Z", re.IGNORECASE)
_PG_PER = {"mg": PG_PER_MG, "mcg": PG_PER_MG // 1000, "µg": PG_PER_MG // 1000, "μg": PG_PER_MG // 1000,
           "ug": PG_PER_MG // 1000, "g": PG_PER_MG * MG_PER_G}
DOSE_FORMS = "e.g. '20 mg', '500 mcg', '3 mL @ 1%', '3 mL @ 10 mg/mL'"


class Amount:
    """A dose: ``value`` in whole picograms (``MASS``), microlitres (``VOLUME``) or thousandths of a
    unit (``UNITS``). Only masses take part in dose rules; the others are for ``other`` drugs."""

    __slots__ = ("kind", "value")

    def __init__(self, value: int, kind: str = MASS) -> None:
        self.value = value
        self.kind = kind

    def plus(self, other: Amount) -> Amount:
        if other.kind != self.kind:
            raise ValueError(f"cannot add a dose in {other.kind} to one in {self.kind}")
        return Amount(self.value + other.value, self.kind)

    @property
    def mg(self) -> Ratio | None:
        return Ratio(self.value, PG_PER_MG) if self.kind == MASS else None

    def text(self) -> str:
        if self.kind == MASS:
            return f"{Ratio(self.value, PG_PER_MG).decimal_text(3)} mg"
        if self.kind == VOLUME:
            return f"{Ratio(self.value, 1000).decimal_text(3)} mL"
        return f"{Ratio(self.value, 1000).decimal_text(3)} units"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Amount) and (self.value, self.kind) == (other.value, other.kind)

    def __hash__(self) -> int:
        return hash((self.value, self.kind))

    def __repr__(self) -> str:
        return f"Amount({self.text()!r})"


def parse_dose(text: str, *, mass_only: bool) -> Amount:
    """``20mg``, ``20 mg``, ``500 mcg``, ``3mL@1%``, ``3 mL @ 10 mg/mL``; for drugs of class
    ``other`` also ``5 mL`` and ``100 units``. A bare number is refused: unitless doses are a known
    cause of medication errors. Raises ValueError with the reason."""
    value = " ".join(text.split())
    if not value:
        raise ValueError(f"missing dose ({DOSE_FORMS})")
    if len(value) > 60:
        raise ValueError("dose text is too long")
    if value.startswith("-"):
        raise ValueError(f"{quote(value)}: a dose cannot be negative")
    amount = _parse_amount(value, mass_only)
    if amount.value <= 0:
        raise ValueError(f"{quote(value)}: a dose must be more than 0")
    return amount


def _parse_amount(value: str, mass_only: bool) -> Amount:
    match = _MASS.match(value)
    if match:
        number = parse_decimal(match.group(1))
        return Amount(to_units(number, _PG_PER[match.group(2).lower()], f"dose {quote(value)}"))
    match = _SOLUTION.match(value)
    if match:
        volume, strength, unit = parse_decimal(match.group(1)), parse_decimal(match.group(2)), match.group(3)
        if unit == "%":
            if strength.num > 100 * strength.den:  # exact: 100.000000000000001% is over
                raise ValueError(f"{quote(value)}: a strength above 100% is impossible")
            mg_per_ml = strength * Ratio(10)  # a percent is g/100 mL: 1% = 10 mg/mL
        else:
            mg_per_ml = strength
        return Amount(to_units(volume * mg_per_ml, PG_PER_MG, f"dose {quote(value)}"))
    if not mass_only:
        match = _VOLUME.match(value)
        if match:
            return Amount(to_units(parse_decimal(match.group(1)), 1000, f"dose {quote(value)}"), VOLUME)
        match = _UNITS.match(value)
        if match:
            return Amount(to_units(parse_decimal(match.group(1)), 1000, f"dose {quote(value)}"), UNITS)
    if _NUMBER.match(value):
        raise ValueError(f"{quote(value)} has no unit ({DOSE_FORMS}): unitless doses are a known cause of "
                         "medication errors")
    lowered = value.lower()
    if any(word in lowered for word in ("nan", "inf")):
        raise ValueError(f"{quote(value)} is not a finite dose")
    if _VOLUME.match(value):
        raise ValueError(f"{quote(value)}: a volume needs a strength for this drug, e.g. '3 mL @ 1%'")
    if re.match(r"[0-9.]+\s*e", lowered):
        raise ValueError(f"{quote(value)}: write the dose as a plain decimal, not in exponent form")
    raise ValueError(f"{quote(value)} is not a dose ({DOSE_FORMS})")
